//! The one module that owns the compute device: WebGPU when the browser has a working adapter,
//! the ndarray CPU backend otherwise, and the checks that a model fits it.

use std::cell::RefCell;

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, FloatDType, Tensor};
use hearth_lm::model::precision::WeightDtype;

use crate::adapter::js::{self as adapter, get};
use crate::kernels::Kernels;
use crate::protocol::{DeviceInfo, Event};

thread_local! {
    /// The WebGPU device Burn computes on, kept to watch it and (test hook) to destroy it.
    static WGPU_DEVICE: RefCell<Option<wgpu::Device>> = const { RefCell::new(None) };
}

/// The device models run on, and what the page shows about it.
#[derive(Clone)]
pub struct Compute {
    pub device: Device,
    pub info: DeviceInfo,
}

/// The CPU backend: the fallback, and the reference WebGPU results are checked against.
// Burn 0.22 deprecates ndarray in favour of flex; the issue asks for ndarray as the browser's
// fallback, and it is the backend our parity tests already trust.
#[allow(deprecated)]
pub fn cpu_device() -> Device {
    Device::ndarray()
}

fn cpu(reason: String) -> Compute {
    Compute {
        device: cpu_device(),
        info: DeviceInfo {
            backend: "cpu".into(),
            fallback_reason: Some(reason),
            weights: WeightDtype::F32.name().into(),
            kernels: Kernels::of_this_build().name().into(),
            ..DeviceInfo::default()
        },
    }
}

/// WebGPU if it starts and computes correctly, else the CPU backend with the reason.
/// `fail_tuned` (a test hook) fails the check in the tuned build only.
pub async fn init(force_cpu: bool, fail_tuned: bool) -> Compute {
    if force_cpu {
        return cpu("the CPU backend was requested (?backend=cpu)".into());
    }
    if fail_tuned && Kernels::of_this_build() == Kernels::Tuned {
        return cpu("WebGPU computed wrong results (the test hook fail-tuned)".into());
    }
    let mut info = match adapter_info().await {
        Ok(info) => info,
        Err(reason) => return cpu(reason),
    };
    if Kernels::of_this_build() == Kernels::Tuned {
        install_subgroup_shims();
    }
    // Burn's WGSL runtime requests the adapter's own limits, not WebGPU's defaults, so the
    // limits read above are the device's.
    let (device, setup) = match Device::wgpu_options().init_with_setup_async().await {
        Ok(started) => started,
        Err(e) => return cpu(format!("WebGPU did not start: {e}")),
    };
    // A shader that fails validation can hand back stale memory without an error: check one.
    match smoke_test(&device).await {
        Ok(()) => {
            watch_loss(setup.device);
            info.backend = "webgpu".into();
            info.weights = weight_storage(&device).await.name().into();
            Compute { device, info }
        }
        Err(e) => cpu(format!("WebGPU computed wrong results ({e})")),
    }
}

/// Lets the tuned kernels compile in the browser as they do natively, with two changes to what
/// this worker asks of WebGPU (found on SwiftShader, where each failing kernel is a CubeCL panic):
/// - every `requestDevice` asks for the adapter's `subgroups` feature. CubeCL writes
///   `enable subgroups;` into a kernel that reads the subgroup size, as browsers' WGSL requires,
///   and several matmuls autotune tries read it; but wgpu 30's WebGPU backend has no name for the
///   feature (gfx-rs/wgpu#10146), so the device never had it ("extension 'subgroups' is not
///   allowed in the current environment").
/// - such a kernel turns off the `subgroup_uniformity` diagnostic. Browsers reject a subgroup
///   operation they cannot prove is reached by the whole subgroup; wgpu's native compiler does not
///   check it, and these kernels gave the CPU backend's results there (on an NVIDIA H200 and on
///   lavapipe) and do on SwiftShader with the check off.
///
/// The plain kernels read no subgroup value and are left as they were.
fn install_subgroup_shims() {
    let install = js_sys::Function::new_no_args(
        r#"
        const adapter = globalThis.GPUAdapter && GPUAdapter.prototype;
        const device = globalThis.GPUDevice && GPUDevice.prototype;
        if (!adapter || !device || adapter.hearthSubgroups) return;
        const request = adapter.requestDevice;
        adapter.requestDevice = function (descriptor) {
            const asked = Object.assign({}, descriptor || {});
            const features = Array.from(asked.requiredFeatures || []);
            if (this.features.has('subgroups') && !features.includes('subgroups')) features.push('subgroups');
            asked.requiredFeatures = features;
            return request.call(this, asked);
        };
        const create = device.createShaderModule;
        device.createShaderModule = function (descriptor) {
            const code = descriptor && descriptor.code;
            if (typeof code === 'string' && code.startsWith('enable subgroups;')) {
                const relaxed = code.replace('enable subgroups;', 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);');
                descriptor = Object.assign({}, descriptor, { code: relaxed });
            }
            return create.call(this, descriptor);
        };
        adapter.hearthSubgroups = true;
        "#,
    );
    if let Err(e) = install.call0(&wasm_bindgen::JsValue::NULL) {
        web_sys::console::warn_1(&e);
    }
}

/// A lost device (driver reset, GPU removed, the browser reclaiming it) fails every later
/// operation, so the worker is of no more use: tell the page, which starts a new worker. On
/// WebGPU each callback is a `.then` on `GPUDevice.lost`, so CubeCL's own watch (which poisons
/// its streams) stays installed beside this one.
fn watch_loss(device: wgpu::Device) {
    device.set_device_lost_callback(|reason, message| {
        let reason = match reason {
            wgpu::DeviceLostReason::Destroyed => "destroyed",
            _ => "lost",
        };
        let message = if message.is_empty() { reason.to_string() } else { format!("{reason}: {message}") };
        super::emit(&Event::DeviceLost { message });
    });
    WGPU_DEVICE.with(|d| *d.borrow_mut() = Some(device));
}

/// Test hook: destroys the WebGPU device, which resolves `GPUDevice.lost` as a real loss does.
pub fn lose_for_test() {
    match WGPU_DEVICE.with(|d| d.borrow().clone()) {
        Some(device) => device.destroy(),
        None => super::emit_error(
            crate::protocol::Topic::Device,
            "there is no WebGPU device to lose (CPU backend)",
        ),
    }
}

async fn smoke_test(device: &Device) -> Result<(), String> {
    let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], device);
    let y = (x.clone() * x).sum();
    let data = y.into_data_async().await.map_err(|e| format!("{e:?}"))?;
    let value = data.try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
    if value.first() == Some(&30.0) {
        Ok(())
    } else {
        Err(format!("1²+2²+3²+4² gave {value:?}"))
    }
}

/// f16 storage where the adapter has `shader-f16` (Burn registers the type only then) and a
/// small f16 matmul gives the right numbers; f32 otherwise. Half the bytes per weight, so twice
/// the model fits the GPU (hearth-lm's `model::precision`).
async fn weight_storage(device: &Device) -> WeightDtype {
    if !WeightDtype::F16.supported_on(device) {
        return WeightDtype::F32;
    }
    // [1 2; 3 4] · [0.5 -1; 0.25 2] = [1 3; 2.5 5], exact in f16.
    let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], device).cast(FloatDType::F16);
    let b = Tensor::<2>::from_floats([[0.5, -1.0], [0.25, 2.0]], device).cast(FloatDType::F16);
    let product = a.matmul(b).cast(FloatDType::F32);
    match product.into_data_async().await.map(|d| d.try_to_vec::<f32>()) {
        Ok(Ok(v)) if v == [1.0, 3.0, 2.5, 5.0] => WeightDtype::F16,
        _ => WeightDtype::F32,
    }
}

/// Asks `navigator.gpu` for the adapter Burn will also get (high performance) and reads its
/// description and limits.
async fn adapter_info() -> Result<DeviceInfo, String> {
    let adapter = adapter::request().await?;
    let limits_js = get(&adapter, "limits");
    let names = [
        "maxBufferSize",
        "maxStorageBufferBindingSize",
        "maxStorageBuffersPerShaderStage",
        "maxComputeWorkgroupStorageSize",
        "maxComputeInvocationsPerWorkgroup",
        "maxComputeWorkgroupSizeX",
        "maxComputeWorkgroupsPerDimension",
    ];
    let limits: Vec<(String, u64)> =
        names.iter().map(|n| (n.to_string(), get(&limits_js, n).as_f64().unwrap_or(0.0) as u64)).collect();
    let limit = |name: &str| limits.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v);
    let software = adapter::is_software(&adapter);
    let [vendor, architecture, description, device] = adapter::names(&adapter);
    let device_type = crate::adapter::kind_label(software);
    Ok(DeviceInfo {
        backend: "webgpu".into(),
        adapter: [description, device]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| "(unnamed)".into()),
        vendor,
        architecture,
        device_type,
        software,
        max_binding: limit("maxStorageBufferBindingSize"),
        max_buffer: limit("maxBufferSize"),
        limits,
        fallback_reason: None,
        // Decided once the device has started (`weight_storage`).
        weights: WeightDtype::F32.name().into(),
        kernels: Kernels::of_this_build().name().into(),
    })
}
