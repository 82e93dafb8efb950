//! A training corpus: validated UTF-8 text, and its token ids encoded in bounded pieces.
//!
//! Pure on purpose: bytes in, no file IO, clocks or threads of its own, so the browser trains on
//! the same code as the CLI.

use crate::error::{invalid, tokenizer_error, Result};
use crate::io::tokenizer::Tokenizer;

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
