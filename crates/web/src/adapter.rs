//! What kind of adapter WebGPU gave us. Browsers do not always set `isFallbackAdapter` for a
//! software rasterizer (Chromium's SwiftShader reports itself only by its architecture), so the
//! names are read too. The judgement is pure, so it is tested natively; asking `navigator.gpu`
//! (the page, to choose a worker build, and the worker, to describe its device) is in [`js`].

/// Whether the adapter is a CPU emulating a GPU.
pub fn is_software(fallback: bool, names: &[&str]) -> bool {
    fallback || hearth_lm::tensor::is_software_adapter(names)
}

/// The Device panel's "Type" line for an adapter [`is_software`] judged.
pub fn kind_label(software: bool) -> String {
    if software {
        "software (a CPU emulating a GPU: correct, but slow)".into()
    } else {
        "hardware".into()
    }
}

/// `navigator.gpu`'s adapter, read the same way in the page and in the worker.
#[cfg(target_arch = "wasm32")]
pub mod js {
    use js_sys::{Function, Object, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    pub fn get(target: &JsValue, key: &str) -> JsValue {
        Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }

    pub fn text(target: &JsValue, key: &str) -> String {
        get(target, key).as_string().unwrap_or_default()
    }

    /// A JS exception (or thrown value) in words.
    pub fn message(e: &JsValue) -> String {
        e.as_string()
            .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
            .unwrap_or_else(|| format!("{e:?}"))
    }

    /// The adapter Burn will also get (high performance), or why there is none.
    pub async fn request() -> Result<JsValue, String> {
        let navigator = get(&js_sys::global(), "navigator");
        let gpu = get(&navigator, "gpu");
        if gpu.is_undefined() || gpu.is_null() {
            return Err("this browser has no WebGPU (navigator.gpu is missing)".into());
        }
        let request: Function =
            get(&gpu, "requestAdapter").dyn_into().map_err(|_| "navigator.gpu.requestAdapter is missing")?;
        let options = Object::new();
        let _ = Reflect::set(&options, &"powerPreference".into(), &"high-performance".into());
        let promise: Promise = request
            .call1(&gpu, &options)
            .map_err(|e| format!("requestAdapter failed: {}", message(&e)))?
            .dyn_into()
            .map_err(|_| "requestAdapter did not return a promise")?;
        let adapter =
            JsFuture::from(promise).await.map_err(|e| format!("requestAdapter failed: {}", message(&e)))?;
        if adapter.is_null() || adapter.is_undefined() {
            return Err("WebGPU is present but offers no adapter".into());
        }
        Ok(adapter)
    }

    /// The adapter's `info` names: vendor, architecture, description, device.
    pub fn names(adapter: &JsValue) -> [String; 4] {
        let details = get(adapter, "info");
        ["vendor", "architecture", "description", "device"].map(|key| text(&details, key))
    }

    /// [`super::is_software`] for an adapter from [`request`].
    pub fn is_software(adapter: &JsValue) -> bool {
        let details = get(adapter, "info");
        let fallback = get(adapter, "isFallbackAdapter").as_bool() == Some(true)
            || get(&details, "isFallbackAdapter").as_bool() == Some(true);
        let names = names(adapter);
        super::is_software(fallback, &names.each_ref().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_adapters_are_named_as_such() {
        // Chromium's SwiftShader on a machine without a GPU: not marked as a fallback.
        assert!(is_software(false, &["google", "swiftshader", ""]));
        assert!(is_software(false, &["mesa", "", "llvmpipe (LLVM 15.0.7, 256 bits)"]));
        assert!(is_software(true, &["", "", ""]));
        assert!(!is_software(false, &["nvidia", "ampere", "NVIDIA GeForce RTX 3080"]));
        assert!(kind_label(is_software(false, &["google", "SwiftShader"])).starts_with("software"));
        assert_eq!(kind_label(is_software(false, &["apple", "metal-3"])), "hardware");
    }
}
