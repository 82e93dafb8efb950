//! Everything that turns bytes into models and back: Hugging Face directories, safetensors
//! weights, tokenizers and training checkpoints. The caller does the file or network IO.

pub mod builtin;
pub mod checkpoint;
pub mod hf;
pub mod stream;
pub mod streamed;
pub mod tokenizer;
pub mod weights;
pub mod writer;
