//! Bar charts of token probabilities and the loss curves, drawn as plain HTML and SVG.

use leptos::prelude::*;

use crate::protocol::{Candidate, EvalPoint, LossPoint};
use crate::units::human_count;

/// Tokens as they read: GPT-2's byte-level markers for space and newline made visible.
pub fn show_token(token: &str) -> String {
    let t = token.replace('Ġ', "␣").replace('Ċ', "↵").replace(' ', "␣").replace('\n', "↵");
    if t.is_empty() {
        "∅".into()
    } else {
        t
    }
}

/// Horizontal bars, one per candidate, longest first; `chosen` is highlighted.
pub fn bars(items: Vec<Candidate>, chosen: Option<u32>, testid: &'static str) -> impl IntoView {
    let max = items.iter().map(|c| c.prob).fold(0.0f32, f32::max).max(1e-9);
    view! {
        <ol class="bars" data-testid=testid>
            {items
                .into_iter()
                .map(|c| {
                    let width = format!("{:.1}%", 100.0 * c.prob / max);
                    let is_chosen = chosen == Some(c.id);
                    view! {
                        <li class="bar-row" class:chosen=is_chosen data-id=c.id.to_string()>
                            <span class="bar-token" title=format!("id {}", c.id)>{show_token(&c.token)}</span>
                            <span class="bar-track">
                                <span class="bar-fill" style:width=width></span>
                            </span>
                            <span class="bar-prob">{percent(c.prob)}</span>
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}

const W: f64 = 640.0;
const H: f64 = 260.0;
const PAD_L: f64 = 48.0;
const PAD_B: f64 = 28.0;
const PAD_T: f64 = 10.0;
/// Room for the learning-rate axis on the right.
const PAD_R: f64 = 56.0;

/// Another run's validation curve drawn over this one's.
pub struct Overlay {
    pub colour: &'static str,
    pub evals: Vec<EvalPoint>,
}

/// Train loss per step and validation loss per evaluation, against steps or tokens seen; the
/// learning rate of each step on its own axis (right); other runs' validation curves overlaid.
pub fn loss_chart(
    losses: &[LossPoint],
    evals: &[EvalPoint],
    by_tokens: bool,
    overlays: &[Overlay],
) -> impl IntoView {
    let x_of = |step: usize, tokens: u64| if by_tokens { tokens as f64 } else { step as f64 };
    let val_of = |evals: &[EvalPoint]| -> Vec<(f64, f64)> {
        evals.iter().filter_map(|e| e.val_loss.map(|v| (x_of(e.step, e.tokens), v))).collect()
    };
    let train: Vec<(f64, f64)> = losses.iter().map(|p| (x_of(p.step, p.tokens), p.loss)).collect();
    let val = val_of(evals);
    let others: Vec<(&'static str, Vec<(f64, f64)>)> =
        overlays.iter().map(|o| (o.colour, val_of(&o.evals))).collect();
    let lr: Vec<(f64, f64)> =
        losses.iter().filter(|p| p.lr > 0.0).map(|p| (x_of(p.step, p.tokens), p.lr)).collect();
    // Infinite or NaN losses (a diverged step) are shown in the numbers, not drawn.
    let finite = |p: &&(f64, f64)| p.1.is_finite();
    let all = || train.iter().chain(&val).chain(others.iter().flat_map(|(_, v)| v)).filter(finite);
    let x_max = all().map(|p| p.0).fold(1.0f64, f64::max);
    let y_max = all().map(|p| p.1).fold(f64::MIN, f64::max);
    let y_min = all().map(|p| p.1).fold(f64::MAX, f64::min);
    let (y_min, y_max) = if y_min <= y_max { (y_min.min(y_max - 1e-3), y_max) } else { (0.0, 1.0) };
    let lr_max = lr.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let sx = move |x: f64| PAD_L + (W - PAD_L - PAD_R) * x / x_max;
    let sy = move |y: f64| PAD_T + (H - PAD_T - PAD_B) * (1.0 - (y - y_min) / (y_max - y_min));
    let s_lr = move |y: f64| PAD_T + (H - PAD_T - PAD_B) * (1.0 - y / lr_max.max(f64::MIN_POSITIVE));
    let points = |pts: &[(f64, f64)]| {
        pts.iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let lr_points =
        lr.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), s_lr(y))).collect::<Vec<_>>().join(" ");
    let y_ticks: Vec<f64> = (0..=4).map(|i| y_min + (y_max - y_min) * i as f64 / 4.0).collect();
    // Steps and tokens are whole numbers: ticks at whole numbers, each once (an empty chart's
    // axis read "0, 0, 1, 1, 1").
    let mut x_ticks: Vec<f64> = (0..=4).map(|i| (x_max * i as f64 / 4.0).round()).collect();
    x_ticks.dedup();
    let lr_ticks: Vec<f64> =
        if lr_max > 0.0 { (0..=2).map(|i| lr_max * i as f64 / 2.0).collect() } else { Vec::new() };
    let x_label = if by_tokens { "tokens seen" } else { "step" };
    view! {
        <svg class="loss-chart" viewBox=format!("0 0 {W} {H}") role="img" aria-label="loss curves">
            {y_ticks
                .into_iter()
                .map(|y| {
                    view! {
                        <line class="grid" x1=n(PAD_L) x2=n(W - PAD_R) y1=n(sy(y)) y2=n(sy(y))></line>
                        <text class="tick" x=n(PAD_L - 6.0) y=n(sy(y) + 4.0) text-anchor="end">{format!("{y:.2}")}</text>
                    }
                })
                .collect_view()}
            {x_ticks
                .into_iter()
                .map(|x| {
                    view! {
                        <text class="tick" x=n(sx(x)) y=n(H - 8.0) text-anchor="middle">{human_count(x.round() as usize)}</text>
                    }
                })
                .collect_view()}
            {lr_ticks
                .into_iter()
                .map(|y| view! { <text class="tick lr-tick" x=n(W - PAD_R + 6.0) y=n(s_lr(y) + 4.0)>{format!("{y:.1e}")}</text> })
                .collect_view()}
            {(lr_max > 0.0).then(|| view! {
                <text class="axis-label lr-tick" x=n(W - 4.0) y=n(PAD_T + 8.0) text-anchor="end">"lr"</text>
            })}
            // In the right margin, below the learning-rate ticks: clear of the last x tick.
            <text class="axis-label" x=n(W - 4.0) y=n(H - 8.0) text-anchor="end">{x_label}</text>
            <polyline class="lr-line" data-testid="lr-line" points=lr_points></polyline>
            {others
                .iter()
                .map(|(colour, pts)| view! {
                    <polyline class="overlay-line" data-testid="overlay-line" points=points(pts) style=format!("stroke:{colour}")></polyline>
                })
                .collect_view()}
            <polyline class="train-line" points=points(&train)></polyline>
            <polyline class="val-line" points=points(&val)></polyline>
            {val
                .iter()
                .filter(|p| p.1.is_finite())
                .map(|&(x, y)| view! { <circle class="val-dot" cx=n(sx(x)) cy=n(sy(y)) r="3"></circle> })
                .collect_view()}
        </svg>
    }
}

/// A probability as a percentage; tiny ones keep their significant digits.
pub fn percent(p: f32) -> String {
    let pct = 100.0 * p;
    if pct >= 0.01 || pct == 0.0 {
        format!("{pct:.2}%")
    } else {
        format!("{pct:.1e}%")
    }
}

/// An SVG coordinate.
fn n(x: f64) -> String {
    format!("{x:.1}")
}
