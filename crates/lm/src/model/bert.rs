//! BERT (`BertForMaskedLM`): post-LN encoder with learned positions and segment embeddings,
//! erf-GELU, and the MLM head (dense → GELU → LayerNorm → decoder tied to the word embeddings,
//! plus its own bias). Field names follow the Hugging Face keys; `self_attn` and `layer_norm`
//! stand for `self` and `LayerNorm`, which Rust cannot or should not spell (see
//! [`crate::io::weights::Layout`]). Follows `modeling_bert.py` of transformers 5.23.
//!
//! Pure: no IO, no tokenizer, no backend choice.

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::activation::Activation;
use super::attention::{attention_probs, merge_heads, padding_mask, split_heads};
use super::config::BertConfig;
use super::precision;
use crate::fused;

fn normal() -> Initializer {
    Initializer::Normal { mean: 0.0, std: 0.02 }
}

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

#[derive(Module, Debug)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    n_head: usize,
}

/// Projection + residual + LayerNorm, shared by the attention and MLP outputs (HF's
/// `BertSelfOutput` and `BertOutput` are the same computation).
#[derive(Module, Debug)]
pub struct BertOutput {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    /// Burn's `LayerNorm` keeps its ε private; the fused kernel needs it.
    #[module(skip)]
    layer_norm_eps: f64,
}

impl BertOutput {
    fn forward(&self, h: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let x = self.dropout.forward(precision::linear(&self.dense, h)) + residual;
        fused::layer_norm(&self.layer_norm, x, self.layer_norm_eps)
    }
}

#[derive(Module, Debug)]
pub struct BertAttention {
    pub self_attn: BertSelfAttention,
    pub output: BertOutput,
}

#[derive(Module, Debug)]
pub struct BertIntermediate {
    pub dense: Linear,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: BertIntermediate,
    pub output: BertOutput,
    #[module(skip)]
    activation: Activation,
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    pub layer: Vec<BertLayer>,
}

#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub encoder: BertEncoder,
}

#[derive(Module, Debug)]
pub struct BertPredictionHeadTransform {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct BertLMPredictionHead {
    pub transform: BertPredictionHeadTransform,
    /// Output bias over the vocabulary; the decoder weight is the word embedding.
    pub bias: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct BertOnlyMLMHead {
    pub predictions: BertLMPredictionHead,
}

#[derive(Module, Debug)]
pub struct BertForMaskedLM {
    pub bert: BertModel,
    pub cls: BertOnlyMLMHead,
    #[module(skip)]
    config: BertConfig,
}

impl BertConfig {
    /// A randomly initialised model with BERT's initialisation (N(0, 0.02)).
    pub fn init(&self, device: &Device) -> BertForMaskedLM {
        let d = self.hidden_size;
        let linear = |i, o| LinearConfig::new(i, o).with_initializer(normal()).init(device);
        let ln = || LayerNormConfig::new(d).with_epsilon(self.layer_norm_eps).init(device);
        let drop = |p| DropoutConfig::new(p).init();
        let embedding = |n| EmbeddingConfig::new(n, d).with_initializer(normal()).init(device);
        let layer = || BertLayer {
            attention: BertAttention {
                self_attn: BertSelfAttention {
                    query: linear(d, d),
                    key: linear(d, d),
                    value: linear(d, d),
                    dropout: drop(self.attention_probs_dropout_prob),
                    n_head: self.num_attention_heads,
                },
                output: BertOutput {
                    dense: linear(d, d),
                    layer_norm: ln(),
                    dropout: drop(self.hidden_dropout_prob),
                    layer_norm_eps: self.layer_norm_eps,
                },
            },
            intermediate: BertIntermediate { dense: linear(d, self.intermediate_size) },
            output: BertOutput {
                dense: linear(self.intermediate_size, d),
                layer_norm: ln(),
                dropout: drop(self.hidden_dropout_prob),
                layer_norm_eps: self.layer_norm_eps,
            },
            activation: self.hidden_act,
        };
        BertForMaskedLM {
            bert: BertModel {
                embeddings: BertEmbeddings {
                    word_embeddings: embedding(self.vocab_size),
                    position_embeddings: embedding(self.max_position_embeddings),
                    token_type_embeddings: embedding(self.type_vocab_size),
                    layer_norm: ln(),
                    dropout: drop(self.hidden_dropout_prob),
                },
                encoder: BertEncoder { layer: (0..self.num_hidden_layers).map(|_| layer()).collect() },
            },
            cls: BertOnlyMLMHead {
                predictions: BertLMPredictionHead {
                    transform: BertPredictionHeadTransform { dense: linear(d, d), layer_norm: ln() },
                    bias: Param::from_tensor(Tensor::zeros([self.vocab_size], device)),
                },
            },
            config: self.clone(),
        }
    }
}

impl BertLayer {
    /// # Shapes
    /// - x: `[b, t, d]`, keep: `[b, t]` (1 = token, 0 = padding) → `[b, t, d]`
    fn forward(&self, x: Tensor<3>, keep: Tensor<2, Int>) -> Tensor<3> {
        self.forward_with_probs(x, keep).0
    }

    /// [`BertLayer::forward`], also returning the attention weights.
    fn forward_with_probs(&self, x: Tensor<3>, keep: Tensor<2, Int>) -> (Tensor<3>, Tensor<4>) {
        let sa = &self.attention.self_attn;
        let [_, t, _] = x.dims();
        let q = split_heads(precision::linear(&sa.query, x.clone()), sa.n_head);
        let k = split_heads(precision::linear(&sa.key, x.clone()), sa.n_head);
        let v = split_heads(precision::linear(&sa.value, x.clone()), sa.n_head);
        let probs = attention_probs(q, k, Some(padding_mask(keep, sa.n_head, t)));
        let y = merge_heads(sa.dropout.forward(probs.clone()).matmul(v));
        let x = self.attention.output.forward(y, x);
        let h = self.activation.forward(precision::linear(&self.intermediate.dense, x.clone()));
        (self.output.forward(h, x), probs)
    }
}

impl BertForMaskedLM {
    /// Every layer's attention weights (`[b, nh, t, t]`; padding keys get weight 0).
    ///
    /// # Shapes
    /// - ids, token_types, attention_mask: `[b, t]`
    pub fn attentions(
        &self,
        ids: Tensor<2, Int>,
        token_types: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
    ) -> Vec<Tensor<4>> {
        let mut x = self.embed(ids, token_types);
        let mut all = Vec::with_capacity(self.bert.encoder.layer.len());
        for layer in &self.bert.encoder.layer {
            let (next, probs) = layer.forward_with_probs(x, attention_mask.clone());
            x = next;
            all.push(probs);
        }
        all
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Word + position + token-type embeddings, normalised: the encoder's input.
    ///
    /// # Shapes
    /// - ids, token_types: `[b, t]` → `[b, t, d]`
    fn embed(&self, ids: Tensor<2, Int>, token_types: Tensor<2, Int>) -> Tensor<3> {
        let [_, t] = ids.dims();
        let device = ids.device();
        let positions: Vec<i64> = (0..t as i64).collect();
        let positions = Tensor::<2, Int>::from_data(TensorData::new(positions, [1, t]), &device);
        let e = &self.bert.embeddings;
        let x = precision::embed(&e.word_embeddings, ids)
            + precision::embed(&e.position_embeddings, positions)
            + precision::embed(&e.token_type_embeddings, token_types);
        e.dropout.forward(fused::layer_norm(&e.layer_norm, x, self.config.layer_norm_eps))
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.bert.embeddings.word_embeddings.weight.val().device()
    }

    /// Encoder output (last hidden state).
    ///
    /// # Shapes
    /// - ids, token_types, attention_mask: `[b, t]` → `[b, t, d]`
    pub fn forward_hidden(
        &self,
        ids: Tensor<2, Int>,
        token_types: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
    ) -> Tensor<3> {
        let mut x = self.embed(ids, token_types);
        for layer in &self.bert.encoder.layer {
            x = layer.forward(x, attention_mask.clone());
        }
        x
    }

    /// Vocabulary logits at every position.
    ///
    /// # Shapes
    /// - ids, token_types, attention_mask: `[b, t]` → `[b, t, vocab]`
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        token_types: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
    ) -> Tensor<3> {
        self.mlm_head(self.forward_hidden(ids, token_types, attention_mask))
    }

    /// The MLM head on chosen hidden states.
    ///
    /// # Shapes
    /// - hidden: `[b, t, d]` → `[b, t, vocab]`
    pub fn mlm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        let p = &self.cls.predictions;
        let h = self.config.hidden_act.forward(precision::linear(&p.transform.dense, hidden));
        let h = fused::layer_norm(&p.transform.layer_norm, h, self.config.layer_norm_eps);
        let [b, t, d] = h.dims();
        let words = self.bert.embeddings.word_embeddings.weight.val(); // [vocab, d]
        let logits = precision::project(h.reshape([b * t, d]), words) + p.bias.val().unsqueeze::<2>();
        logits.reshape([b, t, self.config.vocab_size])
    }
}
