//! Data parallelism for CPU backends: a step's batch is cut into row shards, each shard's
//! forward and backward run on their own thread against their own replica of the model, and
//! the gradients are averaged (weighted by the predictions each shard holds) before the one
//! optimizer update — mathematically the step the whole batch takes on one thread.
//!
//! Why: Burn's CPU backends run a small model's ops on one core (its GEMMs are too small to
//! split and its elementwise ops are serial), so nanoGPT's CPU recipe kept one of this
//! machine's two cores idle where PyTorch uses both.
//!
//! Each replica's parameters share the weights' buffers but are fresh autodiff leaves: Burn's
//! autodiff merges every graph that touches a common leaf into one mutex-guarded graph, which
//! would run the backward passes one after the other.

#[cfg(not(target_arch = "wasm32"))]
use burn::module::{Module, ModuleMapper, Param};
#[cfg(not(target_arch = "wasm32"))]
use burn::tensor::Device;
use burn::tensor::Tensor;

use crate::error::{invalid, Result};
use crate::model::bert::masked_lm_loss;
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
            (Prepared::Causal { inputs, targets, rows, context }, AnyModel::Gpt2(m)) => {
                let device = &m.device();
                let (b, t) = (*rows, *context);
                let logits = m.forward(int_tensor(inputs, [b, t], device), None);
                let vocab = m.config().vocab_size;
                Ok(cross_entropy(logits.reshape([b * t, vocab]), int_tensor(targets, [b * t], device)))
            }
            (Prepared::Masked { inputs, labels, rows, context }, AnyModel::Bert(m)) => {
                masked_lm_loss(m, inputs, labels, [*rows, *context])
            }
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
    }
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
