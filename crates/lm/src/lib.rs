//! `hearth-lm`: GPT-2, BERT, the Llama family and ModernBERT in Burn with Hugging Face parity, their tokenizers, sampling,
//! generation, fill-mask, scoring and pretraining.
//!
//! The crate is backend-generic in Burn 0.22's sense: tensors carry a run-time
//! [`burn::tensor::Device`], and the binaries (CLI, web app) and tests choose it. It sees bytes,
//! never paths or the network, and reads tensors back only asynchronously, so the same code runs
//! on WebGPU in a browser.
//!
//! By concern (ARCHITECTURE.md has the whole picture):
//! - [`model`]: the pure Burn modules (configs, attention, GPT-2, BERT) and [`AnyModel`];
//! - [`io`]: bytes ⇄ models: Hugging Face directories, safetensors, tokenizers, checkpoints;
//! - [`infer`]: sampling, generation, fill-mask, scoring;
//! - [`chat`]: chat templates rendered as transformers renders them, generation_config.json;
//! - [`train`]: corpus, run tokenizers, windows, batches, masking, AdamW, the trainer;
//! - [`tensor`], [`rng`], [`error`], [`finite`]: what all of them share.

pub mod chat;
pub mod error;
pub mod finite;
pub mod fused;
pub mod infer;
pub mod io;
pub mod model;
pub mod rng;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use infer::fill_mask::{fill_mask, MaskPredictions, Prediction};
pub use infer::generate::{generate, Generator};
pub use infer::sampling::Sampling;
pub use infer::score::{score, Score};
pub use io::hf::{load_bert, load_gpt2, load_model, HfFiles};
pub use io::tokenizer::{Encoded, Tokenizer};
pub use model::bert::BertForMaskedLM;
pub use model::config::{BertConfig, Gpt2Config, ModelConfig};
pub use model::gpt2::Gpt2LMHeadModel;
pub use model::kv_cache::KvCache;
pub use model::llama::config::LlamaConfig;
pub use model::llama::LlamaForCausalLM;
pub use model::modernbert::config::ModernBertConfig;
pub use model::modernbert::ModernBertForMaskedLM;
pub use model::AnyModel;
pub use rng::Rng;
