//! Scoring text with a causal model: mean next-token cross-entropy and perplexity.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use crate::error::{invalid, Result};
use crate::generate::read_f32;
use crate::gpt2::Gpt2LMHeadModel;

/// Mean cross-entropy of `logits` against `targets`, on the device.
///
/// # Shapes
/// - logits: `[n, vocab]`, targets: `[n]` → `[1]`
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let picked = log_softmax(logits, 1).gather(1, targets.reshape([n, 1])); // [n, 1]
    picked.mean().neg()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Mean next-token cross-entropy (nats).
    pub loss: f64,
    pub perplexity: f64,
    /// Tokens predicted (one fewer than the text's tokens, per window).
    pub predicted: usize,
}

/// Loss of every token given the ones before it. A text longer than the context is scored in
/// consecutive windows of `n_positions` tokens, each overlapping the previous by one token so
/// every token after the first is predicted exactly once.
pub async fn score(model: &Gpt2LMHeadModel, ids: &[u32]) -> Result<Score> {
    if ids.len() < 2 {
        return Err(invalid!("scoring needs at least two tokens (one to predict from, one to predict)"));
    }
    let n = model.config().n_positions;
    let device = model.transformer.wte.weight.val().device();
    let (mut total, mut count) = (0.0f64, 0usize);
    let mut start = 0;
    while start + 1 < ids.len() {
        let end = (start + n + 1).min(ids.len());
        let window = &ids[start..end];
        let t = window.len() - 1;
        let input: Vec<i64> = window[..t].iter().map(|&i| i as i64).collect();
        let target: Vec<i64> = window[1..].iter().map(|&i| i as i64).collect();
        let input = Tensor::<2, Int>::from_data(TensorData::new(input, [1, t]), &device);
        let target = Tensor::<1, Int>::from_data(TensorData::new(target, [t]), &device);
        let logits = model.forward(input, None).reshape([t, model.config().vocab_size]);
        let loss = read_f32(cross_entropy(logits, target)).await?[0] as f64;
        total += loss * t as f64;
        count += t;
        start = end - 1;
    }
    let loss = total / count as f64;
    Ok(Score { loss, perplexity: loss.exp(), predicted: count })
}
