//! The models as pure Burn modules: their configs (Hugging Face field names), the shared
//! pieces (attention, rotary positions, norms), one file or folder per family (GPT-2, BERT, the
//! Llama family, ModernBERT), the two kinds they come in ([`causal::CausalLm`],
//! [`masked::MaskedLm`]), and [`AnyModel`], the one type for "a model of any architecture" that
//! loading, inference and training all pass around.

pub mod activation;
pub mod attention;
pub mod bert;
pub mod causal;
pub mod config;
pub mod gpt2;
pub mod kv_cache;
pub mod llama;
pub mod masked;
pub mod memory;
pub mod modernbert;
pub mod precision;
pub mod rms_norm;
pub mod rope;
pub mod row_product;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use self::bert::BertForMaskedLM;
use self::config::ModelConfig;
use self::gpt2::Gpt2LMHeadModel;
use self::llama::LlamaForCausalLM;
use self::modernbert::ModernBertForMaskedLM;
use crate::error::{invalid, Result};

/// A model of either architecture: what a Hugging Face directory loads into, and what a
/// training run holds (on the autodiff device) between optimizer steps.
///
/// Boxed: the enum is moved through every optimizer step and handed between threads of
/// control in the worker; a pointer keeps those moves cheap whatever the model's size.
#[derive(Debug, Clone)]
pub enum AnyModel {
    Gpt2(Box<Gpt2LMHeadModel>),
    Bert(Box<BertForMaskedLM>),
    /// Llama, Qwen2, Qwen3.
    Llama(Box<LlamaForCausalLM>),
    ModernBert(Box<ModernBertForMaskedLM>),
}

impl AnyModel {
    /// The architecture's default tokenizer, used when a directory has no `tokenizer.json`.
    pub fn default_tokenizer_name(&self) -> Option<&'static str> {
        self.config().default_tokenizer_name()
    }

    /// The device the parameters live on (autodiff while training, plain for evaluation).
    pub fn device(&self) -> Device {
        match self {
            AnyModel::Gpt2(m) => m.device(),
            AnyModel::Bert(m) => m.device(),
            AnyModel::Llama(m) => m.device(),
            AnyModel::ModernBert(m) => m.device(),
        }
    }

    /// The model's `config.json` as a value.
    pub fn config(&self) -> ModelConfig {
        match self {
            AnyModel::Gpt2(m) => ModelConfig::Gpt2(m.config().clone()),
            AnyModel::Bert(m) => ModelConfig::Bert(m.config().clone()),
            AnyModel::Llama(m) => ModelConfig::Llama(Box::new(m.config().clone())),
            AnyModel::ModernBert(m) => ModelConfig::ModernBert(Box::new(m.config().clone())),
        }
    }

    /// Tokens in the model's vocabulary: every id it embeds must be below this.
    pub fn vocab_size(&self) -> usize {
        match self {
            AnyModel::Gpt2(m) => m.config().vocab_size,
            AnyModel::Bert(m) => m.config().vocab_size,
            AnyModel::Llama(m) => m.config().vocab_size,
            AnyModel::ModernBert(m) => m.config().vocab_size,
        }
    }

    /// Parameters (tied embeddings counted once).
    pub fn num_params(&self) -> usize {
        match self {
            AnyModel::Gpt2(m) => m.num_params(),
            AnyModel::Bert(m) => m.num_params(),
            AnyModel::Llama(m) => m.num_params(),
            AnyModel::ModernBert(m) => m.num_params(),
        }
    }

    /// The input token embeddings, `[vocab, d]` (GPT-2 ties them to its output layer too).
    pub fn input_embeddings(&self) -> Tensor<2> {
        match self {
            AnyModel::Gpt2(m) => m.transformer.wte.weight.val(),
            AnyModel::Bert(m) => m.bert.embeddings.word_embeddings.weight.val(),
            AnyModel::Llama(m) => m.model.embed_tokens.weight.val(),
            AnyModel::ModernBert(m) => m.model.embeddings.tok_embeddings.weight.val(),
        }
        .cast(burn::tensor::FloatDType::F32)
    }

    /// How the matrices are stored (the token embedding's dtype stands for all of them).
    pub fn weight_dtype(&self) -> precision::WeightDtype {
        let dtype = match self {
            AnyModel::Gpt2(m) => m.transformer.wte.weight.val().dtype(),
            AnyModel::Bert(m) => m.bert.embeddings.word_embeddings.weight.val().dtype(),
            AnyModel::Llama(m) => m.model.embed_tokens.weight.val().dtype(),
            AnyModel::ModernBert(m) => m.model.embeddings.tok_embeddings.weight.val().dtype(),
        };
        if dtype == burn::tensor::DType::F16 {
            precision::WeightDtype::F16
        } else {
            precision::WeightDtype::F32
        }
    }

    /// The model as a decoder, for generation and scoring; `None` for an encoder.
    pub fn causal(&self) -> Option<&dyn causal::CausalLm> {
        match self {
            AnyModel::Gpt2(m) => Some(m.as_ref()),
            AnyModel::Llama(m) => Some(m.as_ref()),
            AnyModel::Bert(_) | AnyModel::ModernBert(_) => None,
        }
    }

    /// The model as a masked LM, for fill-mask and masked-LM training; `None` for a decoder.
    pub fn masked(&self) -> Option<&dyn masked::MaskedLm> {
        match self {
            AnyModel::Bert(m) => Some(m.as_ref()),
            AnyModel::ModernBert(m) => Some(m.as_ref()),
            AnyModel::Gpt2(_) | AnyModel::Llama(_) => None,
        }
    }

    /// The same weights without the autodiff graph and with dropout off, for evaluation.
    pub fn valid(&self) -> AnyModel {
        match self {
            AnyModel::Gpt2(m) => AnyModel::Gpt2(Box::new(m.valid())),
            AnyModel::Bert(m) => AnyModel::Bert(Box::new(m.valid())),
            AnyModel::Llama(m) => AnyModel::Llama(Box::new(m.valid())),
            AnyModel::ModernBert(m) => AnyModel::ModernBert(Box::new(m.valid())),
        }
    }
}

/// Refuses ids a model with `vocab` tokens cannot embed. Every entry point that turns ids into
/// an embedding lookup calls this first: out of range, the lookup would panic on a CPU backend
/// and read another buffer's memory (or zeros) on a GPU.
pub fn check_ids(ids: &[u32], vocab: usize) -> Result<()> {
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(bad) => Err(invalid!(
            "token id {bad} is outside the model's vocabulary (size {vocab}); \
             is the tokenizer the model's own?"
        )),
        None => Ok(()),
    }
}
