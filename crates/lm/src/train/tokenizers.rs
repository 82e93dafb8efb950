//! The tokenizer a pretraining run uses: characters, bytes, GPT-2's or BERT's vocabulary, or a
//! byte-level BPE trained on the corpus — each one a plain Hugging Face `tokenizer.json` when
//! saved, so `transformers` reads the same ids.

use std::collections::{BTreeSet, HashSet};
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BpeTrainer, Vocab, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

use super::corpus::Corpus;
use crate::error::{invalid, tokenizer_error, Error, Result};
use crate::io::tokenizer::Tokenizer;

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
    /// The tokenizer that came with a pretrained model being fine-tuned (saved in every
    /// checkpoint as `tokenizer.json`); it cannot be built from a corpus.
    Pretrained,
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
            "pretrained" => Ok(Self::Pretrained),
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
            Self::Pretrained => f.write_str("pretrained"),
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
        TokenizerChoice::Pretrained => {
            return Err(invalid!("a pretrained model's tokenizer comes with the model; it cannot be built"))
        }
    };
    if masked_lm {
        add_mlm_special_tokens(&mut inner)?;
    }
    Ok(Tokenizer::from_inner(inner))
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

/// One token per distinct char, ids = rank by code point (for ordinary text `"\n"` is 0, as in
/// nanoGPT), then `[UNK]` for chars the corpus never showed. It is a BPE model without merges and
/// without a pre-tokenizer: the model looks every char up on its own, which is exactly
/// char-level tokenization, and `Fuse` decodes by plain concatenation, so the round trip is exact
/// (spaces and newlines included).
fn char_tokenizer(corpus: &Corpus) -> Result<tokenizers::Tokenizer> {
    let chars: BTreeSet<char> = corpus.documents().iter().flat_map(|d| d.chars()).collect();
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
    let lines = corpus.documents().iter().flat_map(|d| d.split_inclusive('\n'));
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
