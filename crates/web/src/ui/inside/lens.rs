//! The logit lens: for each layer and position, the token the residual stream would predict if
//! decoding stopped there (final LayerNorm + the tied unembedding), shaded by its probability.

use leptos::prelude::*;

use super::heatmap::{colour, label};
use super::Ctx;
use crate::ui::charts::{percent, show_token};
use crate::ui::state::AppState;

/// A horizontal colour scale with its numbers, for the HTML grids.
pub fn legend(what: &'static str, max: f32, unit: fn(f32) -> String) -> impl IntoView {
    let stops: Vec<String> = (0..=10).map(|i| colour(max * i as f32 / 10.0, max)).collect();
    view! {
        <div class="legend">
            <span class="muted">{what}</span>
            <span class="legend-bar" style=format!("background: linear-gradient(to right, {})", stops.join(", "))></span>
            <span class="legend-ticks">
                {(0..=4).map(|i| view! { <span>{unit(max * i as f32 / 4.0)}</span> }).collect_view()}
            </span>
        </div>
    }
}

/// Text readable on a cell of `colour(v, max)`.
pub fn ink(v: f32, max: f32) -> &'static str {
    if max > 0.0 && (v / max).sqrt() > 0.6 {
        "#fff"
    } else {
        "#2a2522"
    }
}

#[component]
pub fn LensView(ctx: Ctx) -> impl IntoView {
    let inside = expect_context::<AppState>().inside(ctx.slot);
    let hover = RwSignal::new(String::from("hover over a cell for the layer's top choices"));
    let prefix = ctx.prefix;
    view! {
        <p class="muted">
            "Rows: after each layer; columns: the position whose next token is predicted. Each cell is the most likely next token "
            "if the model stopped after that layer; the last row is the model's own prediction."
        </p>
        {legend("probability of the top token", 1.0, |v| format!("{:.0}%", 100.0 * v))}
        <p class="readout" data-testid=format!("{prefix}-readout")>{move || hover.get()}</p>
        {move || {
            let text = inside.text.get()?;
            let cells = inside.lens.get()?;
            let n = cells.len();
            Some(view! {
                <div class="map-scroll">
                    <table class="lens" data-testid=format!("{prefix}-lens")>
                        <thead>
                            <tr>
                                <th></th>
                                {text.tokens.iter().map(|t| view! { <th class="lens-token">{label(t)}</th> }).collect_view()}
                            </tr>
                        </thead>
                        <tbody>
                            {cells
                                .into_iter()
                                .enumerate()
                                .rev()
                                .map(|(l, row)| {
                                    let tokens = text.tokens.clone();
                                    view! {
                                        <tr>
                                            <th class="lens-layer">{if l + 1 == n { format!("layer {l} (output)") } else { format!("layer {l}") }}</th>
                                            {row
                                                .into_iter()
                                                .enumerate()
                                                .map(|(pos, top)| {
                                                    let best = top.first().cloned();
                                                    let p = best.as_ref().map_or(0.0, |c| c.prob);
                                                    let list: Vec<String> = top
                                                        .iter()
                                                        .map(|c| format!("{} {}", show_token(&c.token), percent(c.prob)))
                                                        .collect();
                                                    let read = format!(
                                                        "layer {l}, after “{}”: {}",
                                                        label(tokens.get(pos).map_or("", String::as_str)),
                                                        list.join(" · ")
                                                    );
                                                    let title = read.clone();
                                                    view! {
                                                        <td
                                                            class="lens-cell"
                                                            style=format!("background:{};color:{}", colour(p, 1.0), ink(p, 1.0))
                                                            title=title
                                                            data-p=format!("{p:.4}")
                                                            on:mouseenter=move |_| hover.set(read.clone())
                                                        >
                                                            {best.map(|c| label(&c.token))}
                                                        </td>
                                                    }
                                                })
                                                .collect_view()}
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                </div>
            })
        }}
    }
}
