//! The heatmap every attention view draws: a matrix of weights with token strings on both axes,
//! a colour scale with its numbers, masked cells (GPT-2's causal mask, BERT's padding) hatched
//! as such, and a readout of the cell under the pointer.

use leptos::prelude::*;

use crate::ui::charts::show_token;

/// White (0) to deep blue (`max`); the square root spreads the small weights most heads have.
pub fn colour(v: f32, max: f32) -> String {
    let t = if max > 0.0 { (v / max).clamp(0.0, 1.0).sqrt() } else { 0.0 };
    let mix = |a: f32, b: f32| (a + (b - a) * t).round() as u8;
    format!("rgb({},{},{})", mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

/// A token as an axis label: visible spaces, at most 10 characters.
pub fn label(token: &str) -> String {
    let t = show_token(token);
    if t.chars().count() > 10 {
        format!("{}…", t.chars().take(9).collect::<String>())
    } else {
        t
    }
}

/// What a heatmap draws. `masked(row, col)` cells are hatched and read "masked".
pub struct Heatmap {
    /// Row and column labels as shown (tokens through [`label`]).
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    /// `values[row][col]`; rows may be shorter than `cols` (missing cells are blank).
    pub values: Vec<Vec<f32>>,
    pub masked: Box<dyn Fn(usize, usize) -> bool>,
    /// The top of the colour scale (1 for attention weights).
    pub max: f32,
    /// What a row and a column are, for the readout: ("query", "key"), ("layer", "key").
    pub axes: (&'static str, &'static str),
    pub testid: &'static str,
}

const CELL_MAX: f64 = 28.0;
const CELL_MIN: f64 = 9.0;
const ROW_LABEL: f64 = 84.0;
const COL_LABEL: f64 = 70.0;
const LEGEND: f64 = 56.0;
const LEGEND_MIN: f64 = 110.0;

/// The heatmap; `hover` receives the readout of the cell under the pointer, and clicking a row
/// label calls `on_row` (to follow that token).
pub fn heatmap(h: Heatmap, hover: RwSignal<String>, on_row: Option<Callback<usize>>) -> impl IntoView {
    let n = h.cols.len().max(h.rows.len()).max(1) as f64;
    let cell = (560.0 / n).clamp(CELL_MIN, CELL_MAX);
    let width = ROW_LABEL + cell * h.cols.len() as f64 + LEGEND;
    // Room for the colour scale's five numbers however few rows there are.
    let height = COL_LABEL + (cell * h.rows.len() as f64).max(LEGEND_MIN) + 4.0;
    let font = (cell * 0.55).clamp(8.0, 12.0);
    let Heatmap { rows, cols, values, masked, max, axes, testid } = h;
    let legend_h = (cell * rows.len() as f64).max(LEGEND_MIN);
    let legend_x = ROW_LABEL + cell * cols.len() as f64 + 12.0;
    let cells = values
        .iter()
        .enumerate()
        .flat_map(|(r, row)| {
            let rows = &rows;
            let cols = &cols;
            let masked = &masked;
            row.iter().enumerate().map(move |(c, &v)| {
                let is_masked = masked(r, c);
                let read = if is_masked {
                    format!("{} {} → {} {}: masked", axes.0, rows[r], axes.1, cols[c])
                } else {
                    format!("{} {} → {} {}: {v:.3}", axes.0, rows[r], axes.1, cols[c])
                };
                let title = read.clone();
                view! {
                    <rect
                        x=f(ROW_LABEL + cell * c as f64)
                        y=f(COL_LABEL + cell * r as f64)
                        width=f(cell)
                        height=f(cell)
                        fill=if is_masked { "url(#masked)".to_string() } else { colour(v, max) }
                        class="cell"
                        data-w=format!("{v:.4}")
                        on:mouseenter=move |_| hover.set(read.clone())
                    >
                        <title>{title}</title>
                    </rect>
                }
            })
        })
        .collect_view();
    let ticks = [0.0f32, 0.25, 0.5, 0.75, 1.0];
    view! {
        <svg
            class="heatmap"
            data-testid=testid
            width=f(width)
            height=f(height)
            viewBox=format!("0 0 {} {}", f(width), f(height))
            role="img"
        >
            <defs>
                <pattern id="masked" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
                    <rect width="6" height="6" fill="#f1ede8"></rect>
                    <line x1="0" y1="0" x2="0" y2="6" stroke="#cfc6bc" stroke-width="2"></line>
                </pattern>
                <linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">
                    {(0..=10)
                        .map(|i| {
                            let t = i as f32 / 10.0;
                            view! { <stop offset=format!("{}%", i * 10) stop-color=colour(t * max, max)></stop> }
                        })
                        .collect_view()}
                </linearGradient>
            </defs>
            {cols
                .iter()
                .enumerate()
                .map(|(c, t)| {
                    let x = ROW_LABEL + cell * (c as f64 + 0.5);
                    view! {
                        <text
                            class="axis-token"
                            font-size=f(font)
                            transform=format!("translate({},{}) rotate(-60)", f(x), f(COL_LABEL - 4.0))
                        >
                            {t.clone()}
                        </text>
                    }
                })
                .collect_view()}
            {rows
                .iter()
                .enumerate()
                .map(|(r, t)| {
                    let y = COL_LABEL + cell * (r as f64 + 0.5) + font / 3.0;
                    view! {
                        <text
                            class="axis-token"
                            class:clickable=on_row.is_some()
                            font-size=f(font)
                            x=f(ROW_LABEL - 4.0)
                            y=f(y)
                            text-anchor="end"
                            data-row=r.to_string()
                            on:click=move |_| {
                                if let Some(cb) = on_row {
                                    cb.run(r);
                                }
                            }
                        >
                            {t.clone()}
                        </text>
                    }
                })
                .collect_view()}
            {cells}
            <rect x=f(legend_x) y=f(COL_LABEL) width="12" height=f(legend_h) fill="url(#scale)" stroke="#ccc"></rect>
            {ticks
                .into_iter()
                .map(|t| {
                    let y = COL_LABEL + legend_h * (1.0 - t as f64);
                    view! {
                        <text class="tick" x=f(legend_x + 16.0) y=f(y + 4.0)>{format!("{:.2}", t * max)}</text>
                    }
                })
                .collect_view()}
        </svg>
    }
}

fn f(x: f64) -> String {
    format!("{x:.1}")
}
