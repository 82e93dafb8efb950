//! Surprisal of a text: each token shaded by its loss given the tokens before it (hover: its
//! probability, rank and the model's top alternatives), with the mean loss and perplexity —
//! what `hearth score` computes, shown to a person.

use leptos::prelude::*;

use super::heatmap::colour;
use super::lens::{ink, legend};
use super::Ctx;
use crate::ui::charts::{percent, show_token};
use crate::ui::state::AppState;

/// Losses at or above this many nats get the darkest shade (ln 50257 ≈ 10.8: a uniform guess
/// over GPT-2's vocabulary).
const LOSS_MAX: f32 = 12.0;

#[component]
pub fn SurprisalView(ctx: Ctx) -> impl IntoView {
    let inside = expect_context::<AppState>().inside(ctx.slot);
    let hover = RwSignal::new(String::from(
        "hover over a token for its probability, rank and what the model expected",
    ));
    let prefix = ctx.prefix;
    view! {
        {legend("loss of the token, nats", LOSS_MAX, |v| format!("{v:.0}"))}
        <p class="readout" data-testid=format!("{prefix}-readout")>{move || hover.get()}</p>
        {move || {
            let text = inside.text.get()?;
            let (tokens, loss, perplexity) = inside.surprisal.get()?;
            let first = text.tokens.first().cloned().unwrap_or_default();
            Some(view! {
                <p data-testid=format!("{prefix}-score")>
                    <strong>{format!("mean loss {loss:.4} nats · perplexity {perplexity:.2}")}</strong>
                    <span class="muted">{format!(" over {} predicted tokens", tokens.len())}</span>
                </p>
                <div class="surprisal" data-testid=format!("{prefix}-surprisal")>
                    <span class="surprisal-token first" title="the first token is not predicted">{show_token(&first)}</span>
                    {tokens
                        .into_iter()
                        .map(|t| {
                            let shade = (t.loss as f32).min(LOSS_MAX);
                            let expected: Vec<String> =
                                t.top.iter().map(|c| format!("{} {}", show_token(&c.token), percent(c.prob))).collect();
                            let read = format!(
                                "“{}”: loss {:.3} · p {} · rank {} · the model expected {}",
                                show_token(&t.token),
                                t.loss,
                                percent(t.prob as f32),
                                t.rank,
                                expected.join(", ")
                            );
                            let title = read.clone();
                            view! {
                                <span
                                    class="surprisal-token"
                                    style=format!("background:{};color:{}", colour(shade, LOSS_MAX), ink(shade, LOSS_MAX))
                                    title=title
                                    data-loss=format!("{:.6}", t.loss)
                                    on:mouseenter=move |_| hover.set(read.clone())
                                >
                                    {show_token(&t.token)}
                                </span>
                            }
                        })
                        .collect_view()}
                </div>
            })
        }}
    }
}
