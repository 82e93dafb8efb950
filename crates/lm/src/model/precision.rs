//! How a loaded model stores its weights: every matrix (the projections and the embeddings,
//! nearly all of the bytes) in f32, or in f16 on devices that compute in it (WebGPU adapters
//! with `shader-f16`, Vulkan GPUs, the Flex CPU backend). f16 halves the memory a model needs,
//! so a GPU holds twice the model; vectors (biases, LayerNorm) stay f32, being ~0.1 % of the bytes.
//!
//! A matmul runs in the weight's dtype (Burn multiplies two tensors of one dtype, and a mixed
//! pair is wrong on wgpu without an error), so [`linear`] and [`project`] cast the activation to
//! f16 and the product back to f32: the residual stream, LayerNorm, softmax and the sampler stay
//! f32. Training always uses f32 weights; a model with f16 storage is for inference.

use std::str::FromStr;

use burn::nn::{Embedding, Linear};
use burn::tensor::{DType, Device, FloatDType, Int, Tensor};

use crate::error::{invalid, Error};

/// The dtype a model's matrices are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    #[default]
    F32,
    F16,
}

impl WeightDtype {
    /// Bytes per element.
    pub fn bytes(self) -> u128 {
        match self {
            WeightDtype::F32 => 4,
            WeightDtype::F16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "f32",
            WeightDtype::F16 => "f16",
        }
    }

    pub fn float(self) -> FloatDType {
        match self {
            WeightDtype::F32 => FloatDType::F32,
            WeightDtype::F16 => FloatDType::F16,
        }
    }

    /// Whether `device` stores and multiplies tensors of this dtype. Burn computes garbage in a
    /// dtype the device lacks, so this is asked before any f16 tensor is made.
    pub fn supported_on(self, device: &Device) -> bool {
        match self {
            WeightDtype::F32 => true,
            WeightDtype::F16 => device.supports_dtype(FloatDType::F16),
        }
    }

    /// f16 where the device has it, else f32: the smaller storage that computes correctly.
    pub fn smallest_on(device: &Device) -> Self {
        if WeightDtype::F16.supported_on(device) {
            WeightDtype::F16
        } else {
            WeightDtype::F32
        }
    }

    /// The dtype a parameter of rank `rank` is stored in: matrices take this one, vectors f32.
    pub fn for_rank(self, rank: usize) -> Self {
        if rank >= 2 {
            self
        } else {
            WeightDtype::F32
        }
    }

    /// The same as a Burn dtype.
    pub fn dtype(self) -> DType {
        self.float().into()
    }
}

impl FromStr for WeightDtype {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "f32" | "float32" => Ok(WeightDtype::F32),
            "f16" | "float16" => Ok(WeightDtype::F16),
            other => Err(invalid!("unknown weight dtype `{other}`; expected f32 or f16")),
        }
    }
}

/// The dtype a float tensor holds, as a [`FloatDType`] to cast to (f32 for anything that is
/// not one of the float dtypes, which a weight never is).
fn float_of(tensor_dtype: DType) -> FloatDType {
    match tensor_dtype {
        DType::F16 => FloatDType::F16,
        DType::BF16 => FloatDType::BF16,
        DType::F64 => FloatDType::F64,
        _ => FloatDType::F32,
    }
}

/// `x · W + b` for a [`Linear`] whose weight may be stored in f16: the product is computed in
/// the weight's dtype and returned as f32; the bias (f32) is added after. With f32 weights this
/// is `layer.forward(x)`, so training and autodiff see Burn's own op.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let weight = layer.weight.val();
    if let Some(y) = one_row(&x, |row| super::row_product::times(row, &weight)) {
        return match &layer.bias {
            Some(bias) => y + bias.val().unsqueeze::<D>(),
            None => y,
        };
    }
    if weight.dtype() == DType::F32 {
        return layer.forward(x);
    }
    let dtype = float_of(weight.dtype());
    let y = burn::tensor::module::linear(x.cast(dtype), weight, None).cast(FloatDType::F32);
    match &layer.bias {
        Some(bias) => y + bias.val().cast(FloatDType::F32).unsqueeze::<D>(),
        None => y,
    }
}

/// `product` of `x` as one `[1, k]` row, shaped back as `x` with the product's width, when `x`
/// holds one row (decoding a token: [`super::row_product`]) and `product` takes it.
fn one_row<const D: usize>(
    x: &Tensor<D>,
    product: impl FnOnce(&Tensor<2>) -> Option<Tensor<2>>,
) -> Option<Tensor<D>> {
    let dims = x.dims();
    let k = dims[D - 1];
    if dims.iter().product::<usize>() != k {
        return None;
    }
    let y = product(&x.clone().reshape([1, k]))?;
    let mut out = dims;
    out[D - 1] = y.dims()[1];
    Some(y.reshape(out))
}

/// An embedding lookup, as f32 whatever the table's storage.
pub fn embed(table: &Embedding, ids: Tensor<2, Int>) -> Tensor<3> {
    table.forward(ids).cast(FloatDType::F32)
}

/// `x · Wᵀ` for a `[vocab, d]` matrix stored in any float dtype (the tied output projections),
/// as f32.
pub fn project(x: Tensor<2>, weight: Tensor<2>) -> Tensor<2> {
    if let Some(y) = super::row_product::times_transposed(&x, &weight) {
        return y;
    }
    if weight.dtype() == DType::F32 {
        return x.matmul(weight.transpose());
    }
    let dtype = float_of(weight.dtype());
    x.cast(dtype).matmul(weight.transpose()).cast(FloatDType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_sizes() {
        assert_eq!("f16".parse::<WeightDtype>().unwrap(), WeightDtype::F16);
        assert_eq!("float32".parse::<WeightDtype>().unwrap(), WeightDtype::F32);
        let err = "int8".parse::<WeightDtype>().unwrap_err().to_string();
        assert!(err.contains("f32 or f16"), "{err}");
        assert_eq!(WeightDtype::F16.bytes(), 2);
        assert_eq!(WeightDtype::F16.for_rank(1), WeightDtype::F32);
        assert_eq!(WeightDtype::F16.for_rank(2), WeightDtype::F16);
    }
}
