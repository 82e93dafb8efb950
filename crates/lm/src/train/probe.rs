//! The training probe: at every evaluation, what the model makes of one fixed sentence — the
//! attention of every layer and head and (GPT-2) the logit lens — kept with the evaluation so a
//! run can be replayed step by step, after a reload too.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::infer::inside::{attentions, logit_lens_of, max_tokens, shape, Attentions};
use crate::io::tokenizer::Tokenizer;
use crate::model::AnyModel;
use crate::train::trainer::EvalReport;

/// Attention weights kept per evaluation, at most: `layers × heads × tokens²` decides how many
/// tokens of the probe sentence are watched (a big model watches fewer), so a run's history
/// stays a few megabytes whatever its size.
pub const PROBE_VALUES: usize = 16_384;
/// Tokens watched at most, and at least (when the sentence has them).
const MAX_TOKENS: usize = 32;
const MIN_TOKENS: usize = 4;
/// Evaluations that keep a probe; past this, every second older one is thinned out.
pub const MAX_PROBES: usize = 64;

/// The logit lens's first choice at one layer and position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LensTop {
    pub id: u32,
    pub token: String,
    #[serde(with = "crate::finite::f32")]
    pub prob: f32,
}

/// What the model did with the probe sentence at one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The probe's tokens, as text.
    pub tokens: Vec<String>,
    /// `[layer][head][query][key]`, rounded to 1/1000 (what a heatmap can show).
    pub attentions: Attentions,
    /// GPT-2: `[layer][position]`, the next token each layer would predict. Empty for BERT.
    #[serde(default)]
    pub lens: Vec<Vec<LensTop>>,
}

/// How many tokens of the probe sentence a model of this shape watches.
pub fn probe_len(layers: usize, heads: usize) -> usize {
    let per_token2 = (layers * heads).max(1);
    ((PROBE_VALUES / per_token2) as f64).sqrt().floor().clamp(MIN_TOKENS as f64, MAX_TOKENS as f64) as usize
}

/// The probe of `model` (evaluation mode) on `ids` (already cut to [`probe_len`]).
pub async fn probe(model: &AnyModel, tokenizer: &Tokenizer, ids: &[u32]) -> Result<Probe> {
    let round = |w: f32| (w * 1000.0).round() / 1000.0;
    let attentions = attentions(model, ids)
        .await?
        .into_iter()
        .map(|l| {
            l.into_iter()
                .map(|h| h.into_iter().map(|q| q.into_iter().map(round).collect()).collect())
                .collect()
        })
        .collect();
    let token = |id: u32| tokenizer.decode(&[id]).unwrap_or_default();
    let lens = match model.masked() {
        // A masked LM has no next token to lens.
        Some(_) => Vec::new(),
        None => logit_lens_of(model, ids, 1).await?,
    };
    let lens = lens
        .into_iter()
        .map(|layer| {
            layer
                .into_iter()
                .map(|cell| LensTop { id: cell[0].0, token: token(cell[0].0), prob: cell[0].1 as f32 })
                .collect()
        })
        .collect();
    Ok(Probe { tokens: ids.iter().map(|&id| token(id)).collect(), attentions, lens })
}

/// The probe's tokens for a model: `text` encoded, or (empty) `fallback`, cut to what the
/// model's shape allows.
pub fn probe_ids(model: &AnyModel, tokenizer: &Tokenizer, text: &str, fallback: &[u32]) -> Result<Vec<u32>> {
    let mut ids = if text.trim().is_empty() { fallback.to_vec() } else { tokenizer.encode_ids(text)? };
    let (layers, heads) = shape(model);
    ids.truncate(probe_len(layers, heads).min(max_tokens(model)));
    Ok(ids)
}

/// Keeps at most [`MAX_PROBES`] probes in a run's history: when there are more, every second
/// one is dropped, oldest first, keeping the first and the latest (the replay stays evenly
/// spread over the run).
pub fn thin(history: &mut [EvalReport]) {
    let with: Vec<usize> = (0..history.len()).filter(|&i| history[i].probe.is_some()).collect();
    if with.len() <= MAX_PROBES {
        return;
    }
    for &i in with[1..with.len() - 1].iter().step_by(2) {
        history[i].probe = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigger_models_watch_fewer_tokens() {
        assert_eq!(probe_len(2, 2), MAX_TOKENS);
        assert_eq!(probe_len(12, 12), 10);
        assert_eq!(probe_len(96, 96), MIN_TOKENS);
        for (l, h) in [(1, 1), (4, 4), (6, 6), (12, 12)] {
            let t = probe_len(l, h);
            assert!(l * h * t * t <= PROBE_VALUES, "{l}×{h}: {t} tokens");
        }
    }
}
