//! Where the pretrain panel's text comes from: a file dropped or picked, and what it holds.

use leptos::prelude::*;
use wasm_bindgen::JsValue;

use crate::protocol::Request;
use crate::ui::bridge::post_with;
use crate::ui::state::AppState;
use crate::units::{human_bytes, human_count};

/// Sends the first file of a picker or a drop to the worker.
fn send_corpus(files: Option<web_sys::FileList>) {
    if let Some(file) = files.and_then(|f| f.item(0)) {
        post_with(&Request::LoadCorpus, &js_sys::Array::of1(&JsValue::from(file)).into());
    }
}

/// The drop zone and file picker.
#[component]
pub fn CorpusDrop() -> impl IntoView {
    let dragging = RwSignal::new(false);
    view! {
        <div
            class="dropzone"
            class:dragging=move || dragging.get()
            on:dragover=move |ev: leptos::ev::DragEvent| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev: leptos::ev::DragEvent| {
                ev.prevent_default();
                dragging.set(false);
                send_corpus(ev.data_transfer().and_then(|d| d.files()));
            }
        >
            <p>"Drop a .txt file here, or "</p>
            <label class="file-button">
                "choose a file"
                <input
                    type="file"
                    accept=".txt,text/plain"
                    data-testid="corpus-upload"
                    on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        send_corpus(input.files());
                        input.set_value("");
                    }
                />
            </label>
        </div>
    }
}

/// The loaded corpus's statistics and its first lines.
#[component]
pub fn CorpusStats() -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        state.corpus.get().map(|c| {
            view! {
                <div class="corpus" data-testid="corpus-stats">
                    <strong>{c.name.clone()}</strong>
                    {format!(
                        " · {} · {} characters · {} lines · {} words · {} distinct characters",
                        human_bytes(c.bytes as u64),
                        human_count(c.chars),
                        human_count(c.lines),
                        human_count(c.words),
                        c.distinct_chars
                    )}
                    <pre class="preview">{c.preview.clone()}</pre>
                </div>
            }
        })
    }
}
