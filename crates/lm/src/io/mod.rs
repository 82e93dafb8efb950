//! Everything that turns bytes into models and back: Hugging Face directories, safetensors
//! weights, tokenizers, training checkpoints, PyTorch's own checkpoint format (a zip of a
//! pickle), Parquet for data, and a run handed to Hugging Face Trainer. The caller does the file or network IO.

pub mod builtin;
pub mod checkpoint;
pub mod handoff;
pub mod hf;
pub mod parquet;
pub mod stream;
pub mod streamed;
pub mod tokenizer;
pub mod torch;
pub mod weights;
pub mod writer;
pub mod zip;
