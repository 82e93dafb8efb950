//! The MLP activations a `config.json` may name (`activation_function` for GPT-2, `hidden_act`
//! for BERT), parsed once when the config is read rather than compared as strings at every use.

use burn::tensor::activation::gelu;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::fused::gelu_new;

/// An activation by its Hugging Face name; unknown names fail to parse with the list of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// The tanh approximation GPT-2 was trained with.
    #[serde(rename = "gelu_new")]
    GeluNew,
    /// The same tanh approximation under PyTorch's name.
    #[serde(rename = "gelu_pytorch_tanh")]
    GeluPytorchTanh,
    /// The exact erf GELU, BERT's.
    #[serde(rename = "gelu")]
    Gelu,
}

impl Activation {
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Gelu => gelu(x),
            Activation::GeluNew | Activation::GeluPytorchTanh => gelu_new(x),
        }
    }
}
