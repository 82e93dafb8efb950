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
            Activation::Gelu => gelu_exact(x),
            Activation::GeluNew | Activation::GeluPytorchTanh => gelu_new(x),
        }
    }
}

/// The exact GELU, `x · Φ(x)` = `½ x (1 + erf(x / √2))`, with its exact gradient.
///
/// Why not Burn's `gelu` alone: its forward is exact, but the backward every backend shares
/// (`ActivationOps::gelu_backward`) is the derivative of the tanh approximation, which only Flex
/// overrides. On ndarray (the tab's CPU fallback) and WebGPU a BERT or ModernBERT step's
/// gradients then differed from PyTorch's by up to 1e-3 of their size (found by ModernBERT's
/// 20-step parity run). Composed from `erf`, whose recorded backward is exact, autodiff derives
/// the true gradient; Flex keeps Burn's single op and its exact override.
fn gelu_exact<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if crate::tensor::is_flex(&x.device()) {
        return gelu(x);
    }
    x.clone() * (x * std::f64::consts::FRAC_1_SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5)
}
