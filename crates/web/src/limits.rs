//! Whether a model fits the device: shared by the worker, which refuses to load what does not
//! fit, and the device panel, which says so in advance.

use hearth_lm::model::memory::Budget;

use crate::protocol::DeviceInfo;
use crate::units::human_bytes;

/// What a model file may weigh: it is held in wasm memory (4 GiB at most) while its tensors are
/// converted and uploaded.
pub const MODEL_FILE_LIMIT: u64 = 1536 << 20;

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

/// Refuses a model the device cannot hold, naming the limit it breaks.
pub fn check_fits(info: &DeviceInfo, largest_tensor_bytes: u64, file_bytes: u64) -> Result<(), String> {
    if file_bytes > MODEL_FILE_LIMIT {
        return Err(format!(
            "the model is {} — more than this page can hold in browser memory ({}); use the hearth CLI",
            human_bytes(file_bytes),
            human_bytes(MODEL_FILE_LIMIT)
        ));
    }
    if info.backend == "webgpu" {
        let limit = info.max_binding.min(info.max_buffer);
        if largest_tensor_bytes > limit {
            return Err(format!(
                "the model does not fit this GPU: its largest tensor needs a {} buffer, and this adapter \
                 binds at most {} (maxStorageBufferBindingSize)",
                human_bytes(largest_tensor_bytes),
                human_bytes(limit)
            ));
        }
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
        let err = check_fits(&gpu(128 << 20), wte, 500 << 20).unwrap_err();
        assert!(err.contains("147.2 MiB") && err.contains("128.0 MiB"), "{err}");
        assert!(check_fits(&gpu(1 << 30), wte, 500 << 20).is_ok());
    }

    #[test]
    fn huge_files_are_refused_on_any_backend() {
        let cpu = DeviceInfo { backend: "cpu".into(), ..DeviceInfo::default() };
        assert!(check_fits(&cpu, 1 << 30, 6 << 30).unwrap_err().contains("browser memory"));
        assert!(check_fits(&cpu, 1 << 30, 500 << 20).is_ok());
    }

    #[test]
    fn a_training_budget_on_webgpu_carries_the_binding_limit() {
        let budget = training_budget(&gpu(128 << 20));
        assert_eq!(budget, Budget { bytes: TRAINING_BUDGET, max_buffer: Some(128 << 20) });
        let cpu = DeviceInfo { backend: "cpu".into(), ..DeviceInfo::default() };
        assert_eq!(training_budget(&cpu).max_buffer, None);
    }
}
