//! The one error type of `hearth-lm`: every message is meant to be shown to a user as is.

/// Everything that can go wrong while loading, tokenizing, running or training a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `config.json` is not valid JSON or lacks a field we need.
    #[error("invalid config.json: {0}")]
    Config(String),
    /// The bytes are not a safetensors file, or a tensor in it cannot be read.
    #[error("malformed safetensors: {0}")]
    Safetensors(String),
    /// A tensor the architecture needs is not in the checkpoint.
    #[error("missing tensor `{0}` in the checkpoint")]
    MissingTensor(String),
    /// A tensor is present but its shape disagrees with the config.
    #[error("tensor `{key}` has shape {got:?}, but the config implies {want:?}")]
    ShapeMismatch { key: String, got: Vec<usize>, want: Vec<usize> },
    /// A tokenizer could not be built or could not encode/decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A request that cannot be honoured: empty text, no `[MASK]`, top-k 0, ...
    #[error("{0}")]
    InvalidInput(String),
    /// The backend failed while computing or reading a tensor.
    #[error("backend error: {0}")]
    Backend(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A `tokenizers` failure as our error, its message kept.
pub(crate) fn tokenizer_error(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

/// At most this many characters of what a file or a user wrote go into a message.
pub const EXCERPT_CHARS: usize = 200;

/// `text` as a message may quote it: whole when it is short, else its first [`EXCERPT_CHARS`]
/// characters and its length, so a forged name or value cannot make a message (and the page
/// that shows it) as large as the file.
pub fn excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}… ({} bytes in all)", &text[..end], text.len())),
    }
}

/// Shorthand for [`Error::InvalidInput`] with a formatted message.
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::Error::InvalidInput(format!($($arg)*)) };
}
pub(crate) use invalid;
