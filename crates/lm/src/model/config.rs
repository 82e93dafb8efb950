//! Model configs as plain values with the field names of Hugging Face's `config.json`, so a
//! config deserialises from a hub checkpoint and serialises into one `transformers` accepts.

use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::llama::config::LlamaConfig;
use super::modernbert::config::ModernBertConfig;
use crate::error::{Error, Result};

/// `GPT2Config` of `transformers`: the fields this implementation reads and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// Tokens in the vocabulary (rows of `wte`).
    pub vocab_size: usize,
    /// Context length: rows of the learned position table `wpe`.
    pub n_positions: usize,
    /// Model width.
    pub n_embd: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads; `n_embd` must divide evenly among them.
    pub n_head: usize,
    /// MLP width; `None` means HF's default of `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// GPT-2 uses the tanh approximation, `gelu_new`.
    #[serde(default = "default_gelu_new")]
    pub activation_function: Activation,
    #[serde(default = "default_gpt2_eps")]
    pub layer_norm_epsilon: f64,
    /// Dropout after the embedding sum (training only).
    #[serde(default = "default_dropout")]
    pub embd_pdrop: f64,
    /// Dropout on attention probabilities (training only).
    #[serde(default = "default_dropout")]
    pub attn_pdrop: f64,
    /// Dropout on each residual branch (training only).
    #[serde(default = "default_dropout")]
    pub resid_pdrop: f64,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// Always true for GPT-2: `lm_head` shares `wte`.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_gpt2_type")]
    pub model_type: String,
    #[serde(default = "default_gpt2_arch")]
    pub architectures: Vec<String>,
}

/// `BertConfig` of `transformers`: the fields this implementation reads and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// BERT uses the exact erf GELU, `gelu`.
    #[serde(default = "default_gelu")]
    pub hidden_act: Activation,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Rows of the learned position table.
    pub max_position_embeddings: usize,
    /// Segment ids (sentence A / B).
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_bert_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_bert_type")]
    pub model_type: String,
    #[serde(default = "default_bert_arch")]
    pub architectures: Vec<String>,
}

fn default_gelu_new() -> Activation {
    Activation::GeluNew
}
fn default_gelu() -> Activation {
    Activation::Gelu
}
fn default_gpt2_eps() -> f64 {
    1e-5
}
fn default_bert_eps() -> f64 {
    1e-12
}
fn default_dropout() -> f64 {
    0.1
}
fn default_true() -> bool {
    true
}
fn default_type_vocab() -> usize {
    2
}
fn default_gpt2_type() -> String {
    "gpt2".into()
}
fn default_bert_type() -> String {
    "bert".into()
}
fn default_gpt2_arch() -> Vec<String> {
    vec!["GPT2LMHeadModel".into()]
}
fn default_bert_arch() -> Vec<String> {
    vec!["BertForMaskedLM".into()]
}

impl Gpt2Config {
    /// A GPT-2 shape with HF defaults for everything else.
    pub fn new(vocab_size: usize, n_positions: usize, n_embd: usize, n_layer: usize, n_head: usize) -> Self {
        Self {
            vocab_size,
            n_positions,
            n_embd,
            n_layer,
            n_head,
            n_inner: None,
            activation_function: default_gelu_new(),
            layer_norm_epsilon: default_gpt2_eps(),
            embd_pdrop: default_dropout(),
            attn_pdrop: default_dropout(),
            resid_pdrop: default_dropout(),
            bos_token_id: Some(50256),
            eos_token_id: Some(50256),
            tie_word_embeddings: true,
            model_type: default_gpt2_type(),
            architectures: default_gpt2_arch(),
        }
    }

    /// The published GPT-2 sizes: `gpt2` (124M), `gpt2-medium` (355M), `gpt2-large` (774M),
    /// `gpt2-xl` (1.5B).
    pub fn preset(name: &str) -> Result<Self> {
        let (n_embd, n_layer, n_head) = match name {
            "gpt2" | "small" => (768, 12, 12),
            "gpt2-medium" | "medium" => (1024, 24, 16),
            "gpt2-large" | "large" => (1280, 36, 20),
            "gpt2-xl" | "xl" => (1600, 48, 25),
            other => {
                return Err(Error::Config(format!(
                    "unknown GPT-2 preset `{other}` (known: gpt2, gpt2-medium, gpt2-large, gpt2-xl)"
                )))
            }
        };
        Ok(Self::new(50257, 1024, n_embd, n_layer, n_head))
    }

    /// A model small enough for unit tests.
    pub fn tiny() -> Self {
        let mut c = Self::new(256, 64, 32, 2, 4);
        c.bos_token_id = Some(0);
        c.eos_token_id = Some(0);
        c
    }

    /// Parses `config.json` and checks the shape is usable.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let config: Self = serde_json::from_slice(bytes).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// `config.json` as `transformers` writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    /// MLP width.
    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(self.n_embd.saturating_mul(4))
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    pub fn validate(&self) -> Result<()> {
        if self.vocab_size == 0
            || self.n_positions == 0
            || self.n_embd == 0
            || self.n_layer == 0
            || self.n_head == 0
        {
            return Err(Error::Config(
                "vocab_size, n_positions, n_embd, n_layer and n_head must be positive".into(),
            ));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(Error::Config(format!(
                "n_embd {} is not divisible by n_head {}",
                self.n_embd, self.n_head
            )));
        }
        if self.n_inner == Some(0) {
            return Err(Error::Config("n_inner must be positive (or null for 4 × n_embd)".into()));
        }
        if !self.tie_word_embeddings {
            return Err(Error::Config("untied GPT-2 output embeddings are not supported".into()));
        }
        check_dropout("embd_pdrop", self.embd_pdrop)?;
        check_dropout("attn_pdrop", self.attn_pdrop)?;
        check_dropout("resid_pdrop", self.resid_pdrop)?;
        check_epsilon("layer_norm_epsilon", self.layer_norm_epsilon)
    }

    /// Parameters, counting the tied output embedding once (as HF's `num_parameters()` does).
    /// Saturates at `usize::MAX` for configs no machine could hold ([`Self::parameter_count`]
    /// is exact).
    pub fn num_parameters(&self) -> usize {
        usize::try_from(self.parameter_count()).unwrap_or(usize::MAX)
    }

    /// Elements of the largest single tensor (the token embedding for any real vocabulary):
    /// a GPU must bind it in one storage buffer.
    pub fn largest_tensor(&self) -> usize {
        let (d, f) = (self.n_embd, self.inner_dim());
        [
            self.vocab_size.saturating_mul(d),
            self.n_positions.saturating_mul(d),
            d.saturating_mul(3).saturating_mul(d),
            d.saturating_mul(f),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

impl BertConfig {
    /// A BERT shape with HF defaults for everything else.
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        intermediate_size: usize,
        max_position_embeddings: usize,
    ) -> Self {
        Self {
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            hidden_act: default_gelu(),
            hidden_dropout_prob: default_dropout(),
            attention_probs_dropout_prob: default_dropout(),
            max_position_embeddings,
            type_vocab_size: default_type_vocab(),
            layer_norm_eps: default_bert_eps(),
            pad_token_id: Some(0),
            tie_word_embeddings: true,
            model_type: default_bert_type(),
            architectures: default_bert_arch(),
        }
    }

    /// `bert-base-uncased` (110M) and `bert-large-uncased` (340M) shapes.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "bert-base-uncased" | "base" => Ok(Self::new(30522, 768, 12, 12, 3072, 512)),
            "bert-large-uncased" | "large" => Ok(Self::new(30522, 1024, 24, 16, 4096, 512)),
            other => Err(Error::Config(format!(
                "unknown BERT preset `{other}` (known: bert-base-uncased, bert-large-uncased)"
            ))),
        }
    }

    /// A model small enough for unit tests.
    pub fn tiny() -> Self {
        Self::new(128, 32, 2, 4, 64, 64)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let config: Self = serde_json::from_slice(bytes).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn validate(&self) -> Result<()> {
        if self.vocab_size == 0
            || self.hidden_size == 0
            || self.num_hidden_layers == 0
            || self.num_attention_heads == 0
            || self.intermediate_size == 0
            || self.max_position_embeddings == 0
        {
            return Err(Error::Config("BERT sizes must all be positive".into()));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::Config(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if self.type_vocab_size == 0 {
            return Err(Error::Config("type_vocab_size must be positive".into()));
        }
        check_dropout("hidden_dropout_prob", self.hidden_dropout_prob)?;
        check_dropout("attention_probs_dropout_prob", self.attention_probs_dropout_prob)?;
        check_epsilon("layer_norm_eps", self.layer_norm_eps)
    }

    /// Parameters of `BertForMaskedLM` (no pooler), tied decoder counted once.
    /// Saturates at `usize::MAX` (see [`Gpt2Config::num_parameters`]).
    pub fn num_parameters(&self) -> usize {
        usize::try_from(self.parameter_count()).unwrap_or(usize::MAX)
    }

    /// Elements of the largest single tensor (see [`Gpt2Config::largest_tensor`]).
    pub fn largest_tensor(&self) -> usize {
        let (d, f) = (self.hidden_size, self.intermediate_size);
        [
            self.vocab_size.saturating_mul(d),
            self.max_position_embeddings.saturating_mul(d),
            d.saturating_mul(f),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

/// A dropout probability must be in [0, 1): 1 would zero every activation (and divide by zero
/// in the rescaling), and Burn's dropout panics outside that range.
fn check_dropout(name: &str, p: f64) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::Config(format!("{name} must be in [0, 1), got {p}")))
    }
}

/// A LayerNorm epsilon must be a positive finite number: 0 or less divides by zero (or takes the
/// square root of a negative variance) and every output becomes NaN.
fn check_epsilon(name: &str, eps: f64) -> Result<()> {
    if eps > 0.0 && eps.is_finite() {
        Ok(())
    } else {
        Err(Error::Config(format!("{name} must be a positive number, got {eps}")))
    }
}

/// Which architecture a `config.json` describes.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Gpt2(Gpt2Config),
    Bert(BertConfig),
    /// `model_type` llama, qwen2 or qwen3 (boxed: its rope and token fields make it three
    /// times the others' size).
    Llama(Box<LlamaConfig>),
    /// `model_type` modernbert (boxed, as the Llama config is).
    ModernBert(Box<ModernBertConfig>),
}

impl ModelConfig {
    /// `eos_token_id` of `config.json`: what generation stops at when the checkpoint has no
    /// `generation_config.json` (transformers' `GenerationConfig.from_model_config`).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        match self {
            Self::Gpt2(c) => c.eos_token_id.into_iter().collect(),
            Self::Bert(_) | Self::ModernBert(_) => Vec::new(),
            Self::Llama(c) => c.eos_ids(),
        }
    }

    /// Reads `model_type` from `config.json` and parses the matching config.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            model_type: Option<String>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| Error::Config(e.to_string()))?;
        match probe.model_type.as_deref() {
            Some("gpt2") => Ok(Self::Gpt2(Gpt2Config::from_json(bytes)?)),
            Some("bert") => Ok(Self::Bert(BertConfig::from_json(bytes)?)),
            Some("llama" | "qwen2" | "qwen3") => Ok(Self::Llama(Box::new(LlamaConfig::from_json(bytes)?))),
            Some("modernbert") => Ok(Self::ModernBert(Box::new(ModernBertConfig::from_json(bytes)?))),
            Some(other) => {
                let other: String = other.chars().take(40).collect();
                Err(Error::Config(format!(
                    "model_type `{other}` is not supported (gpt2, bert, llama, qwen2, qwen3, modernbert)"
                )))
            }
            None => Err(Error::Config("no `model_type` field".into())),
        }
    }

    pub fn num_parameters(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.num_parameters(),
            Self::Bert(c) => c.num_parameters(),
            Self::Llama(c) => c.num_parameters(),
            Self::ModernBert(c) => c.num_parameters(),
        }
    }

    pub fn largest_tensor(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.largest_tensor(),
            Self::Bert(c) => c.largest_tensor(),
            Self::Llama(c) => c.largest_tensor(),
            Self::ModernBert(c) => c.largest_tensor(),
        }
    }

    /// The `transformers` class, for messages.
    pub fn architecture(&self) -> &'static str {
        match self {
            Self::Gpt2(_) => "GPT2LMHeadModel",
            Self::Bert(_) => "BertForMaskedLM",
            Self::Llama(c) => match c.model_type {
                super::llama::config::Family::Llama => "LlamaForCausalLM",
                super::llama::config::Family::Qwen2 => "Qwen2ForCausalLM",
                super::llama::config::Family::Qwen3 => "Qwen3ForCausalLM",
            },
            Self::ModernBert(_) => "ModernBertForMaskedLM",
        }
    }

    /// The built-in tokenizer a directory without `tokenizer.json` gets; none for the Llama
    /// family and ModernBERT, whose every checkpoint has its own vocabulary.
    pub fn default_tokenizer_name(&self) -> Option<&'static str> {
        match self {
            Self::Gpt2(_) => Some("gpt2"),
            Self::Bert(_) => Some("bert-base-uncased"),
            Self::Llama(_) | Self::ModernBert(_) => None,
        }
    }

    /// `config.json` as `transformers` writes it.
    pub fn to_json(&self) -> String {
        match self {
            Self::Gpt2(c) => c.to_json(),
            Self::Bert(c) => c.to_json(),
            Self::Llama(c) => c.to_json(),
            Self::ModernBert(c) => c.to_json(),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.vocab_size,
            Self::Bert(c) => c.vocab_size,
            Self::Llama(c) => c.vocab_size,
            Self::ModernBert(c) => c.vocab_size,
        }
    }

    /// The longest sequence the position embeddings cover.
    pub fn max_context(&self) -> usize {
        match self {
            Self::Gpt2(c) => c.n_positions,
            Self::Bert(c) => c.max_position_embeddings,
            Self::Llama(c) => c.max_position_embeddings,
            Self::ModernBert(c) => c.max_position_embeddings,
        }
    }

    /// `(layers, heads, width)`.
    pub fn dims(&self) -> (usize, usize, usize) {
        match self {
            Self::Gpt2(c) => (c.n_layer, c.n_head, c.n_embd),
            Self::Bert(c) => (c.num_hidden_layers, c.num_attention_heads, c.hidden_size),
            Self::Llama(c) => (c.num_hidden_layers, c.num_attention_heads, c.hidden_size),
            Self::ModernBert(c) => (c.num_hidden_layers, c.num_attention_heads, c.hidden_size),
        }
    }

    /// The dropout probability the model trains with (GPT-2's `resid_pdrop`, BERT's
    /// `hidden_dropout_prob`).
    pub fn dropout(&self) -> f64 {
        match self {
            Self::Gpt2(c) => c.resid_pdrop,
            Self::Bert(c) => c.hidden_dropout_prob,
            Self::Llama(c) => c.attention_dropout,
            Self::ModernBert(c) => c.mlp_dropout,
        }
    }

    /// The same model with every dropout probability set to `p`.
    pub fn with_dropout(&self, p: f64) -> Self {
        match self.clone() {
            Self::Gpt2(mut c) => {
                (c.embd_pdrop, c.attn_pdrop, c.resid_pdrop) = (p, p, p);
                Self::Gpt2(c)
            }
            Self::Bert(mut c) => {
                (c.hidden_dropout_prob, c.attention_probs_dropout_prob) = (p, p);
                Self::Bert(c)
            }
            Self::Llama(mut c) => {
                c.attention_dropout = p;
                Self::Llama(c)
            }
            Self::ModernBert(mut c) => {
                (c.attention_dropout, c.embedding_dropout, c.mlp_dropout) = (p, p, p);
                Self::ModernBert(c)
            }
        }
    }
}

/// As its `config.json` object (with `model_type`), so a saved run names its model the way
/// Hugging Face does.
impl Serialize for ModelConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Gpt2(c) => c.serialize(serializer),
            Self::Bert(c) => c.serialize(serializer),
            Self::Llama(c) => c.serialize(serializer),
            Self::ModernBert(c) => c.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let bytes = serde_json::to_vec(&value).map_err(serde::de::Error::custom)?;
        Self::from_json(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_small_has_124m_parameters() {
        assert_eq!(Gpt2Config::preset("gpt2").unwrap().num_parameters(), 124_439_808);
    }

    #[test]
    fn gpt2_token_embedding_is_the_largest_tensor() {
        // 50257 × 768 f32 = 147 MiB: over WebGPU's default 128 MiB binding limit.
        let c = Gpt2Config::preset("gpt2").unwrap();
        assert_eq!(c.largest_tensor(), 50257 * 768);
        assert!(c.largest_tensor() * 4 > 128 << 20);
        assert_eq!(BertConfig::preset("bert-base-uncased").unwrap().largest_tensor(), 30522 * 768);
    }

    #[test]
    fn bert_base_mlm_parameter_count() {
        // HF BertForMaskedLM("bert-base-uncased").num_parameters() = 109,514,298.
        assert_eq!(BertConfig::preset("bert-base-uncased").unwrap().num_parameters(), 109_514_298);
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = Gpt2Config::tiny();
        assert_eq!(Gpt2Config::from_json(c.to_json().as_bytes()).unwrap(), c);
        let b = BertConfig::tiny();
        assert_eq!(BertConfig::from_json(b.to_json().as_bytes()).unwrap(), b);
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(Gpt2Config::from_json(b"{").is_err());
        let mut c = Gpt2Config::tiny();
        c.n_head = 3;
        assert!(Gpt2Config::from_json(c.to_json().as_bytes()).is_err());
        assert!(ModelConfig::from_json(br#"{"model_type": "llama"}"#).is_err());
        assert!(ModelConfig::from_json(br#"{"model_type": "mixtral"}"#)
            .unwrap_err()
            .to_string()
            .contains("mixtral"));
    }
}
