//! The runs table: every run kept in this browser (the one in the panel first) with its
//! settings, final losses, speed and time; each can be overlaid on the chart, renamed, deleted,
//! downloaded or handed to Hugging Face Trainer; "Open a run" takes one back from Trainer.

use leptos::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::HtmlInputElement;

use crate::protocol::{Request, RunSummary};
use crate::ui::bridge::{post, post_with};
use crate::ui::state::AppState;
use crate::units::human_count;

/// The colours overlaid runs are drawn in (the chart's legend uses the same).
/// None of them is the panel's own train (orange) or validation (blue) colour.
pub const OVERLAY_COLOURS: [&str; 6] = ["#7048e8", "#2b8a3e", "#c2255c", "#e67700", "#0b7285", "#5c940d"];

/// The colour of overlaid run `id`, by its place in the overlay.
pub fn overlay_colour(overlay: &[u64], id: u64) -> &'static str {
    let at = overlay.iter().position(|&o| o == id).unwrap_or(0);
    OVERLAY_COLOURS[at % OVERLAY_COLOURS.len()]
}

fn loss(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| crate::units::fixed(v, 4))
}

fn recipe(r: &RunSummary) -> String {
    let s = &r.settings;
    let length =
        if s.epochs > 0.0 { format!("{} epochs", s.epochs) } else { format!("{} steps", r.total_steps) };
    format!(
        "{}, ctx {}, batch {}, lr {}, {}, {}",
        s.arch.as_str(),
        s.context,
        s.batch_size,
        s.lr,
        s.packing,
        length
    )
}

#[component]
pub fn RunsTable() -> impl IntoView {
    let state = expect_context::<AppState>();
    // The table is read from browser storage once the worker listens.
    Effect::new(move |_| {
        if state.started.get() {
            post(&Request::RunsList);
        }
    });
    let toggle = move |id: u64, on: bool| {
        state.overlay.update(|o| {
            o.retain(|&x| x != id);
            if on {
                o.push(id);
            }
        })
    };
    // A directory picked whole: each file with its path below the picked directory's parent,
    // which is how the worker tells checkpoint-40/config.json from checkpoint-50/config.json.
    let on_open = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(files) = input.files() {
            let list = js_sys::Array::new();
            let mut paths = Vec::new();
            for i in 0..files.length() {
                if let Some(f) = files.item(i) {
                    let relative = js_sys::Reflect::get(&f, &JsValue::from_str("webkitRelativePath"))
                        .ok()
                        .and_then(|v| v.as_string())
                        .filter(|p| !p.is_empty());
                    paths.push(relative.unwrap_or_else(|| f.name()));
                    list.push(&JsValue::from(f));
                }
            }
            post_with(&Request::OpenRun { paths }, &list.into());
        }
        input.set_value("");
    };
    view! {
        <div class="row runs-head">
            <h3>"Runs"</h3>
            <label class="file-button" title="A run continued with Hugging Face Trainer: pick the directory `hearth handoff` or Continue on a cluster wrote (its latest checkpoint-M comes back into the panel, on the corpus loaded above); a plain Trainer checkpoint opens as a model">
                "Open a run…"
                <input type="file" prop:webkitdirectory=true multiple data-testid="run-open" on:change=on_open
                    prop:disabled=move || !state.runs_taken.get() || state.owner.get() != Some(true) />
            </label>
        </div>
        <div class="runs-scroll" data-testid="runs-scroll">
        <table class="runs" data-testid="runs-table">
            <thead>
                <tr>
                    <th>"overlay"</th><th>"name"</th><th>"start"</th><th>"corpus"</th><th>"recipe"</th>
                    <th>"step"</th><th>"train loss"</th><th>"val loss"</th><th>"tokens/s"</th><th>"time"</th><th></th>
                </tr>
            </thead>
            <tbody>
                {move || state.runs.get().into_iter().map(|r| {
                    let id = r.id;
                    let checked = move || state.overlay.with(|o| o.contains(&id));
                    let colour = move || state.overlay.with(|o| if o.contains(&id) { overlay_colour(o, id) } else { "transparent" });
                    view! {
                        <tr data-testid="run-row" class:current=r.current>
                            <td>
                                <input type="checkbox" data-testid="run-overlay" prop:checked=checked
                                    prop:disabled=r.current
                                    on:change=move |ev| toggle(id, event_target_checked(&ev)) />
                                <span class="swatch" style=move || format!("background:{}", colour())></span>
                            </td>
                            <td>
                                <input class="run-name" data-testid="run-name" prop:value=r.name.clone()
                                    on:change=move |ev| post(&Request::RunRename { id, name: event_target_value(&ev) }) />
                                {r.current.then_some(" (in the panel)")}
                            </td>
                            <td>{r.start.clone()}</td>
                            <td>{r.corpus_name.clone()}</td>
                            <td class="muted">{recipe(&r)}</td>
                            <td>{format!("{}/{}", r.step, r.total_steps)}</td>
                            <td>{loss(r.train_loss)}</td>
                            <td data-testid="run-val">{loss(r.val_loss)}</td>
                            <td>{human_count(r.tokens_per_s.round() as usize)}</td>
                            <td>{crate::units::human_duration(r.seconds)}</td>
                            <td>
                                <button data-testid="run-download" on:click=move |_| post(&Request::RunDownload { id })>"Download"</button>
                                <button data-testid="run-handoff"
                                    title="Download the run for Hugging Face Trainer: its checkpoint with the optimizer state, its data in the order still to come, and train_hf.py (one GPU or many)"
                                    on:click=move |_| post(&Request::RunHandoff { id })>"Continue on a cluster"</button>
                                <button data-testid="run-delete" prop:disabled=r.current
                                    on:click=move |_| post(&Request::RunDelete { id })>"Delete"</button>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}
