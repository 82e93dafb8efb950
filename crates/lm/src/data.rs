//! Pretraining data: a corpus (validated UTF-8 bytes), the tokenizer a run uses, the token stream
//! cut into train/validation windows, seeded shuffled batches that a resumed run replays exactly,
//! and BERT's masked-LM corruption.
//!
//! Pure on purpose: bytes in, no file IO, clocks or threads of its own, so the browser trains on
//! the same code as the CLI.

use std::collections::{BTreeSet, HashSet};
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BpeTrainer, Vocab, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

use crate::error::{invalid, Error, Result};
use crate::sampling::Rng;
use crate::tokenizer::Tokenizer;

// ---------------------------------------------------------------------------------------------
// Tokenizer choice
// ---------------------------------------------------------------------------------------------

/// Vocabulary sizes accepted by `bpe:N`: the 256 byte tokens, `<|endoftext|>` and at least three
/// merges at the low end; ids that still fit in 16 bits at the high end.
pub const BPE_VOCAB_SIZES: RangeInclusive<usize> = 260..=65536;

/// The special token a trained `bpe:N` tokenizer reserves (id 0), as GPT-2 names it.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// The special tokens a masked LM needs, in the order they are appended when missing.
pub const MLM_SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// What the unknown-character token of the `chars` tokenizer is called (BERT's spelling, so a
/// masked-LM run reuses it).
const UNK: &str = "[UNK]";

/// Shown in every "which tokenizer?" error.
const CHOICES: &str = "chars, bytes, gpt2, bert-base-uncased or bpe:N (N = vocabulary size, 260 to 65536)";

/// Which tokenizer a pretraining run uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenizerChoice {
    /// One token per distinct character of the corpus, ids by code point (nanoGPT's
    /// `shakespeare_char`).
    Chars,
    /// One token per UTF-8 byte, id = byte value.
    Bytes,
    /// GPT-2's 50,257-token byte-level BPE.
    Gpt2,
    /// BERT's 30,522-token uncased WordPiece.
    BertBaseUncased,
    /// A byte-level BPE of this many tokens trained on the corpus.
    Bpe(usize),
}

impl std::str::FromStr for TokenizerChoice {
    type Err = Error;

    /// Parses `chars`, `bytes`, `gpt2`, `bert-base-uncased` or `bpe:N`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "chars" => Ok(Self::Chars),
            "bytes" => Ok(Self::Bytes),
            "gpt2" => Ok(Self::Gpt2),
            "bert-base-uncased" => Ok(Self::BertBaseUncased),
            other => match other.strip_prefix("bpe:") {
                Some(size) => parse_bpe_size(size).map(Self::Bpe),
                None => Err(invalid!("unknown tokenizer `{other}`; choose {CHOICES}")),
            },
        }
    }
}

impl std::fmt::Display for TokenizerChoice {
    /// The spelling [`str::parse`] accepts, so a saved run names its tokenizer the same way.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Chars => f.write_str("chars"),
            Self::Bytes => f.write_str("bytes"),
            Self::Gpt2 => f.write_str("gpt2"),
            Self::BertBaseUncased => f.write_str("bert-base-uncased"),
            Self::Bpe(size) => write!(f, "bpe:{size}"),
        }
    }
}

fn parse_bpe_size(size: &str) -> Result<usize> {
    let parsed = size.parse::<usize>().map_err(|_| {
        invalid!("`bpe:{size}`: the vocabulary size must be a whole number, e.g. bpe:4096; choose {CHOICES}")
    })?;
    check_bpe_size(parsed)?;
    Ok(parsed)
}

fn check_bpe_size(size: usize) -> Result<()> {
    if BPE_VOCAB_SIZES.contains(&size) {
        Ok(())
    } else {
        Err(invalid!(
            "bpe:{size}: the vocabulary size must be between {} and {} (256 byte tokens, {END_OF_TEXT} \
             and at least 3 merges)",
            BPE_VOCAB_SIZES.start(),
            BPE_VOCAB_SIZES.end()
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------------------------

/// A training corpus: validated UTF-8 text, checked once so every later step can trust it.
#[derive(Clone)]
pub struct Corpus {
    text: String,
    /// Unicode scalar values in `text`, counted once (the dataset statistics report it).
    chars: usize,
}

impl Corpus {
    /// Validates a file's bytes as text. A leading UTF-8 byte-order mark is dropped (editors on
    /// Windows write one; it is not part of the text). NUL bytes are rejected even though they
    /// are valid UTF-8: text files do not contain them, binary files almost always do.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            invalid!(
                "the file is not UTF-8 text (invalid byte at offset {}); is it a binary file?",
                e.valid_up_to()
            )
        })?;
        if let Some(offset) = bytes.iter().position(|&b| b == 0) {
            return Err(invalid!(
                "the file contains a NUL byte (at offset {offset}), so it is not plain text; is it a binary file?"
            ));
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(invalid!("the corpus is empty (nothing but whitespace)"));
        }
        Ok(Self { text: text.to_owned(), chars: text.chars().count() })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Number of Unicode chars (scalar values), not bytes.
    pub fn chars(&self) -> usize {
        self.chars
    }
}

impl std::fmt::Debug for Corpus {
    /// Sizes only: a corpus is megabytes of text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Corpus").field("bytes", &self.text.len()).field("chars", &self.chars).finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Building the tokenizer
// ---------------------------------------------------------------------------------------------

/// Builds the tokenizer for a run. `masked_lm` = true when training BERT: the tokenizer must then
/// have the special tokens [`MLM_SPECIAL_TOKENS`]; any that are missing are added as special added
/// tokens, appended after the existing vocabulary (so the other ids do not move).
///
/// Every tokenizer built here serialises ([`Tokenizer::to_json`]) to a plain Hugging Face
/// `tokenizer.json` that gives the same ids when read back.
pub fn build_tokenizer(choice: &TokenizerChoice, corpus: &Corpus, masked_lm: bool) -> Result<Tokenizer> {
    let mut inner = match choice {
        TokenizerChoice::Chars => char_tokenizer(corpus)?,
        TokenizerChoice::Bytes => byte_tokenizer()?,
        TokenizerChoice::Gpt2 => Tokenizer::builtin("gpt2")?.inner().clone(),
        TokenizerChoice::BertBaseUncased => Tokenizer::builtin("bert-base-uncased")?.inner().clone(),
        TokenizerChoice::Bpe(size) => train_bpe(corpus, *size)?,
    };
    if masked_lm {
        add_mlm_special_tokens(&mut inner)?;
    }
    Ok(Tokenizer::from_inner(inner))
}

/// `[MASK]`'s id and the ids of the masked-LM special tokens ([`MLM_SPECIAL_TOKENS`]) the
/// tokenizer has: what [`mask_tokens`] needs.
pub fn mlm_token_ids(tokenizer: &Tokenizer) -> Result<(u32, Vec<u32>)> {
    let mask_id = tokenizer
        .token_to_id("[MASK]")
        .ok_or_else(|| Error::InvalidInput("the tokenizer has no [MASK] token".into()))?;
    let specials = MLM_SPECIAL_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
    Ok((mask_id, specials))
}

/// Ids of the tokenizer's special added tokens (`[CLS]`, `[MASK]`, `<|endoftext|>`, ...), sorted:
/// the positions [`mask_tokens`] must never choose.
pub fn special_token_ids(tokenizer: &Tokenizer) -> Vec<u32> {
    let mut ids: Vec<u32> = tokenizer
        .inner()
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, token)| token.special)
        .map(|(id, _)| id)
        .collect();
    ids.sort_unstable();
    ids
}

fn tokenizer_error(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

/// One token per distinct char, ids = rank by code point (for ordinary text `"\n"` is 0, as in
/// nanoGPT), then `[UNK]` for chars the corpus never showed. It is a BPE model without merges and
/// without a pre-tokenizer: the model looks every char up on its own, which is exactly
/// char-level tokenization, and `Fuse` decodes by plain concatenation, so the round trip is exact
/// (spaces and newlines included).
fn char_tokenizer(corpus: &Corpus) -> Result<tokenizers::Tokenizer> {
    let chars: BTreeSet<char> = corpus.text().chars().collect();
    let unk_id = chars.len() as u32;
    let vocab: Vocab = chars
        .iter()
        .zip(0u32..)
        .map(|(c, id)| (c.to_string(), id))
        .chain(std::iter::once((UNK.to_owned(), unk_id)))
        .collect();
    let model = BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .unk_token(UNK.to_owned())
        .build()
        .map_err(tokenizer_error)?;
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_decoder(Some(Fuse::new()));
    tokenizer.add_special_tokens([AddedToken::from(UNK, true)]).map_err(tokenizer_error)?;
    Ok(tokenizer)
}

/// GPT-2's printable stand-in for each byte (`bytes_to_unicode` in OpenAI's `encoder.py`, which
/// the `ByteLevel` pre-tokenizer applies): printable Latin-1 bytes stand for themselves, the other
/// 68 become U+0100, U+0101, ... in byte order. Index = byte value.
fn byte_alphabet() -> [char; 256] {
    let mut alphabet = ['\0'; 256];
    let mut stand_ins = '\u{100}'..='\u{143}';
    for (byte, slot) in (0u8..=255).zip(alphabet.iter_mut()) {
        let printable = matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        *slot = if printable {
            char::from(byte)
        } else {
            stand_ins.next().expect("68 stand-ins for the 68 unprintable bytes")
        };
    }
    alphabet
}

/// 256 tokens, id = UTF-8 byte value (the ids of the `gpt2-bytes-tiny` fixture). `ByteLevel`
/// without its regex turns the whole text into byte stand-ins; a merge-less BPE maps each stand-in
/// to its byte's id; the `ByteLevel` decoder turns stand-ins back into bytes.
fn byte_tokenizer() -> Result<tokenizers::Tokenizer> {
    let vocab: Vocab = byte_alphabet().iter().zip(0u32..).map(|(c, id)| (c.to_string(), id)).collect();
    let model = BPE::builder().vocab_and_merges(vocab, Vec::new()).build().map_err(tokenizer_error)?;
    let byte_level = ByteLevel::new(false, false, false);
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(byte_level));
    tokenizer.with_decoder(Some(byte_level));
    Ok(tokenizer)
}

/// A byte-level BPE of `vocab_size` tokens trained on the corpus, set up like GPT-2's tokenizer
/// (same regex, same `ByteLevel` steps) with `<|endoftext|>` as id 0 and the 256 byte stand-ins
/// always in the vocabulary, so any text encodes. Pairs seen only once are not merged (they teach
/// nothing), so a small corpus can end with fewer than `vocab_size` tokens. Training is deterministic: merge ties are broken by token id, and the ids of the
/// initial alphabet are sorted by code point.
fn train_bpe(corpus: &Corpus, vocab_size: usize) -> Result<tokenizers::Tokenizer> {
    check_bpe_size(vocab_size)?;
    let alphabet: HashSet<char> = byte_alphabet().into_iter().collect();
    let trainer = BpeTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .initial_alphabet(alphabet)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .build();
    let mut tokenizer = tokenizers::Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_post_processor(Some(ByteLevel::new(true, false, true)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    // Line by line (newlines kept), the way Hugging Face trains from files.
    let lines = corpus.text().split_inclusive('\n');
    tokenizer
        .train(&mut TrainerWrapper::from(trainer), lines)
        .map_err(|e| Error::Tokenizer(format!("training bpe:{vocab_size} failed: {e}")))?;
    Ok(tokenizer)
}

/// Appends the masked-LM special tokens the tokenizer lacks, in [`MLM_SPECIAL_TOKENS`] order.
fn add_mlm_special_tokens(tokenizer: &mut tokenizers::Tokenizer) -> Result<()> {
    let missing: Vec<AddedToken> = MLM_SPECIAL_TOKENS
        .iter()
        .filter(|token| tokenizer.token_to_id(token).is_none())
        .map(|token| AddedToken::from(*token, true))
        .collect();
    tokenizer.add_special_tokens(missing).map_err(tokenizer_error)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Encoding the corpus
// ---------------------------------------------------------------------------------------------

/// Roughly how many bytes of text are encoded at once: an `Encoding` costs ~100 bytes per token,
/// so a whole multi-megabyte corpus in one call would need hundreds of megabytes.
const ENCODE_CHUNK_BYTES: usize = 64 * 1024;

/// The corpus's token ids, without the tokenizer's added tokens (no `[CLS]`/`[SEP]` around the
/// whole corpus). The text is encoded in pieces to bound memory, cut only after a newline that
/// sits between two non-whitespace chars: no pre-tokenizer used here (GPT-2's regex, BERT's
/// whitespace/punctuation split, per-char, per-byte) joins tokens across such a point, so the ids
/// equal those of encoding the text in one piece.
pub fn encode_corpus(tokenizer: &Tokenizer, corpus: &Corpus) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for piece in text_pieces(corpus.text(), ENCODE_CHUNK_BYTES) {
        let encoding = tokenizer.inner().encode(piece, false).map_err(tokenizer_error)?;
        ids.extend_from_slice(encoding.get_ids());
    }
    Ok(ids)
}

/// Splits `text` into pieces of at least `min_bytes` (the last may be shorter), each cut at a
/// safe point (see [`encode_corpus`]); text without such points stays in one piece.
fn text_pieces(text: &str, min_bytes: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = safe_cut_after(text, start.saturating_add(min_bytes.max(1))).unwrap_or(text.len());
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces
}

/// The first byte position `p ≥ from` (`p < text.len()`) with `text[p - 1] == '\n'`, a
/// non-whitespace char before that newline and a non-whitespace char at `p`.
fn safe_cut_after(text: &str, from: usize) -> Option<usize> {
    let mut search = from.saturating_sub(1);
    while search < text.len() {
        // Bytes, not chars: `search` need not be a char boundary, and b'\n' never occurs
        // inside a multi-byte char.
        let newline = search + text.as_bytes()[search..].iter().position(|&b| b == b'\n')?;
        let cut = newline + 1;
        let before = text[..newline].chars().next_back();
        let after = text[cut..].chars().next();
        let solid = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace());
        if solid(before) && solid(after) {
            return Some(cut);
        }
        search = cut;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Dataset: windows and splits
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

/// A batch of `batch_size` windows of `context` tokens, row-major (`[batch_size, context]`
/// flattened).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub inputs: Vec<u32>,
    /// `inputs` shifted left by one: the next token at each position (causal LM).
    pub targets: Vec<u32>,
    pub batch_size: usize,
    pub context: usize,
}

impl Batch {
    /// Causal-LM rows from windows of `context + 1` tokens.
    fn from_windows<'a>(windows: impl ExactSizeIterator<Item = &'a [u32]>, context: usize) -> Self {
        let batch_size = windows.len();
        let mut inputs = Vec::with_capacity(batch_size * context);
        let mut targets = Vec::with_capacity(batch_size * context);
        for window in windows {
            inputs.extend_from_slice(&window[..context]);
            targets.extend_from_slice(&window[1..]);
        }
        Self { inputs, targets, batch_size, context }
    }
}

/// Seeded shuffling over the train windows, epoch after epoch: a new permutation each epoch
/// (Fisher–Yates with [`Rng`]). Its state is plain serialisable values (seed, epoch, position in
/// the epoch) so a resumed run continues with exactly the batches an uninterrupted run would have
/// seen; the permutation is recomputed from `(seed, epoch)` rather than stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batcher {
    seed: u64,
    /// Completed epochs: the epoch the next window comes from.
    epoch: usize,
    /// Windows of this epoch already handed out.
    position: usize,
    #[serde(skip)]
    order: OrderCache,
}

impl Batcher {
    pub fn new(seed: u64) -> Self {
        Self { seed, epoch: 0, position: 0, order: OrderCache::default() }
    }

    /// The next `batch_size` train windows as a causal-LM batch: inputs = `window[..t]`, targets =
    /// `window[1..]` with `t = context`. A batch may span the end of an epoch.
    pub fn next_batch(&mut self, data: &Dataset, batch_size: usize) -> Batch {
        let windows = data.windows(Split::Train);
        let indices: Vec<usize> = (0..batch_size).map(|_| self.next_index(windows)).collect();
        let rows = indices.iter().map(|&i| data.window(Split::Train, i));
        Batch::from_windows(rows, data.config().context)
    }

    /// Completed epochs (0 during the first pass over the train windows).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Windows of the current epoch already handed out.
    pub fn position(&self) -> usize {
        self.position
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next train window index, moving to a new epoch when this one is used up.
    fn next_index(&mut self, windows: usize) -> usize {
        if self.position >= windows {
            // Only reached when the data changed size since the state was saved.
            self.epoch += 1;
            self.position = 0;
        }
        let index = self.order.get(self.seed, self.epoch, windows)[self.position];
        self.position += 1;
        if self.position == windows {
            self.epoch += 1;
            self.position = 0;
        }
        index
    }
}

/// The current epoch's permutation, kept between batches because recomputing it costs one draw
/// per window. Not part of the state: equal `(seed, epoch, windows)` give the same permutation.
#[derive(Clone, Default)]
struct OrderCache {
    key: Option<(u64, usize, usize)>,
    order: Vec<usize>,
}

impl OrderCache {
    fn get(&mut self, seed: u64, epoch: usize, windows: usize) -> &[usize] {
        if self.key != Some((seed, epoch, windows)) {
            self.order = epoch_order(seed, epoch, windows);
            self.key = Some((seed, epoch, windows));
        }
        &self.order
    }
}

impl PartialEq for OrderCache {
    /// A cache never makes two batchers differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for OrderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrderCache")
    }
}

/// The order of the windows in `epoch`: a Fisher–Yates shuffle of `0..windows`.
fn epoch_order(seed: u64, epoch: usize, windows: usize) -> Vec<usize> {
    let mut rng = epoch_rng(seed, epoch);
    let mut order: Vec<usize> = (0..windows).collect();
    for i in (1..windows).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// A generator per `(seed, epoch)`. The pair is hashed (one SplitMix output) rather than added:
/// SplitMix streams of seeds `s` and `s + k·γ` are the same stream shifted by `k` draws, so
/// `seed + epoch` would make consecutive epochs' shuffles overlap.
fn epoch_rng(seed: u64, epoch: usize) -> Rng {
    let mut mix = Rng::new(seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    Rng::new(mix.next_u64())
}

/// Evaluation batches: `batches * batch_size` windows of `split` at evenly spaced indices
/// (deterministic, the same at every evaluation, so loss curves are comparable), cut into batches
/// of `batch_size`. Fewer if the split has fewer windows: then every window, the last batch
/// possibly smaller. Empty when the split has no windows or either count is 0.
pub fn eval_batches(data: &Dataset, split: Split, batch_size: usize, batches: usize) -> Vec<Batch> {
    let windows = data.windows(split);
    let wanted = batch_size.saturating_mul(batches).min(windows);
    if wanted == 0 {
        return Vec::new();
    }
    // u64 so that `j * windows` cannot overflow a 32-bit usize (wasm32).
    let indices: Vec<usize> =
        (0..wanted as u64).map(|j| (j * windows as u64 / wanted as u64) as usize).collect();
    indices
        .chunks(batch_size)
        .map(|chunk| {
            let rows = chunk.iter().map(|&i| data.window(split, i));
            Batch::from_windows(rows, data.config().context)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Masked-LM corruption
// ---------------------------------------------------------------------------------------------

/// Share of (non-special) positions a masked LM predicts, and what becomes of them (BERT paper).
const MASK_RATE: f64 = 0.15;
const MASK_AS_MASK: f64 = 0.8;
const MASK_AS_RANDOM: f64 = 0.1;

/// BERT masked-LM corruption of a batch's inputs (rows of `row_len` ids, flattened): each
/// non-special position is chosen with probability 0.15; a chosen position becomes `mask_id` 80%
/// of the time, a uniformly random id in `0..vocab_size` (never a special id or `mask_id`) 10%,
/// and stays 10%. Returns (corrupted inputs, labels) where `labels[i]` is the original id at
/// chosen positions and `None` elsewhere. At least one position per row is chosen (one uniformly
/// among the non-special positions if the draws chose none) so every row has a loss.
///
/// `row_len` 0 is treated as 1; a final partial row is a row.
pub fn mask_tokens(
    inputs: &[u32],
    row_len: usize,
    vocab_size: usize,
    mask_id: u32,
    special_ids: &[u32],
    rng: &mut Rng,
) -> (Vec<u32>, Vec<Option<u32>>) {
    let mut specials = special_ids.to_vec();
    specials.sort_unstable();
    specials.dedup();
    let mut never_drawn: Vec<u32> =
        specials.iter().copied().chain([mask_id]).filter(|&id| (id as usize) < vocab_size).collect();
    never_drawn.sort_unstable();
    never_drawn.dedup();
    let masker = Masker { vocab_size, mask_id, never_drawn };

    let mut corrupted = inputs.to_vec();
    let mut labels = vec![None; inputs.len()];
    let rows = corrupted.chunks_mut(row_len.max(1)).zip(labels.chunks_mut(row_len.max(1)));
    for (row, row_labels) in rows {
        let candidates: Vec<usize> =
            (0..row.len()).filter(|&i| specials.binary_search(&row[i]).is_err()).collect();
        let mut chosen = 0;
        for &i in &candidates {
            if rng.next_f64() < MASK_RATE {
                masker.corrupt(&mut row[i], &mut row_labels[i], rng);
                chosen += 1;
            }
        }
        if chosen == 0 && !candidates.is_empty() {
            let i = candidates[rng.below(candidates.len())];
            masker.corrupt(&mut row[i], &mut row_labels[i], rng);
        }
    }
    (corrupted, labels)
}

/// What [`mask_tokens`] puts at a chosen position.
struct Masker {
    vocab_size: usize,
    mask_id: u32,
    /// Sorted ids a random replacement must avoid (specials and `mask_id`, inside the vocabulary).
    never_drawn: Vec<u32>,
}

impl Masker {
    fn corrupt(&self, id: &mut u32, label: &mut Option<u32>, rng: &mut Rng) {
        *label = Some(*id);
        let r = rng.next_f64();
        if r < MASK_AS_MASK {
            *id = self.mask_id;
        } else if r < MASK_AS_MASK + MASK_AS_RANDOM {
            if let Some(random) = self.random_ordinary_id(rng) {
                *id = random;
            }
        }
    }

    /// A uniform draw among the ids in `0..vocab_size` that are not in `never_drawn`: draw a rank
    /// among those ids, then step over the excluded ids below it.
    fn random_ordinary_id(&self, rng: &mut Rng) -> Option<u32> {
        let ordinary = self.vocab_size.checked_sub(self.never_drawn.len()).filter(|&n| n > 0)?;
        let mut id = rng.below(ordinary) as u32;
        for &excluded in &self.never_drawn {
            if excluded <= id {
                id += 1;
            } else {
                break;
            }
        }
        Some(id)
    }
}
