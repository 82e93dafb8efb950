//! The Llama family of decoders (`LlamaForCausalLM`, `Qwen2ForCausalLM`, `Qwen3ForCausalLM`):
//! pre-norm blocks with RMSNorm, rotary positions, grouped-query attention and a SwiGLU MLP;
//! Qwen2's q/k/v biases and Qwen3's QK-norm as their configs say. Field names follow the
//! checkpoint keys (`model.layers.0.self_attn.q_proj.weight`). Follows `modeling_llama.py`,
//! `modeling_qwen2.py` and `modeling_qwen3.py` of transformers 5.25.
//!
//! Pure: no IO, no tokenizer, no backend choice.

pub mod config;

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Int, Tensor};

use self::config::LlamaConfig;
use super::attention::{attention_probs, causal_mask, merge_heads};
use super::kv_cache::KvCache;
use super::precision;
use super::rms_norm::RmsNorm;
use super::rope::{self, Rope};
use crate::error::Result;

/// The attention weights and residual stream of every layer (see [`super::gpt2::Inside`]).
pub use super::gpt2::Inside;

#[derive(Module, Debug)]
pub struct LlamaAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    /// Qwen3 only: RMSNorm over each head's dimensions, before the rotation.
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    pub dropout: Dropout,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
}

impl LlamaAttention {
    /// q `[b, heads, t, hd]` and k, v `[b, kv_heads, t, hd]`, normed (Qwen3) and rotated.
    fn qkv(&self, x: Tensor<3>, cos: &Tensor<4>, sin: &Tensor<4>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [b, t, _] = x.dims();
        let hd = self.head_dim;
        let heads = |y: Tensor<3>, n: usize| y.reshape([b, t, n, hd]);
        let mut q = heads(precision::linear(&self.q_proj, x.clone()), self.heads);
        let mut k = heads(precision::linear(&self.k_proj, x.clone()), self.kv_heads);
        let v = heads(precision::linear(&self.v_proj, x), self.kv_heads).swap_dims(1, 2);
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(q);
            k = kn.forward(k);
        }
        let q = rope::apply(q.swap_dims(1, 2), cos, sin);
        let k = rope::apply(k.swap_dims(1, 2), cos, sin);
        (q, k, v)
    }

    /// Each key/value head repeated for the query heads that share it (`repeat_kv`): query head
    /// `h` reads key/value head `h / (heads / kv_heads)`.
    fn repeat(&self, x: Tensor<4>) -> Tensor<4> {
        let groups = self.heads / self.kv_heads;
        if groups == 1 {
            return x;
        }
        let [b, kvh, s, hd] = x.dims();
        x.unsqueeze_dim::<5>(2).expand([b, kvh, groups, s, hd]).reshape([b, kvh * groups, s, hd])
    }

    /// # Shapes
    /// - x: `[b, t, d]` → (`[b, t, d]`, the weights `[b, heads, t, past + t]` when asked for)
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
        past: usize,
        want_probs: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let [b, t, _] = x.dims();
        let (q, mut k, mut v) = self.qkv(x, cos, sin);
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.take() {
                k = Tensor::cat(vec![pk, k], 2);
                v = Tensor::cat(vec![pv, v], 2);
            }
            // The cache keeps the key/value heads unrepeated: a fraction of the query heads' size.
            *slot = Some((k.clone(), v.clone()));
        }
        let (k, v) = (self.repeat(k), self.repeat(v));
        let mask = (t > 1 || want_probs).then(|| causal_mask(b, self.heads, t, past, &q.device()));
        let probs = attention_probs(q, k, mask);
        let y = self.dropout.forward(probs.clone()).matmul(v);
        (precision::linear(&self.o_proj, merge_heads(y)), want_probs.then_some(probs))
    }
}

/// SwiGLU: `down(silu(gate(x)) · up(x))`.
#[derive(Module, Debug)]
pub struct LlamaMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl LlamaMlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = silu(precision::linear(&self.gate_proj, x.clone()));
        precision::linear(&self.down_proj, gate * precision::linear(&self.up_proj, x))
    }
}

#[derive(Module, Debug)]
pub struct LlamaDecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: LlamaAttention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: LlamaMlp,
}

impl LlamaDecoderLayer {
    fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
        past: usize,
        want_probs: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let (a, probs) = self.self_attn.forward(
            self.input_layernorm.forward(x.clone()),
            cos,
            sin,
            cache,
            past,
            want_probs,
        );
        let x = x + a;
        (x.clone() + self.mlp.forward(self.post_attention_layernorm.forward(x)), probs)
    }
}

/// `LlamaModel`: the token embedding, the layers and the final norm.
#[derive(Module, Debug)]
pub struct LlamaModel {
    pub embed_tokens: Embedding,
    pub layers: Vec<LlamaDecoderLayer>,
    pub norm: RmsNorm,
}

/// `LlamaForCausalLM` (and Qwen2's and Qwen3's): [`LlamaModel`] and the output projection, its
/// own matrix or the token embedding's (`tie_word_embeddings`).
#[derive(Module, Debug)]
pub struct LlamaForCausalLM {
    pub model: LlamaModel,
    pub lm_head: Option<Linear>,
    #[module(skip)]
    config: LlamaConfig,
    #[module(skip)]
    rope: Rope,
}

impl LlamaConfig {
    /// A randomly initialised model with transformers' initialisation: N(0, initializer_range)
    /// for every matrix, zero biases, unit norms.
    pub fn init(&self, device: &Device) -> Result<LlamaForCausalLM> {
        self.validate()?;
        let (theta, scaling) = self.rope()?;
        let rope = Rope::new(self.head_dim(), theta, scaling)?;
        let (d, hd) = (self.hidden_size, self.head_dim());
        let (q, kv) = (self.num_attention_heads * hd, self.kv_heads() * hd);
        let init = Initializer::Normal { mean: 0.0, std: self.initializer_range };
        let linear =
            |i, o, bias| LinearConfig::new(i, o).with_bias(bias).with_initializer(init.clone()).init(device);
        let norm = |n| RmsNorm::new(n, self.rms_norm_eps, device);
        let layer = || LlamaDecoderLayer {
            input_layernorm: norm(d),
            self_attn: LlamaAttention {
                q_proj: linear(d, q, self.qkv_bias()),
                k_proj: linear(d, kv, self.qkv_bias()),
                v_proj: linear(d, kv, self.qkv_bias()),
                o_proj: linear(q, d, self.o_bias()),
                q_norm: self.qk_norm().then(|| norm(hd)),
                k_norm: self.qk_norm().then(|| norm(hd)),
                dropout: DropoutConfig::new(self.attention_dropout).init(),
                heads: self.num_attention_heads,
                kv_heads: self.kv_heads(),
                head_dim: hd,
            },
            post_attention_layernorm: norm(d),
            mlp: LlamaMlp {
                gate_proj: linear(d, self.intermediate_size, self.mlp_bias()),
                up_proj: linear(d, self.intermediate_size, self.mlp_bias()),
                down_proj: linear(self.intermediate_size, d, self.mlp_bias()),
            },
        };
        Ok(LlamaForCausalLM {
            model: LlamaModel {
                embed_tokens: EmbeddingConfig::new(self.vocab_size, d)
                    .with_initializer(init.clone())
                    .init(device),
                layers: (0..self.num_hidden_layers).map(|_| layer()).collect(),
                norm: norm(d),
            },
            lm_head: (!self.tie_word_embeddings).then(|| linear(d, self.vocab_size, false)),
            config: self.clone(),
            rope,
        })
    }
}

impl LlamaForCausalLM {
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.model.embed_tokens.weight.val().device()
    }

    /// Runs the layers over `ids` at positions `past..`, extending `cache` when given; the
    /// attention weights of every layer when `want_probs`.
    fn run(
        &self,
        ids: Tensor<2, Int>,
        mut cache: Option<&mut KvCache>,
        want_probs: bool,
    ) -> (Tensor<3>, Vec<Tensor<4>>, Vec<Tensor<3>>) {
        let [_, t] = ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len);
        let device = ids.device();
        let (cos, sin) = self.rope.cos_sin(past, t, &device);
        let mut x = precision::embed(&self.model.embed_tokens, ids);
        if let Some(c) = cache.as_deref_mut() {
            c.layers.resize(self.model.layers.len(), None);
        }
        let (mut attentions, mut residuals) = (Vec::new(), Vec::new());
        for (i, layer) in self.model.layers.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let (next, probs) = layer.forward(x, &cos, &sin, slot, past, want_probs);
            x = next;
            if let Some(p) = probs {
                attentions.push(p);
                residuals.push(x.clone());
            }
        }
        if let Some(c) = cache {
            c.len = past + t;
        }
        (x, attentions, residuals)
    }

    /// Final hidden states (after the final norm). With a cache, `ids` are the tokens after the
    /// cached ones and the cache is extended with them.
    ///
    /// # Shapes
    /// - ids: `[b, t]` → `[b, t, d]`
    pub fn forward_hidden(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        let (x, _, _) = self.run(ids, cache, false);
        self.model.norm.forward(x)
    }

    /// The attention weights (`[b, heads, t, t]`: query heads, each sharing its key/value head
    /// with its group) and the residual stream after every layer.
    pub fn inside(&self, ids: Tensor<2, Int>) -> Inside {
        let (_, attentions, residuals) = self.run(ids, None, true);
        Inside { attentions, residuals }
    }

    /// The final norm and the output projection applied to a residual stream: the logit lens.
    pub fn decode_residual(&self, residual: Tensor<3>) -> Tensor<3> {
        self.lm_head(self.model.norm.forward(residual))
    }

    /// Next-token logits for every position.
    ///
    /// # Shapes
    /// - ids: `[b, t]` → `[b, t, vocab]`
    pub fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.lm_head(self.forward_hidden(ids, cache))
    }

    /// # Shapes
    /// - hidden: `[b, t, d]` → `[b, t, vocab]`
    pub fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = hidden.dims();
        let flat = hidden.reshape([b * t, d]);
        let logits = match &self.lm_head {
            Some(head) => precision::linear(head, flat),
            None => precision::project(flat, self.model.embed_tokens.weight.val()),
        };
        logits.reshape([b, t, self.config.vocab_size])
    }

    /// Logits of the last position only.
    ///
    /// # Shapes
    /// - ids: `[b, t]` → `[b, vocab]`
    pub fn forward_last(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<2> {
        let hidden = self.forward_hidden(ids, cache);
        let [b, t, _] = hidden.dims();
        self.lm_head(hidden.narrow(1, t - 1, 1)).reshape([b, self.config.vocab_size])
    }
}
