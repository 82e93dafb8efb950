//! Data parallelism for CPU backends: a step's batch is cut into row shards, each shard's
//! forward and backward run on their own thread against their own replica of the model, and
//! the gradients are averaged (weighted by the predictions each shard holds) before the one
//! optimizer update — mathematically the step the whole batch takes on one thread.
//!
//! Why: Burn's CPU backend splits only its larger GEMMs and reductions across threads; a small
//! model's elementwise ops, softmaxes and most of its backward ran on one core (nanoGPT's CPU
//! recipe used 114 % of this machine's two cores), where PyTorch splits every op. Evaluation
//! batches are spread the same way. Native only: wasm has no threads.
//!
//! Each replica's parameters share the weights' buffers but are fresh autodiff leaves: Burn's
//! autodiff merges every graph that touches a common leaf into one mutex-guarded graph, which
//! would run the backward passes one after the other.

#[cfg(not(target_arch = "wasm32"))]
use burn::module::{Module, ModuleMapper, Param};
#[cfg(not(target_arch = "wasm32"))]
use burn::tensor::Device;
use burn::tensor::Tensor;

#[cfg(not(target_arch = "wasm32"))]
use super::optim::{AdamW, HostGrads, StepGrads};
#[cfg(not(target_arch = "wasm32"))]
use crate::error::Error;
use crate::error::{invalid, Result};
use crate::model::masked::masked_lm_loss;
use crate::model::AnyModel;
#[cfg(not(target_arch = "wasm32"))]
use crate::tensor::is_cpu;
use crate::tensor::{cross_entropy, int_tensor};

/// A batch ready for the loss: the causal LM's inputs and targets, or the masked LM's
/// corrupted inputs and labels (masking happens once, for the whole batch, so a sharded step
/// draws exactly the corruption a serial one would).
#[derive(Debug, Clone)]
pub(crate) enum Prepared {
    Causal { inputs: Vec<u32>, targets: Vec<u32>, rows: usize, context: usize },
    Masked { inputs: Vec<u32>, labels: Vec<Option<u32>>, rows: usize, context: usize },
}

impl Prepared {
    /// Positions the loss averages over.
    pub(crate) fn predictions(&self) -> usize {
        match self {
            Prepared::Causal { rows, context, .. } => rows * context,
            Prepared::Masked { labels, .. } => labels.iter().flatten().count(),
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn rows(&self) -> usize {
        match self {
            Prepared::Causal { rows, .. } | Prepared::Masked { rows, .. } => *rows,
        }
    }

    /// Mean loss of the batch on `model` (autodiff or not).
    pub(crate) fn loss(&self, model: &AnyModel) -> Result<Tensor<1>> {
        match (self, model) {
            (Prepared::Causal { inputs, targets, rows, context }, AnyModel::Gpt2(_) | AnyModel::Llama(_)) => {
                let m = model.causal().expect("a decoder");
                let device = &m.device();
                let (b, t) = (*rows, *context);
                let logits = m.forward(int_tensor(inputs, [b, t], device), None);
                let vocab = m.vocab_size();
                Ok(cross_entropy(logits.reshape([b * t, vocab]), int_tensor(targets, [b * t], device)))
            }
            (
                Prepared::Masked { inputs, labels, rows, context },
                AnyModel::Bert(_) | AnyModel::ModernBert(_),
            ) => masked_lm_loss(model.masked().expect("an encoder"), inputs, labels, [*rows, *context]),
            _ => Err(invalid!("the batch was prepared for the other kind of model")),
        }
    }

    /// The batch cut into `parts` runs of whole rows, as even as the rows allow; shards with
    /// nothing to predict (a masked LM's rows of special tokens) are left out.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn split(&self, parts: usize) -> Vec<Prepared> {
        let rows = self.rows();
        let parts = parts.clamp(1, rows.max(1));
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        for i in 0..parts {
            let end = start + (rows - start) / (parts - i);
            let shard = match self {
                Prepared::Causal { inputs, targets, context, .. } => Prepared::Causal {
                    inputs: inputs[start * context..end * context].to_vec(),
                    targets: targets[start * context..end * context].to_vec(),
                    rows: end - start,
                    context: *context,
                },
                Prepared::Masked { inputs, labels, context, .. } => Prepared::Masked {
                    inputs: inputs[start * context..end * context].to_vec(),
                    labels: labels[start * context..end * context].to_vec(),
                    rows: end - start,
                    context: *context,
                },
            };
            if shard.predictions() > 0 {
                out.push(shard);
            }
            start = end;
        }
        out
    }
}

/// Shards a step may use by default: one per core natively, one in a browser (wasm has no
/// threads).
pub(crate) fn default_shards() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}

/// How many shards a step on `device` uses: up to `max` on a CPU backend, at most one per row
/// of the batch. Dropout keeps a step in one piece, because its masks come from the device's
/// one random stream, which threads would draw from in no fixed order (a resumed run must
/// repeat them exactly).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn shard_count(device: &Device, rows: usize, dropout: f64, max: usize) -> usize {
    if dropout != 0.0 || !is_cpu(device) {
        return 1;
    }
    max.min(rows).max(1)
}

/// A replica of `model` for another thread's graph: the same weights (no copy) and parameter
/// ids, new autodiff leaves.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn replica(model: &AnyModel) -> AnyModel {
    struct Fresh;
    impl ModuleMapper for Fresh {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let tensor = if tensor.is_require_grad() {
                Tensor::from_inner(tensor.inner()).require_grad()
            } else {
                tensor
            };
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    match model {
        AnyModel::Gpt2(m) => AnyModel::Gpt2(Box::new(m.as_ref().clone().map(&mut Fresh))),
        AnyModel::Bert(m) => AnyModel::Bert(Box::new(m.as_ref().clone().map(&mut Fresh))),
        AnyModel::Llama(m) => AnyModel::Llama(Box::new(m.as_ref().clone().map(&mut Fresh))),
        AnyModel::ModernBert(m) => AnyModel::ModernBert(Box::new(m.as_ref().clone().map(&mut Fresh))),
    }
}

/// A CPU backend's scalar, read synchronously on the thread that computed it.
#[cfg(not(target_arch = "wasm32"))]
fn read_scalar(t: Tensor<1>) -> Result<f64> {
    let data = t.try_into_data().map_err(|e| Error::Backend(format!("{e:?}")))?;
    Ok(data.try_to_vec::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))?[0] as f64)
}

/// Runs `f` on rayon's pool for every item, each result in its item's place; a panic in a
/// backend op becomes that item's error, as it would be on one thread.
#[cfg(not(target_arch = "wasm32"))]
fn on_pool<T: Sync, R: Send>(items: &[T], f: impl Fn(&T, usize) -> Result<R> + Sync) -> Vec<Result<R>> {
    let mut results: Vec<Option<Result<R>>> = (0..items.len()).map(|_| None).collect();
    rayon::scope(|scope| {
        for (i, (item, slot)) in items.iter().zip(results.iter_mut()).enumerate() {
            let f = &f;
            scope.spawn(move |_| {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item, i)));
                *slot =
                    Some(result.unwrap_or_else(|_| Err(Error::Backend("a compute thread panicked".into()))));
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Backend("a compute thread did not run".into()))))
        .collect()
}

/// The loss (read) and gradients of a step cut into `shards`, each shard's forward and backward
/// on its own thread against its own replica; the gradients are summed weighted by each shard's
/// share of the predictions. Also returns how many shards ran.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn loss_and_grads(
    optim: &AdamW,
    model: &AnyModel,
    batch: &Prepared,
    shards: usize,
) -> Result<(f64, StepGrads, usize)> {
    let shards = batch.split(shards);
    let total = batch.predictions() as f64;
    // Shard 0 uses the model itself; replicas are made here, before any thread starts.
    let replicas: Vec<Option<AnyModel>> =
        (0..shards.len()).map(|i| (i > 0).then(|| replica(model))).collect();
    let results = on_pool(&shards, |shard, i| {
        let m = replicas[i].as_ref().unwrap_or(model);
        let loss = shard.loss(m)?;
        let value = read_scalar(loss.clone().inner())?;
        let grads = loss.backward();
        let grads = match m {
            AnyModel::Gpt2(m) => optim.host_gradients(m.as_ref(), grads)?,
            AnyModel::Bert(m) => optim.host_gradients(m.as_ref(), grads)?,
            AnyModel::Llama(m) => optim.host_gradients(m.as_ref(), grads)?,
            AnyModel::ModernBert(m) => optim.host_gradients(m.as_ref(), grads)?,
        };
        Ok((value, grads))
    });
    let mut loss = 0.0;
    let mut parts = Vec::with_capacity(results.len());
    for (shard, result) in shards.iter().zip(results) {
        let (value, grads) = result?;
        let weight = shard.predictions() as f64 / total;
        loss += weight * value;
        parts.push((grads, weight as f32));
    }
    let used = parts.len();
    Ok((loss, HostGrads::weighted_sum(parts)?.into_step()?, used))
}

/// Each batch's mean loss on `model` (evaluation mode, no graph), the batches spread over the
/// cores.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn losses(model: &AnyModel, batches: &[Prepared]) -> Result<Vec<f64>> {
    on_pool(batches, |batch, _| read_scalar(batch.loss(model)?)).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causal(rows: usize, context: usize) -> Prepared {
        let n = rows * context;
        Prepared::Causal { inputs: (0..n as u32).collect(), targets: (1..=n as u32).collect(), rows, context }
    }

    #[test]
    fn shards_cover_the_batch_in_order() {
        let whole = causal(5, 3);
        let shards = whole.split(2);
        assert_eq!(shards.iter().map(Prepared::rows).collect::<Vec<_>>(), vec![2, 3]);
        let mut inputs = Vec::new();
        for s in &shards {
            if let Prepared::Causal { inputs: i, .. } = s {
                inputs.extend_from_slice(i);
            }
        }
        assert_eq!(inputs, (0..15).collect::<Vec<u32>>());
        assert_eq!(whole.split(9).len(), 5, "never more shards than rows");
        assert_eq!(whole.split(0).len(), 1);
    }

    #[test]
    fn masked_shards_without_labels_are_dropped() {
        let whole = Prepared::Masked {
            inputs: vec![7; 8],
            labels: vec![None, None, None, None, Some(3), None, Some(4), None],
            rows: 2,
            context: 4,
        };
        let shards = whole.split(2);
        assert_eq!(shards.len(), 1);
        assert_eq!(shards[0].predictions(), 2);
    }
}
