//! BERT's masked-LM corruption: which positions are predicted and what the model sees there.

use super::tokenizers::MLM_SPECIAL_TOKENS;
use crate::error::{Error, Result};
use crate::io::tokenizer::Tokenizer;
use crate::rng::Rng;

/// The mask token's id (the tokenizer's own, [`Tokenizer::mask_token`]) and the ids of the
/// special tokens never masked (the masked-LM ones, [`MLM_SPECIAL_TOKENS`], and every other
/// special token the tokenizer declares): what [`mask_tokens`] needs.
pub fn mlm_token_ids(tokenizer: &Tokenizer) -> Result<(u32, Vec<u32>)> {
    let (_, mask_id) = tokenizer
        .mask_token()
        .ok_or_else(|| Error::InvalidInput("the tokenizer has no mask token ([MASK] or <mask>)".into()))?;
    let mut specials: Vec<u32> = MLM_SPECIAL_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
    specials.extend(tokenizer.special_ids());
    specials.sort_unstable();
    specials.dedup();
    Ok((mask_id, specials))
}

/// Share of (non-special) positions a masked LM predicts, and what becomes of them (BERT paper).
const MASK_RATE: f64 = 0.15;
const MASK_AS_MASK: f64 = 0.8;
const MASK_AS_RANDOM: f64 = 0.1;

/// BERT masked-LM corruption of a batch's inputs (rows of `row_len` ids, flattened): each
/// non-special position is chosen with probability 0.15; a chosen position becomes `mask_id` 80%
/// of the time, a uniformly random id in `0..vocab_size` (never a special id or `mask_id`) 10%,
/// and stays 10%. Returns (corrupted inputs, labels) where `labels[i]` is the original id at
/// chosen positions and `None` elsewhere. At least one position per row is chosen (one uniformly
/// among the non-special positions if the draws chose none) so every row has a loss.
///
/// `row_len` 0 is treated as 1; a final partial row is a row.
pub fn mask_tokens(
    inputs: &[u32],
    row_len: usize,
    vocab_size: usize,
    mask_id: u32,
    special_ids: &[u32],
    rng: &mut Rng,
) -> (Vec<u32>, Vec<Option<u32>>) {
    let mut specials = special_ids.to_vec();
    specials.sort_unstable();
    specials.dedup();
    let mut never_drawn: Vec<u32> =
        specials.iter().copied().chain([mask_id]).filter(|&id| (id as usize) < vocab_size).collect();
    never_drawn.sort_unstable();
    never_drawn.dedup();
    let masker = Masker { vocab_size, mask_id, never_drawn };

    let mut corrupted = inputs.to_vec();
    let mut labels = vec![None; inputs.len()];
    let rows = corrupted.chunks_mut(row_len.max(1)).zip(labels.chunks_mut(row_len.max(1)));
    for (row, row_labels) in rows {
        let candidates: Vec<usize> =
            (0..row.len()).filter(|&i| specials.binary_search(&row[i]).is_err()).collect();
        let mut chosen = 0;
        for &i in &candidates {
            if rng.next_f64() < MASK_RATE {
                masker.corrupt(&mut row[i], &mut row_labels[i], rng);
                chosen += 1;
            }
        }
        if chosen == 0 && !candidates.is_empty() {
            let i = candidates[rng.below(candidates.len())];
            masker.corrupt(&mut row[i], &mut row_labels[i], rng);
        }
    }
    (corrupted, labels)
}

/// What [`mask_tokens`] puts at a chosen position.
struct Masker {
    vocab_size: usize,
    mask_id: u32,
    /// Sorted ids a random replacement must avoid (specials and `mask_id`, inside the vocabulary).
    never_drawn: Vec<u32>,
}

impl Masker {
    fn corrupt(&self, id: &mut u32, label: &mut Option<u32>, rng: &mut Rng) {
        *label = Some(*id);
        let r = rng.next_f64();
        if r < MASK_AS_MASK {
            *id = self.mask_id;
        } else if r < MASK_AS_MASK + MASK_AS_RANDOM {
            if let Some(random) = self.random_ordinary_id(rng) {
                *id = random;
            }
        }
    }

    /// A uniform draw among the ids in `0..vocab_size` that are not in `never_drawn`: draw a rank
    /// among those ids, then step over the excluded ids below it.
    fn random_ordinary_id(&self, rng: &mut Rng) -> Option<u32> {
        let ordinary = self.vocab_size.checked_sub(self.never_drawn.len()).filter(|&n| n > 0)?;
        let mut id = rng.below(ordinary) as u32;
        for &excluded in &self.never_drawn {
            if excluded <= id {
                id += 1;
            } else {
                break;
            }
        }
        Some(id)
    }
}
