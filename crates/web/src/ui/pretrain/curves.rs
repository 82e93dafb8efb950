//! The loss curves (against steps or tokens seen) and the samples drawn at each evaluation.

use leptos::prelude::*;

use super::runs::overlay_colour;
use crate::ui::charts::{loss_chart, Overlay};
use crate::ui::state::AppState;

#[component]
pub fn LossCurves() -> impl IntoView {
    let state = expect_context::<AppState>();
    let by_tokens = RwSignal::new(false);
    // The runs ticked in the runs table: (colour, name, evaluations).
    let overlays = move || {
        let overlay = state.overlay.get();
        state
            .runs
            .get()
            .into_iter()
            .filter(|r| !r.current && overlay.contains(&r.id))
            .map(|r| (overlay_colour(&overlay, r.id), r.name, r.evals))
            .collect::<Vec<_>>()
    };
    view! {
        <div class="row">
            <label>
                <input type="checkbox" data-testid="train-xaxis" prop:checked=move || by_tokens.get()
                    on:change=move |ev| by_tokens.set(event_target_checked(&ev)) />
                " x-axis: tokens seen (instead of steps)"
            </label>
            <span class="legend">
                <span class="swatch train"></span>" train " <span class="swatch val"></span>" validation "
                <span class="swatch lr"></span>" learning rate (right axis)"
                {move || overlays().into_iter().map(|(colour, name, _)| view! {
                    " " <span class="swatch" style=format!("background:{colour}")></span>{format!(" {name} (validation)")}
                }).collect_view()}
            </span>
        </div>
        <div data-testid="loss-chart">
            {move || {
                let overlays: Vec<Overlay> =
                    overlays().into_iter().map(|(colour, _, evals)| Overlay { colour, evals }).collect();
                loss_chart(&state.losses.get(), &state.evals.get(), by_tokens.get(), &overlays)
            }}
        </div>
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
                    let val = e.val_loss.map(|v| crate::units::fixed(v, 4));
                    view! {
                        <li>
                            <span class="muted" data-testid="sample-step">{format!("step {}", e.step)}</span>
                            <span class="muted">{format!(" · epoch {:.2}", e.epoch)}</span>
                            {val.map(|v| view! { <span class="muted">" · validation loss "<span data-testid="sample-val">{v}</span></span> })}
                            <span class="muted">": "</span>
                            <pre>{e.sample}</pre>
                        </li>
                    }
                }).collect_view()
            }}
        </ol>
    }
}
