//! What generation and scoring need of a decoder, whatever its architecture: GPT-2 and the Llama
//! family implement it, so `infer::generate` and `infer::score` are written once.

use burn::tensor::{Device, Int, Tensor};

use super::gpt2::Gpt2LMHeadModel;
use super::kv_cache::KvCache;
use super::llama::LlamaForCausalLM;

pub trait CausalLm {
    /// Rows of the output projection: every id must be below this.
    fn vocab_size(&self) -> usize;
    /// The longest window the model is run on (its position table, or the context it was
    /// trained for under rotary positions).
    fn context(&self) -> usize;
    fn device(&self) -> Device;
    /// Logits for every position, `[b, t, vocab]`, extending `cache` when given.
    fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3>;
    /// Logits of the last position, `[b, vocab]`.
    fn forward_last(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<2>;
}

impl CausalLm for Gpt2LMHeadModel {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }
    fn context(&self) -> usize {
        self.config().n_positions
    }
    fn device(&self) -> Device {
        Gpt2LMHeadModel::device(self)
    }
    fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        Gpt2LMHeadModel::forward(self, ids, cache)
    }
    fn forward_last(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<2> {
        Gpt2LMHeadModel::forward_last(self, ids, cache)
    }
}

impl CausalLm for LlamaForCausalLM {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }
    fn context(&self) -> usize {
        self.config().max_position_embeddings
    }
    fn device(&self) -> Device {
        LlamaForCausalLM::device(self)
    }
    fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        LlamaForCausalLM::forward(self, ids, cache)
    }
    fn forward_last(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<2> {
        LlamaForCausalLM::forward_last(self, ids, cache)
    }
}

/// A boxed decoder (as [`super::AnyModel`] holds them) is one too.
impl<T: CausalLm + ?Sized> CausalLm for Box<T> {
    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }
    fn context(&self) -> usize {
        (**self).context()
    }
    fn device(&self) -> Device {
        (**self).device()
    }
    fn forward(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<3> {
        (**self).forward(ids, cache)
    }
    fn forward_last(&self, ids: Tensor<2, Int>, cache: Option<&mut KvCache>) -> Tensor<2> {
        (**self).forward_last(ids, cache)
    }
}
