//! Small tensor helpers every part of the crate uses: host reads (always asynchronous, since
//! WebGPU has no synchronous readback), integer tensors from token ids, the cross-entropy loss
//! and GPT-2's GELU.

use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{invalid, Error, Result};

/// Whether `device` is a CPU backend (flex or ndarray): its tensors live in host memory, the
/// host reads and writes them without a copy, and IEEE infinities are exact. Burn's `Device`
/// names its backend only in its `Debug` form.
pub fn is_cpu(device: &Device) -> bool {
    let name = backend_name(device);
    name.starts_with("Device<Flex(") || name.starts_with("Device<NdArray(")
}

/// The `Debug` form of the device Burn dispatches to, e.g. `Device<Flex(..)>`.
fn backend_name(device: &Device) -> String {
    format!("{:?}", device.clone().inner())
}

/// Whether `device` is the Flex backend (the CLI's CPU), with or without autodiff: the one that
/// runs [`crate::fused`]'s kernels.
pub fn is_flex(device: &Device) -> bool {
    backend_name(device).starts_with("Device<Flex(")
}

/// Names software implementations of WebGPU/Vulkan/D3D (a CPU emulating a GPU) report somewhere
/// in their adapter info; not every one says so by a flag or device type.
const SOFTWARE_ADAPTERS: [&str; 5] =
    ["swiftshader", "llvmpipe", "lavapipe", "softpipe", "microsoft basic render"];

/// Whether any of an adapter's names (vendor, architecture, description, device) is a software
/// implementation's: shared by the worker's WebGPU adapter and the CLI's wgpu one.
pub fn is_software_adapter(names: &[&str]) -> bool {
    names.iter().any(|n| {
        let n = n.to_lowercase();
        SOFTWARE_ADAPTERS.iter().any(|s| n.contains(s))
    })
}

/// Reads a float tensor back to the host.
pub async fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| Error::Backend(format!("{e:?}")))?;
    data.try_to_vec::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))
}

/// An integer tensor (token ids, row indices) of `shape` from row-major values.
pub fn int_tensor<const D: usize>(values: &[u32], shape: [usize; D], device: &Device) -> Tensor<D, Int> {
    let values: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// `[1, n]` tensor of token ids.
pub fn ids_tensor(ids: &[u32], device: &Device) -> Tensor<2, Int> {
    int_tensor(ids, [1, ids.len()], device)
}

/// Mean cross-entropy of `logits` against `targets`, on the device.
///
/// # Shapes
/// - logits: `[n, vocab]`, targets: `[n]` → `[1]`
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let picked = log_softmax(logits, 1).gather(1, targets.reshape([n, 1])); // [n, 1]
    picked.mean().neg()
}

/// `gelu_new` from Burn's ops, as every backend but Flex computes it (see [`crate::fused`]):
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), written as the identical
/// x·σ(2√(2/π)·x·(1 + 0.044715·x²)): on CPU backends `x³` by `powf` and `tanh` are scalar libm
/// calls that took a fifth of a training step, and its backward repeats them.
pub fn gelu_new<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const TWO_SQRT_2_OVER_PI: f64 =
        2.0 * core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2;
    let z = x.clone() * ((x.clone() * x.clone() * 0.044715 + 1.0) * TWO_SQRT_2_OVER_PI);
    x * sigmoid(z)
}

/// Ids travel back to the host inside float tensors (one read instead of two); f32 holds every
/// integer up to 2^24 exactly.
pub const MAX_FLOAT_ID: usize = 1 << 24;

/// Refuses a vocabulary whose ids a float tensor could not carry exactly.
pub fn check_float_ids(vocab: usize) -> Result<()> {
    if vocab > MAX_FLOAT_ID {
        return Err(invalid!(
            "a vocabulary of {vocab} tokens is larger than this view supports ({MAX_FLOAT_ID})"
        ));
    }
    Ok(())
}

/// The `k` most probable entries of each row of `logits`, on the device: `k` probabilities then
/// their `k` ids (as floats), so one read brings both back.
///
/// # Shapes
/// - logits: `[n, vocab]` → `[n, 2k]`
pub fn top_k_rows(logits: Tensor<2>, k: usize) -> Tensor<2> {
    let (probs, ids) = softmax(logits, 1).topk_with_indices(k, 1);
    Tensor::cat(vec![probs, ids.float()], 1)
}

/// Splits a row of [`top_k_rows`] into `(id, probability)` pairs, most probable first.
pub fn top_k_pairs(row: &[f32]) -> Vec<(u32, f64)> {
    let k = row.len() / 2;
    (0..k).map(|i| (row[k + i] as u32, row[i] as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_adapters_are_recognised_by_name() {
        assert!(is_software_adapter(&["mesa", "llvmpipe (LLVM 15.0.7, 256 bits)"]));
        assert!(is_software_adapter(&["SwiftShader Device (Subzero)"]));
        assert!(!is_software_adapter(&["nvidia", "NVIDIA H200"]));
    }
}
