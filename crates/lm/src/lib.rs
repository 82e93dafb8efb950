//! `hearth-lm`: GPT-2 and BERT in Burn with Hugging Face parity, their tokenizers, sampling,
//! generation, fill-mask and scoring.
//!
//! The crate is backend-generic in Burn 0.22's sense: tensors carry a run-time
//! [`burn::tensor::Device`], and the binaries (CLI, web app) and tests choose it. It sees bytes,
//! never paths or the network, and reads tensors back only asynchronously, so the same code runs
//! on WebGPU in a browser.

pub mod attention;
pub mod bert;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod fill_mask;
pub mod generate;
pub mod gpt2;
pub mod hf;
pub mod optim;
pub mod sampling;
pub mod score;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use bert::BertForMaskedLM;
pub use config::{BertConfig, Gpt2Config, ModelConfig};
pub use error::{Error, Result};
pub use fill_mask::{fill_mask, MaskPredictions, Prediction};
pub use generate::{generate, Generator};
pub use gpt2::{Gpt2LMHeadModel, KvCache};
pub use hf::{load_bert, load_gpt2, load_model, AnyModel, HfFiles};
pub use sampling::{Rng, Sampling};
pub use score::{score, Score};
pub use tokenizer::{Encoded, Tokenizer};
