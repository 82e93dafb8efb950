//! Where the pretrain panel's text comes from: files dropped or picked (plain text, JSON lines,
//! CSV; one or several, each a document or many), or the Shakespeare sample; and what it holds.

use leptos::prelude::*;
use wasm_bindgen::JsValue;

use crate::protocol::{Request, TrainSettings};
use crate::ui::bridge::{post, post_with};
use crate::ui::state::AppState;
use crate::units::{human_bytes, human_count};

/// Sends every file of a picker or a drop to the worker, with the field that holds the text.
fn send_corpus(files: Option<web_sys::FileList>, text_field: String) {
    let Some(files) = files else { return };
    let picked = js_sys::Array::new();
    for i in 0..files.length() {
        if let Some(file) = files.item(i) {
            picked.push(&JsValue::from(file));
        }
    }
    if picked.length() > 0 {
        post_with(&Request::LoadCorpus { text_field }, &picked.into());
    }
}

/// The drop zone, the file picker, the JSONL/CSV field and the sample button.
#[component]
pub fn CorpusDrop(settings: RwSignal<TrainSettings>) -> impl IntoView {
    let dragging = RwSignal::new(false);
    let field = move || settings.with_untracked(|s| s.text_field.clone());
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
                send_corpus(ev.data_transfer().and_then(|d| d.files()), field());
            }
        >
            <p>
                "Drop text files here — several at once are several documents; a .jsonl file is a document per line, \
                 a .csv file one per row — or "
            </p>
            <div class="row">
                <label class="file-button">
                    "choose files"
                    <input
                        type="file"
                        multiple
                        accept=".txt,.jsonl,.ndjson,.csv,text/plain,text/csv"
                        data-testid="corpus-upload"
                        on:change=move |ev| {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            send_corpus(input.files(), field());
                            input.set_value("");
                        }
                    />
                </label>
                <button data-testid="corpus-sample" on:click=move |_| post(&Request::LoadSample)>
                    "Try it with the Shakespeare sample"
                </button>
                <label class="field inline">
                    <span>"JSONL field / CSV column"</span>
                    <input
                        data-testid="corpus-field"
                        size="8"
                        prop:value=move || settings.with(|s| s.text_field.clone())
                        on:change=move |ev| settings.update(|s| s.text_field = event_target_value(&ev))
                    />
                </label>
            </div>
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
                        " · {} document{} · {} · {} characters · {} lines · {} words · {} distinct characters",
                        human_count(c.documents.max(1)),
                        if c.documents == 1 { "" } else { "s" },
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
