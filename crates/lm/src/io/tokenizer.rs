//! A thin wrapper over Hugging Face `tokenizers`: built from bytes (no hub, no files), with the
//! GPT-2 and bert-base-uncased vocabularies built in ([`super::builtin`]).

use crate::error::{Error, Result};

use super::builtin;

/// Names accepted by [`Tokenizer::builtin`].
pub const BUILTIN_TOKENIZERS: [&str; 2] = [builtin::BUILTIN_FILES[0].name, builtin::BUILTIN_FILES[1].name];

/// A tokenizer plus the few facts the models need from it.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

/// One encoded text: what the tokenize panel and `hearth tokenize` show.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    pub attention_mask: Vec<u32>,
    /// 1 where the token was added by the tokenizer (`[CLS]`, `[SEP]`) or is a special token.
    pub special_tokens_mask: Vec<u32>,
}

impl Tokenizer {
    /// Parses a `tokenizer.json` (either merge format: `["a", "b"]` pairs or legacy `"a b"`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        // `tokenizers` 0.23 panics (`expect("Helper")` in its decoder deserializer) on invalid
        // JSON inside the `decoder` object, found by tests/fuzz.rs. Parsing the whole file first
        // turns every such file into an error (`IgnoredAny` is not enough: it skips the checks
        // of string escapes that also trip it).
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| Error::Tokenizer(format!("cannot read tokenizer.json: {e}")))?;
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("cannot read tokenizer.json: {e}")))?;
        Ok(Self { inner })
    }

    /// Wraps a tokenizer built in code (the `chars`, `bytes` and trained `bpe:N` tokenizers).
    pub fn from_inner(inner: tokenizers::Tokenizer) -> Self {
        Self { inner }
    }

    /// `gpt2` or `bert-base-uncased`: compiled into the crate, or supplied by the caller in a
    /// build without them ([`builtin::supply`]).
    pub fn builtin(name: &str) -> Result<Self> {
        Self::from_bytes(builtin::bytes(name)?)
    }

    /// Encodes with the tokenizer's own special tokens (BERT's `[CLS]`/`[SEP]`; none for GPT-2).
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        let enc = self.inner.encode(text, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            tokens: enc.get_tokens().to_vec(),
            attention_mask: enc.get_attention_mask().to_vec(),
            special_tokens_mask: enc.get_special_tokens_mask().to_vec(),
        })
    }

    /// Token ids of `text` with the tokenizer's special tokens.
    pub fn encode_ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode(text)?.ids)
    }

    /// Token ids of `text` without the tokenizer's own special tokens: a rendered chat prompt
    /// already holds them (transformers' `apply_chat_template` encodes with
    /// `add_special_tokens=False`), and Llama 3's tokenizer would add a second `<|begin_of_text|>`.
    pub fn encode_ids_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids` without special tokens (a chat reply as people read it: transformers'
    /// `decode(..., skip_special_tokens=True)`).
    pub fn decode_plain(&self, ids: &[u32]) -> Result<String> {
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} is outside the vocabulary (size {vocab})"
            )));
        }
        self.inner.decode(ids, true).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Text of `ids`, special tokens included (a user decoding an id wants to see it).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} is outside the vocabulary (size {vocab})"
            )));
        }
        self.inner.decode(ids, false).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The token string of one id (`Ġthe`, `##s`), as the vocabulary spells it.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The mask token of a masked LM's tokenizer and its id: the special token spelled `[MASK]`
    /// (BERT, ModernBERT) or `<mask>` (RoBERTa's family), whatever its id; `None` for a
    /// tokenizer without one.
    pub fn mask_token(&self) -> Option<(String, u32)> {
        let mut specials: Vec<(u32, String)> = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (id, t.content))
            .collect();
        specials.sort();
        let named = |want: &str| specials.iter().find(|(_, c)| c.as_str() == want).cloned();
        named("[MASK]")
            .or_else(|| named("<mask>"))
            // A vocabulary entry rather than an added token (BERT's vocab.txt).
            .or_else(|| self.token_to_id("[MASK]").map(|id| (id, "[MASK]".to_string())))
            .map(|(id, content)| (content, id))
    }

    /// The ids of the tokenizer's special tokens (`[CLS]`, `[SEP]`, `[PAD]`…).
    pub fn special_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// One past the largest id this tokenizer can produce (special tokens included): what a
    /// model's vocabulary must cover. Not the same as [`Self::vocab_size`] when ids have gaps.
    pub fn id_bound(&self) -> usize {
        let vocab = self.inner.get_vocab(true);
        vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0).max(self.vocab_size())
    }

    /// `tokenizer.json` of this tokenizer.
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The underlying Hugging Face tokenizer (for training one in `bpe:N`).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer").field("vocab_size", &self.vocab_size()).finish()
    }
}
