//! The Web Worker built with Burn's fusion and autotune (the `tuned` feature): the same code as
//! `worker.rs`, started by the page on hardware adapters.

fn main() {
    #[cfg(target_arch = "wasm32")]
    hearth_web::worker::start();
}
