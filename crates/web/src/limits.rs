//! Whether a model fits the device: shared by the worker, which refuses to load what does not
//! fit, and the device panel, which says so in advance.

use hearth_lm::model::memory::Budget;

use crate::protocol::DeviceInfo;
use crate::units::human_bytes;

/// The weights the CPU backend may hold: it keeps them in wasm memory, which ends at 4 GiB,
/// with room left for activations, the tokenizer and the page's work. GPT-2 medium (1.4 GB as
/// f32) fits; GPT-2 large (3.1 GB) does not.
pub const CPU_WEIGHTS_LIMIT: u64 = 2560 << 20;

/// The weights a page may ask a GPU for. WebGPU does not tell a page how much memory its GPU
/// has, so this only stops absurd configs (GPT-2 XL is 6.2 GB as f32); a model under it that
/// the GPU cannot hold fails when a tensor is allocated, and says so.
pub const GPU_WEIGHTS_LIMIT: u64 = 32 << 30;

/// One tensor in flight: weights stream tensor by tensor, so wasm memory holds the current
/// tensor's bytes (GPT-2 XL's embedding is 321 MB) and never the file.
pub const TENSOR_IN_FLIGHT_LIMIT: u64 = 1 << 30;

/// `(weights, one tensor)` the device may take, in bytes as stored: what
/// `hearth_lm::io::streamed::ModelStream` checks a config and a file's header against.
pub fn weight_limits(info: &DeviceInfo) -> (u64, u64) {
    if info.backend == "webgpu" {
        (GPU_WEIGHTS_LIMIT, info.max_binding.min(info.max_buffer).min(TENSOR_IN_FLIGHT_LIMIT))
    } else {
        (CPU_WEIGHTS_LIMIT, TENSOR_IN_FLIGHT_LIMIT)
    }
}

/// What a training run in the tab may need (weights, gradients, AdamW moments, activations;
/// `hearth_lm::model::memory`): wasm memory ends at 4 GiB, where the CPU fallback keeps
/// everything, and WebGPU does not tell a page how much memory its GPU has. A run over it is
/// refused before anything is allocated, with the batch or context that would fit.
pub const TRAINING_BUDGET: u64 = 3 << 30;

/// What a training run in the tab may use: [`TRAINING_BUDGET`] bytes, and on WebGPU what the
/// adapter binds in one storage buffer, so a step whose logits or attention scores (or a model
/// whose embedding) exceed it is refused, with the batch that fits, before anything is
/// allocated. The CPU backend has no per-buffer limit.
pub fn training_budget(info: &DeviceInfo) -> Budget {
    Budget {
        bytes: TRAINING_BUDGET,
        max_buffer: (info.backend == "webgpu").then(|| info.max_binding.min(info.max_buffer)),
    }
}

/// Refuses a model the device cannot hold (`weight_bytes` and `largest_tensor_bytes` as stored),
/// naming the limit it breaks.
pub fn check_fits(info: &DeviceInfo, weight_bytes: u64, largest_tensor_bytes: u64) -> Result<(), String> {
    let (max_weights, max_tensor) = weight_limits(info);
    let gpu = info.backend == "webgpu";
    if weight_bytes > max_weights {
        let (weights, limit) = (human_bytes(weight_bytes), human_bytes(max_weights));
        return Err(if gpu {
            format!("the model's weights are {weights}, more than this page asks a GPU for ({limit}); use the hearth CLI")
        } else {
            format!(
                "the model's weights are {weights} — the CPU backend keeps them in browser memory, which holds \
                 {limit} of weights; use a GPU or the hearth CLI"
            )
        });
    }
    if largest_tensor_bytes > max_tensor {
        let (tensor, binding) = (human_bytes(largest_tensor_bytes), info.max_binding.min(info.max_buffer));
        return Err(if gpu && largest_tensor_bytes > binding {
            format!(
                "the model does not fit this GPU: its largest tensor needs a {tensor} buffer, and this adapter \
                 binds at most {} (maxStorageBufferBindingSize)",
                human_bytes(binding)
            )
        } else {
            format!(
                "its largest tensor is {tensor}, more than the {} the page streams at once",
                human_bytes(max_tensor)
            )
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(max_binding: u64) -> DeviceInfo {
        DeviceInfo { backend: "webgpu".into(), max_binding, max_buffer: 1 << 31, ..DeviceInfo::default() }
    }

    #[test]
    fn gpt2_embedding_needs_more_than_the_default_binding() {
        // GPT-2's token embedding: 50257 × 768 × 4 bytes.
        let wte = 50257 * 768 * 4;
        let err = check_fits(&gpu(128 << 20), 500 << 20, wte).unwrap_err();
        assert!(err.contains("147.2 MiB") && err.contains("128.0 MiB"), "{err}");
        assert!(check_fits(&gpu(1 << 30), 500 << 20, wte).is_ok());
    }

    /// The published sizes: on a GPU that binds 1 GiB (SwiftShader's) every GPT-2 fits, XL's
    /// 6.2 GB included, since only one tensor at a time passes through wasm memory; the CPU
    /// backend, which keeps the weights in wasm memory, holds GPT-2 medium but not large.
    #[test]
    fn the_gpt2_family_on_a_gpu_and_on_the_cpu() {
        let cpu = DeviceInfo { backend: "cpu".into(), ..DeviceInfo::default() };
        for (name, fits_cpu) in
            [("gpt2", true), ("gpt2-medium", true), ("gpt2-large", false), ("gpt2-xl", false)]
        {
            let c = hearth_lm::Gpt2Config::preset(name).unwrap();
            let (weights, largest) = (c.num_parameters() as u64 * 4, c.largest_tensor() as u64 * 4);
            assert!(check_fits(&gpu(1 << 30), weights, largest).is_ok(), "{name} on the GPU");
            let on_cpu = check_fits(&cpu, weights, largest);
            assert_eq!(on_cpu.is_ok(), fits_cpu, "{name} on the CPU: {on_cpu:?}");
        }
        let xl = hearth_lm::Gpt2Config::preset("gpt2-xl").unwrap();
        let err = check_fits(&cpu, xl.num_parameters() as u64 * 4, 1 << 20).unwrap_err();
        assert!(err.contains("browser memory"), "{err}");
    }

    /// f16 storage (an adapter with shader-f16) halves the bytes the fit rule checks: GPT-2 XL's
    /// embedding (321 MB as f32) does not fit a 256 MiB binding, and fits it as f16 (161 MB).
    #[test]
    fn f16_storage_fits_what_f32_does_not() {
        use hearth_lm::model::precision::WeightDtype;
        use hearth_lm::ModelConfig;
        let xl = ModelConfig::Gpt2(hearth_lm::Gpt2Config::preset("gpt2-xl").unwrap());
        let fits = |weights: WeightDtype| {
            let info = DeviceInfo { weights: weights.name().into(), ..gpu(256 << 20) };
            let storage = info.weights();
            let (all, largest) = (xl.weight_bytes(storage), xl.largest_tensor_bytes(storage));
            check_fits(&info, all as u64, largest as u64)
        };
        let err = fits(WeightDtype::F32).unwrap_err();
        assert!(err.contains("306.7 MiB") && err.contains("256.0 MiB"), "{err}");
        assert!(fits(WeightDtype::F16).is_ok());
        // An unknown word from an older worker reads as f32, the safe side.
        assert_eq!(
            DeviceInfo { weights: "bf16".into(), ..DeviceInfo::default() }.weights(),
            WeightDtype::F32
        );
    }

    #[test]
    fn absurd_models_are_refused_on_any_backend() {
        let err = check_fits(&gpu(1 << 30), 40 << 30, 1 << 20).unwrap_err();
        assert!(err.contains("hearth CLI"), "{err}");
        let cpu = DeviceInfo { backend: "cpu".into(), ..DeviceInfo::default() };
        let err = check_fits(&cpu, 1 << 30, 2 << 30).unwrap_err();
        assert!(err.contains("streams at once"), "{err}");
    }

    #[test]
    fn the_tensor_in_flight_is_bounded_by_the_binding_and_wasm_memory() {
        assert_eq!(weight_limits(&gpu(128 << 20)), (GPU_WEIGHTS_LIMIT, 128 << 20));
        assert_eq!(weight_limits(&gpu(4 << 30)).1, TENSOR_IN_FLIGHT_LIMIT);
    }

    #[test]
    fn a_training_budget_on_webgpu_carries_the_binding_limit() {
        let budget = training_budget(&gpu(128 << 20));
        assert_eq!(budget, Budget { bytes: TRAINING_BUDGET, max_buffer: Some(128 << 20) });
        let cpu = DeviceInfo { backend: "cpu".into(), ..DeviceInfo::default() };
        assert_eq!(training_budget(&cpu).max_buffer, None);
    }
}
