//! ModernBERT (`ModernBertForMaskedLM`): a pre-norm encoder with rotary positions, a fused
//! `Wqkv` projection, the GeGLU MLP, LayerNorms and projections without biases unless the config
//! asks for them, and attention that alternates between global layers and a sliding window
//! (`local_attention` tokens wide) with its own rope base. The first layer has no attention norm
//! (the embedding's norm stands in for it). The MLM head is dense → activation → norm, then the
//! decoder tied to the token embedding, with its own bias. Field names follow the checkpoint keys
//! (`model.layers.1.attn.Wqkv.weight`; `wqkv`, `wo`, `wi` stand for the capitalised names, see
//! [`crate::io::weights::Layout`]). Follows `modeling_modernbert.py` of transformers 5.25.
//!
//! Pure: no IO, no tokenizer, no backend choice.

pub mod config;

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use self::config::{LayerType, ModernBertConfig};
use super::activation::Activation;
use super::attention::{attention_probs, merge_heads, split_heads};
use super::precision;
use super::rope::{self, Rope, RopeScaling};
use crate::error::Result;
use crate::fused;

#[derive(Module, Debug)]
pub struct ModernBertEmbeddings {
    pub tok_embeddings: Embedding,
    pub norm: LayerNorm,
    pub drop: Dropout,
}

#[derive(Module, Debug)]
pub struct ModernBertAttention {
    /// q, k and v in one projection, `[d, 3d]`: all query heads, then all keys, then all values.
    pub wqkv: Linear,
    pub wo: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    heads: usize,
}

/// GeGLU: `Wo(act(input) · gate)` where `Wi` gives `input` and `gate` side by side.
#[derive(Module, Debug)]
pub struct ModernBertMlp {
    pub wi: Linear,
    pub wo: Linear,
    pub drop: Dropout,
    #[module(skip)]
    activation: Activation,
}

impl ModernBertMlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = precision::linear(&self.wi, x);
        let f = h.dims()[2] / 2;
        let (input, gate) = (h.clone().narrow(2, 0, f), h.narrow(2, f, f));
        precision::linear(&self.wo, self.drop.forward(self.activation.forward(input) * gate))
    }
}

#[derive(Module, Debug)]
pub struct ModernBertEncoderLayer {
    /// `None` in the first layer, whose input is the embedding's norm already.
    pub attn_norm: Option<LayerNorm>,
    pub attn: ModernBertAttention,
    pub mlp_norm: LayerNorm,
    pub mlp: ModernBertMlp,
    #[module(skip)]
    kind: LayerType,
    #[module(skip)]
    eps: f64,
}

#[derive(Module, Debug)]
pub struct ModernBertModel {
    pub embeddings: ModernBertEmbeddings,
    pub layers: Vec<ModernBertEncoderLayer>,
    pub final_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct ModernBertPredictionHead {
    pub dense: Linear,
    pub norm: LayerNorm,
}

/// The decoder's bias; its weight is the token embedding (`tie_word_embeddings`).
#[derive(Module, Debug)]
pub struct ModernBertDecoder {
    pub bias: Option<Param<Tensor<1>>>,
}

#[derive(Module, Debug)]
pub struct ModernBertForMaskedLM {
    pub model: ModernBertModel,
    pub head: ModernBertPredictionHead,
    pub decoder: ModernBertDecoder,
    #[module(skip)]
    config: ModernBertConfig,
    #[module(skip)]
    global_rope: Rope,
    #[module(skip)]
    local_rope: Rope,
}

impl ModernBertConfig {
    /// A randomly initialised model with transformers' initialisation scales: N(0,
    /// initializer_range) into the residual stream's readers, N(0, initializer_range / √(2 ·
    /// layers)) for the projections that write into it (transformers truncates both at ±2σ; a
    /// plain normal here), zero biases, unit norms.
    pub fn init(&self, device: &Device) -> Result<ModernBertForMaskedLM> {
        self.validate()?;
        let (d, f) = (self.hidden_size, self.intermediate_size);
        let std_in = self.initializer_range;
        let std_out = self.initializer_range / (2.0 * self.num_hidden_layers as f64).sqrt();
        let linear = |i, o, bias, std| {
            LinearConfig::new(i, o)
                .with_bias(bias)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device)
        };
        let norm =
            || LayerNormConfig::new(d).with_epsilon(self.norm_eps).with_bias(self.norm_bias).init(device);
        let layers = self
            .layer_types()
            .into_iter()
            .enumerate()
            .map(|(i, kind)| ModernBertEncoderLayer {
                attn_norm: (i > 0).then(norm),
                attn: ModernBertAttention {
                    wqkv: linear(d, 3 * d, self.attention_bias, std_in),
                    wo: linear(d, d, self.attention_bias, std_out),
                    dropout: DropoutConfig::new(self.attention_dropout).init(),
                    heads: self.num_attention_heads,
                },
                mlp_norm: norm(),
                mlp: ModernBertMlp {
                    wi: linear(d, 2 * f, self.mlp_bias, std_in),
                    wo: linear(f, d, self.mlp_bias, std_out),
                    drop: DropoutConfig::new(self.mlp_dropout).init(),
                    activation: self.hidden_activation,
                },
                kind,
                eps: self.norm_eps,
            })
            .collect();
        let hd = self.head_dim();
        Ok(ModernBertForMaskedLM {
            model: ModernBertModel {
                embeddings: ModernBertEmbeddings {
                    tok_embeddings: EmbeddingConfig::new(self.vocab_size, d)
                        .with_initializer(Initializer::Normal { mean: 0.0, std: std_in })
                        .init(device),
                    norm: norm(),
                    drop: DropoutConfig::new(self.embedding_dropout).init(),
                },
                layers,
                final_norm: norm(),
            },
            head: ModernBertPredictionHead {
                dense: linear(d, d, self.classifier_bias, std_out),
                norm: norm(),
            },
            decoder: ModernBertDecoder {
                bias: self.decoder_bias.then(|| Param::from_tensor(Tensor::zeros([self.vocab_size], device))),
            },
            config: self.clone(),
            global_rope: Rope::new(hd, self.rope_theta(LayerType::Global), RopeScaling::Default)?,
            local_rope: Rope::new(hd, self.rope_theta(LayerType::Local), RopeScaling::Default)?,
        })
    }
}

/// The masks of one forward pass, true where a query must not see a key.
struct Masks {
    global: Tensor<4, Bool>,
    local: Tensor<4, Bool>,
}

impl Masks {
    /// Global layers hide padding keys. Local layers also hide keys more than `half` positions
    /// away; a padding query there keeps the keys in its window (padding or not), so its row is
    /// never empty (an empty row is NaN on the CPU, and NaN values times zero weights would
    /// reach the real rows); what padding rows compute is never read.
    ///
    /// # Shapes
    /// - keep: `[b, t]` (1 = token, 0 = padding) → masks `[b, heads, t, t]`
    fn new(keep: Tensor<2, Int>, heads: usize, half: usize) -> Self {
        let [b, t] = keep.dims();
        let device = keep.device();
        let padding = keep.equal_elem(0);
        let pad_key = padding.clone().reshape([b, 1, 1, t]).expand([b, heads, t, t]);
        let pad_query = padding.reshape([b, 1, t, 1]).expand([b, heads, t, t]);
        let outside: Vec<bool> = (0..t * t).map(|i| (i / t).abs_diff(i % t) > half).collect();
        let outside = Tensor::<2, Bool>::from_data(TensorData::new(outside, [t, t]), &device)
            .reshape([1, 1, t, t])
            .expand([b, heads, t, t]);
        let local = outside.bool_or(pad_key.clone().bool_and(pad_query.bool_not()));
        Self { global: pad_key, local }
    }
}

impl ModernBertEncoderLayer {
    /// # Shapes
    /// - x: `[b, t, d]`, cos and sin `[1, 1, t, hd]`, mask `[b, heads, t, t]` →
    ///   (`[b, t, d]`, the attention weights `[b, heads, t, t]`)
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: Tensor<4, Bool>,
    ) -> (Tensor<3>, Tensor<4>) {
        let a = &self.attn;
        let h = match &self.attn_norm {
            Some(norm) => fused::layer_norm(norm, x.clone(), self.eps),
            None => x.clone(),
        };
        let qkv = precision::linear(&a.wqkv, h);
        let d = qkv.dims()[2] / 3;
        let q = rope::apply(split_heads(qkv.clone().narrow(2, 0, d), a.heads), cos, sin);
        let k = rope::apply(split_heads(qkv.clone().narrow(2, d, d), a.heads), cos, sin);
        let v = split_heads(qkv.narrow(2, 2 * d, d), a.heads);
        let probs = attention_probs(q, k, Some(mask));
        let y = merge_heads(a.dropout.forward(probs.clone()).matmul(v));
        let x = x + a.dropout.forward(precision::linear(&a.wo, y));
        let m = self.mlp.forward(fused::layer_norm(&self.mlp_norm, x.clone(), self.eps));
        (x + m, probs)
    }
}

impl ModernBertForMaskedLM {
    pub fn config(&self) -> &ModernBertConfig {
        &self.config
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.model.embeddings.tok_embeddings.weight.val().device()
    }

    /// Each layer's attention: global or local.
    pub fn layer_types(&self) -> Vec<LayerType> {
        self.model.layers.iter().map(|l| l.kind).collect()
    }

    /// Runs the encoder; the attention weights of every layer when `want_probs`.
    fn run(
        &self,
        ids: Tensor<2, Int>,
        keep: Tensor<2, Int>,
        want_probs: bool,
    ) -> (Tensor<3>, Vec<Tensor<4>>) {
        let [_, t] = ids.dims();
        let device = ids.device();
        let e = &self.model.embeddings;
        let mut x = e.drop.forward(fused::layer_norm(
            &e.norm,
            precision::embed(&e.tok_embeddings, ids),
            self.config.norm_eps,
        ));
        let masks = Masks::new(keep, self.config.num_attention_heads, self.config.half_window());
        let global = self.global_rope.cos_sin(0, t, &device);
        let local = self.local_rope.cos_sin(0, t, &device);
        let mut attentions = Vec::new();
        for layer in &self.model.layers {
            let ((cos, sin), mask) = match layer.kind {
                LayerType::Global => (&global, masks.global.clone()),
                LayerType::Local => (&local, masks.local.clone()),
            };
            let (next, probs) = layer.forward(x, cos, sin, mask);
            x = next;
            if want_probs {
                attentions.push(probs);
            }
        }
        (fused::layer_norm(&self.model.final_norm, x, self.config.norm_eps), attentions)
    }

    /// The encoder's output after the final norm.
    ///
    /// # Shapes
    /// - ids, keep: `[b, t]` (keep: 1 = token, 0 = padding) → `[b, t, d]`
    pub fn forward_hidden(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Tensor<3> {
        self.run(ids, keep, false).0
    }

    /// Every layer's attention weights, `[b, heads, t, t]` (zero outside a local layer's window
    /// and on padding keys).
    pub fn attentions(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Vec<Tensor<4>> {
        self.run(ids, keep, true).1
    }

    /// Vocabulary logits at every position.
    ///
    /// # Shapes
    /// - ids, keep: `[b, t]` → `[b, t, vocab]`
    pub fn forward(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Tensor<3> {
        self.mlm_head(self.forward_hidden(ids, keep))
    }

    /// The MLM head and the tied decoder on chosen hidden states.
    ///
    /// # Shapes
    /// - hidden: `[b, t, d]` → `[b, t, vocab]`
    pub fn mlm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        let h = self.config.classifier_activation.forward(precision::linear(&self.head.dense, hidden));
        let h = fused::layer_norm(&self.head.norm, h, self.config.norm_eps);
        let [b, t, d] = h.dims();
        let words = self.model.embeddings.tok_embeddings.weight.val(); // [vocab, d]
        let logits = precision::project(h.reshape([b * t, d]), words);
        let logits = match &self.decoder.bias {
            Some(bias) => logits + bias.val().unsqueeze::<2>(),
            None => logits,
        };
        logits.reshape([b, t, self.config.vocab_size])
    }
}
