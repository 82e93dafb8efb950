//! Scoring text with a causal model: mean next-token cross-entropy and perplexity.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::Serialize;

use crate::bert::BertForMaskedLM;
use crate::data::{mask_tokens, mlm_token_ids};
use crate::error::{invalid, Result};
use crate::generate::{int_tensor, read_f32};
use crate::gpt2::Gpt2LMHeadModel;
use crate::sampling::Rng;
use crate::tokenizer::Tokenizer;

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
    score_windows(model, ids, None).await
}

/// [`score`] with windows of `context` tokens (at most the model's context; `None` = all of it).
pub async fn score_windows(model: &Gpt2LMHeadModel, ids: &[u32], context: Option<usize>) -> Result<Score> {
    if ids.len() < 2 {
        return Err(invalid!("scoring needs at least two tokens (one to predict from, one to predict)"));
    }
    let max = model.config().n_positions;
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
        let logits = model.forward(input, None).reshape([t, model.config().vocab_size]);
        let loss = read_f32(cross_entropy(logits, target)).await?[0] as f64;
        total += loss * t as f64;
        count += t;
        start = end - 1;
    }
    let loss = total / count as f64;
    Ok(Score { loss, perplexity: loss.exp(), predicted: count })
}

/// Masked-LM loss of corrupted `inputs` against `labels`: cross-entropy at the positions that
/// have a label, the only rows sent through the vocabulary projection.
///
/// # Shapes
/// - inputs, labels: `[b * t]` row-major for `shape = [b, t]` → `[1]`
pub fn masked_lm_loss(
    model: &BertForMaskedLM,
    inputs: &[u32],
    labels: &[Option<u32>],
    shape: [usize; 2],
) -> Tensor<1> {
    let [b, t] = shape;
    let device = model.device();
    let vocab = model.config().vocab_size;
    let rows: Vec<u32> =
        labels.iter().enumerate().filter(|(_, l)| l.is_some()).map(|(i, _)| i as u32).collect();
    let targets: Vec<u32> = labels.iter().flatten().copied().collect();
    let n = rows.len();
    let zeros = Tensor::<2, Int>::zeros([b, t], &device);
    let ones = Tensor::<2, Int>::ones([b, t], &device);
    let hidden = model.forward_hidden(int_tensor(inputs, [b, t], &device), zeros, ones); // [b, t, d]
    let d = hidden.dims()[2];
    let chosen = hidden.reshape([b * t, d]).select(0, int_tensor(&rows, [n], &device)); // [n, d]
    let logits = model.mlm_head(chosen.reshape([1, n, d])).reshape([n, vocab]);
    cross_entropy(logits, int_tensor(&targets, [n], &device))
}

/// Masked-LM loss of a token stream: windows of `context` tokens (default the model's), 15% of
/// tokens corrupted as in pretraining with a fixed seed, loss on the corrupted ones; the
/// perplexity is `exp(loss)` (a pseudo-perplexity).
pub async fn score_masked(
    model: &BertForMaskedLM,
    tokenizer: &Tokenizer,
    ids: &[u32],
    context: Option<usize>,
) -> Result<Score> {
    let max = model.config().max_position_embeddings;
    let n = context.unwrap_or(max);
    if n < 2 || n > max {
        return Err(invalid!("the context must be between 2 and the model's {max} tokens, got {n}"));
    }
    if ids.len() < 2 {
        return Err(invalid!("scoring needs at least two tokens"));
    }
    let (mask_id, specials) = mlm_token_ids(tokenizer)?;
    let vocab = model.config().vocab_size;
    let mut rng = Rng::new(0x4556_414C);
    let (mut total, mut count) = (0.0f64, 0usize);
    for window in ids.chunks(n) {
        let t = window.len();
        let (inputs, labels) = mask_tokens(window, t, vocab, mask_id, &specials, &mut rng);
        let k = labels.iter().flatten().count();
        let loss = masked_lm_loss(model, &inputs, &labels, [1, t]);
        total += read_f32(loss).await?[0] as f64 * k as f64;
        count += k;
    }
    let loss = total / count as f64;
    Ok(Score { loss, perplexity: loss.exp(), predicted: count })
}
