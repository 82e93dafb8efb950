//! Backend choice for the native binary: the CPU backends, or a GPU through wgpu (Vulkan, Metal,
//! DX12) running the same WGSL kernels as the browser's WebGPU.

use std::sync::OnceLock;

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, Tensor};
use hearth_lm::model::memory::{human_bytes, Budget};
use hearth_lm::model::precision::WeightDtype;
use hearth_lm::ModelConfig;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    Flex,
    Ndarray,
    Wgpu,
}

/// What the process's GPU is, when it runs on one: what commands check models and training
/// steps against, and what the start-up line names. Set once, when the device starts (Burn's
/// wgpu runtime is global to the process too).
#[derive(Debug, Clone)]
pub struct Gpu {
    /// The adapter's name and graphics API, e.g. "llvmpipe (LLVM 15.0.7, 256 bits) (Vulkan)".
    pub adapter: String,
    /// A CPU emulating a GPU (lavapipe, SwiftShader, WARP): correct, but slower than the CPU backends.
    pub software: bool,
    /// The largest buffer one kernel can bind (`maxStorageBufferBindingSize`, capped by
    /// `maxBufferSize`): the logits or attention scores of a step must fit in it.
    pub max_binding: u64,
    /// It computes in f16 (`shader-f16`), so `--weights f16` is available.
    pub f16: bool,
}

static GPU: OnceLock<Gpu> = OnceLock::new();

/// How loaded models store their matrices (`--weights`); set once, at start-up.
static WEIGHTS: OnceLock<WeightDtype> = OnceLock::new();

/// Sets `--weights` for the process.
pub fn set_weights(weights: WeightDtype) {
    let _ = WEIGHTS.set(weights);
}

/// The storage `--weights` asked for (f32 by default).
pub fn weights() -> WeightDtype {
    WEIGHTS.get().copied().unwrap_or_default()
}

/// The GPU this process computes on, if `--device wgpu` started one.
pub fn gpu() -> Option<&'static Gpu> {
    GPU.get()
}

impl Backend {
    /// Starts the backend. Only wgpu can fail: no adapter (no driver, no GPU), or one that
    /// computes wrong results.
    // NdArray is deprecated in Burn 0.22 (Flex replaces it) but still a supported choice.
    #[allow(deprecated)]
    pub fn device(self) -> Result<Device, String> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            Backend::Ndarray => Ok(Device::ndarray()),
            Backend::Wgpu => start_wgpu(),
        }
    }
}

fn start_wgpu() -> Result<Device, String> {
    // Mesa's Vulkan drivers load libwayland for window-system support, which prints
    // "error: XDG_RUNTIME_DIR is invalid or not set" on stderr once per probe when the variable
    // is unset (a headless machine, CI). A compute-only process shows no window: point it at the
    // temporary directory, where there is no compositor to find, and the probe fails quietly.
    // (Edition 2021: `set_var` is safe; this runs before any other thread exists.)
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    // Burn's runtime requests the adapter's own limits, so the device's limits are the adapter's.
    let (device, setup) = Device::wgpu_options().init_with_setup().map_err(|e| {
        format!(
            "--device wgpu: no GPU adapter started ({e}); install the GPU's Vulkan driver \
             (Debian: mesa-vulkan-drivers), or use --device flex"
        )
    })?;
    smoke_test(&device)?;
    let info = setup.adapter.get_info();
    let limits = setup.device.limits();
    let gpu = Gpu {
        adapter: format!("{} ({:?})", info.name, info.backend),
        software: info.device_type == wgpu::DeviceType::Cpu
            || hearth_lm::tensor::is_software_adapter(&[&info.name]),
        max_binding: limits.max_storage_buffer_binding_size.min(limits.max_buffer_size),
        f16: WeightDtype::F16.supported_on(&device),
    };
    // On stderr: stdout stays the command's own output (one JSON object with --json).
    if gpu.software {
        eprintln!(
            "device: {} — a software adapter (a CPU emulating a GPU): correct, but slower than --device flex",
            gpu.adapter
        );
    } else if cfg!(feature = "gpu-autotune") {
        // Without this a run's start looks hung: on an H200 the first `bench --train` spent over
        // a minute timing candidate kernels. The choices are not kept between runs: CubeCL's
        // on-disk cache is Burn's `persistence` feature, which would compile a database engine
        // (turso) into the CLI; measured on lavapipe, a second identical run tunes again.
        eprintln!(
            "device: {} — kernels are tuned for it the first time each shape is met in a run",
            gpu.adapter
        );
    } else {
        eprintln!("device: {}", gpu.adapter);
    }
    let _ = GPU.set(gpu);
    Ok(device)
}

/// A shader that fails validation can hand back stale memory without an error: check one
/// result before trusting the device with a run.
fn smoke_test(device: &Device) -> Result<(), String> {
    let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], device);
    let value = (x.clone() * x)
        .sum()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("--device wgpu: the GPU returned no result ({e:?})"))?;
    if value.first() == Some(&30.0) {
        Ok(())
    } else {
        Err(format!("--device wgpu: the GPU computed 1²+2²+3²+4² as {value:?}; use --device flex"))
    }
}

/// A training run's memory budget of `bytes`, with the GPU's per-buffer limit when there is one.
pub fn budget(bytes: u64) -> Budget {
    Budget { bytes, max_buffer: gpu().map(|gpu| gpu.max_binding) }
}

/// Refuses a model whose largest tensor (the token embedding, for any real vocabulary), stored
/// as `--weights` says, the GPU cannot bind in one kernel. The CPU backends have no such limit.
pub fn check_model(config: &ModelConfig) -> Result<(), String> {
    check_model_as(config, weights())
}

/// [`check_model`] for matrices stored as `weights`.
pub fn check_model_as(config: &ModelConfig, weights: WeightDtype) -> Result<(), String> {
    let bytes = config.largest_tensor_bytes(weights);
    match gpu() {
        Some(gpu) if bytes > u128::from(gpu.max_binding) => {
            // f16 halves the tensor: say so where it would then fit.
            let f16_fits = weights == WeightDtype::F32
                && gpu.f16
                && config.largest_tensor_bytes(WeightDtype::F16) <= u128::from(gpu.max_binding);
            let advice = if f16_fits {
                "use --weights f16 (half the bytes), or --device flex"
            } else {
                "use --device flex"
            };
            Err(format!(
                "the model does not fit this GPU: its largest tensor needs a {} buffer as {}, and this GPU binds at \
                 most {} in one kernel (maxStorageBufferBindingSize); {advice}",
                human_bytes(bytes),
                weights.name(),
                human_bytes(u128::from(gpu.max_binding)),
            ))
        }
        _ => Ok(()),
    }
}
