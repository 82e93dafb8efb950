//! Fill-mask with a BERT masked LM: top-k tokens and probabilities at every `[MASK]`.

use burn::tensor::{Int, Tensor};
use serde::Serialize;

use crate::error::{invalid, Result};
use crate::infer::sampling::top_k_probs;
use crate::io::tokenizer::Tokenizer;
use crate::model::bert::BertForMaskedLM;
use crate::model::check_ids;
use crate::tensor::{ids_tensor, int_tensor, read_f32};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub id: u32,
    pub token: String,
    #[serde(serialize_with = "crate::finite::serialize")]
    pub prob: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskPredictions {
    /// Index of the `[MASK]` token in the encoded ids (`[CLS]` is 0).
    pub position: usize,
    pub predictions: Vec<Prediction>,
}

/// Predicts every `[MASK]` of `text`.
pub async fn fill_mask(
    model: &BertForMaskedLM,
    tokenizer: &Tokenizer,
    text: &str,
    top_k: usize,
) -> Result<Vec<MaskPredictions>> {
    if top_k == 0 {
        return Err(invalid!("top-k must be at least 1"));
    }
    let mask_id =
        tokenizer.token_to_id("[MASK]").ok_or_else(|| invalid!("this tokenizer has no [MASK] token"))?;
    let ids = tokenizer.encode_ids(text)?;
    fill_mask_ids(model, tokenizer, &ids, mask_id, top_k).await
}

/// [`fill_mask`] on already-encoded ids.
pub async fn fill_mask_ids(
    model: &BertForMaskedLM,
    tokenizer: &Tokenizer,
    ids: &[u32],
    mask_id: u32,
    top_k: usize,
) -> Result<Vec<MaskPredictions>> {
    let positions: Vec<usize> =
        ids.iter().enumerate().filter(|(_, &id)| id == mask_id).map(|(i, _)| i).collect();
    if positions.is_empty() {
        return Err(invalid!("the text has no [MASK] token to fill"));
    }
    let config = model.config();
    check_ids(ids, config.vocab_size)?;
    if ids.len() > config.max_position_embeddings {
        return Err(invalid!(
            "the text is {} tokens long; this model reads at most {}",
            ids.len(),
            config.max_position_embeddings
        ));
    }
    let device = model.device();
    let t = ids.len();
    let zeros = Tensor::<2, Int>::zeros([1, t], &device);
    let ones = Tensor::<2, Int>::ones([1, t], &device);
    let hidden = model.forward_hidden(ids_tensor(ids, &device), zeros, ones); // [1, t, d]

    // Only the masked rows go through the vocabulary projection and back to the host.
    let rows: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
    let rows = int_tensor(&rows, [rows.len()], &device);
    let logits = model.mlm_head(hidden.select(1, rows)); // [1, masks, vocab]
    let logits = read_f32(logits).await?;
    let vocab = config.vocab_size;
    Ok(positions
        .iter()
        .zip(logits.chunks_exact(vocab))
        .map(|(&position, row)| MaskPredictions {
            position,
            predictions: top_k_probs(row, top_k)
                .into_iter()
                .map(|(id, prob)| Prediction {
                    id,
                    token: tokenizer.id_to_token(id).unwrap_or_default(),
                    prob,
                })
                .collect(),
        })
        .collect())
}
