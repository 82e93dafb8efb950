//! RMSNorm (`LlamaRMSNorm`, and Qwen2's and Qwen3's copies of it): `x / √(mean(x²) + ε) · weight`,
//! over the last dimension, with no mean subtracted and no bias. Follows `modeling_llama.py` of
//! transformers 5.25.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct RmsNorm {
    /// `[dim]`, initialised to ones.
    pub weight: Param<Tensor<1>>,
    /// `rms_norm_eps`.
    #[module(skip)]
    eps: f64,
}

impl RmsNorm {
    pub fn new(dim: usize, eps: f64, device: &Device) -> Self {
        Self { weight: Param::from_tensor(Tensor::ones([dim], device)), eps }
    }

    /// # Shapes
    /// - x: `[..., dim]` → the same
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let variance = (x.clone() * x.clone()).mean_dim(D - 1);
        let x = x / (variance + self.eps).sqrt();
        x * self.weight.val().unsqueeze::<D>()
    }
}
