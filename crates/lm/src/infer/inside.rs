//! What happens inside the model for one text: the attention weights of every layer and head
//! (as `transformers`' `output_attentions=True`), and the logit lens — the token the residual
//! stream would predict if decoding stopped after each layer.

use crate::error::{invalid, Result};
use crate::infer::sampling::top_k_probs;
use crate::model::bert::BertForMaskedLM;
use crate::model::check_ids;
use crate::model::gpt2::Gpt2LMHeadModel;
use crate::model::AnyModel;
use crate::tensor::{ids_tensor, int_tensor, read_f32};

/// `[layer][head][query][key]`.
pub type Attentions = Vec<Vec<Vec<Vec<f32>>>>;

/// One cell of the logit lens: the `k` most probable next tokens after a layer, at a position.
pub type LensCell = Vec<(u32, f64)>;

fn check_text(ids: &[u32], vocab: usize, max: usize) -> Result<()> {
    if ids.is_empty() {
        return Err(invalid!("the text has no tokens"));
    }
    if ids.len() > max {
        return Err(invalid!("the text has {} tokens; the model sees at most {max}", ids.len()));
    }
    check_ids(ids, vocab)
}

/// `[1, nh, t, t]` read back as `[head][query][key]`.
async fn heads(probs: burn::tensor::Tensor<4>) -> Result<Vec<Vec<Vec<f32>>>> {
    let [_, nh, t, s] = probs.dims();
    let values = read_f32(probs).await?;
    Ok((0..nh)
        .map(|h| (0..t).map(|q| values[(h * t + q) * s..(h * t + q + 1) * s].to_vec()).collect())
        .collect())
}

/// The attention weights of every layer for `ids` (GPT-2: causal, so row `q` is 0 after `q`;
/// BERT: one sentence without padding).
pub async fn attentions(model: &AnyModel, ids: &[u32]) -> Result<Attentions> {
    let device = model.device();
    let layers = match model {
        AnyModel::Gpt2(m) => {
            check_text(ids, m.config().vocab_size, m.config().n_positions)?;
            m.inside(ids_tensor(ids, &device)).attentions
        }
        AnyModel::Bert(m) => {
            check_text(ids, m.config().vocab_size, m.config().max_position_embeddings)?;
            return bert_attentions(m, &[ids.to_vec()]).await.map(|mut batch| batch.remove(0));
        }
    };
    let mut out = Vec::with_capacity(layers.len());
    for probs in layers {
        out.push(heads(probs).await?);
    }
    Ok(out)
}

/// BERT attention weights for a padded batch: `[row][layer][head][query][key]`. Rows shorter
/// than the longest are padded with `[PAD]` (id 0) and masked, as a tokenizer's padding does.
pub async fn bert_attentions(model: &BertForMaskedLM, rows: &[Vec<u32>]) -> Result<Vec<Attentions>> {
    let t = rows.iter().map(Vec::len).max().unwrap_or(0);
    for row in rows {
        check_text(row, model.config().vocab_size, model.config().max_position_embeddings)?;
    }
    let b = rows.len();
    let pad = model.config().pad_token_id.unwrap_or(0);
    let ids: Vec<u32> =
        rows.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(pad, t - r.len()))).collect();
    let keep: Vec<u32> = rows.iter().flat_map(|r| (0..t).map(move |i| u32::from(i < r.len()))).collect();
    let device = model.device();
    let layers = model.attentions(
        int_tensor(&ids, [b, t], &device),
        int_tensor(&vec![0; b * t], [b, t], &device),
        int_tensor(&keep, [b, t], &device),
    );
    let mut out = vec![Vec::with_capacity(layers.len()); b];
    for probs in layers {
        let [_, nh, _, _] = probs.dims();
        for (row, layers) in out.iter_mut().enumerate() {
            layers.push(heads(probs.clone().narrow(0, row, 1).reshape([1, nh, t, t])).await?);
        }
    }
    Ok(out)
}

/// The logit lens of a GPT-2: `[layer][position]` → the `top_k` next tokens with their
/// probabilities, decoding each layer's residual stream with the final LayerNorm and the tied
/// unembedding. The last layer's cells are the model's own predictions.
pub async fn logit_lens(model: &Gpt2LMHeadModel, ids: &[u32], top_k: usize) -> Result<Vec<Vec<LensCell>>> {
    check_text(ids, model.config().vocab_size, model.config().n_positions)?;
    if top_k == 0 {
        return Err(invalid!("--top-k must be at least 1"));
    }
    let vocab = model.config().vocab_size;
    let inside = model.inside(ids_tensor(ids, &model.device()));
    let mut grid = Vec::with_capacity(inside.residuals.len());
    for residual in inside.residuals {
        let logits = read_f32(model.decode_residual(residual)).await?;
        grid.push(logits.chunks(vocab).map(|row| top_k_probs(row, top_k)).collect());
    }
    Ok(grid)
}
