//! Fused kernels, with their own backward passes, for the elementwise chains every transformer
//! layer repeats: GPT-2's tanh-GELU, the attention softmax and LayerNorm.
//!
//! Why: Burn computes these from its basic ops under autodiff — `gelu_new` is seven ops,
//! softmax five (max, sub, exp, sum, div), LayerNorm nine — and records each, so a training step
//! made a dozen passes over every activation forward and more backward, each allocating a
//! fresh buffer. On a small model those passes, not the matmuls, were most of a CPU step. Here
//! each is one pass forward and one backward.
//!
//! Only the Flex backend (the CLI's CPU, feature `flex`) runs them; every other backend — WebGPU,
//! the browser's ndarray fallback — computes the same functions from Burn's ops
//! ([`crate::tensor::gelu_new`], Burn's `softmax` and `LayerNorm`), which the tests hold the fused forms to.

#[cfg(feature = "flex")]
mod autodiff;
#[cfg(feature = "flex")]
mod cpu;
#[cfg(feature = "flex")]
mod math;

use burn::nn::LayerNorm;
use burn::tensor::Tensor;

#[cfg(feature = "flex")]
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch};

/// The fused forward passes, as a Burn backend extension: the Flex backend runs them and
/// `Autodiff<Flex>` records them with their backward passes ([`FusedBackward`]).
#[cfg(feature = "flex")]
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    fn fused_gelu_new(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn fused_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// The backward passes, called by the autodiff nodes on the inner backend only.
#[cfg(feature = "flex")]
pub trait FusedBackward: Backend {
    fn fused_gelu_new_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// From the forward pass's output `y`: `y ⊙ (g − Σ g⊙y)` per row.
    fn fused_softmax_last_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The gradients of the input, γ and β.
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether a tensor takes the fused path: `f32` on the Flex backend (with or without autodiff).
#[cfg(feature = "flex")]
fn fused<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == burn::tensor::DType::F32 && crate::tensor::is_flex(&x.device())
}

/// `gelu_new` (GPT-2's tanh approximation of GELU), elementwise.
pub fn gelu_new<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused(&x) {
        return Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu_new(x.into_dispatch()));
    }
    crate::tensor::gelu_new(x)
}

/// Softmax over the last dimension.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused(&x) {
        return Tensor::from_dispatch(<Dispatch as FusedOps>::fused_softmax_last(x.into_dispatch()));
    }
    burn::tensor::activation::softmax(x, D - 1)
}

/// `layer_norm.forward(x)`, with the module's ε given (Burn keeps it private).
pub fn layer_norm<const D: usize>(layer_norm: &LayerNorm, x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if let Some(beta) = layer_norm.beta.as_ref().filter(|_| fused(&x)) {
        let out = <Dispatch as FusedOps>::fused_layer_norm(
            x.into_dispatch(),
            layer_norm.gamma.val().into_dispatch(),
            beta.val().into_dispatch(),
            epsilon,
        );
        return Tensor::from_dispatch(out);
    }
    let _ = epsilon;
    layer_norm.forward(x)
}
