//! Choosing the next token from a logits vector. [`choose`] ranks on the device and reads back
//! only what the rule needs (one index for greedy, `k` logits for top-k); the host functions
//! rank a row already read (the distribution charts, and the draws themselves).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::rng::Rng;
use crate::tensor::{check_float_ids, read_f32};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Sampling {
    /// The most likely token (ties go to the lowest id, as `torch.argmax`).
    ArgMax,
    /// A draw from softmax(logits / temperature), restricted to the `top_k` most likely tokens
    /// and then to the smallest set whose probability reaches `top_p`.
    Sample { temperature: f32, top_k: Option<usize>, top_p: Option<f32> },
}

impl Sampling {
    /// Validates user-facing values. Temperature 0 means greedy, as does top-k 1.
    pub fn new(temperature: f32, top_k: Option<usize>, top_p: Option<f32>) -> Result<Self> {
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(invalid!("temperature must be a finite number ≥ 0, got {temperature}"));
        }
        if temperature > 100.0 {
            return Err(invalid!("temperature {temperature} is too large (at most 100)"));
        }
        if top_k == Some(0) {
            return Err(invalid!("top-k must be at least 1"));
        }
        if let Some(p) = top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(invalid!("top-p must be in (0, 1], got {p}"));
            }
        }
        if temperature == 0.0 || top_k == Some(1) {
            return Ok(Self::ArgMax);
        }
        Ok(Self::Sample { temperature, top_k, top_p })
    }

    /// The distribution a draw is taken from, as `(id, probability)` by decreasing probability
    /// (one entry for [`Sampling::ArgMax`]). This is what the browser's "after" chart shows.
    pub fn distribution(&self, logits: &[f32]) -> Vec<(u32, f32)> {
        match *self {
            Sampling::ArgMax => vec![(argmax(logits), 1.0)],
            Sampling::Sample { top_k, .. } => {
                let k = top_k.unwrap_or(logits.len()).min(logits.len());
                self.distribution_of_ranked(&top_k_logits(logits, k))
            }
        }
    }

    /// [`Sampling::distribution`] from the `top_k` largest logits, largest first (all of them
    /// without a top-k): temperature, then the nucleus cut, renormalised.
    fn distribution_of_ranked(&self, ranked: &[(u32, f32)]) -> Vec<(u32, f32)> {
        match *self {
            Sampling::ArgMax => ranked.first().map(|&(id, _)| vec![(id, 1.0)]).unwrap_or_default(),
            Sampling::Sample { temperature, top_p, .. } => {
                let Some(&(_, max)) = ranked.first() else { return Vec::new() };
                let max = max as f64;
                let t = temperature as f64;
                let weights: Vec<f64> = ranked.iter().map(|&(_, l)| ((l as f64 - max) / t).exp()).collect();
                let total: f64 = weights.iter().sum();
                let mut out: Vec<(u32, f32)> = Vec::with_capacity(ranked.len());
                let mut mass = 0.0;
                for (&(id, _), w) in ranked.iter().zip(&weights) {
                    let p = w / total;
                    out.push((id, p as f32));
                    mass += p;
                    if top_p.is_some_and(|top_p| mass >= top_p as f64) {
                        break;
                    }
                }
                let kept: f32 = out.iter().map(|&(_, p)| p).sum();
                out.iter_mut().for_each(|(_, p)| *p /= kept);
                out
            }
        }
    }

    /// Chooses the next token.
    pub fn sample(&self, logits: &[f32], rng: &mut Rng) -> u32 {
        match self {
            Sampling::ArgMax => argmax(logits),
            Sampling::Sample { .. } => Self::draw(&self.distribution(logits), rng),
        }
    }

    /// One draw from `dist` (probabilities summing to 1, most probable first).
    fn draw(dist: &[(u32, f32)], rng: &mut Rng) -> u32 {
        let u = rng.next_f64() as f32;
        let mut acc = 0.0;
        for &(id, p) in dist {
            acc += p;
            if u < acc {
                return id;
            }
        }
        dist.last().map_or(0, |&(id, _)| id)
    }
}

/// Chooses the next token from the logits on the device (`[1, vocab]`), reading back one index
/// for greedy and `2k` numbers for top-k sampling; only temperature or top-p over the whole
/// vocabulary read the row. The same draws as [`Sampling::sample`] on the row (ties between
/// equal logits may be broken the other way).
pub async fn choose(sampling: &Sampling, logits: Tensor<2>, rng: &mut Rng) -> Result<u32> {
    let [_, vocab] = logits.dims();
    check_float_ids(vocab)?;
    match *sampling {
        Sampling::ArgMax => {
            let id = read_f32(logits.argmax(1).float()).await?;
            Ok(id[0] as u32)
        }
        Sampling::Sample { top_k: Some(k), .. } if k < vocab => {
            let (values, ids) = logits.clone().topk_with_indices(k, 1);
            let row = read_f32(Tensor::cat(vec![values, ids.float()], 1)).await?;
            match ranked_from_device(&row, k, vocab) {
                Some(ranked) => Ok(Sampling::draw(&sampling.distribution_of_ranked(&ranked), rng)),
                // Burn's top-k kernel returns one candidate padded with -f32::MAX and id -1 on
                // Mesa's lavapipe (Vulkan): a kernel that misbehaves on some adapter must not
                // choose the token, so the row is read and ranked on the host instead.
                None => Ok(sampling.sample(&read_f32(logits).await?, rng)),
            }
        }
        Sampling::Sample { .. } => Ok(sampling.sample(&read_f32(logits).await?, rng)),
    }
}

/// The `k` candidates of a device top-k row (`k` values, then `k` ids), if they are a ranking:
/// distinct ids inside the vocabulary, values not increasing. `None` when the kernel's output
/// is not one (a broken kernel on some adapter).
fn ranked_from_device(row: &[f32], k: usize, vocab: usize) -> Option<Vec<(u32, f32)>> {
    if row.len() != 2 * k {
        return None;
    }
    let (values, ids) = row.split_at(k);
    let mut seen = std::collections::HashSet::with_capacity(k);
    let mut ranked = Vec::with_capacity(k);
    for (i, (&value, &id)) in values.iter().zip(ids).enumerate() {
        let valid_id = id >= 0.0 && id.fract() == 0.0 && (id as usize) < vocab && seen.insert(id as u32);
        // NaN fails both comparisons; -f32::MAX is the kernel's padding, never a real logit here.
        let ordered = value > -f32::MAX && (i == 0 || value <= values[i - 1]);
        if !(valid_id && ordered) {
            return None;
        }
        ranked.push((id as u32, value));
    }
    Some(ranked)
}

/// Index of the largest logit; the first one on ties. NaN never wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

/// The `k` largest logits as `(id, logit)`, largest first, ties by lower id.
pub fn top_k_logits(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let k = k.min(logits.len());
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut all: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
    if k == 0 {
        return Vec::new();
    }
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, order);
        all.truncate(k);
    }
    all.sort_by(order);
    all
}

/// Softmax in f64 (probabilities shown to users and compared with `transformers` at 1e-4).
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

/// The `k` most probable tokens with their softmax probabilities, most probable first.
pub fn top_k_probs(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let probs = softmax(logits);
    top_k_logits(logits, k).into_iter().map(|(id, _)| (id, probs[id as usize])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_zero_and_top_k_one_are_greedy() {
        assert_eq!(Sampling::new(0.0, None, None).unwrap(), Sampling::ArgMax);
        assert_eq!(Sampling::new(0.8, Some(1), None).unwrap(), Sampling::ArgMax);
    }

    #[test]
    fn a_device_top_k_row_is_used_only_if_it_is_a_ranking() {
        let good = [3.0, 2.5, 2.5, 7.0, 1.0, 4.0];
        assert_eq!(ranked_from_device(&good, 3, 10), Some(vec![(7, 3.0), (1, 2.5), (4, 2.5)]));
        // What lavapipe's kernel returned: one candidate, the rest padding.
        let padded = [3.0, -f32::MAX, -f32::MAX, 7.0, -1.0, -1.0];
        assert_eq!(ranked_from_device(&padded, 3, 10), None);
        for bad in [
            [3.0, 2.5, 2.6, 7.0, 1.0, 4.0],      // values increase
            [3.0, 2.5, 2.0, 7.0, 7.0, 4.0],      // an id twice
            [3.0, 2.5, 2.0, 7.0, 1.0, 10.0],     // an id outside the vocabulary
            [3.0, f32::NAN, 2.0, 7.0, 1.0, 4.0], // NaN
        ] {
            assert_eq!(ranked_from_device(&bad, 3, 10), None, "{bad:?}");
        }
        assert_eq!(ranked_from_device(&good[..5], 3, 10), None);
    }

    #[test]
    fn absurd_values_are_rejected() {
        assert!(Sampling::new(-1.0, None, None).is_err());
        assert!(Sampling::new(f32::NAN, None, None).is_err());
        assert!(Sampling::new(1.0, Some(0), None).is_err());
        assert!(Sampling::new(1.0, None, Some(0.0)).is_err());
        assert!(Sampling::new(1.0, None, Some(1.5)).is_err());
    }

    #[test]
    fn top_k_is_ordered_and_breaks_ties_by_id() {
        let got = top_k_logits(&[1.0, 3.0, 3.0, -1.0, 2.0], 3);
        assert_eq!(got, vec![(1, 3.0), (2, 3.0), (4, 2.0)]);
        assert_eq!(argmax(&[0.5, 2.0, 2.0]), 1);
    }

    #[test]
    fn top_p_keeps_the_smallest_sufficient_set() {
        let logits = [(0.5f32).ln(), (0.3f32).ln(), (0.2f32).ln()];
        let dist = Sampling::new(1.0, None, Some(0.75)).unwrap().distribution(&logits);
        let ids: Vec<u32> = dist.iter().map(|d| d.0).collect();
        assert_eq!(ids, vec![0, 1]);
        assert!((dist[0].1 - 0.625).abs() < 1e-6);
    }

    #[test]
    fn rng_is_reproducible_and_uniform() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut r = Rng::new(1);
        let mean = (0..100_000).map(|_| r.next_f64()).sum::<f64>() / 100_000.0;
        assert!((mean - 0.5).abs() < 0.01);
    }
}
