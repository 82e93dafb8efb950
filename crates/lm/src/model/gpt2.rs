//! GPT-2 (`GPT2LMHeadModel`): pre-LN decoder, learned positions, tanh-GELU MLP, output
//! projection tied to the token embedding. Field names follow the Hugging Face checkpoint keys
//! (see [`crate::io::weights`]). Follows `modeling_gpt2.py` of transformers 5.23.
//!
//! Pure: no IO, no tokenizer, no backend choice.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::activation::Activation;
use super::attention::{attend, attention_probs, causal_mask, merge_heads, split_heads};
use super::config::Gpt2Config;
use super::precision;
use crate::fused;

pub use super::kv_cache::KvCache;

/// GPT-2's initialisation: N(0, 0.02) everywhere, residual projections scaled by 1/√(2L).
fn normal(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}

#[derive(Module, Debug)]
pub struct Gpt2Attention {
    /// Fused query/key/value projection, `[d, 3d]`.
    pub c_attn: Linear,
    pub c_proj: Linear,
    pub attn_dropout: Dropout,
    pub resid_dropout: Dropout,
    #[module(skip)]
    n_head: usize,
}

impl Gpt2Attention {
    /// # Shapes
    /// - x: `[b, t, d]` → `[b, t, d]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
        past: usize,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (q, mut k, mut v) = self.qkv(x);
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.take() {
                k = Tensor::cat(vec![pk, k], 2); // [b, nh, past + t, hd]
                v = Tensor::cat(vec![pv, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        // One new query may see every cached key; only a block of queries needs a mask.
        let mask = (t > 1).then(|| causal_mask(b, self.n_head, t, past, &q.device()));
        let y = attend(q, k, v, mask, &self.attn_dropout);
        self.resid_dropout.forward(precision::linear(&self.c_proj, merge_heads(y)))
    }
}

impl Gpt2Attention {
    /// The fused projection split into heads.
    ///
    /// # Shapes
    /// - x: `[b, t, d]` → q, k, v: `[b, nh, t, hd]`
    fn qkv(&self, x: Tensor<3>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let d = x.dims()[2];
        let qkv = precision::linear(&self.c_attn, x); // [b, t, 3d]
        let q = split_heads(qkv.clone().narrow(2, 0, d), self.n_head);
        let k = split_heads(qkv.clone().narrow(2, d, d), self.n_head);
        let v = split_heads(qkv.narrow(2, 2 * d, d), self.n_head);
        (q, k, v)
    }

    /// [`Gpt2Attention::forward`] without a cache, also returning the attention weights.
    ///
    /// # Shapes
    /// - x: `[b, t, d]` → (`[b, t, d]`, `[b, nh, t, t]`)
    pub fn forward_with_probs(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let [b, t, _] = x.dims();
        let (q, k, v) = self.qkv(x);
        let mask = causal_mask(b, self.n_head, t, 0, &q.device());
        let probs = attention_probs(q, k, Some(mask));
        let y = self.attn_dropout.forward(probs.clone()).matmul(v);
        (self.resid_dropout.forward(precision::linear(&self.c_proj, merge_heads(y))), probs)
    }
}

/// What the model computes on the way to its logits: per layer, the attention weights and the
/// residual stream after the block (what the logit lens decodes).
#[derive(Debug, Clone)]
pub struct Inside {
    /// `[b, nh, t, t]` per layer.
    pub attentions: Vec<Tensor<4>>,
    /// `[b, t, d]` per layer, before the final LayerNorm.
    pub residuals: Vec<Tensor<3>>,
}

#[derive(Module, Debug)]
pub struct Gpt2Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    activation: Activation,
}

impl Gpt2Mlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = precision::linear(&self.c_fc, x);
        let h = self.activation.forward(h);
        self.dropout.forward(precision::linear(&self.c_proj, h))
    }
}

#[derive(Module, Debug)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    pub attn: Gpt2Attention,
    pub ln_2: LayerNorm,
    pub mlp: Gpt2Mlp,
    /// Burn's `LayerNorm` keeps its ε private; the fused kernel needs it.
    #[module(skip)]
    layer_norm_epsilon: f64,
}

impl Gpt2Block {
    pub fn forward(
        &self,
        x: Tensor<3>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
        past: usize,
    ) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1(x), cache, past);
        x.clone() + self.mlp.forward(self.ln_2(x))
    }

    /// [`Gpt2Block::forward`] without a cache, also returning the attention weights.
    pub fn forward_with_probs(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let (a, probs) = self.attn.forward_with_probs(self.ln_1(x.clone()));
        let x = x + a;
        (x.clone() + self.mlp.forward(self.ln_2(x)), probs)
    }

    fn ln_1(&self, x: Tensor<3>) -> Tensor<3> {
        fused::layer_norm(&self.ln_1, x, self.layer_norm_epsilon)
    }

    fn ln_2(&self, x: Tensor<3>) -> Tensor<3> {
        fused::layer_norm(&self.ln_2, x, self.layer_norm_epsilon)
    }
}

/// `GPT2Model`: embeddings, blocks and the final LayerNorm.
#[derive(Module, Debug)]
pub struct Gpt2Model {
    pub wte: Embedding,
    pub wpe: Embedding,
    pub drop: Dropout,
    pub h: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
}

/// `GPT2LMHeadModel`: [`Gpt2Model`] plus the tied output projection.
#[derive(Module, Debug)]
pub struct Gpt2LMHeadModel {
    pub transformer: Gpt2Model,
    #[module(skip)]
    config: Gpt2Config,
}

impl Gpt2Config {
    /// A randomly initialised model with GPT-2's initialisation scheme.
    pub fn init(&self, device: &Device) -> Gpt2LMHeadModel {
        let d = self.n_embd;
        let proj_std = 0.02 / (2.0 * self.n_layer as f64).sqrt();
        let linear = |i, o, std| LinearConfig::new(i, o).with_initializer(normal(std)).init(device);
        let ln = || LayerNormConfig::new(d).with_epsilon(self.layer_norm_epsilon).init(device);
        let block = || Gpt2Block {
            ln_1: ln(),
            attn: Gpt2Attention {
                c_attn: linear(d, 3 * d, 0.02),
                c_proj: linear(d, d, proj_std),
                attn_dropout: DropoutConfig::new(self.attn_pdrop).init(),
                resid_dropout: DropoutConfig::new(self.resid_pdrop).init(),
                n_head: self.n_head,
            },
            ln_2: ln(),
            mlp: Gpt2Mlp {
                c_fc: linear(d, self.inner_dim(), 0.02),
                c_proj: linear(self.inner_dim(), d, proj_std),
                dropout: DropoutConfig::new(self.resid_pdrop).init(),
                activation: self.activation_function,
            },
            layer_norm_epsilon: self.layer_norm_epsilon,
        };
        let embedding = |n, std| EmbeddingConfig::new(n, d).with_initializer(normal(std)).init(device);
        Gpt2LMHeadModel {
            transformer: Gpt2Model {
                wte: embedding(self.vocab_size, 0.02),
                wpe: embedding(self.n_positions, 0.01),
                drop: DropoutConfig::new(self.embd_pdrop).init(),
                h: (0..self.n_layer).map(|_| block()).collect(),
                ln_f: ln(),
            },
            config: self.clone(),
        }
    }
}

impl Gpt2LMHeadModel {
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.transformer.wte.weight.val().device()
    }

    /// Final hidden states (after `ln_f`). With a cache, `ids` are the tokens after the cached
    /// ones and the cache is extended with them.
    ///
    /// # Shapes
    /// - ids: `[b, t]` → `[b, t, d]`
    pub fn forward_hidden(&self, ids: Tensor<2, Int>, mut cache: Option<&mut KvCache>) -> Tensor<3> {
        let [_, t] = ids.dims();
        let past = cache.as_ref().map_or(0, |c| c.len);
        debug_assert!(past + t <= self.config.n_positions, "callers crop to the context window");
        let tf = &self.transformer;
        let mut x = self.embed(ids, past);
        if let Some(c) = cache.as_deref_mut() {
            c.layers.resize(tf.h.len(), None);
        }
        for (i, block) in tf.h.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(x, slot, past);
        }
        if let Some(c) = cache {
            c.len = past + t;
        }
        fused::layer_norm(&tf.ln_f, x, self.config.layer_norm_epsilon)
    }

    /// The attention weights and residual stream of every layer for `ids` (no cache, no
    /// dropout in effect on a model loaded for inference).
    ///
    /// # Shapes
    /// - ids: `[b, t]`
    pub fn inside(&self, ids: Tensor<2, Int>) -> Inside {
        let mut x = self.embed(ids, 0);
        let mut inside = Inside { attentions: Vec::new(), residuals: Vec::new() };
        for block in &self.transformer.h {
            let (next, probs) = block.forward_with_probs(x);
            x = next;
            inside.attentions.push(probs);
            inside.residuals.push(x.clone());
        }
        inside
    }

    /// Token + position embeddings for tokens at positions `past..past + t`.
    ///
    /// # Shapes
    /// - ids: `[b, t]` → `[b, t, d]`
    fn embed(&self, ids: Tensor<2, Int>, past: usize) -> Tensor<3> {
        let [_, t] = ids.dims();
        let positions: Vec<i64> = (past as i64..(past + t) as i64).collect();
        let positions = Tensor::<2, Int>::from_data(TensorData::new(positions, [1, t]), &ids.device());
        let tf = &self.transformer;
        tf.drop.forward(precision::embed(&tf.wte, ids) + precision::embed(&tf.wpe, positions))
    }

    /// The final LayerNorm and the tied unembedding applied to a residual stream: the logit
    /// lens. On the last layer's residual it gives the model's own logits.
    ///
    /// # Shapes
    /// - residual: `[b, t, d]` → `[b, t, vocab]`
    pub fn decode_residual(&self, residual: Tensor<3>) -> Tensor<3> {
        self.lm_head(fused::layer_norm(&self.transformer.ln_f, residual, self.config.layer_norm_epsilon))
    }

    /// Next-token logits for every position.
    ///
    /// # Shapes
    /// - ids: `[b, t]` → `[b, t, vocab]`
    pub fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.lm_head(self.forward_hidden(ids, cache))
    }

    /// Tied output projection: hidden states times `wteᵀ`.
    ///
    /// # Shapes
    /// - hidden: `[b, t, d]` → `[b, t, vocab]`
    pub fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = hidden.dims();
        let wte = self.transformer.wte.weight.val(); // [vocab, d]
        let logits = precision::project(hidden.reshape([b * t, d]), wte); // [b*t, vocab]
        logits.reshape([b, t, self.config.vocab_size])
    }

    /// Logits of the last position only: generation needs no others, and the output
    /// projection is the largest matmul of a step.
    ///
    /// # Shapes
    /// - ids: `[b, t]` → `[b, vocab]`
    pub fn forward_last(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<2> {
        let hidden = self.forward_hidden(ids, cache);
        let [b, t, _] = hidden.dims();
        let last = hidden.narrow(1, t - 1, 1); // [b, 1, d]
        self.lm_head(last).reshape([b, self.config.vocab_size])
    }
}
