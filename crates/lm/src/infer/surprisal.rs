//! The surprisal of every token of a text: its loss given the tokens before it, its probability
//! and rank among all the model's choices, and what the model expected instead. The mean of the
//! losses is exactly what [`crate::infer::score`] reports.

use burn::tensor::activation::log_softmax;
use burn::tensor::Tensor;
use serde::Serialize;

use crate::error::{invalid, Result};
use crate::model::causal::CausalLm;
use crate::model::check_ids;
use crate::tensor::{check_float_ids, int_tensor, read_f32, top_k_pairs, top_k_rows};

/// One predicted token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenSurprisal {
    /// The token that came (position `i + 1` of the text for entry `i`).
    pub id: u32,
    /// `-ln p(token | before)`, nats.
    #[serde(serialize_with = "crate::finite::serialize")]
    pub loss: f64,
    #[serde(serialize_with = "crate::finite::serialize")]
    pub prob: f64,
    /// 1 when it was the model's first choice (tokens with a strictly higher logit, plus one).
    pub rank: usize,
    /// The model's `top_k` choices at that point, with their probabilities.
    pub top: Vec<(u32, f64)>,
}

/// Surprisal of every token after the first, in windows of the model's context exactly as
/// [`crate::infer::score`] scores them (each window overlaps the previous by one token), with
/// one read per window.
pub async fn surprisal(model: &dyn CausalLm, ids: &[u32], top_k: usize) -> Result<Vec<TokenSurprisal>> {
    if ids.len() < 2 {
        return Err(invalid!("scoring needs at least two tokens (one to predict from, one to predict)"));
    }
    let vocab = model.vocab_size();
    check_ids(ids, vocab)?;
    check_float_ids(vocab)?;
    if top_k == 0 || top_k > vocab {
        return Err(invalid!("top-k must be between 1 and the vocabulary's {vocab} tokens, got {top_k}"));
    }
    let n = model.context();
    let device = model.device();
    let mut out = Vec::with_capacity(ids.len() - 1);
    let mut start = 0;
    while start + 1 < ids.len() {
        let end = (start + n + 1).min(ids.len());
        let window = &ids[start..end];
        let t = window.len() - 1;
        let logits = model.forward(int_tensor(&window[..t], [1, t], &device), None).reshape([t, vocab]);
        let target = int_tensor(&window[1..], [t, 1], &device);
        let target_logit = logits.clone().gather(1, target.clone()); // [t, 1]
        let loss = log_softmax(logits.clone(), 1).gather(1, target).neg();
        let above = logits.clone().greater(target_logit.expand([t, vocab])).int().sum_dim(1).float();
        let top = top_k_rows(logits, top_k);
        let values = read_f32(Tensor::cat(vec![loss, above, top], 1)).await?;
        for (row, &id) in values.chunks(2 + 2 * top_k).zip(&window[1..]) {
            let loss = row[0] as f64;
            out.push(TokenSurprisal {
                id,
                loss,
                prob: (-loss).exp(),
                rank: row[1] as usize + 1,
                top: top_k_pairs(&row[2..]),
            });
        }
        start = end - 1;
    }
    Ok(out)
}
