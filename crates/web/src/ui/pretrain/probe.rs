//! The training probe: at every evaluation the run records what the model makes of one
//! sentence (attention of every layer and head, and a GPT's logit lens); a step slider replays
//! how they formed. The records live in the run's checkpoint, so the replay survives a reload.

use leptos::prelude::*;

use crate::protocol::Probe;
use crate::ui::inside::attention::{numbered, pick, Heads};
use crate::ui::inside::heatmap::{colour, heatmap, label, Heatmap};
use crate::ui::inside::lens::{ink, legend};
use crate::ui::state::AppState;

#[component]
pub fn ProbeReplay() -> impl IntoView {
    let state = expect_context::<AppState>();
    // (step, probe) of every evaluation that kept one.
    let probes = Memo::new(move |_| {
        state.evals.with(|e| {
            e.iter()
                .filter_map(|p| p.probe.clone().map(|probe| (p.step, probe)))
                .collect::<Vec<(usize, Probe)>>()
        })
    });
    // `None` follows the newest evaluation; a position once the user moves the slider.
    let at = RwSignal::new(None::<usize>);
    let layer = RwSignal::new(None::<usize>);
    let heads = RwSignal::new(Heads::Mean);
    let hover = RwSignal::new(String::from("hover over a cell to read its weight"));
    let index = move || {
        let n = probes.with(Vec::len);
        at.get().map_or(n.saturating_sub(1), |i| i.min(n.saturating_sub(1)))
    };
    view! {
        <Show when=move || probes.with(|p| !p.is_empty())>
            <div class="probe" data-testid="probe">
                <h3>"Watch it form"</h3>
                <p class="muted">
                    "At every evaluation the run records what the model makes of the probe sentence. "
                    "Move the slider to replay how its attention and predictions formed."
                </p>
                <div class="row">
                    <input
                        type="range"
                        min="0"
                        data-testid="probe-slider"
                        prop:max=move || probes.with(|p| p.len().saturating_sub(1)).to_string()
                        prop:value=move || index().to_string()
                        on:input=move |ev| {
                            let i: usize = event_target_value(&ev).parse().unwrap_or(0);
                            let last = probes.with(|p| p.len().saturating_sub(1));
                            at.set(if i >= last { None } else { Some(i) });
                        }
                    />
                    <span data-testid="probe-step">
                        {move || probes.with(|p| p.get(index()).map(|(step, _)| format!("step {step} (evaluation {} of {})", index() + 1, p.len())))}
                    </span>
                </div>
                {move || {
                    let (_, probe) = probes.with(|p| p.get(index()).cloned())?;
                    let layers = probe.attentions.len();
                    let n_heads = probe.attentions.first().map_or(0, Vec::len);
                    let l = layer.get().unwrap_or(layers.saturating_sub(1)).min(layers.saturating_sub(1));
                    let choice = heads.get();
                    let weights = probe.attentions.get(l).cloned().unwrap_or_default();
                    let tokens: Vec<String> = probe.tokens.iter().map(|t| label(t)).collect();
                    let causal = !probe.lens.is_empty();
                    let map = Heatmap {
                        rows: tokens.clone(),
                        cols: tokens.clone(),
                        values: pick(&weights, choice),
                        masked: Box::new(move |q, k| causal && k > q),
                        max: 1.0,
                        axes: ("query", "key"),
                        testid: "probe-attention",
                    };
                    Some(view! {
                        <div class="row">
                            <label>
                                "layer "
                                <select data-testid="probe-layer" prop:value=l.to_string()
                                    on:change=move |ev| layer.set(event_target_value(&ev).parse().ok())>
                                    {numbered(layers, "layer")}
                                </select>
                            </label>
                            <label>
                                "heads "
                                <select data-testid="probe-heads"
                                    prop:value=match choice { Heads::One(h) => h.to_string(), _ => "mean".into() }
                                    on:change=move |ev| heads.set(event_target_value(&ev).parse().map_or(Heads::Mean, Heads::One))>
                                    <option value="mean">"mean over heads"</option>
                                    {numbered(n_heads, "head")}
                                </select>
                            </label>
                        </div>
                        <p class="readout">{move || hover.get()}</p>
                        <div class="map-scroll">{heatmap(map, hover, None)}</div>
                        {causal.then(|| lens_grid(&probe))}
                    })
                }}
            </div>
        </Show>
    }
}

/// The probe's logit lens: the top next token after each layer, shaded by its probability.
fn lens_grid(probe: &Probe) -> impl IntoView {
    let n = probe.lens.len();
    view! {
        <h4>"Logit lens of the probe"</h4>
        {legend("probability of the top token", 1.0, |v| format!("{:.0}%", 100.0 * v))}
        <div class="map-scroll">
            <table class="lens" data-testid="probe-lens">
                <thead>
                    <tr>
                        <th></th>
                        {probe.tokens.iter().map(|t| view! { <th class="lens-token">{label(t)}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {probe
                        .lens
                        .iter()
                        .enumerate()
                        .rev()
                        .map(|(l, row)| view! {
                            <tr>
                                <th class="lens-layer">{if l + 1 == n { format!("layer {l} (output)") } else { format!("layer {l}") }}</th>
                                {row
                                    .iter()
                                    .map(|c| view! {
                                        <td class="lens-cell" title=format!("{:.1}%", 100.0 * c.prob)
                                            style=format!("background:{};color:{}", colour(c.prob, 1.0), ink(c.prob, 1.0))>
                                            {label(&c.token)}
                                        </td>
                                    })
                                    .collect_view()}
                            </tr>
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
