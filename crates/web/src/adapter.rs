//! What kind of adapter WebGPU gave us. Browsers do not always set `isFallbackAdapter` for a
//! software rasterizer (Chromium's SwiftShader reports itself only by its architecture), so the
//! names are read too. Pure, so it is tested natively.

/// Names software implementations of WebGPU/Vulkan/D3D report somewhere in their adapter info.
const SOFTWARE: [&str; 5] = ["swiftshader", "llvmpipe", "lavapipe", "softpipe", "microsoft basic render"];

/// Whether the adapter is a CPU emulating a GPU.
pub fn is_software(fallback: bool, names: &[&str]) -> bool {
    fallback || names.iter().any(|n| SOFTWARE.iter().any(|s| n.to_lowercase().contains(s)))
}

/// How the Device panel's "Type" line of a software adapter starts (the worker reads it back).
pub const SOFTWARE_LABEL: &str = "software";

/// The Device panel's "Type" line.
pub fn kind_label(fallback: bool, names: &[&str]) -> String {
    if is_software(fallback, names) {
        format!("{SOFTWARE_LABEL} (a CPU emulating a GPU: correct, but slow)")
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
        assert!(kind_label(false, &["google", "SwiftShader"]).starts_with("software"));
        assert_eq!(kind_label(false, &["apple", "metal-3"]), "hardware");
    }
}
