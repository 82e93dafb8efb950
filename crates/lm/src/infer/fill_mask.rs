//! Fill-mask with a masked LM (BERT, ModernBERT): top-k tokens and probabilities at every mask
//! token (the tokenizer's own, `[MASK]` or `<mask>`).

use burn::tensor::{Int, Tensor};
use serde::Serialize;

use crate::error::{invalid, Result};
use crate::infer::sampling::top_k_probs;
use crate::io::tokenizer::Tokenizer;
use crate::model::check_ids;
use crate::model::masked::MaskedLm;
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

/// Predicts every mask token of `text`.
pub async fn fill_mask(
    model: &dyn MaskedLm,
    tokenizer: &Tokenizer,
    text: &str,
    top_k: usize,
) -> Result<Vec<MaskPredictions>> {
    if top_k == 0 {
        return Err(invalid!("top-k must be at least 1"));
    }
    let (mask, mask_id) = tokenizer
        .mask_token()
        .ok_or_else(|| invalid!("this tokenizer has no mask token ([MASK] or <mask>)"))?;
    let ids = tokenizer.encode_ids(text)?;
    if !ids.contains(&mask_id) {
        return Err(invalid!("the text has no {mask} token to fill"));
    }
    fill_mask_ids(model, tokenizer, &ids, mask_id, top_k).await
}

/// [`fill_mask`] on already-encoded ids.
pub async fn fill_mask_ids(
    model: &dyn MaskedLm,
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
    let vocab = model.vocab_size();
    check_ids(ids, vocab)?;
    if ids.len() > model.context() {
        return Err(invalid!(
            "the text is {} tokens long; this model reads at most {}",
            ids.len(),
            model.context()
        ));
    }
    let device = model.device();
    let t = ids.len();
    let ones = Tensor::<2, Int>::ones([1, t], &device);
    let hidden = model.hidden(ids_tensor(ids, &device), ones); // [1, t, d]

    // Only the masked rows go through the vocabulary projection and back to the host.
    let rows: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
    let rows = int_tensor(&rows, [rows.len()], &device);
    let logits = model.mlm_head(hidden.select(1, rows)); // [1, masks, vocab]
    let logits = read_f32(logits).await?;
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
