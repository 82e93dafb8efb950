//! The input embedding table: a token's nearest neighbours by cosine, and the most frequent
//! tokens of the corpus on the first two principal components (computed on the device).

use leptos::prelude::*;

use super::Ctx;
use crate::protocol::{InsideQuery, Placed};
use crate::ui::charts::show_token;
use crate::ui::state::AppState;

const W: f64 = 640.0;
const H: f64 = 440.0;
const PAD: f64 = 44.0;
/// Left of the plot: the tick numbers and the vertical axis label side by side.
const PAD_L: f64 = 64.0;
/// Points labelled with their token (the most frequent); the rest are dots with a tooltip.
const LABELLED: usize = 60;

fn scatter(points: Vec<Placed>, explained: [f32; 2], testid: String) -> impl IntoView {
    let span = |v: &dyn Fn(&Placed) -> f32| {
        let lo = points.iter().map(v).fold(f32::MAX, f32::min) as f64;
        let hi = points.iter().map(v).fold(f32::MIN, f32::max) as f64;
        if hi > lo {
            // A margin so no point sits on the frame.
            let m = 0.05 * (hi - lo);
            (lo - m, hi + m)
        } else {
            (lo - 1.0, lo + 1.0)
        }
    };
    let (x0, x1) = span(&|p| p.x);
    let (y0, y1) = span(&|p| p.y);
    let sx = move |x: f64| PAD_L + (W - PAD_L - PAD) * (x - x0) / (x1 - x0);
    let sy = move |y: f64| H - PAD - (H - 2.0 * PAD) * (y - y0) / (y1 - y0);
    let ticks = |lo: f64, hi: f64| (0..=4).map(move |i| lo + (hi - lo) * i as f64 / 4.0);
    view! {
        <svg class="scatter" data-testid=testid viewBox=format!("0 0 {W} {H}") role="img" aria-label="token embeddings on two principal components">
            <rect x=n(PAD_L) y=n(PAD) width=n(W - PAD_L - PAD) height=n(H - 2.0 * PAD) class="plot-frame"></rect>
            {ticks(x0, x1).map(|x| view! { <text class="tick" x=n(sx(x)) y=n(H - PAD + 14.0) text-anchor="middle">{format!("{x:.2}")}</text> }).collect_view()}
            {ticks(y0, y1).map(|y| view! { <text class="tick" x=n(PAD_L - 4.0) y=n(sy(y) + 4.0) text-anchor="end">{format!("{y:.2}")}</text> }).collect_view()}
            <text class="axis-label" x=n((W + PAD_L - PAD) / 2.0) y=n(H - 6.0) text-anchor="middle">
                {format!("principal component 1 ({:.1}% of the variance)", 100.0 * explained[0])}
            </text>
            <text class="axis-label" transform=format!("translate(12,{}) rotate(-90)", n(H / 2.0)) text-anchor="middle">
                {format!("principal component 2 ({:.1}%)", 100.0 * explained[1])}
            </text>
            {points
                .iter()
                .enumerate()
                .rev()
                .map(|(i, p)| {
                    let (x, y) = (sx(p.x as f64), sy(p.y as f64));
                    let title = format!("“{}” ×{} at ({:.3}, {:.3})", show_token(&p.token), p.count, p.x, p.y);
                    view! {
                        <g class="point">
                            <circle cx=n(x) cy=n(y) r="2.5"><title>{title}</title></circle>
                            {(i < LABELLED).then(|| view! { <text class="point-label" x=n(x + 4.0) y=n(y - 3.0)>{show_token(&p.token)}</text> })}
                        </g>
                    }
                })
                .collect_view()}
        </svg>
    }
}

fn n(x: f64) -> String {
    format!("{x:.1}")
}

#[component]
pub fn EmbeddingsView(ctx: Ctx, token: RwSignal<String>) -> impl IntoView {
    let inside = expect_context::<AppState>().inside(ctx.slot);
    let prefix = ctx.prefix;
    let ask = move || {
        let t = token.get_untracked();
        if !t.trim().is_empty() {
            ctx.ask(InsideQuery::Nearest { token: t, top_k: 10 });
        }
    };
    view! {
        <div class="row">
            <label>
                "nearest tokens to "
                <input
                    data-testid=format!("{prefix}-token")
                    placeholder="a token, e.g. king"
                    prop:value=move || token.get()
                    on:input=move |ev| token.set(event_target_value(&ev))
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" {
                            ask();
                        }
                    }
                />
            </label>
            <button data-testid=format!("{prefix}-nearest-run") on:click=move |_| ask()>"Find"</button>
        </div>
        {move || {
            inside.nearest.get().map(|(t, list)| {
                view! {
                    <h4>{format!("Closest to “{}” by cosine of the input embeddings", show_token(&t))}</h4>
                    <ol class="bars" data-testid=format!("{prefix}-nearest")>
                        {list
                            .into_iter()
                            .map(|c| {
                                let width = format!("{:.1}%", 100.0 * c.prob.max(0.0));
                                view! {
                                    <li class="bar-row">
                                        <span class="bar-token" title=format!("id {}", c.id)>{show_token(&c.token)}</span>
                                        <span class="bar-track"><span class="bar-fill" style:width=width></span></span>
                                        <span class="bar-prob">{format!("{:.3}", c.prob)}</span>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ol>
                }
            })
        }}
        {move || {
            inside.projection.get().map(|(points, explained, source)| {
                view! {
                    <h4>"The embedding table on two principal components"</h4>
                    <p class="muted">{format!("{} tokens: {source}. Labels on the {LABELLED} most frequent; hover a dot for the rest.", points.len())}</p>
                    {scatter(points, explained, format!("{prefix}-projection"))}
                }
            })
        }}
    }
}
