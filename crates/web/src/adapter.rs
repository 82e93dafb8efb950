//! What kind of adapter WebGPU gave us. Browsers do not always set `isFallbackAdapter` for a
//! software rasterizer (Chromium's SwiftShader reports itself only by its architecture), so the
//! names are read too. Pure, so it is tested natively.

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
