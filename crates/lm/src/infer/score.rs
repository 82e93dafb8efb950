//! Scoring text with a causal model: mean next-token cross-entropy and perplexity.

use serde::Serialize;

use crate::error::{invalid, Result};
use crate::model::causal::CausalLm;
use crate::model::check_ids;
use crate::tensor::{cross_entropy, int_tensor, read_f32};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Mean next-token cross-entropy (nats).
    #[serde(serialize_with = "crate::finite::serialize")]
    pub loss: f64,
    #[serde(serialize_with = "crate::finite::serialize")]
    pub perplexity: f64,
    /// Tokens predicted (one fewer than the text's tokens, per window).
    pub predicted: usize,
}

/// Loss of every token given the ones before it. A text longer than the context is scored in
/// consecutive windows of `n_positions` tokens, each overlapping the previous by one token so
/// every token after the first is predicted exactly once.
pub async fn score(model: &dyn CausalLm, ids: &[u32]) -> Result<Score> {
    score_windows(model, ids, None).await
}

/// [`score`] with windows of `context` tokens (at most the model's context; `None` = all of it).
pub async fn score_windows(model: &dyn CausalLm, ids: &[u32], context: Option<usize>) -> Result<Score> {
    if ids.len() < 2 {
        return Err(invalid!("scoring needs at least two tokens (one to predict from, one to predict)"));
    }
    check_ids(ids, model.vocab_size())?;
    let max = model.context();
    let n = context.unwrap_or(max);
    if n == 0 || n > max {
        return Err(invalid!("the context must be between 1 and the model's {max} tokens, got {n}"));
    }
    let device = model.device();
    let (mut total, mut count) = (0.0f64, 0usize);
    let mut start = 0;
    while start + 1 < ids.len() {
        let end = (start + n + 1).min(ids.len());
        let window = &ids[start..end];
        let t = window.len() - 1;
        let input = int_tensor(&window[..t], [1, t], &device);
        let target = int_tensor(&window[1..], [t], &device);
        let logits = model.forward(input, None).reshape([t, model.vocab_size()]);
        let loss = read_f32(cross_entropy(logits, target)).await?[0] as f64;
        total += loss * t as f64;
        count += t;
        start = end - 1;
    }
    let loss = total / count as f64;
    Ok(Score { loss, perplexity: loss.exp(), predicted: count })
}
