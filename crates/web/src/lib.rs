//! `hearth-web`: the browser app. The page (`hearth-web` binary, Leptos) draws the four panels
//! and sends requests to a Web Worker (`hearth-worker` binary) that owns the WebGPU device and
//! runs `hearth-lm`. Natively only the pure parts compile: the message protocol and the URL
//! rules, with their tests.

pub mod adapter;
pub mod choices;
pub mod hub;
pub mod kernels;
pub mod limits;
pub mod opening;
pub mod protocol;
pub mod units;

#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
pub mod worker;
