//! Pretraining, in the order data flows: a [`Corpus`] is encoded by the run's tokenizer
//! ([`tokenizers`]), cut into [`windows`], drawn as seeded [`batcher`] batches (corrupted by
//! [`masking`] for a masked LM), and fed to the [`Trainer`], which steps [`optim`]'s AdamW.
//!
//! Pure on purpose: bytes in, no file IO or clocks, so the browser trains on the same code as
//! the CLI; natively, CPU backends spread a step over the cores ([`parallel`], the fused AdamW).

pub mod batcher;
pub mod config;
pub mod corpus;
pub mod documents;
pub mod eval;
pub mod masking;
pub mod optim;
mod parallel;
pub mod probe;
pub mod tokenizers;
pub mod trainer;
pub mod windows;

pub use batcher::{eval_batches, Batch, Batcher};
pub use config::{size_preset, swiglu_width, Arch, InitFrom, LlamaKnobs, SourceFiles, TrainConfig};
pub use corpus::{document_separator, encode_corpus, encode_documents, encode_text, Corpus};
pub use documents::{corpus_of_files, documents_of, FileKind, DEFAULT_TEXT_FIELD};
pub use masking::{mask_tokens, mlm_token_ids};
pub use optim::Decay;
pub use probe::{LensTop, Probe};
pub use tokenizers::{
    build_tokenizer, special_token_ids, TokenizerChoice, BPE_VOCAB_SIZES, END_OF_TEXT, MLM_SPECIAL_TOKENS,
};
pub use trainer::{EvalReport, StepReport, Trainer};
pub use windows::{DataConfig, Dataset, DatasetStats, Packing, Split};
