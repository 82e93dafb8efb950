//! Autoregressive generation with a decoder (GPT-2, the Llama family): a KV cache so a new token costs one position, the
//! prompt cropped to the context's last window, reads that are always asynchronous (WebGPU has
//! no synchronous readback).

use crate::error::{invalid, Result};
use burn::tensor::Tensor;

use crate::infer::sampling::{choose, Sampling};
use crate::model::causal::CausalLm;
use crate::model::check_ids;
use crate::model::kv_cache::KvCache;
use crate::rng::Rng;
use crate::tensor::{ids_tensor, read_f32};

/// Token-by-token generation state for one sequence.
pub struct Generator<'m> {
    model: &'m dyn CausalLm,
    /// Prompt and generated tokens.
    tokens: Vec<u32>,
    prompt_len: usize,
    /// Index in `tokens` of the first token the model sees (the context's last window).
    window_start: usize,
    /// `None` recomputes the whole window each step (the reference the cache is tested against).
    cache: Option<KvCache>,
    sampling: Sampling,
    rng: Rng,
}

impl<'m> Generator<'m> {
    /// Starts from `prompt` (at least one token; longer than the context is cropped to its
    /// last window). Ids outside the vocabulary are an error.
    pub fn new(model: &'m dyn CausalLm, prompt: &[u32], sampling: Sampling, seed: u64) -> Result<Self> {
        if prompt.is_empty() {
            return Err(invalid!("the prompt is empty: give at least one token"));
        }
        check_ids(prompt, model.vocab_size())?;
        let n = model.context();
        Ok(Self {
            model,
            tokens: prompt.to_vec(),
            prompt_len: prompt.len(),
            window_start: prompt.len().saturating_sub(n),
            cache: Some(KvCache::new()),
            sampling,
            rng: Rng::new(seed),
        })
    }

    /// Recompute the full window at every step instead of caching keys and values.
    pub fn without_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Logits for the next token, read back (the distribution charts).
    pub async fn next_logits(&mut self) -> Result<Vec<f32>> {
        read_f32(self.next_logits_on_device()).await
    }

    /// Logits for the next token on the device, `[1, vocab]`, running the model on whatever it
    /// has not seen yet.
    fn next_logits_on_device(&mut self) -> Tensor<2> {
        let n = self.model.context();
        if self.tokens.len() - self.window_start > n {
            // Positions restart at the window's start (GPT-2's table, a rotation's angle), so
            // moving the window invalidates the cache.
            self.window_start = self.tokens.len() - n;
            if let Some(cache) = &mut self.cache {
                *cache = KvCache::new();
            }
        }
        let device = self.model.device();
        match &mut self.cache {
            Some(cache) => {
                let fresh = &self.tokens[self.window_start + cache.len()..];
                self.model.forward_last(ids_tensor(fresh, &device), Some(cache))
            }
            None => self.model.forward_last(ids_tensor(&self.tokens[self.window_start..], &device), None),
        }
    }

    /// Appends a token chosen by the caller (the "next token" button picks from candidates).
    pub fn push(&mut self, id: u32) -> Result<()> {
        check_ids(&[id], self.model.vocab_size())?;
        self.tokens.push(id);
        Ok(())
    }

    /// Generates one token with the configured sampling and returns it. The token is chosen on
    /// the device ([`choose`]): greedy reads back one index, not the vocabulary.
    pub async fn step(&mut self) -> Result<u32> {
        let logits = self.next_logits_on_device();
        let id = choose(&self.sampling, logits, &mut self.rng).await?;
        self.tokens.push(id);
        Ok(id)
    }

    /// All tokens: prompt then generated.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Tokens generated so far.
    pub fn new_tokens(&self) -> &[u32] {
        &self.tokens[self.prompt_len..]
    }
}

/// Generates `max_new_tokens` tokens after `prompt`; returns only the new ones.
pub async fn generate(
    model: &dyn CausalLm,
    prompt: &[u32],
    max_new_tokens: usize,
    sampling: Sampling,
    seed: u64,
) -> Result<Vec<u32>> {
    let mut generator = Generator::new(model, prompt, sampling, seed)?;
    for _ in 0..max_new_tokens {
        generator.step().await?;
    }
    Ok(generator.new_tokens().to_vec())
}
