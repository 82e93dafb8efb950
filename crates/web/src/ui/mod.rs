//! The page: a header with the backend, tabs for the four panels and the device.

mod activity;
mod bridge;
mod charts;
mod device;
mod fill_mask;
mod generate;
mod inside;
mod model_source;
mod owner;
mod pretrain;
mod recovery;
mod safe_mode;
mod state;
mod tokenize;
mod verify;
mod widgets;

use leptos::prelude::*;

use state::AppState;

const TABS: [(&str, &str); 5] = [
    ("tokenize", "Tokenize"),
    ("fillmask", "Fill mask"),
    ("generate", "Generate"),
    ("pretrain", "Pretrain"),
    ("device", "Device"),
];

/// `?backend=cpu` forces the CPU backend, `?kernels=plain|tuned` a worker build; `#generate`
/// etc. opens a tab.
fn location_part(part: fn(&web_sys::Location) -> Result<String, wasm_bindgen::JsValue>) -> String {
    web_sys::window().and_then(|w| part(&w.location()).ok()).unwrap_or_default()
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    let search = location_part(web_sys::Location::search);
    let force_cpu = search.contains("backend=cpu");
    let test_hooks = search.contains("test-hooks");
    let requested = crate::kernels::requested(&search).map(String::from);
    let hooks = bridge::Hooks {
        fail_tuned: test_hooks && search.contains("fail-tuned"),
        crash_restore: test_hooks && search.contains("crash-restore"),
    };
    bridge::begin(state, force_cpu, requested, hooks);
    let initial = location_part(web_sys::Location::hash).trim_start_matches('#').to_string();
    let tab = RwSignal::new(if TABS.iter().any(|(id, _)| *id == initial) {
        initial
    } else {
        "tokenize".to_string()
    });
    let shown = move |id: &'static str| move || tab.get() != id;
    view! {
        <header>
            <h1>"Hearth"</h1>
            <p class="tagline">"Small language models on your own GPU: nothing installed, nothing leaves this machine."</p>
            <span class="backend-pill">
                "running on "
                <strong data-testid="backend">
                    {move || state.device.get().map_or_else(|| "…".to_string(), |d| d.backend)}
                </strong>
            </span>
            <recovery::TestHooks enabled=test_hooks />
        </header>
        <activity::ActivityLine />
        <recovery::Recovery />
        <owner::OwnerBanner />
        <safe_mode::SafeMode />
        <nav class="tabs">
            {TABS
                .iter()
                .map(|&(id, label)| {
                    view! {
                        <button
                            class="tab"
                            class:active=move || tab.get() == id
                            data-testid=format!("tab-{id}")
                            on:click=move |_| tab.set(id.to_string())
                        >
                            {label}
                        </button>
                    }
                })
                .collect_view()}
        </nav>
        <main>
            // Every panel stays mounted so a tab switch never loses its state.
            <div class:hidden=shown("tokenize")><tokenize::TokenizePanel /></div>
            <div class:hidden=shown("fillmask")><fill_mask::FillMaskPanel /></div>
            <div class:hidden=shown("generate")><generate::GeneratePanel /></div>
            <div class:hidden=shown("pretrain")><pretrain::PretrainPanel /></div>
            <div class:hidden=shown("device")><device::DevicePanel /></div>
        </main>
    }
}
