//! Where the fill-mask and generate panels get their model: a Hugging Face URL (kept in browser
//! storage after the first download), files picked from disk, or the model trained here.

use leptos::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::HtmlInputElement;

use super::bridge::{post, post_with};
use super::state::AppState;
use crate::protocol::{Request, Slot, TrainArch};
use crate::units::{human_bytes, human_count};

/// The model picker of `slot`'s panel.
#[component]
pub fn ModelSource(panel: Slot) -> impl IntoView {
    // `slot` is a reserved attribute name in Leptos' view macro.
    let slot = panel;
    let state = expect_context::<AppState>();
    let (prefix, default_url, arch) = match slot {
        Slot::FillMask => (
            "fillmask",
            "https://huggingface.co/google-bert/bert-base-uncased/resolve/main/model.safetensors",
            "BERT, ModernBERT: masked LMs",
        ),
        Slot::Generate => (
            "generate",
            "https://huggingface.co/openai-community/gpt2/resolve/main/model.safetensors",
            "GPT-2, Llama, SmolLM2, Qwen2.5, Qwen3",
        ),
    };
    let url = RwSignal::new(default_url.to_string());
    let load_url = move |_| post(&Request::LoadUrl { slot, url: url.get_untracked() });
    let on_files = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(files) = input.files() {
            let list = js_sys::Array::new();
            for i in 0..files.length() {
                if let Some(f) = files.item(i) {
                    list.push(&JsValue::from(f));
                }
            }
            post_with(&Request::LoadFiles { slot }, &list.into());
        }
        input.set_value("");
    };
    let trained_ready =
        move || state.train.get().is_some_and(|t| t.step > 0 && fits_slot(t.settings.arch, slot));
    view! {
        <fieldset class="model-source">
            <legend>{format!("Model ({arch})")}</legend>
            <div class="row">
                <input
                    class="grow"
                    type="url"
                    data-testid=format!("{prefix}-url")
                    prop:value=move || url.get()
                    on:input=move |ev| url.set(event_target_value(&ev))
                />
                <button data-testid=format!("{prefix}-load-url") on:click=load_url>"Load from URL"</button>
            </div>
            <div class="row">
                <label class="file-button">
                    "Pick files (config.json, model.safetensors or the shards with model.safetensors.index.json, tokenizer.json; an instruct model's tokenizer_config.json, generation_config.json)"
                    <input
                        type="file"
                        multiple
                        accept=".json,.jinja,.safetensors"
                        data-testid=format!("{prefix}-files")
                        on:change=on_files
                    />
                </label>
                <button
                    data-testid=format!("{prefix}-use-trained")
                    prop:disabled=move || !trained_ready()
                    title="the model trained in the Pretrain panel"
                    on:click=move |_| post(&Request::UseTrained { slot })
                >
                    "Use the model trained here"
                </button>
            </div>
            <p class="model-info" data-testid=format!("{prefix}-model")>
                {move || match state.model(slot).get() {
                    Some(m) => format!(
                        "{} · {} · {} parameters · {} layers × {} · vocabulary {} · context {} · weights {} · largest tensor {} · {}",
                        m.source,
                        m.architecture,
                        human_count(m.params),
                        m.layers,
                        m.hidden,
                        m.vocab_size,
                        m.context,
                        m.weights,
                        human_bytes(m.largest_tensor),
                        m.tokenizer
                    ),
                    None => "No model loaded.".to_string(),
                }}
            </p>
            {move || state.model(slot).get().and_then(|m| m.generation).map(|g| view! {
                <p class="muted" data-testid=format!("{prefix}-generation")>{g}</p>
            })}
            {move || state.model(slot).get().and_then(|m| m.load).map(|l| view! {
                <p class="muted" data-testid=format!("{prefix}-load-stats")>
                    // The file's size, which is more than the weights the model line counts:
                    // GPT-2 files also carry each layer's causal-mask buffer, which is skipped.
                    {format!(
                        "{} ({}) streamed onto the device in {:.1} s · worker memory {} (high-water mark)",
                        l.files,
                        human_bytes(l.file_bytes),
                        l.seconds,
                        human_bytes(l.worker_memory)
                    )}
                </p>
            })}
        </fieldset>
    }
}

/// Whether a model trained as `arch` belongs in `slot`'s panel.
fn fits_slot(arch: TrainArch, slot: Slot) -> bool {
    match slot {
        Slot::FillMask => !arch.causal(),
        Slot::Generate => arch.causal(),
    }
}
