//! Using a model: choosing tokens from logits, generating with a KV cache, filling masks,
//! scoring text, and looking inside (attention, logit lens, surprisal, embeddings).

pub mod embeddings;
pub mod fill_mask;
pub mod generate;
pub mod inside;
pub mod sampling;
pub mod score;
pub mod surprisal;
