//! The token stream cut into train/validation windows.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// Window and split settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// Tokens the model sees per row (its context length).
    pub context: usize,
    /// Tokens between the starts of consecutive windows (`context` for no overlap).
    pub stride: usize,
    /// Share of the token stream, from its end, held out for validation: 0 to 0.5.
    pub val_fraction: f64,
}

/// What a run reports about its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    pub chars: usize,
    pub tokens: usize,
    pub vocab_size: usize,
    pub train_tokens: usize,
    pub val_tokens: usize,
    pub train_windows: usize,
    pub val_windows: usize,
}

/// One of the two parts of the token stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

/// The token stream of a corpus cut into windows. A window is `context + 1` tokens starting every
/// `stride` tokens (the +1 gives causal-LM targets; the masked LM uses the first `context`). The
/// validation split is the last `val_fraction` of the token stream (taken from the end,
/// nanoGPT-style, so it is text the model never trains on rather than interleaved lines), the
/// train split the rest; windows never cross the split boundary.
#[derive(Clone)]
pub struct Dataset {
    tokens: Vec<u32>,
    chars: usize,
    vocab_size: usize,
    config: DataConfig,
    /// Tokens `0..train_tokens` are the train split, the rest the validation split.
    train_tokens: usize,
}

impl Dataset {
    /// Checks the settings, that every id is inside the vocabulary, and that each split holds at
    /// least one window (the validation split only when `val_fraction > 0`).
    pub fn new(tokens: Vec<u32>, chars: usize, vocab_size: usize, config: &DataConfig) -> Result<Self> {
        check_config(config)?;
        if let Some(bad) = tokens.iter().find(|&&id| id as usize >= vocab_size) {
            return Err(invalid!("token id {bad} is outside the vocabulary (size {vocab_size})"));
        }
        let val_tokens = val_len(tokens.len(), config.val_fraction);
        let train_tokens = tokens.len() - val_tokens;
        check_long_enough(tokens.len(), train_tokens, val_tokens, config)?;
        Ok(Self { tokens, chars, vocab_size, config: config.clone(), train_tokens })
    }

    pub fn stats(&self) -> DatasetStats {
        DatasetStats {
            chars: self.chars,
            tokens: self.tokens.len(),
            vocab_size: self.vocab_size,
            train_tokens: self.train_tokens,
            val_tokens: self.tokens.len() - self.train_tokens,
            train_windows: self.windows(Split::Train),
            val_windows: self.windows(Split::Val),
        }
    }

    /// Number of windows in `split` (0 for the validation split when `val_fraction` is 0).
    pub fn windows(&self, split: Split) -> usize {
        window_count(self.split_tokens(split).len(), &self.config)
    }

    /// Tokens of window `i` of `split`: `context + 1` ids.
    ///
    /// # Panics
    /// If `i >= self.windows(split)`, like slice indexing.
    pub fn window(&self, split: Split, i: usize) -> &[u32] {
        let count = self.windows(split);
        assert!(i < count, "window {i} of the {split:?} split, which has {count}");
        let start = i * self.config.stride;
        &self.split_tokens(split)[start..start + self.config.context + 1]
    }

    pub fn config(&self) -> &DataConfig {
        &self.config
    }

    fn split_tokens(&self, split: Split) -> &[u32] {
        match split {
            Split::Train => &self.tokens[..self.train_tokens],
            Split::Val => &self.tokens[self.train_tokens..],
        }
    }
}

impl std::fmt::Debug for Dataset {
    /// Statistics only: the token stream is millions of ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

fn check_config(config: &DataConfig) -> Result<()> {
    if config.context == 0 {
        return Err(invalid!("the context length must be at least 1 token"));
    }
    if config.stride == 0 {
        return Err(invalid!("the window stride must be at least 1 token"));
    }
    let f = config.val_fraction;
    if !(f.is_finite() && (0.0..=0.5).contains(&f)) {
        return Err(invalid!("the validation fraction must be between 0 and 0.5, got {f}"));
    }
    Ok(())
}

/// Tokens in the validation split: `val_fraction` of the stream, rounded to the nearest token
/// (`0.1` of 1,000 tokens is 100 whatever the float error).
fn val_len(tokens: usize, val_fraction: f64) -> usize {
    ((tokens as f64 * val_fraction).round() as usize).min(tokens)
}

/// Windows of `context + 1` tokens every `stride` tokens that fit in `len` tokens.
fn window_count(len: usize, config: &DataConfig) -> usize {
    let size = config.context.saturating_add(1);
    if len < size {
        0
    } else {
        (len - size) / config.stride + 1
    }
}

fn check_long_enough(tokens: usize, train: usize, val: usize, config: &DataConfig) -> Result<()> {
    let need = config.context.saturating_add(1);
    let val_short = config.val_fraction > 0.0 && val < need;
    if train >= need && !val_short {
        return Ok(());
    }
    let (split, has) = if train < need { ("train", train) } else { ("validation", val) };
    Err(invalid!(
        "the corpus is too short: it has {tokens} tokens, and one window needs {need} (context {} + 1), \
         but the {split} split gets only {has}; use a smaller context or validation fraction, or a \
         longer corpus",
        config.context
    ))
}
