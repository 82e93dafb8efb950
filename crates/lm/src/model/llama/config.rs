//! The config of the Llama-family decoders (`LlamaConfig`, `Qwen2Config`, `Qwen3Config` of
//! `transformers`) as one plain value with their field names: they share the architecture and
//! differ in a few switches, which [`LlamaConfig`]'s methods derive from `model_type`.
//!
//! Read: the hub's layout (`rope_theta`, `rope_scaling` at the top level) and transformers 5's
//! (`rope_parameters`). Written: transformers 5's. A field that changes the math and is not
//! implemented (sliding-window attention, another rope type, a partial rotary factor) is refused
//! by name, never ignored.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::rope::RopeScaling;
use crate::error::{excerpt, Error, Result};

/// Which architecture `model_type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    /// `LlamaForCausalLM`: Llama 2/3, SmolLM2, TinyLlama…
    #[serde(rename = "llama")]
    Llama,
    /// `Qwen2ForCausalLM`: Qwen2, Qwen2.5 (biases on q, k and v).
    #[serde(rename = "qwen2")]
    Qwen2,
    /// `Qwen3ForCausalLM`: QK-norm, a free `head_dim`.
    #[serde(rename = "qwen3")]
    Qwen3,
}

impl Family {
    fn architecture(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Qwen3 => "Qwen3ForCausalLM",
        }
    }
}

/// The MLP's gate activation: every model of the family uses SiLU (SwiGLU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HiddenAct {
    #[serde(rename = "silu")]
    Silu,
}

/// One id or several (Llama 3's `eos_token_id` lists every end-of-turn token).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenIds(pub Vec<u32>);

impl Serialize for TokenIds {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TokenIds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(u32),
            Many(Vec<u32>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(id) => TokenIds(vec![id]),
            OneOrMany::Many(ids) => TokenIds(ids),
        })
    }
}

/// `rope_parameters` (transformers 5) or `rope_scaling` (earlier): the rope type and its values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RopeParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_type: Option<String>,
    /// The name before `rope_type`, still in many hub configs.
    #[serde(default, rename = "type", skip_serializing)]
    pub legacy_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_rotary_factor: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub model_type: Family,
    #[serde(default)]
    pub architectures: Vec<String>,
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// The MLP's width (gate and up projections).
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); `None` means one per query head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Width of one head; `None` means `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default = "silu")]
    pub hidden_act: HiddenAct,
    /// The context the model was trained for.
    pub max_position_embeddings: usize,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// Hub layout: the rope base at the top level.
    #[serde(default, skip_serializing)]
    pub rope_theta: Option<f64>,
    /// Hub layout: the rope scaling at the top level.
    #[serde(default, skip_serializing)]
    pub rope_scaling: Option<RopeParameters>,
    /// transformers 5 layout (what [`LlamaConfig::to_json`] writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    /// Biases on the attention projections (q, k, v and o); Qwen2 has q/k/v biases whatever this says.
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP's projections (Llama only).
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub attention_dropout: f64,
    /// Whether `lm_head` is the token embedding (SmolLM2, Qwen2.5-0.5B, Llama 3.2 1B) or its own
    /// matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Written even when absent (`null`): transformers would otherwise fill in `LlamaConfig`'s
    /// defaults, 1 and 2, which are other tokens of a run's own vocabulary.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    /// Qwen's sliding-window switch: refused when on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_sliding_window: bool,
    /// Per layer `full_attention` or `sliding_attention` (Qwen3, transformers 5): only the first
    /// is implemented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_types: Option<Vec<String>>,
    /// Some configs keep it at the top level: anything but 1 is refused.
    #[serde(default, skip_serializing)]
    pub partial_rotary_factor: Option<f64>,
}

fn silu() -> HiddenAct {
    HiddenAct::Silu
}
fn default_rms_eps() -> f64 {
    1e-6
}
fn default_init_range() -> f64 {
    0.02
}
fn is_false(b: &bool) -> bool {
    !*b
}

impl LlamaConfig {
    /// A Llama shape with the family's defaults for everything else (a context of 2,048 tokens).
    pub fn new(
        family: Family,
        vocab_size: usize,
        hidden_size: usize,
        intermediate_size: usize,
        layers: usize,
        heads: usize,
        kv_heads: usize,
    ) -> Self {
        Self {
            model_type: family,
            architectures: vec![family.architecture().into()],
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: Some(kv_heads),
            head_dim: None,
            hidden_act: HiddenAct::Silu,
            max_position_embeddings: 2048,
            rms_norm_eps: default_rms_eps(),
            rope_theta: None,
            rope_scaling: None,
            rope_parameters: Some(RopeParameters {
                rope_type: Some("default".into()),
                rope_theta: Some(10000.0),
                ..RopeParameters::default()
            }),
            attention_bias: false,
            mlp_bias: false,
            attention_dropout: 0.0,
            tie_word_embeddings: true,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
            initializer_range: default_init_range(),
            use_sliding_window: false,
            layer_types: None,
            partial_rotary_factor: None,
        }
    }

    /// The shapes of the small models people run, as their hub configs give them (for the fit
    /// tables; weights are never implied): `SmolLM2-135M`, `SmolLM2-360M`, `Qwen2.5-0.5B`,
    /// `Qwen3-0.6B`, `Llama-3.2-1B`.
    pub fn preset(name: &str) -> Result<Self> {
        let rope = |theta: f64| RopeParameters {
            rope_type: Some("default".into()),
            rope_theta: Some(theta),
            ..RopeParameters::default()
        };
        let (family, vocab, hidden, inter, layers, heads, kv, head_dim, context, rope_parameters, eps) =
            match name {
                "SmolLM2-135M" => {
                    (Family::Llama, 49152, 576, 1536, 30, 9, 3, None, 8192, rope(100_000.0), 1e-5)
                }
                "SmolLM2-360M" => {
                    (Family::Llama, 49152, 960, 2560, 32, 15, 5, None, 8192, rope(100_000.0), 1e-5)
                }
                "Qwen2.5-0.5B" => {
                    (Family::Qwen2, 151_936, 896, 4864, 24, 14, 2, None, 32768, rope(1e6), 1e-6)
                }
                "Qwen3-0.6B" => {
                    (Family::Qwen3, 151_936, 1024, 3072, 28, 16, 8, Some(128), 40960, rope(1e6), 1e-6)
                }
                "Llama-3.2-1B" => {
                    let llama3 = RopeParameters {
                        rope_type: Some("llama3".into()),
                        rope_theta: Some(500_000.0),
                        factor: Some(32.0),
                        low_freq_factor: Some(1.0),
                        high_freq_factor: Some(4.0),
                        original_max_position_embeddings: Some(8192.0),
                        ..RopeParameters::default()
                    };
                    (Family::Llama, 128_256, 2048, 8192, 16, 32, 8, Some(64), 131_072, llama3, 1e-5)
                }
                other => {
                    return Err(Error::Config(format!("no Llama-family preset named {}", excerpt(other))))
                }
            };
        let mut c = Self::new(family, vocab, hidden, inter, layers, heads, kv);
        c.head_dim = head_dim;
        c.max_position_embeddings = context;
        c.rope_parameters = Some(rope_parameters);
        c.rms_norm_eps = eps;
        Ok(c)
    }

    /// Parses `config.json` (either rope layout) and checks that everything it asks for is
    /// implemented.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let mut config: Self = serde_json::from_slice(bytes).map_err(|e| Error::Config(e.to_string()))?;
        // One place for the rope values whichever layout they came in.
        if config.rope_parameters.is_none() {
            let mut rope = config.rope_scaling.take().unwrap_or_default();
            rope.rope_theta = rope.rope_theta.or(config.rope_theta).or(Some(10000.0));
            config.rope_parameters = Some(rope);
        }
        if let Some(rope) = &mut config.rope_parameters {
            if rope.rope_type.is_none() {
                rope.rope_type = rope.legacy_type.take().or(Some("default".into()));
            }
            if rope.rope_theta.is_none() {
                rope.rope_theta = config.rope_theta.or(Some(10000.0));
            }
        }
        config.rope_theta = None;
        config.rope_scaling = None;
        if config.architectures.is_empty() {
            config.architectures = vec![config.model_type.architecture().into()];
        }
        config.validate()?;
        Ok(config)
    }

    /// `config.json` as transformers 5 writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config always serialises")
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Biases on q, k and v: Qwen2 always, the others as `attention_bias` says.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias || self.model_type == Family::Qwen2
    }

    /// A bias on the output projection (`attention_bias`; Qwen2 has none).
    pub fn o_bias(&self) -> bool {
        self.attention_bias && self.model_type != Family::Qwen2
    }

    /// Biases in the MLP (Llama's `mlp_bias`; the Qwen MLPs have none).
    pub fn mlp_bias(&self) -> bool {
        self.mlp_bias && self.model_type == Family::Llama
    }

    /// Qwen3's RMSNorm of each query and key head before the rotation.
    pub fn qk_norm(&self) -> bool {
        self.model_type == Family::Qwen3
    }

    /// The ids that end generation (`eos_token_id`, one or several).
    pub fn eos_ids(&self) -> Vec<u32> {
        self.eos_token_id.clone().unwrap_or_default().0
    }

    /// The rope base and schedule.
    pub fn rope(&self) -> Result<(f64, RopeScaling)> {
        let rope = self.rope_parameters.clone().unwrap_or_default();
        let theta = rope.rope_theta.unwrap_or(10000.0);
        let scaling = match rope.rope_type.as_deref().unwrap_or("default") {
            "default" => RopeScaling::Default,
            "llama3" => {
                let need = |name: &str, v: Option<f64>| {
                    v.filter(|v| v.is_finite() && *v > 0.0)
                        .ok_or_else(|| Error::Config(format!("rope type llama3 needs a positive `{name}`")))
                };
                let scaling = RopeScaling::Llama3 {
                    factor: need("factor", rope.factor)?,
                    low_freq_factor: need("low_freq_factor", rope.low_freq_factor)?,
                    high_freq_factor: need("high_freq_factor", rope.high_freq_factor)?,
                    original_max_position_embeddings: need(
                        "original_max_position_embeddings",
                        rope.original_max_position_embeddings,
                    )?,
                };
                if let RopeScaling::Llama3 { low_freq_factor, high_freq_factor, .. } = scaling {
                    if high_freq_factor <= low_freq_factor {
                        return Err(Error::Config(
                            "rope type llama3 needs high_freq_factor above low_freq_factor".into(),
                        ));
                    }
                }
                scaling
            }
            other => {
                let other: String = other.chars().take(40).collect();
                return Err(Error::Config(format!(
                    "rope type `{other}` is not implemented (default and llama3 are)"
                )));
            }
        };
        if !(theta.is_finite() && theta > 1.0) {
            return Err(Error::Config(format!("rope_theta must be a number above 1, got {theta}")));
        }
        Ok((theta, scaling))
    }

    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.kv_heads()),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Config(format!("{name} must be positive")));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::Config(format!(
                "hidden_size {} is not divisible by num_attention_heads {} (and no head_dim is given)",
                self.hidden_size, self.num_attention_heads
            )));
        }
        let hd = self.head_dim();
        if hd == 0 || !hd.is_multiple_of(2) {
            return Err(Error::Config(format!("head_dim must be a positive even number, got {hd}")));
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return Err(Error::Config(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            )));
        }
        if self.use_sliding_window {
            return Err(Error::Config(
                "use_sliding_window: sliding-window attention is not implemented (set it to false to run the \
                 model with full attention, which differs past the window)"
                    .into(),
            ));
        }
        if let Some(kind) = self.layer_types.iter().flatten().find(|k| k.as_str() != "full_attention") {
            let kind: String = kind.chars().take(40).collect();
            return Err(Error::Config(format!(
                "layer_types: `{kind}` layers are not implemented (full_attention is)"
            )));
        }
        let partial = self
            .partial_rotary_factor
            .or(self.rope_parameters.as_ref().and_then(|r| r.partial_rotary_factor));
        if partial.is_some_and(|p| p != 1.0) {
            return Err(Error::Config("partial_rotary_factor other than 1 is not implemented".into()));
        }
        if !(0.0..1.0).contains(&self.attention_dropout) {
            return Err(Error::Config(format!(
                "attention_dropout must be in [0, 1), got {}",
                self.attention_dropout
            )));
        }
        if !(self.rms_norm_eps > 0.0 && self.rms_norm_eps.is_finite()) {
            return Err(Error::Config(format!(
                "rms_norm_eps must be a positive number, got {}",
                self.rms_norm_eps
            )));
        }
        self.rope().map(|_| ())
    }

    /// Elements of each weight matrix, in the order the model holds them.
    fn matrices(&self) -> Vec<u128> {
        let (d, f, v) = (self.hidden_size as u128, self.intermediate_size as u128, self.vocab_size as u128);
        let (q, kv) = (
            (self.num_attention_heads * self.head_dim()) as u128,
            (self.kv_heads() * self.head_dim()) as u128,
        );
        let mut m = vec![v.saturating_mul(d)];
        for _ in 0..self.num_hidden_layers {
            m.extend([d * q, d * kv, d * kv, q * d, d * f, d * f, f * d].map(|x: u128| x));
        }
        if !self.tie_word_embeddings {
            m.push(v.saturating_mul(d));
        }
        m
    }

    /// Rank-one parameters: the norms and the biases.
    pub fn vector_count(&self) -> u128 {
        let (d, f, hd) = (self.hidden_size as u128, self.intermediate_size as u128, self.head_dim() as u128);
        let (q, kv) = ((self.num_attention_heads as u128) * hd, (self.kv_heads() as u128) * hd);
        let mut layer = 2 * d;
        if self.qkv_bias() {
            layer += q + 2 * kv;
        }
        if self.o_bias() {
            layer += d;
        }
        if self.mlp_bias() {
            layer += 2 * f + d;
        }
        if self.qk_norm() {
            layer += 2 * hd;
        }
        layer.saturating_mul(self.num_hidden_layers as u128).saturating_add(d)
    }

    /// Parameters, the tied head counted once; saturating for absurd configs.
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

    /// Elements of the largest single tensor (the embedding for any real vocabulary).
    pub fn largest_tensor(&self) -> usize {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads.saturating_mul(self.head_dim());
        [v.saturating_mul(d), d.saturating_mul(f), d.saturating_mul(q)].into_iter().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2_135M: &str = r#"{"architectures": ["LlamaForCausalLM"], "attention_bias": false,
        "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu",
        "hidden_size": 576, "initializer_range": 0.041666666666666664, "intermediate_size": 1536,
        "is_llama_config": true, "max_position_embeddings": 8192, "mlp_bias": false,
        "model_type": "llama", "num_attention_heads": 9, "num_hidden_layers": 30,
        "num_key_value_heads": 3, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": false,
        "rope_scaling": null, "rope_theta": 100000, "tie_word_embeddings": true,
        "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": true, "vocab_size": 49152}"#;

    #[test]
    fn presets_have_the_published_parameter_counts() {
        // transformers 5.25: AutoModelForCausalLM.from_config(<the hub config>) on the meta
        // device, .num_parameters() (DEVELOPERS.md has the script's configs).
        for (name, params) in [
            ("SmolLM2-135M", 134_515_008),
            ("SmolLM2-360M", 361_821_120),
            ("Qwen2.5-0.5B", 494_032_768),
            ("Qwen3-0.6B", 596_049_920),
            ("Llama-3.2-1B", 1_235_814_400),
        ] {
            let c = LlamaConfig::preset(name).unwrap();
            c.validate().unwrap();
            assert_eq!(c.parameter_count(), params, "{name}");
        }
        assert!(LlamaConfig::preset("llama-70b").is_err());
    }

    #[test]
    fn smollm2_135m_reads_with_its_hub_layout_and_counts_its_parameters() {
        let c = LlamaConfig::from_json(SMOLLM2_135M.as_bytes()).unwrap();
        assert_eq!((c.kv_heads(), c.head_dim()), (3, 64));
        assert_eq!(c.rope().unwrap(), (100000.0, RopeScaling::Default));
        // HF: LlamaForCausalLM(config).num_parameters() = 134,515,008.
        assert_eq!(c.parameter_count(), 134_515_008);
        // Written in transformers 5's layout, and read back the same.
        let again = LlamaConfig::from_json(c.to_json().as_bytes()).unwrap();
        assert_eq!(again, c);
        assert!(c.to_json().contains("rope_parameters"));
    }

    #[test]
    fn unimplemented_switches_are_refused_by_name() {
        let with = |patch: &str| {
            let mut v: serde_json::Value = serde_json::from_str(SMOLLM2_135M).unwrap();
            let p: serde_json::Value = serde_json::from_str(patch).unwrap();
            for (k, x) in p.as_object().unwrap() {
                v[k] = x.clone();
            }
            LlamaConfig::from_json(v.to_string().as_bytes()).unwrap_err().to_string()
        };
        assert!(with(r#"{"use_sliding_window": true}"#).contains("use_sliding_window"));
        assert!(with(r#"{"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}"#).contains("yarn"));
        assert!(with(r#"{"rope_scaling": {"type": "dynamic", "factor": 2.0}}"#).contains("dynamic"));
        assert!(with(r#"{"hidden_act": "gelu"}"#).contains("gelu"));
        assert!(
            with(r#"{"layer_types": ["full_attention", "sliding_attention"]}"#).contains("sliding_attention")
        );
        assert!(with(r#"{"num_key_value_heads": 4}"#).contains("num_key_value_heads"));
        assert!(with(r#"{"partial_rotary_factor": 0.5}"#).contains("partial_rotary_factor"));
    }
}
