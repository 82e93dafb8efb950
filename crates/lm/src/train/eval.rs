//! Evaluating a masked LM on a token stream the way pretraining sees it: the same corruption,
//! with a fixed seed, so `hearth eval` of a BERT is comparable with its training curves.

use super::masking::{mask_tokens, mlm_token_ids};
use crate::error::{invalid, Result};
use crate::infer::score::Score;
use crate::io::tokenizer::Tokenizer;
use crate::model::check_ids;
use crate::model::masked::{masked_lm_loss, MaskedLm};
use crate::rng::Rng;
use crate::tensor::read_f32;

/// Masked-LM loss of a token stream: windows of `context` tokens (default the model's), 15% of
/// tokens corrupted as in pretraining with a fixed seed, loss on the corrupted ones; the
/// perplexity is `exp(loss)` (a pseudo-perplexity).
pub async fn score_masked(
    model: &dyn MaskedLm,
    tokenizer: &Tokenizer,
    ids: &[u32],
    context: Option<usize>,
) -> Result<Score> {
    let max = model.context();
    let n = context.unwrap_or(max);
    if n < 2 || n > max {
        return Err(invalid!("the context must be between 2 and the model's {max} tokens, got {n}"));
    }
    if ids.len() < 2 {
        return Err(invalid!("scoring needs at least two tokens"));
    }
    let (mask_id, specials) = mlm_token_ids(tokenizer)?;
    let vocab = model.vocab_size();
    check_ids(ids, vocab)?;
    let mut rng = Rng::new(0x4556_414C);
    let (mut total, mut count) = (0.0f64, 0usize);
    for window in ids.chunks(n) {
        let t = window.len();
        let (inputs, labels) = mask_tokens(window, t, vocab, mask_id, &specials, &mut rng);
        let k = labels.iter().flatten().count();
        if k == 0 {
            // A window of special tokens only: nothing a masked LM predicts.
            continue;
        }
        let loss = masked_lm_loss(model, &inputs, &labels, [1, t])?;
        total += read_f32(loss).await?[0] as f64 * k as f64;
        count += k;
    }
    if count == 0 {
        return Err(invalid!("the text has only special tokens: nothing to score"));
    }
    let loss = total / count as f64;
    Ok(Score { loss, perplexity: loss.exp(), predicted: count })
}
