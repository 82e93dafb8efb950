//! Checkpoints of a training run, as named files (bytes; the caller stores them in a
//! directory, a zip, or browser storage). The model part is a Hugging Face directory that
//! `transformers` and `hearth` open; beside it, the optimizer moments and the trainer state
//! make a resume continue exactly where the run stopped.

use serde::{Deserialize, Serialize};

use super::hf::{load_model, HfFiles};
use super::tokenizer::Tokenizer;
use super::weights::{parameter_sizes, Layout, SafetensorsFile};
use crate::error::{invalid, Result};
use crate::model::config::ModelConfig;
use crate::model::memory::Budget;
use crate::model::AnyModel;
use crate::rng::Rng;
use crate::train::trainer::{EvalReport, Trainer};
use crate::train::{Arch, Batcher, Corpus, TrainConfig};

/// Trainer state beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub format: u32,
    pub config: TrainConfig,
    pub step: usize,
    pub tokens_seen: u64,
    pub optimizer_steps: u64,
    pub batcher: Batcher,
    pub mask_rng: Rng,
    pub history: Vec<EvalReport>,
    pub corpus_fingerprint: u64,
    /// Seconds spent stepping (0 in checkpoints saved before it was recorded).
    #[serde(default)]
    pub train_seconds: f64,
}

const FORMAT: u32 = 1;

/// The files of a checkpoint directory.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    pub files: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice())
    }

    fn require(&self, name: &str) -> Result<&[u8]> {
        self.get(name).ok_or_else(|| invalid!("the checkpoint has no {name}"))
    }
}

/// `tokenizer_config.json` so `AutoTokenizer` builds a fast tokenizer from `tokenizer.json`
/// and knows the special tokens.
fn tokenizer_config(tokenizer: &Tokenizer, arch: Arch) -> Vec<u8> {
    let mut config = serde_json::json!({ "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false });
    let specials: &[(&str, &str)] = match arch {
        Arch::Gpt2 | Arch::Llama => {
            &[("bos_token", "<|endoftext|>"), ("eos_token", "<|endoftext|>"), ("unk_token", "<|endoftext|>")]
        }
        Arch::Bert | Arch::ModernBert => &[
            ("pad_token", "[PAD]"),
            ("unk_token", "[UNK]"),
            ("cls_token", "[CLS]"),
            ("sep_token", "[SEP]"),
            ("mask_token", "[MASK]"),
        ],
    };
    for (field, token) in specials {
        if tokenizer.token_to_id(token).is_some() {
            config[*field] = serde_json::Value::from(*token);
        }
    }
    serde_json::to_vec_pretty(&config).expect("json value")
}

/// The Hugging Face directory of the model being trained.
pub async fn export_model(trainer: &Trainer) -> Result<HfFiles> {
    super::hf::export_model(trainer.model(), Some(&trainer.tokenizer)).await
}

impl Trainer {
    /// Everything needed to resume, plus the Hugging Face files of the model.
    pub async fn checkpoint(&self) -> Result<Checkpoint> {
        let hf = export_model(self).await?;
        let state = TrainerState {
            format: FORMAT,
            config: self.config.clone(),
            step: self.step,
            tokens_seen: self.tokens_seen,
            optimizer_steps: self.optim.steps(),
            batcher: self.batcher.clone(),
            mask_rng: self.mask_rng,
            history: self.history.clone(),
            corpus_fingerprint: self.corpus_fingerprint,
            train_seconds: self.train_seconds,
        };
        let optimizer = self.optim.state_safetensors().await?;
        // A fine-tune writes its source's tokenizer config, chat template and generation config
        // as they were (an instruct model's template and eos ids stay with it).
        let source = self.config.init_from.as_ref().map(|i| i.files.clone()).unwrap_or_default();
        let tokenizer_config = match source.tokenizer_config {
            Some(text) => text.into_bytes(),
            None => tokenizer_config(&self.tokenizer, self.config.arch),
        };
        let mut files = vec![
            ("config.json".to_string(), hf.config_json),
            ("model.safetensors".to_string(), hf.model_safetensors),
            ("tokenizer.json".to_string(), hf.tokenizer_json.unwrap_or_default()),
            ("tokenizer_config.json".to_string(), tokenizer_config),
            ("optimizer.safetensors".to_string(), optimizer),
            ("trainer_state.json".to_string(), serde_json::to_vec_pretty(&state).expect("json value")),
        ];
        if let Some(generation) =
            source.generation_config.map(String::into_bytes).or(hf.generation_config_json)
        {
            files.push(("generation_config.json".to_string(), generation));
        }
        if let Some(jinja) = source.chat_template {
            files.push(("chat_template.jinja".to_string(), jinja.into_bytes()));
        }
        Ok(Checkpoint { files })
    }

    /// Continues a run from `checkpoint` on the same corpus.
    pub fn resume(checkpoint: &Checkpoint, corpus: &Corpus, device: &burn::tensor::Device) -> Result<Self> {
        Self::resume_within(checkpoint, corpus, device, u64::MAX)
    }

    /// [`Trainer::resume`] within a memory budget (see [`Trainer::new_within`]). Everything read
    /// is validated first: the state's numbers, the config against the weights, every
    /// optimizer moment against the model's parameters.
    pub fn resume_within(
        checkpoint: &Checkpoint,
        corpus: &Corpus,
        device: &burn::tensor::Device,
        budget: impl Into<Budget>,
    ) -> Result<Self> {
        let budget = budget.into();
        let state: TrainerState = serde_json::from_slice(checkpoint.require("trainer_state.json")?)
            .map_err(|e| invalid!("trainer_state.json is corrupt: {e}"))?;
        if state.format != FORMAT {
            return Err(invalid!("checkpoint format {} is not supported (expected {FORMAT})", state.format));
        }
        if state.corpus_fingerprint != corpus.fingerprint() {
            return Err(invalid!("this corpus is not the one the checkpoint was trained on"));
        }
        check_state(&state)?;
        let tokenizer = Tokenizer::from_bytes(checkpoint.require("tokenizer.json")?)?;
        let device = device.clone().autodiff();
        let config_json = checkpoint.require("config.json")?;
        let weights = checkpoint.require("model.safetensors")?;
        let config = &state.config;
        config.validate().map_err(|e| invalid!("trainer_state.json: {e}"))?;
        if ModelConfig::from_json(config_json)? != config.model_config(&tokenizer) {
            return Err(invalid!("config.json does not match trainer_state.json"));
        }
        let need = config.check_memory(&tokenizer, budget)?;
        let model = load_model(config_json, weights, &device)?;
        let mut trainer = Trainer::assemble(config.clone(), tokenizer, corpus, model, device.clone())?;
        let optimizer = SafetensorsFile::parse(checkpoint.require("optimizer.safetensors")?)?;
        if let Some((name, dtype)) = optimizer.first_non_f32() {
            return Err(invalid!("optimizer.safetensors: `{name}` is {dtype}, not F32"));
        }
        let expected = match trainer.model() {
            AnyModel::Gpt2(m) => parameter_sizes(m.as_ref(), Layout::Gpt2),
            AnyModel::Bert(m) => parameter_sizes(m.as_ref(), Layout::Bert),
            AnyModel::Llama(m) => parameter_sizes(m.as_ref(), Layout::Llama),
            AnyModel::ModernBert(m) => parameter_sizes(m.as_ref(), Layout::ModernBert),
        };
        let moments = optimizer.all_f32()?;
        trainer.optim.import_state(moments, state.optimizer_steps, &expected, &device.clone().inner())?;
        trainer.step = state.step;
        trainer.tokens_seen = state.tokens_seen;
        trainer.batcher = state.batcher;
        trainer.mask_rng = state.mask_rng;
        trainer.history = state.history;
        trainer.train_seconds = state.train_seconds;
        trainer.admit(need, budget, true)?;
        Ok(trainer)
    }
}

/// The trainer state's numbers must tell one story: a step count the run allows, one optimizer
/// update per step, the tokens those steps saw, and evaluations that happened in order before
/// now. Anything else is a damaged or hand-edited file, and resuming from it would not be the
/// run it claims to be.
fn check_state(state: &TrainerState) -> Result<()> {
    let c = &state.config;
    let bad = |msg: String| Err(invalid!("trainer_state.json is inconsistent: {msg}"));
    if state.step > c.steps {
        return bad(format!("step {} is past the run's {} steps", state.step, c.steps));
    }
    if state.optimizer_steps != state.step as u64 {
        return bad(format!("{} optimizer updates for {} steps", state.optimizer_steps, state.step));
    }
    let per_step = c.tokens_per_step();
    let expected_tokens = per_step.and_then(|t| t.checked_mul(state.step as u64));
    if expected_tokens != Some(state.tokens_seen) {
        return bad(format!(
            "{} tokens seen, but {} steps of batch {} × {} tokens see {}",
            state.tokens_seen,
            state.step,
            c.batch_size,
            c.data.inputs_len(c.causal()),
            expected_tokens.map_or("more than can be counted".to_string(), |t| t.to_string())
        ));
    }
    if !(state.train_seconds.is_finite() && state.train_seconds >= 0.0) {
        return bad(format!("train_seconds is {}", state.train_seconds));
    }
    let mut last = 0;
    for eval in &state.history {
        if eval.step < last || eval.step > state.step || eval.tokens_seen > state.tokens_seen {
            return bad(format!("the evaluation at step {} is out of order", eval.step));
        }
        last = eval.step;
    }
    Ok(())
}
