//! The pretrain form's choices as types: architecture, size preset and tokenizer. They cross
//! the page–worker boundary in [`crate::protocol::TrainSettings`] under the same wire names the
//! form always used (`"gpt2"`, `"micro"`, `"bpe:1024"`, ...), and each knows its label, so the
//! form, the worker and the estimates agree on one list.

use serde::{Deserialize, Serialize};

/// What is trained: a causal decoder (GPT, Llama-style) or a masked encoder (BERT, ModernBERT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainArch {
    Gpt2,
    /// A Llama-style decoder (or a Llama-family checkpoint being fine-tuned).
    Llama,
    Bert,
    /// A ModernBERT-style encoder (or a ModernBERT checkpoint being fine-tuned).
    ModernBert,
}

impl TrainArch {
    pub const ALL: [TrainArch; 4] =
        [TrainArch::Gpt2, TrainArch::Llama, TrainArch::Bert, TrainArch::ModernBert];

    /// Next-token prediction (GPT-2, Llama) rather than masked tokens (BERT, ModernBERT).
    pub fn causal(self) -> bool {
        matches!(self, TrainArch::Gpt2 | TrainArch::Llama)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrainArch::Gpt2 => "gpt2",
            TrainArch::Llama => "llama",
            TrainArch::Bert => "bert",
            TrainArch::ModernBert => "modernbert",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TrainArch::Gpt2 => "GPT (causal LM)",
            TrainArch::Llama => "Llama-style (RoPE, RMSNorm, SwiGLU, GQA)",
            TrainArch::Bert => "BERT (masked LM)",
            TrainArch::ModernBert => "Modern encoder (ModernBERT: RoPE, GeGLU, local and global attention)",
        }
    }
}

/// The model sizes the form offers (`hearth_lm::train::size_preset` knows them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizePreset {
    Micro,
    Nano,
    Baby,
    Gpt2,
}

impl SizePreset {
    pub const ALL: [SizePreset; 4] =
        [SizePreset::Micro, SizePreset::Nano, SizePreset::Baby, SizePreset::Gpt2];

    /// The preset's name in `hearth_lm::train::size_preset`.
    pub fn as_str(self) -> &'static str {
        match self {
            SizePreset::Micro => "micro",
            SizePreset::Nano => "nano",
            SizePreset::Baby => "baby",
            SizePreset::Gpt2 => "gpt2",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SizePreset::Micro => "micro: 2 layers × 64",
            SizePreset::Nano => "nano: 4 layers × 128",
            SizePreset::Baby => "baby: 6 layers × 384",
            SizePreset::Gpt2 => "GPT-2 small: 12 layers × 768",
        }
    }
}

/// The run's tokenizer, as `hearth train --tokenizer` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TrainTokenizer {
    Chars,
    Bytes,
    /// A byte-level BPE of this many tokens trained on the corpus.
    Bpe(usize),
    Gpt2,
    BertBaseUncased,
}

impl TrainTokenizer {
    /// What the form offers.
    pub const OFFERED: [TrainTokenizer; 6] = [
        TrainTokenizer::Chars,
        TrainTokenizer::Bytes,
        TrainTokenizer::Bpe(1024),
        TrainTokenizer::Bpe(4096),
        TrainTokenizer::Gpt2,
        TrainTokenizer::BertBaseUncased,
    ];

    pub fn label(self) -> String {
        match self {
            TrainTokenizer::Chars => "characters".into(),
            TrainTokenizer::Bytes => "bytes".into(),
            TrainTokenizer::Bpe(n) => format!("BPE trained on the text ({})", thousands(n)),
            TrainTokenizer::Gpt2 => "GPT-2 (50,257)".into(),
            TrainTokenizer::BertBaseUncased => "BERT uncased (30,522)".into(),
        }
    }

    /// Tokens in the vocabulary it gives on a corpus of `distinct_chars` distinct characters.
    pub fn vocab_size(self, distinct_chars: usize) -> usize {
        match self {
            TrainTokenizer::Chars => distinct_chars + 1,
            TrainTokenizer::Bytes => 257,
            TrainTokenizer::Bpe(n) => n,
            TrainTokenizer::Gpt2 => 50257,
            TrainTokenizer::BertBaseUncased => 30522,
        }
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for TrainTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainTokenizer::Chars => f.write_str("chars"),
            TrainTokenizer::Bytes => f.write_str("bytes"),
            TrainTokenizer::Bpe(n) => write!(f, "bpe:{n}"),
            TrainTokenizer::Gpt2 => f.write_str("gpt2"),
            TrainTokenizer::BertBaseUncased => f.write_str("bert-base-uncased"),
        }
    }
}

impl std::str::FromStr for TrainTokenizer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "chars" => TrainTokenizer::Chars,
            "bytes" => TrainTokenizer::Bytes,
            "gpt2" => TrainTokenizer::Gpt2,
            "bert-base-uncased" => TrainTokenizer::BertBaseUncased,
            other => match other.strip_prefix("bpe:").and_then(|n| n.parse().ok()) {
                Some(n) => TrainTokenizer::Bpe(n),
                None => return Err(format!("unknown tokenizer `{other}`")),
            },
        })
    }
}

impl TryFrom<String> for TrainTokenizer {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<TrainTokenizer> for String {
    fn from(t: TrainTokenizer) -> String {
        t.to_string()
    }
}

impl std::str::FromStr for TrainArch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TrainArch::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown architecture `{s}`"))
    }
}

impl std::str::FromStr for SizePreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SizePreset::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| format!("unknown size `{s}`"))
    }
}

/// Where a run's weights come from: random (a size preset) or a pretrained model already in the
/// page, which is then fine-tuned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartFrom {
    #[default]
    Random,
    /// The model loaded in the Generate panel.
    Generate,
    /// The model loaded in the Fill mask panel.
    FillMask,
    /// The model trained in this panel (its current weights).
    Trained,
}

impl StartFrom {
    pub const ALL: [StartFrom; 4] =
        [StartFrom::Random, StartFrom::Generate, StartFrom::FillMask, StartFrom::Trained];

    pub fn as_str(self) -> &'static str {
        match self {
            StartFrom::Random => "random",
            StartFrom::Generate => "generate",
            StartFrom::FillMask => "fill-mask",
            StartFrom::Trained => "trained",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StartFrom::Random => "random weights",
            StartFrom::Generate => "the model loaded in Generate",
            StartFrom::FillMask => "the model loaded in Fill mask",
            StartFrom::Trained => "the model trained here",
        }
    }

    /// Whether the run fine-tunes a pretrained model.
    pub fn pretrained(self) -> bool {
        self != StartFrom::Random
    }
}

impl std::str::FromStr for StartFrom {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StartFrom::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| format!("unknown start `{s}`"))
    }
}

/// Which backend a run trains on. `Auto` keeps a hardware GPU, and on a software adapter (a CPU
/// emulating a GPU) times a step there and on the CPU backend the first time the page trains,
/// then uses the faster for the page's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainDevice {
    #[default]
    Auto,
    Webgpu,
    Cpu,
}

impl TrainDevice {
    pub const ALL: [TrainDevice; 3] = [TrainDevice::Auto, TrainDevice::Webgpu, TrainDevice::Cpu];

    pub fn as_str(self) -> &'static str {
        match self {
            TrainDevice::Auto => "auto",
            TrainDevice::Webgpu => "webgpu",
            TrainDevice::Cpu => "cpu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TrainDevice::Auto => "automatic (on a software adapter, the faster of it and the CPU)",
            TrainDevice::Webgpu => "WebGPU",
            TrainDevice::Cpu => "the CPU backend",
        }
    }
}

impl std::str::FromStr for TrainDevice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TrainDevice::ALL.into_iter().find(|d| d.as_str() == s).ok_or_else(|| format!("unknown device `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_keep_their_wire_names() {
        assert_eq!(serde_json::to_string(&TrainArch::Bert).unwrap(), r#""bert""#);
        assert_eq!(serde_json::to_string(&SizePreset::Micro).unwrap(), r#""micro""#);
        assert_eq!(serde_json::to_string(&TrainTokenizer::Bpe(1024)).unwrap(), r#""bpe:1024""#);
        assert_eq!(
            serde_json::to_string(&TrainTokenizer::BertBaseUncased).unwrap(),
            r#""bert-base-uncased""#
        );
        for t in TrainTokenizer::OFFERED {
            let back: TrainTokenizer = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(back, t);
        }
        for a in TrainArch::ALL {
            assert_eq!(a.as_str().parse::<TrainArch>().unwrap(), a);
        }
        for p in SizePreset::ALL {
            assert_eq!(p.as_str().parse::<SizePreset>().unwrap(), p);
        }
        assert!(serde_json::from_str::<TrainTokenizer>(r#""llama""#).is_err());
        for p in StartFrom::ALL {
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.as_str()));
            assert_eq!(p.as_str().parse::<StartFrom>().unwrap(), p);
        }
        for d in TrainDevice::ALL {
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{}\"", d.as_str()));
            assert_eq!(d.as_str().parse::<TrainDevice>().unwrap(), d);
        }
        assert_eq!(thousands(1024), "1,024");
    }
}
