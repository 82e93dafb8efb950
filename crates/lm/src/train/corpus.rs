//! A training corpus: validated UTF-8 text, and its token ids encoded in bounded pieces.
//!
//! Pure on purpose: bytes in, no file IO, clocks or threads of its own, so the browser trains on
//! the same code as the CLI.

use crate::error::{invalid, tokenizer_error, Result};
use crate::io::tokenizer::Tokenizer;

/// A training corpus: one or more documents of validated UTF-8 text, checked once so every
/// later step can trust it. A plain `.txt` file is one document; several files, or the rows of a
/// JSONL or CSV file (see [`super::documents`]), are several.
#[derive(Clone)]
pub struct Corpus {
    documents: Vec<String>,
    /// Unicode scalar values in all documents, counted once (the dataset statistics report it).
    chars: usize,
}

impl Corpus {
    /// Validates a file's bytes as text. A leading UTF-8 byte-order mark is dropped (editors on
    /// Windows write one; it is not part of the text). NUL bytes are rejected even though they
    /// are valid UTF-8: text files do not contain them, binary files almost always do.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let text = text_of(bytes)?;
        if text.trim().is_empty() {
            return Err(invalid!("the corpus is empty (nothing but whitespace)"));
        }
        Self::from_documents(vec![text.to_owned()])
    }

    /// A corpus of several documents. Documents of only whitespace are dropped (a blank JSONL
    /// field, an empty file among many); at least one must remain.
    pub fn from_documents(documents: Vec<String>) -> Result<Self> {
        let documents: Vec<String> = documents.into_iter().filter(|d| !d.trim().is_empty()).collect();
        if documents.is_empty() {
            return Err(invalid!("the corpus is empty (no document has any text)"));
        }
        if let Some((i, offset)) =
            documents.iter().enumerate().find_map(|(i, d)| d.bytes().position(|b| b == 0).map(|o| (i, o)))
        {
            return Err(invalid!(
                "document {} contains a NUL byte (at offset {offset}), so it is not plain text",
                i + 1
            ));
        }
        let chars = documents.iter().map(|d| d.chars().count()).sum();
        Ok(Self { documents, chars })
    }

    pub fn documents(&self) -> &[String] {
        &self.documents
    }

    /// Number of Unicode chars (scalar values) in all documents, not bytes.
    pub fn chars(&self) -> usize {
        self.chars
    }

    /// FNV-1a of the documents: a resumed run must see the same text. A single document hashes
    /// as its text alone (the fingerprint of checkpoints made before documents existed).
    pub fn fingerprint(&self) -> u64 {
        let fnv = |h: u64, b: u8| (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        let mut h = 0xcbf2_9ce4_8422_2325;
        for (i, doc) in self.documents.iter().enumerate() {
            if i > 0 {
                // The boundary counts: ["ab", "c"] is not ["a", "bc"].
                h = fnv(h, 0x1e);
            }
            h = doc.bytes().fold(h, fnv);
        }
        h
    }
}

/// A file's bytes as text (see [`Corpus::from_bytes`]), the byte-order mark dropped.
pub(crate) fn text_of(bytes: &[u8]) -> Result<&str> {
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
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

impl std::fmt::Debug for Corpus {
    /// Sizes only: a corpus is megabytes of text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes: usize = self.documents.iter().map(String::len).sum();
        f.debug_struct("Corpus")
            .field("documents", &self.documents.len())
            .field("bytes", &bytes)
            .field("chars", &self.chars)
            .finish()
    }
}

/// Roughly how many bytes of text are encoded at once: an `Encoding` costs ~100 bytes per token,
/// so a whole multi-megabyte corpus in one call would need hundreds of megabytes.
const ENCODE_CHUNK_BYTES: usize = 64 * 1024;

/// The token ids of one text, without the tokenizer's added tokens (no `[CLS]`/`[SEP]` around
/// the whole text). The text is encoded in pieces to bound memory, cut only after a newline that
/// sits between two non-whitespace chars: no pre-tokenizer used here (GPT-2's regex, BERT's
/// whitespace/punctuation split, per-char, per-byte) joins tokens across such a point, so the ids
/// equal those of encoding the text in one piece.
pub fn encode_text(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for piece in text_pieces(text, ENCODE_CHUNK_BYTES) {
        let encoding = tokenizer.inner().encode(piece, false).map_err(tokenizer_error)?;
        ids.extend_from_slice(encoding.get_ids());
    }
    Ok(ids)
}

/// Every document's token ids ([`encode_text`]).
pub fn encode_documents(tokenizer: &Tokenizer, corpus: &Corpus) -> Result<Vec<Vec<u32>>> {
    corpus.documents().iter().map(|d| encode_text(tokenizer, d)).collect()
}

/// The corpus as one token stream: the documents' ids joined by the tokenizer's document
/// separator ([`document_separator`]) where it has one.
pub fn encode_corpus(tokenizer: &Tokenizer, corpus: &Corpus) -> Result<Vec<u32>> {
    let separator = document_separator(tokenizer);
    let mut ids = Vec::new();
    for (i, doc) in encode_documents(tokenizer, corpus)?.into_iter().enumerate() {
        if i > 0 {
            ids.extend(separator);
        }
        ids.extend(doc);
    }
    Ok(ids)
}

/// The token put between documents when they are joined into one stream: GPT-2's
/// `<|endoftext|>` (what nanoGPT and `group_texts` recipes use), else BERT's `[SEP]`; a
/// tokenizer with neither (characters, bytes) joins documents directly.
pub fn document_separator(tokenizer: &Tokenizer) -> Option<u32> {
    tokenizer.token_to_id("<|endoftext|>").or_else(|| tokenizer.token_to_id("[SEP]"))
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
