//! What defines a run: the objective, the model's shape and the training recipe, saved in every
//! checkpoint and checked before anything is allocated.

use serde::{Deserialize, Serialize};

use super::optim::{AdamWConfig, Decay, LrSchedule};
use super::tokenizers::TokenizerChoice;
use super::windows::{DataConfig, Packing};
use crate::error::{invalid, Error, Result};
use crate::io::tokenizer::Tokenizer;
use crate::model::config::{BertConfig, Gpt2Config, ModelConfig};
use crate::model::llama::config::{Family, LlamaConfig, RopeParameters, TokenIds};
use crate::model::memory::{check_training_buffer, check_training_fits, Budget, Footprint};
use crate::model::modernbert::config::ModernBertConfig;

/// The architectures a run pretrains (and what a fine-tuned checkpoint trains as).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Causal language modelling with GPT-2.
    Gpt2,
    /// Masked language modelling with BERT.
    Bert,
    /// Causal language modelling with a Llama-style decoder: RMSNorm, rotary positions, SwiGLU,
    /// grouped-query attention (and what a Llama-family checkpoint fine-tunes as).
    Llama,
    /// Masked language modelling with a ModernBERT-style encoder: rotary positions, GeGLU, no
    /// biases, global attention every third layer and a 128-token window between.
    ModernBert,
}

impl Arch {
    /// Whether the objective is next-token prediction (else masked LM).
    pub fn causal(self) -> bool {
        matches!(self, Arch::Gpt2 | Arch::Llama)
    }

    /// The name `--arch` takes.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Gpt2 => "gpt2",
            Arch::Bert => "bert",
            Arch::Llama => "llama",
            Arch::ModernBert => "modernbert",
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gpt2" | "gpt" => Ok(Arch::Gpt2),
            "bert" => Ok(Arch::Bert),
            "llama" => Ok(Arch::Llama),
            "modernbert" => Ok(Arch::ModernBert),
            other => Err(invalid!(
                "unknown architecture `{}` (gpt2, llama, bert or modernbert)",
                crate::error::excerpt(other)
            )),
        }
    }
}

/// Model sizes by name: `(n_layer, n_head, n_embd)`.
pub fn size_preset(name: &str) -> Result<(usize, usize, usize)> {
    Ok(match name {
        // Small enough to train in seconds, even on a software GPU.
        "micro" => (2, 2, 64),
        // nanoGPT's CPU shakespeare_char configuration.
        "nano" => (4, 4, 128),
        // nanoGPT's "baby GPT" (train_shakespeare_char.py).
        "baby" => (6, 6, 384),
        "gpt2" | "bert-base-uncased" => (12, 12, 768),
        "gpt2-medium" | "bert-large-uncased" => (24, 16, 1024),
        "gpt2-large" => (36, 20, 1280),
        "gpt2-xl" => (48, 25, 1600),
        other => {
            return Err(invalid!(
                "unknown size preset `{other}` (micro, nano, baby, gpt2, gpt2-medium, gpt2-large, gpt2-xl, bert-base-uncased, bert-large-uncased)"
            ))
        }
    })
}

/// The SwiGLU width of a Llama-style block `n_embd` wide: 8/3 of it, rounded to a multiple of 8,
/// so that its three matrices hold what GPT-2's two 4×-wide ones hold.
pub fn swiglu_width(n_embd: usize) -> usize {
    ((8 * n_embd / 3 + 4) / 8 * 8).max(8)
}

/// The pretrained model a fine-tuning run starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitFrom {
    /// Where it came from, as the user named it (a directory, a URL, "the model trained here").
    pub source: String,
    /// Its `config.json`; the run trains this model with [`TrainConfig::dropout`].
    pub model: ModelConfig,
    /// Its files that the run passes on unchanged (saved with the run's state, so a resumed run
    /// keeps them too).
    #[serde(default, skip_serializing_if = "SourceFiles::is_empty")]
    pub files: SourceFiles,
}

/// What a fine-tuned instruct model needs to chat as its source did, kept as text: the source's
/// `tokenizer_config.json` (chat template, special tokens), `chat_template.jinja` and
/// `generation_config.json` (eos ids, sampling). A checkpoint writes them in place of the
/// generic ones, so `hearth chat` and transformers' `apply_chat_template` work on the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceFiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<String>,
}

impl SourceFiles {
    /// Each file's bytes as read (`None` where the source had none). Refused if one is not
    /// UTF-8 text (JSON and Jinja are).
    pub fn from_bytes(
        tokenizer_config: Option<&[u8]>,
        chat_template: Option<&[u8]>,
        generation_config: Option<&[u8]>,
    ) -> Result<Self> {
        let text = |name: &str, bytes: Option<&[u8]>| -> Result<Option<String>> {
            bytes
                .map(|b| String::from_utf8(b.to_vec()).map_err(|_| invalid!("{name} is not UTF-8 text")))
                .transpose()
        };
        Ok(Self {
            tokenizer_config: text("tokenizer_config.json", tokenizer_config)?,
            chat_template: text("chat_template.jinja", chat_template)?,
            generation_config: text("generation_config.json", generation_config)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.tokenizer_config.is_none() && self.chat_template.is_none() && self.generation_config.is_none()
    }

    /// The chat template these files hold, if any (`None` for a base model).
    pub fn chat_template(&self) -> Result<Option<crate::chat::ChatTemplate>> {
        crate::chat::ChatTemplate::from_files(
            self.tokenizer_config.as_deref().map(str::as_bytes),
            self.chat_template.as_deref().map(str::as_bytes),
        )
    }
}

/// Everything that defines a run; saved in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub arch: Arch,
    pub tokenizer: TokenizerChoice,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub data: DataConfig,
    pub batch_size: usize,
    /// Optimizer steps in the whole run.
    pub steps: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup: usize,
    pub adamw: AdamWConfig,
    /// Global gradient-norm bound; 0 disables clipping.
    pub grad_clip: f64,
    pub dropout: f64,
    /// Evaluate every this many steps (and at the last step).
    pub eval_every: usize,
    /// Batches per split per evaluation.
    pub eval_batches: usize,
    pub seed: u64,
    /// GPT: the text samples continue; BERT: a sentence whose tokens are masked and predicted.
    /// Empty means the corpus's first line.
    pub sample_prompt: String,
    /// New tokens per GPT sample.
    pub sample_tokens: usize,
    /// Start from this pretrained model instead of random weights (the shape fields above then
    /// copy its shape; they are not settings).
    #[serde(default)]
    pub init_from: Option<InitFrom>,
    /// How the learning rate falls after warmup.
    #[serde(default)]
    pub decay: Decay,
    /// The run's length in passes over the train rows, when it was given that way: `steps` is
    /// then derived from it once the data is known ([`TrainConfig::steps_for_epochs`]).
    #[serde(default)]
    pub epochs: Option<f64>,
    /// The sentence the training probe watches at every evaluation ([`crate::train::probe`]);
    /// empty means the start of the validation split.
    #[serde(default)]
    pub probe: String,
    /// The Llama-style architecture's own knobs (`--arch llama`).
    #[serde(default)]
    pub llama: LlamaKnobs,
}

/// What a Llama-style decoder trained from scratch chooses beyond GPT-2's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaKnobs {
    /// Key/value heads (grouped-query attention); `None`: one per query head.
    pub n_kv_head: Option<usize>,
    /// The rotary base (Llama 2: 10,000; Llama 3: 500,000).
    pub rope_theta: f64,
    /// `lm_head` shares the token embedding (SmolLM2, Llama 3.2 1B) or has its own matrix.
    pub tie_embeddings: bool,
}

impl Default for LlamaKnobs {
    fn default() -> Self {
        Self { n_kv_head: None, rope_theta: 10_000.0, tie_embeddings: true }
    }
}

impl TrainConfig {
    /// nanoGPT's CPU recipe for shakespeare_char, as a starting point.
    pub fn nano(arch: Arch) -> Self {
        Self {
            arch,
            tokenizer: TokenizerChoice::Chars,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            data: DataConfig { context: 64, stride: 64, val_fraction: 0.1, packing: Packing::Concat },
            batch_size: 12,
            steps: 2000,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup: 100,
            adamw: AdamWConfig { beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1, decay_all: false },
            grad_clip: 1.0,
            dropout: 0.0,
            eval_every: 250,
            eval_batches: 20,
            seed: 1337,
            sample_prompt: String::new(),
            probe: String::new(),
            sample_tokens: 100,
            init_from: None,
            llama: LlamaKnobs::default(),
            decay: Decay::Cosine,
            epochs: None,
        }
    }

    /// Fine-tuning `model` with Hugging Face `TrainingArguments`' defaults: learning rate 5e-5
    /// decaying linearly to 0, no warmup, AdamW β = (0.9, 0.999), ε = 1e-8, no weight decay,
    /// gradient norm clipped at 1.0, the model's own dropout, batch 8. The context is 128
    /// tokens (the tutorials' `context_length`) or the model's maximum if smaller.
    pub fn fine_tune(model: ModelConfig, source: impl Into<String>) -> Self {
        let arch = match model {
            ModelConfig::Gpt2(_) => Arch::Gpt2,
            ModelConfig::Llama(_) => Arch::Llama,
            ModelConfig::Bert(_) => Arch::Bert,
            ModelConfig::ModernBert(_) => Arch::ModernBert,
        };
        let (n_layer, n_head, n_embd) = model.dims();
        let context = model.max_context().min(128);
        Self {
            tokenizer: TokenizerChoice::Pretrained,
            n_layer,
            n_head,
            n_embd,
            data: DataConfig { context, stride: context, val_fraction: 0.1, packing: Packing::Concat },
            batch_size: 8,
            steps: 500,
            lr: 5e-5,
            min_lr: 0.0,
            warmup: 0,
            adamw: AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decay_all: false },
            grad_clip: 1.0,
            dropout: model.dropout(),
            eval_every: 50,
            decay: Decay::Linear,
            init_from: Some(InitFrom { source: source.into(), model, files: SourceFiles::default() }),
            ..Self::nano(arch)
        }
    }

    /// Steps that make `epochs` passes over `train_rows` rows in batches of `batch_size`.
    pub fn steps_for_epochs(epochs: f64, train_rows: usize, batch_size: usize) -> Result<usize> {
        if !(epochs.is_finite() && epochs > 0.0 && epochs <= 1e6) {
            return Err(invalid!("--epochs must be a positive number (at most 1,000,000), got {epochs}"));
        }
        let steps = (epochs * train_rows as f64 / batch_size.max(1) as f64).ceil();
        Ok((steps as usize).max(1))
    }

    /// Whether the objective is causal (GPT-2, Llama) rather than masked (BERT).
    pub fn causal(&self) -> bool {
        self.arch.causal()
    }

    /// Tokens one step reads: batch × the tokens a row feeds the model.
    pub fn tokens_per_step(&self) -> Option<u64> {
        (self.batch_size as u64).checked_mul(self.data.inputs_len(self.causal()) as u64)
    }

    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("n-layer", self.n_layer),
            ("n-head", self.n_head),
            ("n-embd", self.n_embd),
            ("batch-size", self.batch_size),
            ("steps", self.steps),
            ("eval-every", self.eval_every),
            ("eval-batches", self.eval_batches),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(invalid!("--{name} must be at least 1"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(invalid!("n-embd {} must be divisible by n-head {}", self.n_embd, self.n_head));
        }
        if self.arch == Arch::Llama && self.init_from.is_none() {
            let kv = self.llama.n_kv_head.unwrap_or(self.n_head);
            if kv == 0 || !self.n_head.is_multiple_of(kv) {
                return Err(invalid!(
                    "--n-kv-head {kv} must divide --n-head {} (grouped-query attention)",
                    self.n_head
                ));
            }
            if !(self.n_embd / self.n_head).is_multiple_of(2) {
                return Err(invalid!(
                    "a head of n-embd / n-head = {} is odd: rotary positions rotate pairs",
                    self.n_embd / self.n_head
                ));
            }
            let theta = self.llama.rope_theta;
            if !theta.is_finite() || theta <= 1.0 || theta > 1e9 {
                return Err(invalid!("--rope-theta must be a number above 1 (10000, 500000), got {theta}"));
            }
        }
        let finite_pos = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid!("--{name} must be a finite number ≥ 0, got {v}"))
            }
        };
        finite_pos("lr", self.lr)?;
        finite_pos("min-lr", self.min_lr)?;
        finite_pos("weight-decay", self.adamw.weight_decay)?;
        finite_pos("grad-clip", self.grad_clip)?;
        if self.lr == 0.0 || self.lr > 10.0 {
            return Err(invalid!("--lr must be in (0, 10], got {}", self.lr));
        }
        if self.min_lr > self.lr {
            return Err(invalid!("--min-lr {} exceeds --lr {}", self.min_lr, self.lr));
        }
        for (name, b) in [("beta1", self.adamw.beta1), ("beta2", self.adamw.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(invalid!("--{name} must be in [0, 1), got {b}"));
            }
        }
        if !(self.adamw.eps > 0.0 && self.adamw.eps.is_finite()) {
            return Err(invalid!("--eps must be positive"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(invalid!("--dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.data.context < 2 {
            return Err(invalid!("--context must be at least 2"));
        }
        if let Some(init) = &self.init_from {
            let max = init.model.max_context();
            if self.data.context > max {
                return Err(invalid!(
                    "--context {} is longer than the model's {max} positions",
                    self.data.context
                ));
            }
            let arch_matches = matches!(
                (&init.model, self.arch),
                (ModelConfig::Gpt2(_), Arch::Gpt2)
                    | (ModelConfig::Bert(_), Arch::Bert)
                    | (ModelConfig::Llama(_), Arch::Llama)
                    | (ModelConfig::ModernBert(_), Arch::ModernBert)
            );
            if !arch_matches || self.tokenizer != TokenizerChoice::Pretrained {
                return Err(invalid!(
                    "a fine-tuning run takes its architecture and tokenizer from the model"
                ));
            }
        }
        Ok(())
    }

    pub fn schedule(&self) -> LrSchedule {
        LrSchedule {
            lr: self.lr,
            min_lr: self.min_lr,
            warmup: self.warmup,
            decay_steps: self.steps,
            decay: self.decay,
        }
    }

    /// The model config of this run for `tokenizer`'s vocabulary.
    pub fn model_config(&self, tokenizer: &Tokenizer) -> ModelConfig {
        if let Some(init) = &self.init_from {
            return init.model.with_dropout(self.dropout);
        }
        match self.arch {
            Arch::Gpt2 => ModelConfig::Gpt2(self.gpt2_config(tokenizer)),
            Arch::Bert => ModelConfig::Bert(self.bert_config(tokenizer)),
            Arch::Llama => ModelConfig::Llama(Box::new(self.llama_config(tokenizer))),
            Arch::ModernBert => ModelConfig::ModernBert(Box::new(self.modernbert_config(tokenizer))),
        }
    }

    /// Refuses a run whose model, gradients, AdamW state and activations would not fit in the
    /// budget's bytes, or whose largest buffer is over its per-buffer limit, before anything is
    /// allocated, saying what batch or context would.
    pub fn check_memory(&self, tokenizer: &Tokenizer, budget: impl Into<Budget>) -> Result<Footprint> {
        let budget = budget.into();
        let context = self.data.inputs_len(self.causal());
        let need =
            check_training_fits(&self.model_config(tokenizer), self.batch_size, context, budget.bytes)?;
        if let Some(max_buffer) = budget.max_buffer {
            check_training_buffer(
                &self.model_config(tokenizer),
                self.batch_size,
                self.data.context,
                max_buffer,
            )?;
        }
        Ok(need)
    }

    /// Bytes of the largest buffer a training step allocates (see
    /// [`ModelConfig::largest_training_buffer`]), for a GPU's per-buffer limit.
    pub fn largest_buffer(&self, tokenizer: &Tokenizer) -> u128 {
        self.model_config(tokenizer).largest_training_buffer(self.batch_size, self.data.context)
    }

    /// The GPT-2 config of this run for a vocabulary of `vocab` tokens.
    pub fn gpt2_config(&self, tokenizer: &Tokenizer) -> Gpt2Config {
        let mut c = Gpt2Config::new(
            tokenizer.vocab_size(),
            self.data.context,
            self.n_embd,
            self.n_layer,
            self.n_head,
        );
        (c.embd_pdrop, c.attn_pdrop, c.resid_pdrop) = (self.dropout, self.dropout, self.dropout);
        let eot = tokenizer.token_to_id("<|endoftext|>");
        (c.bos_token_id, c.eos_token_id) = (eot, eot);
        c
    }

    /// The Llama-style config of this run: `n_kv_head` key/value heads, SwiGLU at 8/3 of the
    /// width (rounded to a multiple of 8), so that a block has GPT-2's parameter count at the
    /// same width; RMSNorm, rotary positions at `rope_theta`, embeddings tied as `tie_embeddings`
    /// says (as SmolLM2's).
    pub fn llama_config(&self, tokenizer: &Tokenizer) -> LlamaConfig {
        let intermediate = swiglu_width(self.n_embd);
        let kv_heads = self.llama.n_kv_head.unwrap_or(self.n_head);
        let mut c = LlamaConfig::new(
            Family::Llama,
            tokenizer.vocab_size(),
            self.n_embd,
            intermediate,
            self.n_layer,
            self.n_head,
            kv_heads,
        );
        c.max_position_embeddings = self.data.context;
        c.rope_parameters = Some(RopeParameters {
            rope_type: Some("default".into()),
            rope_theta: Some(self.llama.rope_theta),
            ..RopeParameters::default()
        });
        c.tie_word_embeddings = self.llama.tie_embeddings;
        c.attention_dropout = self.dropout;
        let eot = tokenizer.token_to_id("<|endoftext|>");
        c.bos_token_id = eot;
        c.eos_token_id = eot.map(|id| TokenIds(vec![id]));
        c
    }

    /// The BERT config of this run (MLP 4× wide, as BERT's).
    pub fn bert_config(&self, tokenizer: &Tokenizer) -> BertConfig {
        let mut c = BertConfig::new(
            tokenizer.vocab_size(),
            self.n_embd,
            self.n_layer,
            self.n_head,
            4 * self.n_embd,
            self.data.context,
        );
        (c.hidden_dropout_prob, c.attention_probs_dropout_prob) = (self.dropout, self.dropout);
        c.pad_token_id = tokenizer.token_to_id("[PAD]");
        c
    }

    /// The ModernBERT-style config of this run: GeGLU at 8/3 of the width (rounded as the
    /// Llama-style MLP is), so that a layer has BERT's parameter count at the same width, less
    /// the biases and the position table; ModernBERT's switches otherwise (global attention every
    /// third layer, a 128-token window, rope bases 160,000 and 10,000), its special tokens from
    /// the run's tokenizer.
    pub fn modernbert_config(&self, tokenizer: &Tokenizer) -> ModernBertConfig {
        let mut c = ModernBertConfig::new(
            tokenizer.vocab_size(),
            self.n_embd,
            swiglu_width(self.n_embd),
            self.n_layer,
            self.n_head,
            self.data.context,
        );
        (c.attention_dropout, c.embedding_dropout, c.mlp_dropout) =
            (self.dropout, self.dropout, self.dropout);
        c.pad_token_id = tokenizer.token_to_id("[PAD]");
        (c.cls_token_id, c.bos_token_id) = (tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[CLS]"));
        (c.sep_token_id, c.eos_token_id) = (tokenizer.token_to_id("[SEP]"), tokenizer.token_to_id("[SEP]"));
        c
    }
}
