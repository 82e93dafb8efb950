//! Whether a model fits the device: shared by the worker, which refuses to load what does not
//! fit, and the device panel, which says so in advance.

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

/// Refuses a training step whose largest buffer (`largest` bytes, at `batch` rows: the logits or
/// the attention scores) is over what this adapter binds in one storage buffer, saying which
/// batch would fit. The CPU backend has no such limit.
pub fn check_training_buffer(info: &DeviceInfo, largest: u128, batch: usize) -> Result<(), String> {
    let limit = info.max_binding.min(info.max_buffer) as u128;
    if info.backend != "webgpu" || largest <= limit {
        return Ok(());
    }
    let per_row = largest / batch.max(1) as u128;
    let fits = limit.checked_div(per_row).unwrap_or(0);
    let advice = if fits >= 1 {
        format!("at most batch {fits} fits")
    } else {
        "even batch 1 does not fit: use a shorter context or a smaller vocabulary".into()
    };
    Err(format!(
        "a training step needs a {} buffer (the logits or attention scores of batch {batch}), and this adapter binds at most {} (maxStorageBufferBindingSize); {advice}",
        human_bytes(u64::try_from(largest).unwrap_or(u64::MAX)),
        human_bytes(u64::try_from(limit).unwrap_or(u64::MAX))
    ))
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
    fn a_training_buffer_over_the_binding_limit_says_which_batch_fits() {
        let info = gpu(128 << 20);
        // GPT-2's vocabulary: 64 rows × 128 tokens × 50257 × 4 bytes ≈ 1.6 GB of logits.
        let largest = 64u128 * 128 * 50257 * 4;
        let err = check_training_buffer(&info, largest, 64).unwrap_err();
        assert!(err.contains("at most batch 5 fits"), "{err}");
        assert!(check_training_buffer(&info, 1 << 20, 1).is_ok());
        let cpu = DeviceInfo { backend: "cpu".into(), ..DeviceInfo::default() };
        assert!(check_training_buffer(&cpu, largest, 64).is_ok());
    }
}
