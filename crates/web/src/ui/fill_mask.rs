//! The fill-mask panel: a sentence with the mask token (`[MASK]`, or the tokenizer's own), the
//! top-k predictions as bars.

use leptos::prelude::*;

use super::bridge::post;
use super::charts::{bars, show_token};
use super::inside::InsidePanel;
use super::model_source::ModelSource;
use super::state::AppState;
use super::verify::Verify;
use super::widgets::Status;
use crate::protocol::{JobKind, Request, Slot, Topic};

#[component]
pub fn FillMaskPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let text = RwSignal::new("Life is like a [MASK] of chocolates.".to_string());
    let top_k = RwSignal::new(5usize);
    let run = move || post(&Request::FillMask { text: text.get_untracked(), top_k: top_k.get_untracked() });
    view! {
        <section class="panel" data-testid="fillmask-panel">
            <h2>"Fill mask"</h2>
            <ModelSource panel=Slot::FillMask />
            <div class="row">
                <input
                    class="grow"
                    data-testid="fillmask-input"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" {
                            run();
                        }
                    }
                />
                <label>
                    "top-k "
                    <input
                        type="number"
                        min="1"
                        max="100"
                        class="narrow"
                        data-testid="fillmask-top-k"
                        prop:value=move || top_k.get().to_string()
                        on:change=move |ev| {
                            let k = event_target_value(&ev).parse::<usize>().unwrap_or(5).clamp(1, 100);
                            top_k.set(k);
                        }
                    />
                </label>
                <button data-testid="fillmask-run" class="primary"
                    prop:disabled=move || state.job_pending(JobKind::FillMask, Topic::FillMask)
                    on:click=move |_| run()>"Predict"</button>
            </div>
            <div data-testid="fillmask-results" class="results">
                {move || {
                    state
                        .fill_results
                        .get()
                        .map(|(_, masks)| {
                            let n = masks.len();
                            masks
                                .into_iter()
                                .enumerate()
                                .map(|(i, candidates)| {
                                    let best = candidates.first().map(|c| show_token(&c.token)).unwrap_or_default();
                                    view! {
                                        <div class="mask-result">
                                            <h4>{if n > 1 { format!("[MASK] #{}: {best}", i + 1) } else { format!("[MASK] → {best}") }}</h4>
                                            {bars(candidates, None, "fillmask-bars")}
                                        </div>
                                    }
                                })
                                .collect_view()
                        })
                }}
            </div>
            <Verify panel=Slot::FillMask text=Signal::derive(move || text.get()) />
            <Status topic=Topic::FillMask testid="fillmask" />
            <InsidePanel panel=Slot::FillMask text=Signal::derive(move || text.get()) />
        </section>
    }
}
