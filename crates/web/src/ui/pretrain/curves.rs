//! The loss curves (against steps or tokens seen) and the samples drawn at each evaluation.

use leptos::prelude::*;

use crate::ui::charts::loss_chart;
use crate::ui::state::AppState;

#[component]
pub fn LossCurves() -> impl IntoView {
    let state = expect_context::<AppState>();
    let by_tokens = RwSignal::new(false);
    view! {
        <div class="row">
            <label>
                <input type="checkbox" data-testid="train-xaxis" prop:checked=move || by_tokens.get()
                    on:change=move |ev| by_tokens.set(event_target_checked(&ev)) />
                " x-axis: tokens seen (instead of steps)"
            </label>
            <span class="legend"><span class="swatch train"></span>" train " <span class="swatch val"></span>" validation"</span>
        </div>
        <div data-testid="loss-chart">{move || loss_chart(&state.losses.get(), &state.evals.get(), by_tokens.get())}</div>
    }
}

/// The latest samples, newest first.
#[component]
pub fn Samples() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <h3>"Samples as it learns"</h3>
        <ol class="samples" data-testid="train-samples">
            {move || {
                state.evals.get().into_iter().rev().take(8).map(|e| {
                    view! { <li><span class="muted">{format!("step {}: ", e.step)}</span><pre>{e.sample}</pre></li> }
                }).collect_view()
            }}
        </ol>
    }
}
