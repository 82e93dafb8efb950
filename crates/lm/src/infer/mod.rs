//! Using a model: choosing tokens from logits, generating with a KV cache, filling masks and
//! scoring text.

pub mod fill_mask;
pub mod generate;
pub mod inside;
pub mod sampling;
pub mod score;
