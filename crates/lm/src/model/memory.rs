//! What a model needs in bytes, computed from its config before any tensor exists, so a config
//! or a setting that cannot fit is refused with a message (what does not fit, what would)
//! instead of an allocation failure that aborts the process or kills the tab.
//!
//! The numbers are estimates of f32 storage: weights; for training also their gradients, the
//! two AdamW moments, the activations autodiff keeps for the backward pass, and a checkpoint's
//! files while they are written (between steps, when the step's gradients and activations are
//! gone: the larger of the two counts). They are
//! computed in `u128` with saturating arithmetic, so absurd configs give absurd numbers, never
//! an overflow.

use super::config::{BertConfig, Gpt2Config, ModelConfig};
use super::precision::WeightDtype;
use crate::error::{invalid, Result};

const F32: u128 = 4;

/// Bytes a model needs, by what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub weights: u128,
    pub gradients: u128,
    pub optimizer: u128,
    pub activations: u128,
    /// A checkpoint being written: the weights' and the moments' files in f32 and one tensor
    /// read from the device (`io::writer`). It exists between steps, so it shares memory with a
    /// step's gradients and activations.
    pub checkpoint: u128,
    /// What a training run holds beside its model for its whole life: the tokenized rows, their
    /// starts and the batch order (`Trainer::data_bytes`). 0 in a model's own estimate; a
    /// trainer adds it once the corpus is tokenized.
    pub data: u128,
}

impl Footprint {
    pub fn total(&self) -> u128 {
        let step = self.gradients.saturating_add(self.activations);
        self.weights
            .saturating_add(self.optimizer)
            .saturating_add(self.data)
            .saturating_add(step.max(self.checkpoint))
    }
}

fn mul(values: &[usize]) -> u128 {
    values.iter().fold(1u128, |acc, &v| acc.saturating_mul(v as u128))
}

/// The shape numbers the estimate needs, for either architecture.
struct Shape {
    vocab: usize,
    width: usize,
    layers: usize,
    heads: usize,
    inner: usize,
    positions: usize,
    parameters: u128,
}

impl Gpt2Config {
    /// Parameters, in `u128` so that no config can overflow the count.
    pub fn parameter_count(&self) -> u128 {
        let (d, f) = (self.n_embd, self.n_inner.unwrap_or(self.n_embd.saturating_mul(4)));
        let block = mul(&[4, d])
            .saturating_add(mul(&[d, 3, d]).saturating_add(mul(&[3, d])))
            .saturating_add(mul(&[d, d]).saturating_add(d as u128))
            .saturating_add(mul(&[d, f]).saturating_add(f as u128))
            .saturating_add(mul(&[f, d]).saturating_add(d as u128));
        mul(&[self.vocab_size, d])
            .saturating_add(mul(&[self.n_positions, d]))
            .saturating_add(block.saturating_mul(self.n_layer as u128))
            .saturating_add(mul(&[2, d]))
    }
}

impl Gpt2Config {
    /// Parameters in vectors (biases, LayerNorm), which stay f32 whatever the weights' storage.
    pub fn vector_count(&self) -> u128 {
        let (d, f) = (self.n_embd, self.n_inner.unwrap_or(self.n_embd.saturating_mul(4)));
        // ln_1, ln_2 (2d each); the biases of c_attn (3d), attn.c_proj (d), c_fc (f), mlp.c_proj (d).
        let block = mul(&[9, d]).saturating_add(f as u128);
        block.saturating_mul(self.n_layer as u128).saturating_add(mul(&[2, d]))
    }
}

impl BertConfig {
    /// Parameters in vectors (biases, LayerNorm), which stay f32 whatever the weights' storage.
    pub fn vector_count(&self) -> u128 {
        let (d, f) = (self.hidden_size, self.intermediate_size);
        // Per layer: q, k, v, output biases (4d), two LayerNorms (4d), intermediate (f) and output (d) biases.
        let layer = mul(&[9, d]).saturating_add(f as u128);
        // The embeddings' LayerNorm; the head's dense bias and LayerNorm, and its vocabulary bias.
        mul(&[2, d])
            .saturating_add(layer.saturating_mul(self.num_hidden_layers as u128))
            .saturating_add(mul(&[3, d]))
            .saturating_add(self.vocab_size as u128)
    }
}

impl BertConfig {
    /// Parameters, in `u128` so that no config can overflow the count.
    pub fn parameter_count(&self) -> u128 {
        let (d, f) = (self.hidden_size, self.intermediate_size);
        let emb = mul(&[
            self.vocab_size.saturating_add(self.max_position_embeddings).saturating_add(self.type_vocab_size),
            d,
        ])
        .saturating_add(mul(&[2, d]));
        let layer = mul(&[4, d])
            .saturating_mul(d as u128 + 1)
            .saturating_add(mul(&[2, d]))
            .saturating_add(mul(&[d, f]).saturating_add(f as u128))
            .saturating_add(mul(&[f, d]).saturating_add(d as u128))
            .saturating_add(mul(&[2, d]));
        let head = mul(&[d, d]).saturating_add(mul(&[3, d])).saturating_add(self.vocab_size as u128);
        emb.saturating_add(layer.saturating_mul(self.num_hidden_layers as u128)).saturating_add(head)
    }
}

impl ModelConfig {
    fn shape(&self) -> Shape {
        match self {
            ModelConfig::Gpt2(c) => Shape {
                vocab: c.vocab_size,
                width: c.n_embd,
                layers: c.n_layer,
                heads: c.n_head,
                inner: c.n_inner.unwrap_or(c.n_embd.saturating_mul(4)),
                positions: c.n_positions,
                parameters: c.parameter_count(),
            },
            ModelConfig::Bert(c) => Shape {
                vocab: c.vocab_size,
                width: c.hidden_size,
                layers: c.num_hidden_layers,
                heads: c.num_attention_heads,
                inner: c.intermediate_size,
                positions: c.max_position_embeddings,
                parameters: c.parameter_count(),
            },
            // SwiGLU keeps gate, up and their product: counted as a wider MLP.
            ModelConfig::Llama(c) => Shape {
                vocab: c.vocab_size,
                width: c.hidden_size.max(c.num_attention_heads.saturating_mul(c.head_dim())),
                layers: c.num_hidden_layers,
                heads: c.num_attention_heads,
                inner: c.intermediate_size.saturating_mul(3) / 2,
                positions: c.max_position_embeddings,
                parameters: c.parameter_count(),
            },
            // GeGLU keeps `Wi`'s two halves and their product, as SwiGLU does.
            ModelConfig::ModernBert(c) => Shape {
                vocab: c.vocab_size,
                width: c.hidden_size,
                layers: c.num_hidden_layers,
                heads: c.num_attention_heads,
                inner: c.intermediate_size.saturating_mul(3) / 2,
                positions: c.max_position_embeddings,
                parameters: c.parameter_count(),
            },
        }
    }

    /// Parameters, never overflowing.
    pub fn parameter_count(&self) -> u128 {
        self.shape().parameters
    }

    /// Bytes of the weights with matrices stored as `weights` and vectors as f32.
    pub fn weight_bytes(&self, weights: WeightDtype) -> u128 {
        let vectors = match self {
            ModelConfig::Gpt2(c) => c.vector_count(),
            ModelConfig::Bert(c) => c.vector_count(),
            ModelConfig::Llama(c) => c.vector_count(),
            ModelConfig::ModernBert(c) => c.vector_count(),
        };
        let matrices = self.parameter_count().saturating_sub(vectors);
        matrices.saturating_mul(weights.bytes()).saturating_add(vectors.saturating_mul(F32))
    }

    /// Bytes of the largest tensor (a matrix: the token embedding) stored as `weights`.
    pub fn largest_tensor_bytes(&self, weights: WeightDtype) -> u128 {
        (self.largest_tensor() as u128).saturating_mul(weights.bytes())
    }

    /// Weights plus one forward pass of `batch` rows of `context` tokens without gradients.
    pub fn inference_footprint(&self, batch: usize, context: usize) -> Footprint {
        let s = self.shape();
        let tokens = mul(&[batch, context]);
        // The residual stream, one layer's MLP and attention scores, and the logits.
        let live =
            mul(&[4, s.width]).saturating_add(s.inner as u128).saturating_add(mul(&[2, s.heads, context]));
        let activations = tokens.saturating_mul(live.saturating_add(s.vocab as u128)).saturating_mul(F32);
        Footprint {
            weights: s.parameters.saturating_mul(F32),
            gradients: 0,
            optimizer: 0,
            activations,
            checkpoint: 0,
            data: 0,
        }
    }

    /// Weights, gradients, AdamW's two moments and the activations a training step keeps for
    /// its backward pass, for `batch` rows of `context` tokens.
    pub fn training_footprint(&self, batch: usize, context: usize) -> Footprint {
        let s = self.shape();
        let weights = s.parameters.saturating_mul(F32);
        let tokens = mul(&[batch, context]);
        // Per layer and token, what autodiff keeps: the LayerNorm inputs and outputs, q/k/v and
        // the attention output, the MLP's input, pre- and post-activation (≈ 12·d + 3·inner),
        // and the attention scores, probabilities and dropout mask (3 · heads · context).
        let per_layer = mul(&[12, s.width])
            .saturating_add(mul(&[3, s.inner]))
            .saturating_add(mul(&[3, s.heads, context]));
        // The logits, their log-softmax and its gradient.
        let head = mul(&[3, s.vocab]);
        let per_token = per_layer.saturating_mul(s.layers as u128).saturating_add(head);
        Footprint {
            weights,
            gradients: weights,
            optimizer: weights.saturating_mul(2),
            activations: tokens.saturating_mul(per_token).saturating_mul(F32),
            checkpoint: weights
                .saturating_mul(3)
                .saturating_add((self.largest_tensor() as u128).saturating_mul(F32)),
            data: 0,
        }
    }

    /// Bytes of the largest single buffer a training step of `batch` × `context` allocates: the
    /// logits (`batch · context · vocab`), one layer's attention scores
    /// (`batch · heads · context²`), or the largest weight. A GPU must bind each in one storage
    /// buffer, so this is checked against the adapter's `maxStorageBufferBindingSize`.
    pub fn largest_training_buffer(&self, batch: usize, context: usize) -> u128 {
        let s = self.shape();
        let logits = mul(&[batch, context, s.vocab]);
        let scores = mul(&[batch, s.heads, context, context]);
        let weights = mul(&[s.vocab, s.width]).max(mul(&[s.width, s.inner]));
        logits.max(scores).max(weights).saturating_mul(F32)
    }

    /// The model's context length (rows of its position table).
    pub fn positions(&self) -> usize {
        self.shape().positions
    }
}

/// What a training run may use: `bytes` in all, and on a GPU `max_buffer` bytes in any one
/// buffer (`maxStorageBufferBindingSize`: a kernel binds each tensor whole). A plain byte count
/// is a budget without a buffer limit (the CPU backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub max_buffer: Option<u64>,
}

impl From<u64> for Budget {
    fn from(bytes: u64) -> Self {
        Self { bytes, max_buffer: None }
    }
}

/// Bytes as a person reads them: "512 MB", "1.2 GB".
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Refuses a training run whose footprint exceeds `budget` bytes, saying what would fit: the
/// largest batch at this context, or else the longest context at batch 1.
pub fn check_training_fits(
    config: &ModelConfig,
    batch: usize,
    context: usize,
    budget: u64,
) -> Result<Footprint> {
    let need = config.training_footprint(batch, context);
    if need.total() <= budget as u128 {
        return Ok(need);
    }
    let fits = |b: usize, t: usize| config.training_footprint(b, t).total() <= budget as u128;
    let advice = if let Some(b) = largest(batch, |b| fits(b, context)) {
        format!("at most batch {b} fits at context {context}")
    } else if let Some(t) = largest(context, |t| fits(1, t)) {
        format!("at batch 1, at most context {t} fits")
    } else {
        format!(
            "the model alone needs {} with its gradients, optimizer state and checkpoint files; choose a smaller model",
            human_bytes(need.weights.saturating_add(need.optimizer).saturating_add(need.gradients.max(need.checkpoint)))
        )
    };
    Err(invalid!(
        "batch {batch} × context {context} needs ~{} (weights {}, gradients {}, AdamW {}, activations {}; \
         or, while a checkpoint is written, its files {}) but ~{} is available; {advice}",
        human_bytes(need.total()),
        human_bytes(need.weights),
        human_bytes(need.gradients),
        human_bytes(need.optimizer),
        human_bytes(need.activations),
        human_bytes(need.checkpoint),
        human_bytes(budget as u128),
    ))
}

/// Refuses a training step of `batch` × `context` whose largest buffer (the logits, one layer's
/// attention scores, or the largest weight: [`ModelConfig::largest_training_buffer`]) is over
/// `max_buffer`, saying what would fit: a smaller batch, or, when a weight alone is over the
/// limit or even batch 1 is, a smaller model or a shorter context.
pub fn check_training_buffer(
    config: &ModelConfig,
    batch: usize,
    context: usize,
    max_buffer: u64,
) -> Result<()> {
    let fits = |b: usize| config.largest_training_buffer(b, context) <= max_buffer as u128;
    if fits(batch) {
        return Ok(());
    }
    // At batch 0 only the weights are left.
    let weights = config.largest_training_buffer(0, context);
    let advice = if weights > max_buffer as u128 {
        format!(
            "the largest weight alone needs {}, at any batch: choose a smaller model or vocabulary",
            human_bytes(weights)
        )
    } else if let Some(b) = largest(batch, fits) {
        format!("at most batch {b} fits")
    } else {
        "even batch 1 does not fit: use a shorter context or a smaller vocabulary".into()
    };
    Err(invalid!(
        "a training step of batch {batch} needs a {} buffer (the logits, attention scores or largest \
         weight), and this GPU binds at most {} in one kernel (maxStorageBufferBindingSize); {advice}",
        human_bytes(config.largest_training_buffer(batch, context)),
        human_bytes(max_buffer as u128),
    ))
}

/// Refuses to load or run a model whose weights plus one forward pass exceed `budget`.
pub fn check_inference_fits(
    config: &ModelConfig,
    batch: usize,
    context: usize,
    budget: u64,
) -> Result<Footprint> {
    let need = config.inference_footprint(batch, context);
    if need.total() <= budget as u128 {
        return Ok(need);
    }
    Err(invalid!(
        "this model needs ~{} ({} parameters) but ~{} is available",
        human_bytes(need.total()),
        config.parameter_count(),
        human_bytes(budget as u128),
    ))
}

/// The largest `n` in `1..below` with `ok(n)` (monotone: `ok` holds up to some point), if any.
fn largest(below: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
    if below <= 1 || !ok(1) {
        return None;
    }
    let (mut lo, mut hi) = (1usize, below - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_matches_the_published_sizes() {
        // HF: GPT2LMHeadModel("gpt2") 124,439,808; BertForMaskedLM("bert-base-uncased") 109,514,298.
        assert_eq!(Gpt2Config::preset("gpt2").unwrap().parameter_count(), 124_439_808);
        assert_eq!(BertConfig::preset("bert-base-uncased").unwrap().parameter_count(), 109_514_298);
    }

    /// The vectors counted from the config are the rank-1 parameters of the built model.
    #[test]
    fn vector_counts_match_the_models_rank_one_parameters() {
        use burn::module::{Module, ModuleVisitor, Param};
        use burn::tensor::{Device, Tensor};
        struct Count(u128, u128);
        impl ModuleVisitor for Count {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let n = param.lazy_shape().iter().product::<usize>() as u128;
                if D == 1 {
                    self.0 += n;
                } else {
                    self.1 += n;
                }
            }
        }
        let device = Device::flex();
        let gpt2 = Gpt2Config::new(97, 16, 24, 3, 4);
        let mut count = Count(0, 0);
        gpt2.init(&device).visit(&mut count);
        assert_eq!((count.0, count.0 + count.1), (gpt2.vector_count(), gpt2.parameter_count()));
        let bert = BertConfig::tiny();
        let mut count = Count(0, 0);
        bert.init(&device).visit(&mut count);
        assert_eq!((count.0, count.0 + count.1), (bert.vector_count(), bert.parameter_count()));
        // GPT-2 XL: 6.2 GB as f32, half of it (plus its f32 vectors) as f16.
        let xl = ModelConfig::Gpt2(Gpt2Config::preset("gpt2-xl").unwrap());
        let (f32_bytes, f16_bytes) = (xl.weight_bytes(WeightDtype::F32), xl.weight_bytes(WeightDtype::F16));
        assert_eq!(f32_bytes, xl.parameter_count() * 4);
        assert!(f16_bytes > f32_bytes / 2 && f16_bytes < f32_bytes / 2 + (2 << 20), "{f16_bytes}");
    }

    #[test]
    fn gpt2_fine_tune_at_context_128_batch_2_is_about_three_gigabytes_with_its_checkpoint() {
        let c = ModelConfig::Gpt2(Gpt2Config::preset("gpt2").unwrap());
        let need = c.training_footprint(2, 128);
        // Weights and moments (1.5 GB), then the larger of a step's gradients and activations
        // (0.8 GB) and a checkpoint's files and one tensor (1.6 GB).
        let gb = need.total() as f64 / 1e9;
        assert!((2.8..3.5).contains(&gb), "{gb} GB");
        assert_eq!(need.total(), need.weights + need.optimizer + need.checkpoint);
    }

    #[test]
    fn a_batch_that_does_not_fit_is_refused_with_what_would() {
        let c = ModelConfig::Gpt2(Gpt2Config::preset("gpt2").unwrap());
        let err = check_training_fits(&c, 512, 1024, 6_000_000_000).unwrap_err().to_string();
        assert!(err.contains("batch 512 × context 1024 needs"), "{err}");
        assert!(err.contains("at most batch"), "{err}");
    }

    #[test]
    fn the_largest_training_buffer_is_the_embedding_or_the_logits() {
        let c = ModelConfig::Gpt2(Gpt2Config::preset("gpt2").unwrap());
        // Small batches: the token embedding (and its gradient) is the largest buffer.
        assert_eq!(c.largest_training_buffer(2, 128), 50257 * 768 * 4);
        // Large ones: the logits.
        assert_eq!(c.largest_training_buffer(64, 128), 64 * 128 * 50257 * 4);
        // Long contexts make the attention scores the largest.
        let mut tiny = Gpt2Config::tiny();
        tiny.n_positions = 4096;
        assert_eq!(ModelConfig::Gpt2(tiny).largest_training_buffer(1, 4096), 4 * 4096 * 4096 * 4);
    }

    #[test]
    fn absurd_sizes_saturate_instead_of_overflowing() {
        let mut g = Gpt2Config::tiny();
        g.n_layer = usize::MAX;
        g.n_embd = usize::MAX;
        let c = ModelConfig::Gpt2(g);
        assert_eq!(c.training_footprint(usize::MAX, usize::MAX).total(), u128::MAX);
        assert!(check_training_fits(&c, 1, 2, u64::MAX).is_err());
    }

    #[test]
    fn a_step_over_the_gpu_buffer_limit_says_what_fits() {
        let limit = 128 << 20; // lavapipe's maxStorageBufferBindingSize
                               // GPT-2's vocabulary on a narrow model: 64 × 50,257 × 4 bytes of logits per row.
        let narrow = ModelConfig::Gpt2(Gpt2Config::new(50257, 64, 8, 1, 1));
        assert!(check_training_buffer(&narrow, 10, 64, limit).is_ok());
        let e = check_training_buffer(&narrow, 4096, 64, limit).unwrap_err().to_string();
        assert!(e.contains("at most batch 10 fits") && e.contains("maxStorageBufferBindingSize"), "{e}");
        let e = check_training_buffer(&narrow, 4, 64, 2 << 20).unwrap_err().to_string();
        assert!(e.contains("even batch 1 does not fit"), "{e}");
        // GPT-2 124M: its 154 MB embedding is over the limit whatever the batch.
        let gpt2 = ModelConfig::Gpt2(Gpt2Config::preset("gpt2").unwrap());
        let e = check_training_buffer(&gpt2, 2, 128, limit).unwrap_err().to_string();
        assert!(e.contains("the largest weight alone needs 154 MB") && !e.contains("at most batch"), "{e}");
        // A plain byte count is a budget without a buffer limit.
        assert_eq!(Budget::from(7), Budget { bytes: 7, max_buffer: None });
    }
}
