//! The token stream cut into train/validation windows.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// How documents become training rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Packing {
    /// Documents joined into one stream with the tokenizer's document separator between them
    /// (nanoGPT's and the `group_texts` recipe), cut into windows every `stride` tokens.
    #[default]
    Concat,
    /// Each document cut into chunks of `context` tokens, the short remainder dropped: exactly
    /// what `tokenizer(..., truncation=True, max_length=context, return_overflowing_tokens=True)`
    /// keeps in the tutorials' filter. A chunk never spans two documents.
    PerDoc,
}

impl std::str::FromStr for Packing {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "concat" => Ok(Self::Concat),
            "per-doc" => Ok(Self::PerDoc),
            other => Err(invalid!("unknown packing `{other}` (concat or per-doc)")),
        }
    }
}

impl std::fmt::Display for Packing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Concat => "concat",
            Self::PerDoc => "per-doc",
        })
    }
}

/// Window and split settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// Tokens the model sees per row (its context length).
    pub context: usize,
    /// Tokens between the starts of consecutive windows (`context` for no overlap; `concat` only).
    pub stride: usize,
    /// Share of the tokens held out for validation, 0 to 0.5: whole documents from the end when
    /// there are several, the end of the one document's stream otherwise.
    pub val_fraction: f64,
    /// Runs saved before documents existed were all `concat`.
    #[serde(default)]
    pub packing: Packing,
}

impl DataConfig {
    /// Tokens per row: a causal LM's `concat` windows carry one more token than the context
    /// (the last position's target); a `per-doc` chunk is `context` tokens, the causal LM
    /// reading the first `context - 1` and predicting the last `context - 1`, as Hugging Face's
    /// `labels = input_ids` does; a masked LM reads a whole row of `context` tokens.
    pub fn row_len(&self, causal: bool) -> usize {
        match (self.packing, causal) {
            (Packing::Concat, true) => self.context.saturating_add(1),
            _ => self.context,
        }
    }

    /// Tokens a causal LM reads per row (the masked LM reads all of [`Self::row_len`]).
    pub fn inputs_len(&self, causal: bool) -> usize {
        if causal {
            self.row_len(true) - 1
        } else {
            self.context
        }
    }
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
    #[serde(default)]
    pub documents: usize,
    /// Whole documents in each split (a single document's validation tail is not counted).
    #[serde(default)]
    pub train_documents: usize,
    #[serde(default)]
    pub val_documents: usize,
    /// Tokens in no row: `per-doc` remainders, and the tail of a `concat` stream past its last
    /// window.
    #[serde(default)]
    pub dropped_tokens: usize,
}

/// One of the two parts of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

/// One split's token stream and where its rows start in it.
#[derive(Clone, Default)]
struct Part {
    tokens: Vec<u32>,
    starts: Vec<usize>,
}

impl Part {
    /// Rows of `documents` packed as `config` says, `row_len` tokens each.
    fn pack(documents: &[&[u32]], separator: Option<u32>, config: &DataConfig, row_len: usize) -> Self {
        let mut tokens = Vec::with_capacity(documents.iter().map(|d| d.len() + 1).sum());
        let mut starts = Vec::new();
        match config.packing {
            Packing::Concat => {
                for (i, doc) in documents.iter().enumerate() {
                    if i > 0 {
                        tokens.extend(separator);
                    }
                    tokens.extend_from_slice(doc);
                }
                // Checked: a stride or context read from a damaged checkpoint can be huge.
                let mut start = 0usize;
                while start.checked_add(row_len).is_some_and(|end| end <= tokens.len()) {
                    starts.push(start);
                    let Some(next) = start.checked_add(config.stride) else { break };
                    start = next;
                }
            }
            Packing::PerDoc => {
                for doc in documents {
                    let offset = tokens.len();
                    tokens.extend_from_slice(doc);
                    starts.extend((0..doc.len() / row_len).map(|k| offset + k * row_len));
                }
            }
        }
        Self { tokens, starts }
    }

    /// Tokens that are in no row.
    fn dropped(&self, row_len: usize) -> usize {
        let mut covered = 0;
        let mut end = 0;
        for &s in &self.starts {
            covered += (s + row_len) - s.max(end);
            end = s + row_len;
        }
        self.tokens.len() - covered
    }
}

/// The documents' tokens cut into rows for training and validation (see [`Packing`]). The
/// validation split is held out from the end — the last documents when there are several, the
/// end of the stream when there is one (nanoGPT-style: text the model never trains on, not
/// interleaved lines); rows never cross the split boundary.
#[derive(Clone)]
pub struct Dataset {
    train: Part,
    val: Part,
    chars: usize,
    vocab_size: usize,
    config: DataConfig,
    row_len: usize,
    /// Whole documents in the train and validation splits.
    split_documents: (usize, usize),
}

impl Dataset {
    /// Bytes its rows hold: both splits' tokens and row starts.
    pub fn held_bytes(&self) -> u128 {
        [&self.train, &self.val]
            .iter()
            .map(|p| (p.tokens.capacity() * 4 + p.starts.capacity() * std::mem::size_of::<usize>()) as u128)
            .sum()
    }

    /// A single token stream (one document) cut into causal-LM windows.
    pub fn new(tokens: Vec<u32>, chars: usize, vocab_size: usize, config: &DataConfig) -> Result<Self> {
        Self::from_documents(vec![tokens], None, chars, vocab_size, config, true)
    }

    /// Checks the settings, that every id is inside the vocabulary, and that each split holds at
    /// least one row (the validation split only when `val_fraction > 0`). `separator` goes
    /// between documents under `concat`; `causal` decides the row length
    /// ([`DataConfig::row_len`]).
    pub fn from_documents(
        documents: Vec<Vec<u32>>,
        separator: Option<u32>,
        chars: usize,
        vocab_size: usize,
        config: &DataConfig,
        causal: bool,
    ) -> Result<Self> {
        check_config(config)?;
        let ids = documents.iter().flatten().chain(separator.iter());
        if let Some(bad) = ids.into_iter().find(|&&id| id as usize >= vocab_size) {
            return Err(invalid!("token id {bad} is outside the vocabulary (size {vocab_size})"));
        }
        let row_len = config.row_len(causal);
        let total: usize = documents.iter().map(Vec::len).sum();
        let docs: Vec<&[u32]> = documents.iter().map(Vec::as_slice).collect();
        // Whole documents from the end; a single document's stream is split by tokens (its
        // validation tail is not a document of its own).
        let (train_docs, val_docs, split_documents) = if let [stream] = docs.as_slice() {
            let (train, val) = stream.split_at(stream.len() - val_len(stream.len(), config.val_fraction));
            (vec![train], if val.is_empty() { vec![] } else { vec![val] }, (1, 0))
        } else {
            let held = held_out_documents(&documents, config.val_fraction);
            let (train, val) = docs.split_at(docs.len() - held);
            (train.to_vec(), val.to_vec(), (train.len(), held))
        };
        let train = Part::pack(&train_docs, separator, config, row_len);
        let val = Part::pack(&val_docs, separator, config, row_len);
        check_long_enough(total, &train, &val, config, row_len)?;
        Ok(Self { train, val, chars, vocab_size, config: config.clone(), row_len, split_documents })
    }

    pub fn stats(&self) -> DatasetStats {
        DatasetStats {
            chars: self.chars,
            tokens: self.train.tokens.len() + self.val.tokens.len(),
            vocab_size: self.vocab_size,
            train_tokens: self.train.tokens.len(),
            val_tokens: self.val.tokens.len(),
            train_windows: self.windows(Split::Train),
            val_windows: self.windows(Split::Val),
            documents: self.split_documents.0 + self.split_documents.1,
            train_documents: self.split_documents.0,
            val_documents: self.split_documents.1,
            dropped_tokens: self.train.dropped(self.row_len) + self.val.dropped(self.row_len),
        }
    }

    /// Number of rows in `split` (0 for the validation split when `val_fraction` is 0).
    pub fn windows(&self, split: Split) -> usize {
        self.part(split).starts.len()
    }

    /// Tokens of row `i` of `split`: [`DataConfig::row_len`] ids.
    ///
    /// # Panics
    /// If `i >= self.windows(split)`, like slice indexing.
    pub fn window(&self, split: Split, i: usize) -> &[u32] {
        let part = self.part(split);
        let count = part.starts.len();
        assert!(i < count, "window {i} of the {split:?} split, which has {count}");
        &part.tokens[part.starts[i]..part.starts[i] + self.row_len]
    }

    pub fn config(&self) -> &DataConfig {
        &self.config
    }

    /// Tokens per row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    fn part(&self, split: Split) -> &Part {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }
}

impl std::fmt::Debug for Dataset {
    /// Statistics only: the token stream is millions of ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

/// How many documents, from the end, make the validation split: the fewest whose tokens reach
/// `val_fraction` of all tokens, at least one when `val_fraction > 0`, never all of them.
fn held_out_documents(documents: &[Vec<u32>], val_fraction: f64) -> usize {
    if val_fraction <= 0.0 {
        return 0;
    }
    let total: usize = documents.iter().map(Vec::len).sum();
    let target = val_len(total, val_fraction);
    let mut held = 0;
    let mut tokens = 0;
    for doc in documents.iter().rev() {
        if held + 1 >= documents.len() || (held > 0 && tokens >= target) {
            break;
        }
        held += 1;
        tokens += doc.len();
    }
    held
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

fn check_long_enough(
    tokens: usize,
    train: &Part,
    val: &Part,
    config: &DataConfig,
    need: usize,
) -> Result<()> {
    let val_short = config.val_fraction > 0.0 && val.starts.is_empty();
    if !train.starts.is_empty() && !val_short {
        return Ok(());
    }
    let (split, part) = if train.starts.is_empty() { ("train", train) } else { ("validation", val) };
    let what = match config.packing {
        Packing::Concat => format!("only {}", part.tokens.len()),
        Packing::PerDoc => "no document that long".to_string(),
    };
    Err(invalid!(
        "the corpus is too short: it has {tokens} tokens, and one row needs {need} (context {}{}), \
         but the {split} split gets {what}; use a smaller context or validation fraction, or a \
         longer corpus",
        config.context,
        if need > config.context { " + 1" } else { "" }
    ))
}
