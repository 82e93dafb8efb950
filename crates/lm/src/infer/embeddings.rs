//! The input embedding table seen from outside: a token's nearest neighbours by cosine, and a
//! 2-D principal-component projection of a set of tokens, both computed on the model's device
//! with one read each.

use std::collections::HashMap;

use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use crate::error::{invalid, Result};
use crate::io::tokenizer::Tokenizer;
use crate::model::check_ids;
use crate::model::AnyModel;
use crate::rng::Rng;
use crate::tensor::{check_float_ids, int_tensor, read_f32};

/// Power-iteration steps per component. Each multiplies by a `d × d` matrix; the error after
/// them shrinks as (λ₂/λ₁)^steps, far below what a scatter plot can show for any gap above 5%.
const POWER_STEPS: usize = 200;

/// The `k` tokens whose input embeddings are closest to `id`'s by cosine similarity (the token
/// itself left out), most similar first.
pub async fn nearest(model: &AnyModel, id: u32, k: usize) -> Result<Vec<(u32, f32)>> {
    let vocab = model.vocab_size();
    check_ids(&[id], vocab)?;
    check_float_ids(vocab)?;
    if k == 0 || k >= vocab {
        return Err(invalid!("ask for between 1 and {} neighbours, got {k}", vocab - 1));
    }
    let table = model.input_embeddings();
    let norms = table.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12); // [v, 1]
    let unit = table / norms;
    let query = unit.clone().narrow(0, id as usize, 1); // [1, d]
    let cosine = query.matmul(unit.transpose()); // [1, v]
    let (values, ids) = cosine.topk_with_indices(k + 1, 1);
    let row = read_f32(Tensor::cat(vec![values, ids.float()], 1)).await?;
    let (values, ids) = row.split_at(k + 1);
    Ok(ids.iter().zip(values).map(|(&i, &c)| (i as u32, c)).filter(|&(i, _)| i != id).take(k).collect())
}

/// The id of `token`: the vocabulary entry itself (`Ġking`, `##ing`), or a text that encodes
/// to one token besides the tokenizer's own special tokens (` king`, `king`).
pub fn token_id(tokenizer: &Tokenizer, token: &str) -> Result<u32> {
    if let Some(id) = tokenizer.token_to_id(token) {
        return Ok(id);
    }
    let encoded = tokenizer.encode(token)?;
    let words: Vec<u32> = encoded
        .ids
        .iter()
        .zip(&encoded.special_tokens_mask)
        .filter(|(_, &special)| special == 0)
        .map(|(&id, _)| id)
        .collect();
    match words.as_slice() {
        [one] => Ok(*one),
        [] => Err(invalid!("{token:?} has no tokens")),
        _ => Err(invalid!("{token:?} is {} tokens, not one; give a single token", words.len())),
    }
}

/// Tokens of `ids` by how often they occur, most frequent first (ties by lower id), at most `n`.
pub fn most_frequent(ids: impl IntoIterator<Item = u32>, n: usize) -> Vec<(u32, usize)> {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for id in ids {
        *counts.entry(id).or_default() += 1;
    }
    let mut all: Vec<(u32, usize)> = counts.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

/// A 2-D projection of token embeddings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Projection {
    /// One point per input token: its coordinates on the first two principal components.
    pub points: Vec<[f32; 2]>,
    /// The share of the tokens' total variance each component explains.
    pub explained: [f32; 2],
}

/// Unit vector along the dominant eigenvector of the symmetric `cov` (`[d, d]`), by power
/// iteration from `start`, signed so its largest component is positive (both backends then
/// agree on the orientation of the plot).
fn dominant(cov: &Tensor<2>, start: Tensor<2>) -> Tensor<2> {
    let unit = |v: Tensor<2>| {
        let norm = v.clone().powf_scalar(2.0).sum().sqrt().clamp_min(1e-30).reshape([1, 1]);
        v / norm
    };
    let mut v = unit(start);
    for _ in 0..POWER_STEPS {
        v = unit(cov.clone().matmul(v));
    }
    let largest = v.clone().abs().argmax(0); // [1, 1]
    let sign = v.clone().gather(0, largest).sign();
    v * sign
}

/// Principal-component projection of the input embeddings of `ids` (distinct tokens, at least
/// three), computed on the device: centre, covariance, two power iterations with deflation,
/// project. One read brings back the points and the explained variance.
pub async fn projection(model: &AnyModel, ids: &[u32]) -> Result<Projection> {
    let n = ids.len();
    if n < 3 {
        return Err(invalid!("a projection needs at least three distinct tokens, got {n}"));
    }
    check_ids(ids, model.vocab_size())?;
    let device = model.device();
    let table = model.input_embeddings();
    let [_, d] = table.dims();
    let x = table.select(0, int_tensor(ids, [n], &device)); // [n, d]
    let centred = x.clone() - x.mean_dim(0);
    let cov = centred.clone().transpose().matmul(centred.clone()) / (n as f64 - 1.0); // [d, d]
    let total = centred.clone().powf_scalar(2.0).sum() / (n as f64 - 1.0); // [1]
                                                                           // Fixed starting vectors: the same numbers on every backend.
    let mut rng = Rng::new(0x5ca1ab1e);
    let mut start = || {
        let values: Vec<f32> = (0..d).map(|_| rng.next_f64() as f32 - 0.5).collect();
        Tensor::<2>::from_data(TensorData::new(values, [d, 1]), &device)
    };
    let v1 = dominant(&cov, start());
    let l1 = v1.clone().transpose().matmul(cov.clone().matmul(v1.clone())); // [1, 1]
    let deflated = cov.clone() - v1.clone().matmul(v1.clone().transpose()) * l1.clone();
    let v2 = dominant(&deflated, start());
    let l2 = v2.clone().transpose().matmul(cov.matmul(v2.clone()));
    let points = centred.matmul(Tensor::cat(vec![v1, v2], 1)); // [n, 2]
    let values = read_f32(Tensor::cat(
        vec![points.reshape([n * 2]), l1.reshape([1]), l2.reshape([1]), total.reshape([1])],
        0,
    ))
    .await?;
    let (points, tail) = values.split_at(n * 2);
    let share = |l: f32| if tail[2] > 0.0 { l / tail[2] } else { 0.0 };
    Ok(Projection {
        points: points.chunks(2).map(|p| [p[0], p[1]]).collect(),
        explained: [share(tail[0]), share(tail[1])],
    })
}
