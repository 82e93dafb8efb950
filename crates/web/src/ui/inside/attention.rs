//! Attention maps: one layer's heads as a heatmap (one head, the mean over heads, or all heads
//! as small multiples), hover to read a weight, click a token to see where it attends in every
//! layer.

use leptos::prelude::*;

use super::heatmap::{heatmap, label, Heatmap};
use super::Ctx;
use crate::protocol::InsideQuery;
use crate::ui::state::AppState;

/// Which heads the map shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Heads {
    All,
    Mean,
    One(usize),
}

/// The query heads in groups that share one key/value head (grouped-query attention: `heads /
/// kv_heads` consecutive heads each, as transformers' `repeat_kv` lays them out); one group per
/// head without it.
pub fn groups(heads: usize, kv_heads: usize) -> Vec<(usize, std::ops::Range<usize>)> {
    if kv_heads == 0 || kv_heads >= heads || !heads.is_multiple_of(kv_heads) {
        return (0..heads).map(|h| (h, h..h + 1)).collect();
    }
    let size = heads / kv_heads;
    (0..kv_heads).map(|g| (g, g * size..(g + 1) * size)).collect()
}

/// `[query][key]` of the chosen head, or the mean over heads.
pub fn pick(heads: &[Vec<Vec<f32>>], choice: Heads) -> Vec<Vec<f32>> {
    match choice {
        Heads::One(h) if h < heads.len() => heads[h].clone(),
        _ => {
            let n = heads.len().max(1) as f32;
            let Some(first) = heads.first() else { return Vec::new() };
            (0..first.len())
                .map(|q| {
                    (0..first[q].len())
                        .map(|k| {
                            heads
                                .iter()
                                .map(|h| h.get(q).and_then(|r| r.get(k)).copied().unwrap_or(0.0))
                                .sum::<f32>()
                                / n
                        })
                        .collect()
                })
                .collect()
        }
    }
}

/// A select of `0..n` written as `label i`.
pub fn numbered(n: usize, label: &'static str) -> impl IntoView {
    (0..n).map(|i| view! { <option value=i.to_string()>{format!("{label} {i}")}</option> }).collect_view()
}

/// The layers of a select, each named global or local where the model alternates them
/// (ModernBERT): `layer 1 · local, ±64 tokens`.
fn layer_options(n: usize, windows: &[Option<usize>]) -> impl IntoView {
    let alternates = windows.iter().any(Option::is_some);
    (0..n)
        .map(|i| {
            let name = match windows.get(i).copied().flatten() {
                Some(half) => format!("layer {i} · local, ±{half} tokens"),
                None if alternates => format!("layer {i} · global"),
                None => format!("layer {i}"),
            };
            view! { <option value=i.to_string()>{name}</option> }
        })
        .collect_view()
}

/// Whether a local layer's window (`half` positions either side) leaves key `k` out of query
/// `q`'s sight.
fn outside(window: Option<usize>, q: usize, k: usize) -> bool {
    window.is_some_and(|half| q.abs_diff(k) > half)
}

#[component]
pub fn AttentionView(
    ctx: Ctx,
    layer: RwSignal<usize>,
    pad: RwSignal<usize>,
    causal: Signal<bool>,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let inside = state.inside(ctx.slot);
    let heads = RwSignal::new(Heads::Mean);
    let hover = RwSignal::new(String::from(
        "hover over a cell to read its weight; click a token on the left to follow it",
    ));
    let prefix = ctx.prefix;
    let shape = move || inside.text.get().map_or((0, 0), |t| (t.layers, t.heads));
    let follow = Callback::new(move |q: usize| ctx.ask(InsideQuery::AttentionFrom { query: q }));
    let head_value = move || match heads.get() {
        Heads::All => "all".to_string(),
        Heads::Mean => "mean".to_string(),
        Heads::One(h) => h.to_string(),
    };
    view! {
        <div class="row">
            <label>
                "layer "
                <select
                    data-testid=format!("{prefix}-layer")
                    prop:value=move || layer.get().to_string()
                    on:change=move |ev| {
                        layer.set(event_target_value(&ev).parse().unwrap_or(0));
                        ctx.ask(InsideQuery::Attention { layer: layer.get_untracked(), pad: pad.get_untracked() });
                    }
                >
                    {move || {
                        let windows = inside.text.get().map(|t| t.windows).unwrap_or_default();
                        layer_options(shape().0, &windows)
                    }}
                </select>
            </label>
            <label>
                "heads "
                <select
                    data-testid=format!("{prefix}-heads")
                    prop:value=head_value
                    on:change=move |ev| {
                        heads.set(match event_target_value(&ev).as_str() {
                            "all" => Heads::All,
                            "mean" => Heads::Mean,
                            h => Heads::One(h.parse().unwrap_or(0)),
                        })
                    }
                >
                    <option value="mean">"mean over heads"</option>
                    <option value="all">"all heads (grid)"</option>
                    {move || numbered(shape().1, "head")}
                </select>
            </label>
            <label class:hidden=move || causal.get() title="An encoder in a batch: shorter texts are padded, and the mask hides the padding">
                "padding "
                <input
                    type="number"
                    min="0"
                    max="32"
                    class="narrow"
                    data-testid=format!("{prefix}-pad")
                    prop:value=move || pad.get().to_string()
                    on:change=move |ev| {
                        pad.set(event_target_value(&ev).parse::<usize>().unwrap_or(0).min(32));
                        ctx.ask(InsideQuery::Attention { layer: layer.get_untracked(), pad: pad.get_untracked() });
                    }
                />
            </label>
        </div>
        <p class="readout" data-testid=format!("{prefix}-readout")>{move || hover.get()}</p>
        {move || {
            let text = inside.text.get()?;
            let kv_heads = text.kv_heads;
            let (l, weights) = inside.attention.get()?;
            let tokens: Vec<String> = text.tokens.iter().map(|t| label(t)).collect();
            let real = tokens.len() - text.padding;
            let is_causal = causal.get();
            let window = text.windows.get(l).copied().flatten();
            let masked = move |q: usize, k: usize| (is_causal && k > q) || k >= real || outside(window, q, k);
            let caption = if is_causal {
                "rows: the token that attends (query); columns: the tokens it reads (keys). Hatched: the causal mask — a token cannot see later tokens.".to_string()
            } else {
                let reach = match window {
                    Some(half) => format!(
                        "A local layer: each token sees only the {half} tokens on either side of it; hatched, the keys outside that window (weight 0). "
                    ),
                    None if text.windows.iter().any(Option::is_some) => {
                        "A global layer: every token sees the whole text. ".to_string()
                    }
                    None => "The encoder reads in both directions. ".to_string(),
                };
                let padding = if text.padding > 0 { "Hatched: [PAD] keys the attention mask hides (weight 0)." } else { "" };
                format!("rows: queries; columns: keys. {reach}{padding}")
            };
            Some(match heads.get() {
                Heads::All => view! {
                    <p class="muted" data-testid=format!("{prefix}-caption")>{format!("layer {l}, every head; click one to open it. ")}{caption.clone()}</p>
                    <div class="multiples" data-testid=format!("{prefix}-multiples")>
                        {groups(weights.len(), kv_heads).into_iter().map(|(g, range)| {
                            let label = (range.len() > 1).then(|| format!(
                                "key/value head {g}: query heads {}–{} share its keys and values",
                                range.start,
                                range.end - 1
                            ));
                            let (weights, tokens) = (weights.clone(), tokens.clone());
                            view! {
                            <div class="kv-group" data-testid=format!("{prefix}-kv-group")>
                            {label.map(|l| view! { <p class="kv-label">{l}</p> })}
                            {range.map(|h| (h, weights[h].clone()))
                            .map(|(h, w)| {
                                let map = Heatmap {
                                    rows: tokens.clone(),
                                    cols: tokens.clone(),
                                    values: w.clone(),
                                    masked: Box::new(masked),
                                    max: 1.0,
                                    axes: ("query", "key"),
                                    testid: "head-map",
                                };
                                view! {
                                    <figure class="small-multiple" on:click=move |_| heads.set(Heads::One(h))>
                                        <figcaption>{format!("head {h}")}</figcaption>
                                        {heatmap(map, hover, None)}
                                    </figure>
                                }
                            })
                            .collect_view()}
                            </div>
                            }
                        }).collect_view()}
                    </div>
                }
                .into_any(),
                choice => {
                    let which = match choice {
                        Heads::One(h) => format!("layer {l}, head {h}"),
                        _ => format!("layer {l}, mean over {} heads", weights.len()),
                    };
                    let map = Heatmap {
                        rows: tokens.clone(),
                        cols: tokens,
                        values: pick(&weights, choice),
                        masked: Box::new(masked),
                        max: 1.0,
                        axes: ("query", "key"),
                        testid: "attention-map",
                    };
                    view! {
                        <p class="muted" data-testid=format!("{prefix}-caption")>{which}". "{caption}</p>
                        <div class="map-scroll">{heatmap(map, hover, Some(follow))}</div>
                    }
                    .into_any()
                }
            })
        }}
        {move || {
            let text = inside.text.get()?;
            let (q, layers) = inside.from.get()?;
            let token = text.tokens.get(q)?.clone();
            let choice = match heads.get() {
                Heads::One(h) => Heads::One(h),
                _ => Heads::Mean,
            };
            let values: Vec<Vec<f32>> = layers
                .iter()
                .map(|heads_of_layer| {
                    // [head][key] → one row: the chosen head or the mean.
                    let as_queries: Vec<Vec<Vec<f32>>> = heads_of_layer.iter().map(|k| vec![k.clone()]).collect();
                    pick(&as_queries, choice).into_iter().next().unwrap_or_default()
                })
                .collect();
            let is_causal = causal.get();
            let real = text.tokens.len() - text.padding;
            let windows = text.windows.clone();
            let which = match choice {
                Heads::One(h) => format!("head {h}"),
                _ => "mean over heads".to_string(),
            };
            let map = Heatmap {
                rows: (0..layers.len()).map(|l| format!("layer {l}")).collect(),
                cols: text.tokens.iter().map(|t| label(t)).collect(),
                values,
                masked: Box::new(move |l, k| {
                    (is_causal && k > q) || k >= real || outside(windows.get(l).copied().flatten(), q, k)
                }),
                max: 1.0,
                axes: ("layer", "key"),
                testid: "attention-from-map",
            };
            Some(view! {
                <h4 data-testid=format!("{prefix}-from-title")>
                    {format!("Where “{}” (token {q}) attends, in every layer ({which})", label(&token))}
                </h4>
                <div class="map-scroll">{heatmap(map, hover, None)}</div>
            })
        }}
    }
}
