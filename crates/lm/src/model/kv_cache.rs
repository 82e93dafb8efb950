//! The decoders' key/value cache: every layer's keys and values for the tokens seen so far, so a
//! new token attends to the prefix without recomputing it.

use burn::tensor::Tensor;

#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// Per layer: `([b, heads, s, hd], [b, heads, s, hd])`, where `heads` is the key/value heads
    /// (fewer than the query heads under grouped-query attention: the cache holds them unrepeated).
    pub(crate) layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// Tokens cached (`s`).
    pub(crate) len: usize,
}

impl KvCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens whose keys and values are cached; the next token's position.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
