//! The Web Worker: hearth-lm on WebGPU (or the CPU backend), driven by the page's messages.

fn main() {
    #[cfg(target_arch = "wasm32")]
    hearth_web::worker::start();
}
