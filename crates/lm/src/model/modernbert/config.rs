//! `ModernBertConfig` of `transformers` as a plain value with its field names.
//!
//! Read: the hub's layout (`global_attn_every_n_layers`, `global_rope_theta`, `local_rope_theta`
//! at the top level, as answerdotai/ModernBERT-base publishes it) and transformers 5's
//! (`layer_types`, `rope_parameters` per layer type). Written: transformers 5's. A field that
//! changes the math and is not implemented (another rope type, a layer type other than full and
//! sliding attention) is refused by name, never ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::activation::Activation;
use crate::error::{excerpt, Error, Result};

/// The attention of one layer, as `layer_types` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerType {
    /// Every token sees every token.
    #[serde(rename = "full_attention")]
    Global,
    /// Each token sees the tokens within `local_attention / 2` positions of it.
    #[serde(rename = "sliding_attention")]
    Local,
}

impl LayerType {
    /// The key of `rope_parameters` for this layer type.
    fn key(self) -> &'static str {
        match self {
            LayerType::Global => "full_attention",
            LayerType::Local => "sliding_attention",
        }
    }
}

/// One layer type's rotary parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RopeParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModernBertConfig {
    #[serde(default = "model_type")]
    pub model_type: String,
    #[serde(default = "architectures")]
    pub architectures: Vec<String>,
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// The MLP's width: `Wi` projects to twice this (input and gate of the GeGLU).
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "gelu")]
    pub hidden_activation: Activation,
    /// The context the model was trained for (8,192 for ModernBERT).
    pub max_position_embeddings: usize,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    /// Biases on the LayerNorms.
    #[serde(default)]
    pub norm_bias: bool,
    /// Biases on `Wqkv` and the attention's `Wo`.
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP's `Wi` and `Wo`.
    #[serde(default)]
    pub mlp_bias: bool,
    /// The MLM head's dense layer's bias.
    #[serde(default)]
    pub classifier_bias: bool,
    #[serde(default = "gelu")]
    pub classifier_activation: Activation,
    /// The decoder's bias over the vocabulary (its weight is the token embedding).
    #[serde(default = "default_true")]
    pub decoder_bias: bool,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// The whole window of a local layer: a token sees `local_attention / 2` on either side.
    #[serde(default = "default_window")]
    pub local_attention: usize,
    #[serde(default)]
    pub attention_dropout: f64,
    #[serde(default)]
    pub embedding_dropout: f64,
    #[serde(default)]
    pub mlp_dropout: f64,
    /// transformers 5: each layer's attention. Absent in hub configs, which give
    /// `global_attn_every_n_layers` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_types: Option<Vec<LayerType>>,
    /// Hub layout: layer `i` is global when `i % n == 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_attn_every_n_layers: Option<usize>,
    /// transformers 5: rotary parameters per layer type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<BTreeMap<String, RopeParameters>>,
    /// Hub layout: the rope bases at the top level.
    #[serde(default, skip_serializing)]
    pub global_rope_theta: Option<f64>,
    #[serde(default, skip_serializing)]
    pub local_rope_theta: Option<f64>,
    /// Hub layout: a rope scaling for both layer types; only the default schedule is implemented.
    #[serde(default, skip_serializing)]
    pub rope_scaling: Option<RopeParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cls_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sep_token_id: Option<u32>,
}

fn model_type() -> String {
    "modernbert".into()
}
fn architectures() -> Vec<String> {
    vec!["ModernBertForMaskedLM".into()]
}
fn gelu() -> Activation {
    Activation::Gelu
}
fn default_init_range() -> f64 {
    0.02
}
fn default_eps() -> f64 {
    1e-5
}
fn default_true() -> bool {
    true
}
fn default_window() -> usize {
    128
}

/// Layers a config may claim (ModernBERT-large has 28).
const MAX_LAYERS: usize = 1 << 16;

/// ModernBERT's rope bases (`ModernBertConfig.default_theta`).
const GLOBAL_THETA: f64 = 160_000.0;
const LOCAL_THETA: f64 = 10_000.0;

impl ModernBertConfig {
    /// A ModernBERT shape with ModernBERT-base's switches (no biases, erf GELU, global attention
    /// every third layer, a 128-token window, rope bases 160,000 and 10,000).
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        intermediate_size: usize,
        layers: usize,
        heads: usize,
        context: usize,
    ) -> Self {
        let mut c = Self {
            model_type: model_type(),
            architectures: architectures(),
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            hidden_activation: Activation::Gelu,
            max_position_embeddings: context,
            initializer_range: default_init_range(),
            norm_eps: default_eps(),
            norm_bias: false,
            attention_bias: false,
            mlp_bias: false,
            classifier_bias: false,
            classifier_activation: Activation::Gelu,
            decoder_bias: true,
            tie_word_embeddings: true,
            local_attention: default_window(),
            attention_dropout: 0.0,
            embedding_dropout: 0.0,
            mlp_dropout: 0.0,
            layer_types: None,
            global_attn_every_n_layers: Some(3),
            rope_parameters: None,
            global_rope_theta: None,
            local_rope_theta: None,
            rope_scaling: None,
            pad_token_id: None,
            bos_token_id: None,
            eos_token_id: None,
            cls_token_id: None,
            sep_token_id: None,
        };
        c.normalise();
        c
    }

    /// The published shapes: `ModernBERT-base` (22 layers, 768 wide) and `ModernBERT-large`
    /// (28 layers, 1,024 wide), vocabulary 50,368, context 8,192.
    pub fn preset(name: &str) -> Result<Self> {
        let (hidden, inter, layers, heads) = match name {
            "ModernBERT-base" => (768, 1152, 22, 12),
            "ModernBERT-large" => (1024, 2624, 28, 16),
            other => return Err(Error::Config(format!("no ModernBERT preset named {}", excerpt(other)))),
        };
        let mut c = Self::new(50368, hidden, inter, layers, heads, 8192);
        (c.pad_token_id, c.bos_token_id, c.cls_token_id) = (Some(50283), Some(50281), Some(50281));
        (c.eos_token_id, c.sep_token_id) = (Some(50282), Some(50282));
        Ok(c)
    }

    /// Parses `config.json` (either layout) and checks that everything it asks for is implemented.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let mut config: Self = serde_json::from_slice(bytes).map_err(|e| Error::Config(e.to_string()))?;
        if let Some(kind) = config.rope_scaling.as_ref().and_then(|r| r.rope_type.as_deref()) {
            if kind != "default" {
                return Err(Error::Config(format!(
                    "rope_scaling: rope type `{}` is not implemented (default is)",
                    excerpt(kind)
                )));
            }
        }
        // `normalise` lists a layer type per layer: a config claiming billions of layers is
        // refused before that list is made.
        if config.num_hidden_layers > MAX_LAYERS {
            return Err(Error::Config(format!(
                "num_hidden_layers {} is more than any model has (at most {MAX_LAYERS})",
                config.num_hidden_layers
            )));
        }
        config.normalise();
        config.validate()?;
        Ok(config)
    }

    /// One place for the layer types and rope bases whichever layout they came in: what
    /// transformers 5's `__post_init__` and `convert_rope_params_to_dict` do.
    fn normalise(&mut self) {
        if self.layer_types.is_none() {
            let every = self.global_attn_every_n_layers.unwrap_or(3).max(1);
            self.layer_types = Some(
                (0..self.num_hidden_layers)
                    .map(|i| if i % every == 0 { LayerType::Global } else { LayerType::Local })
                    .collect(),
            );
        }
        let mut rope = self.rope_parameters.take().unwrap_or_default();
        for (kind, theta) in [
            (LayerType::Global, self.global_rope_theta.unwrap_or(GLOBAL_THETA)),
            (LayerType::Local, self.local_rope_theta.unwrap_or(LOCAL_THETA)),
        ] {
            let entry = rope.entry(kind.key().to_string()).or_default();
            entry.rope_type.get_or_insert_with(|| "default".into());
            entry.rope_theta.get_or_insert(theta);
        }
        self.rope_parameters = Some(rope);
        (self.global_rope_theta, self.local_rope_theta, self.rope_scaling) = (None, None, None);
    }

    /// `config.json` as transformers 5 writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    /// Each layer's attention (global or local).
    pub fn layer_types(&self) -> Vec<LayerType> {
        self.layer_types.clone().unwrap_or_default()
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// How far a local layer's token sees on either side (`config.sliding_window`).
    pub fn half_window(&self) -> usize {
        self.local_attention / 2
    }

    /// The rope base of a layer type.
    pub fn rope_theta(&self, kind: LayerType) -> f64 {
        let theta = self.rope_parameters.as_ref().and_then(|r| r.get(kind.key())).and_then(|p| p.rope_theta);
        theta.unwrap_or(match kind {
            LayerType::Global => GLOBAL_THETA,
            LayerType::Local => LOCAL_THETA,
        })
    }

    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Config(format!("{name} must be positive")));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::Config(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        let hd = self.head_dim();
        if !hd.is_multiple_of(2) {
            return Err(Error::Config(format!("the head width must be even for rotary positions, got {hd}")));
        }
        if self.layer_types().len() != self.num_hidden_layers {
            return Err(Error::Config(format!(
                "layer_types names {} layers but num_hidden_layers is {}",
                self.layer_types().len(),
                self.num_hidden_layers
            )));
        }
        if self.global_attn_every_n_layers == Some(0) {
            return Err(Error::Config("global_attn_every_n_layers must be positive".into()));
        }
        if self.local_attention < 2 && self.layer_types().contains(&LayerType::Local) {
            return Err(Error::Config(format!(
                "local_attention must be at least 2 for local layers, got {}",
                self.local_attention
            )));
        }
        for (kind, params) in self.rope_parameters.iter().flatten() {
            let rope_type = params.rope_type.as_deref().unwrap_or("default");
            if rope_type != "default" {
                return Err(Error::Config(format!(
                    "rope_parameters.{}: rope type `{}` is not implemented (default is)",
                    excerpt(kind),
                    excerpt(rope_type)
                )));
            }
            let theta = params.rope_theta.unwrap_or(GLOBAL_THETA);
            if !(theta.is_finite() && theta > 1.0) {
                return Err(Error::Config(format!(
                    "rope_parameters.{}.rope_theta must be a number above 1, got {theta}",
                    excerpt(kind)
                )));
            }
        }
        for (name, p) in [
            ("attention_dropout", self.attention_dropout),
            ("embedding_dropout", self.embedding_dropout),
            ("mlp_dropout", self.mlp_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::Config(format!("{name} must be in [0, 1), got {p}")));
            }
        }
        if let Some(pad) = self.pad_token_id.filter(|&id| id as usize >= self.vocab_size) {
            return Err(Error::Config(format!(
                "pad_token_id {pad} is outside the vocabulary (size {})",
                self.vocab_size
            )));
        }
        if !(self.norm_eps > 0.0 && self.norm_eps.is_finite()) {
            return Err(Error::Config(format!("norm_eps must be a positive number, got {}", self.norm_eps)));
        }
        if !self.tie_word_embeddings {
            return Err(Error::Config(
                "tie_word_embeddings false: a ModernBERT decoder of its own is not implemented".into(),
            ));
        }
        Ok(())
    }

    /// Elements of each weight matrix.
    fn matrices(&self) -> Vec<u128> {
        let (d, f, v) = (self.hidden_size as u128, self.intermediate_size as u128, self.vocab_size as u128);
        let mut m = vec![v.saturating_mul(d)];
        for _ in 0..self.num_hidden_layers {
            m.extend([3 * d * d, d * d, 2 * f * d, f * d]);
        }
        m.push(d * d); // the head's dense layer
        m
    }

    /// Rank-one parameters: the norms and the biases.
    pub fn vector_count(&self) -> u128 {
        let (d, f, v) = (self.hidden_size as u128, self.intermediate_size as u128, self.vocab_size as u128);
        let norm = if self.norm_bias { 2 * d } else { d };
        let layers = self.num_hidden_layers as u128;
        // Every layer has an MLP norm; every layer but the first an attention norm.
        let mut n = norm * (2 * layers).saturating_sub(1);
        if self.attention_bias {
            n += layers * 4 * d;
        }
        if self.mlp_bias {
            n += layers * (2 * f + d);
        }
        n += 3 * norm; // embedding norm, final norm, head norm
        if self.classifier_bias {
            n += d;
        }
        if self.decoder_bias {
            n += v;
        }
        n
    }

    /// Parameters, the tied decoder counted once; saturating for absurd configs.
    pub fn parameter_count(&self) -> u128 {
        if self.num_hidden_layers > 1 << 20 || self.hidden_size > 1 << 24 || self.intermediate_size > 1 << 26
        {
            return u128::MAX;
        }
        self.matrices().iter().fold(0u128, |a, b| a.saturating_add(*b)).saturating_add(self.vector_count())
    }

    pub fn num_parameters(&self) -> usize {
        usize::try_from(self.parameter_count()).unwrap_or(usize::MAX)
    }

    /// Elements of the largest single tensor.
    pub fn largest_tensor(&self) -> usize {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        [v.saturating_mul(d), d.saturating_mul(f).saturating_mul(2), d.saturating_mul(d).saturating_mul(3)]
            .into_iter()
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// answerdotai/ModernBERT-base's config.json, as the hub publishes it.
    const BASE: &str = r#"{"architectures": ["ModernBertForMaskedLM"], "attention_bias": false,
        "attention_dropout": 0.0, "bos_token_id": 50281, "classifier_activation": "gelu",
        "classifier_bias": false, "classifier_dropout": 0.0, "classifier_pooling": "mean",
        "cls_token_id": 50281, "decoder_bias": true, "deterministic_flash_attn": false,
        "embedding_dropout": 0.0, "eos_token_id": 50282, "global_attn_every_n_layers": 3,
        "global_rope_theta": 160000.0, "gradient_checkpointing": false, "hidden_activation": "gelu",
        "hidden_size": 768, "initializer_cutoff_factor": 2.0, "initializer_range": 0.02,
        "intermediate_size": 1152, "layer_norm_eps": 1e-05, "local_attention": 128,
        "local_rope_theta": 10000.0, "max_position_embeddings": 8192, "mlp_bias": false,
        "mlp_dropout": 0.0, "model_type": "modernbert", "norm_bias": false, "norm_eps": 1e-05,
        "num_attention_heads": 12, "num_hidden_layers": 22, "pad_token_id": 50283,
        "position_embedding_type": "absolute", "reference_compile": true, "repad_logits_with_grad": false,
        "sep_token_id": 50282, "sparse_pred_ignore_index": -100, "sparse_prediction": false,
        "torch_dtype": "float32", "transformers_version": "4.48.0.dev0", "vocab_size": 50368}"#;

    #[test]
    fn modernbert_base_reads_with_its_hub_layout_and_counts_its_parameters() {
        let c = ModernBertConfig::from_json(BASE.as_bytes()).unwrap();
        let types = c.layer_types();
        assert_eq!(types.len(), 22);
        assert_eq!(types.iter().filter(|t| **t == LayerType::Global).count(), 8);
        assert_eq!((types[0], types[1], types[3]), (LayerType::Global, LayerType::Local, LayerType::Global));
        assert_eq!((c.rope_theta(LayerType::Global), c.rope_theta(LayerType::Local)), (160000.0, 10000.0));
        assert_eq!(c.half_window(), 64);
        // transformers 5.25: ModernBertForMaskedLM(<this config>).num_parameters() = 149,655,232.
        assert_eq!(c.parameter_count(), 149_655_232);
        assert_eq!(ModernBertConfig::preset("ModernBERT-base").unwrap().parameter_count(), 149_655_232);
        // ModernBertForMaskedLM(ModernBertConfig(hidden_size=1024, intermediate_size=2624,
        // num_hidden_layers=28, num_attention_heads=16)).num_parameters() = 395,881,664.
        assert_eq!(ModernBertConfig::preset("ModernBERT-large").unwrap().parameter_count(), 395_881_664);
        // Written in transformers 5's layout, and read back the same.
        let again = ModernBertConfig::from_json(c.to_json().as_bytes()).unwrap();
        assert_eq!(again, c);
        assert!(c.to_json().contains("sliding_attention"));
    }

    #[test]
    fn unimplemented_switches_are_refused_by_name() {
        let with = |patch: &str| {
            let mut v: serde_json::Value = serde_json::from_str(BASE).unwrap();
            let p: serde_json::Value = serde_json::from_str(patch).unwrap();
            for (k, x) in p.as_object().unwrap() {
                v[k] = x.clone();
            }
            ModernBertConfig::from_json(v.to_string().as_bytes()).unwrap_err().to_string()
        };
        assert!(with(r#"{"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}"#).contains("yarn"));
        assert!(
            with(r#"{"layer_types": ["full_attention", "chunked_attention"]}"#).contains("chunked_attention")
        );
        assert!(with(r#"{"hidden_activation": "swish"}"#).contains("swish"));
        assert!(with(r#"{"tie_word_embeddings": false}"#).contains("tie_word_embeddings"));
        assert!(with(r#"{"num_attention_heads": 7}"#).contains("num_attention_heads"));
        assert!(with(r#"{"layer_types": ["full_attention"]}"#).contains("layer_types"));
        assert!(with(r#"{"norm_eps": 0.0}"#).contains("norm_eps"));
        assert!(with(r#"{"num_hidden_layers": 1000000000000}"#).contains("num_hidden_layers"));
        assert!(with(r#"{"pad_token_id": 50368}"#).contains("pad_token_id"));
        assert!(with(r#"{"global_attn_every_n_layers": 0}"#).contains("global_attn_every_n_layers"));
    }
}
