//! Shared helpers for the integration tests: fixtures, `.npy` reading, devices.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::Device;
use serde_json::Value;

/// `tests/fixtures` at the workspace root.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A Hugging Face parity case directory (see `tests/fixtures/cases/README.txt`).
pub fn case(name: &str) -> PathBuf {
    fixtures().join("cases").join(name)
}

pub fn read(path: impl AsRef<std::path::Path>) -> Vec<u8> {
    let path = path.as_ref();
    std::fs::read(path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub fn expected(case_name: &str) -> Value {
    serde_json::from_slice(&read(case(case_name).join("expected.json"))).expect("expected.json")
}

/// Reads a little-endian float32 C-order `.npy` file: `(shape, values)`.
pub fn read_npy(path: impl AsRef<std::path::Path>) -> (Vec<usize>, Vec<f32>) {
    let (shape, descr, data) = read_npy_raw(path);
    assert_eq!(descr, "<f4", "expected float32");
    (shape, data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Reads a little-endian int64 C-order `.npy` file: `(shape, values)`.
pub fn read_npy_i64(path: impl AsRef<std::path::Path>) -> (Vec<usize>, Vec<i64>) {
    let (shape, descr, data) = read_npy_raw(path);
    assert_eq!(descr, "<i8", "expected int64");
    (shape, data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect())
}

fn read_npy_raw(path: impl AsRef<std::path::Path>) -> (Vec<usize>, String, Vec<u8>) {
    let bytes = read(path);
    assert_eq!(&bytes[..6], b"\x93NUMPY", "not an npy file");
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'fortran_order': False"));
    let descr = header.split("'descr': '").nth(1).unwrap().split('\'').next().unwrap().to_string();
    let shape_str = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_str.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    (shape, descr, bytes[start + header_len..].to_vec())
}

/// Largest absolute difference; panics on length mismatch. A NaN on either side (or ∞ − ∞)
/// counts as an infinite difference: `f32::max` would skip it, and NaN logits would pass every tolerance.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (x - y).abs();
            if d.is_nan() {
                f32::INFINITY
            } else {
                d
            }
        })
        .fold(0.0, f32::max)
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("array of ids").iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array of floats").iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The CPU backends the parity tests run on: NdArray (the browser worker's fallback when WebGPU
/// is missing) and Flex (the CLI's default).
pub fn cpu_devices() -> Vec<(&'static str, Device)> {
    vec![("ndarray", ndarray()), ("flex", Device::flex())]
}

/// The NdArray backend: deprecated in Burn 0.22 in favour of Flex, kept because the browser
/// falls back to it (it builds for wasm32 without threads), so parity must hold on it too.
#[allow(deprecated)]
pub fn ndarray() -> Device {
    Device::ndarray()
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
