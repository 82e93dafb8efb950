//! The page: mounts the app. Its compute runs in the `hearth-worker` binary.

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        console_error_panic_hook::set_once();
        leptos::mount::mount_to_body(hearth_web::ui::App);
    }
}
