//! "Inside the model", under the fill-mask and generate panels: attention maps, the logit lens,
//! the surprisal of each token, and the embedding table — for the text the user looks at. One
//! file per view; the heatmap is shared with the training probe.

pub mod attention;
mod embeddings;
pub mod heatmap;
pub mod lens;
mod surprisal;

use leptos::prelude::*;

use self::attention::AttentionView;
use self::embeddings::EmbeddingsView;
use self::lens::LensView;
use self::surprisal::SurprisalView;
use crate::protocol::{InsideQuery, JobKind, Request, Slot};
use crate::ui::bridge::post;
use crate::ui::state::AppState;

#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Attention,
    Lens,
    Surprisal,
    Embeddings,
}

impl View {
    fn label(self) -> &'static str {
        match self {
            View::Attention => "Attention",
            View::Lens => "Logit lens",
            View::Surprisal => "Score",
            View::Embeddings => "Embeddings",
        }
    }

    fn id(self) -> &'static str {
        match self {
            View::Attention => "attention",
            View::Lens => "lens",
            View::Surprisal => "surprisal",
            View::Embeddings => "embeddings",
        }
    }

    /// The logit lens and surprisal read next-token predictions: a causal model's.
    fn causal_only(self) -> bool {
        matches!(self, View::Lens | View::Surprisal)
    }
}

/// What the views share: the panel, the text looked at, and how to ask the worker.
#[derive(Clone, Copy)]
pub struct Ctx {
    slot: Slot,
    /// The text the views show (taken from the panel by "Look inside").
    looked: RwSignal<Option<String>>,
    prefix: &'static str,
}

impl Ctx {
    fn ask(&self, query: InsideQuery) {
        let Some(text) = self.looked.get_untracked() else { return };
        let inside = expect_context::<AppState>().inside(self.slot);
        let seq = inside.seq.get_untracked() + 1;
        inside.seq.set(seq);
        post(&Request::Inside { seq, slot: self.slot, text, query });
    }
}

const TOP_K: usize = 5;
const PROJECTED: usize = 300;

#[component]
pub fn InsidePanel(panel: Slot, text: Signal<String>) -> impl IntoView {
    let slot = panel;
    let state = expect_context::<AppState>();
    let prefix = match slot {
        Slot::FillMask => "fillmask-inside",
        Slot::Generate => "generate-inside",
    };
    let ctx = Ctx { slot, looked: RwSignal::new(None), prefix };
    let view = RwSignal::new(View::Attention);
    let layer = RwSignal::new(0usize);
    let pad = RwSignal::new(0usize);
    let nearest_token = RwSignal::new(String::new());
    let causal = move || state.model(slot).get().is_some_and(|m| m.arch.causal());
    let inside = state.inside(slot);
    // Asks for what the current view shows.
    let refresh = move || match view.get_untracked() {
        View::Attention => {
            ctx.ask(InsideQuery::Attention { layer: layer.get_untracked(), pad: pad.get_untracked() })
        }
        View::Lens => ctx.ask(InsideQuery::Lens { top_k: TOP_K }),
        View::Surprisal => ctx.ask(InsideQuery::Surprisal { top_k: TOP_K }),
        View::Embeddings => {
            ctx.ask(InsideQuery::Projection { count: PROJECTED });
            let token = nearest_token.get_untracked();
            if !token.trim().is_empty() {
                ctx.ask(InsideQuery::Nearest { token, top_k: 10 });
            }
        }
    };
    let look = move || {
        inside.clear();
        ctx.looked.set(Some(text.get_untracked()));
        refresh();
    };
    let views = [View::Attention, View::Lens, View::Surprisal, View::Embeddings];
    view! {
        <section class="inside" data-testid=prefix>
            <h3>"Inside the model"</h3>
            <p class="muted">
                "What the loaded model does with the text above, computed on this device. "
                "Look inside, then switch views; each reads back only what it draws."
            </p>
            <div class="row">
                <button
                    class="primary"
                    data-testid=format!("{prefix}-look")
                    disabled=move || state.model(slot).get().is_none()
                    on:click=move |_| look()
                >
                    "Look inside this text"
                </button>
                <span class="subtabs">
                    {views
                        .into_iter()
                        .map(|v| {
                            view! {
                                <button
                                    class="subtab"
                                    class:active=move || view.get() == v
                                    class:hidden=move || v.causal_only() && !causal()
                                    data-testid=format!("{prefix}-view-{}", v.id())
                                    on:click=move |_| {
                                        view.set(v);
                                        refresh();
                                    }
                                >
                                    {v.label()}
                                </button>
                            }
                        })
                        .collect_view()}
                </span>
                <button
                    data-testid=format!("{prefix}-verify")
                    title="compute every view here and on the CPU backend and compare"
                    disabled=move || state.model(slot).get().is_none() || state.job_pending(JobKind::Verify, slot.into())
                    on:click=move |_| {
                        let t = ctx.looked.get_untracked().unwrap_or_else(|| text.get_untracked());
                        post(&Request::VerifyInside { slot, text: t });
                    }
                >
                    "Check views against CPU"
                </button>
            </div>
            <p class="muted" data-testid=format!("{prefix}-verify-result")>
                {move || {
                    inside.verified.get().map(|(diffs, backend)| {
                        let parts: Vec<String> = diffs.iter().map(|(name, d)| format!("{name} {d:.1e}")).collect();
                        format!("{backend} vs cpu, max |Δ| per view: {}", parts.join(" · "))
                    })
                }}
            </p>
            {move || {
                ctx.looked.get().map(|_| match view.get() {
                    View::Attention => view! { <AttentionView ctx=ctx layer=layer pad=pad causal=Signal::derive(causal) /> }.into_any(),
                    View::Lens => view! { <LensView ctx=ctx /> }.into_any(),
                    View::Surprisal => view! { <SurprisalView ctx=ctx /> }.into_any(),
                    View::Embeddings => view! { <EmbeddingsView ctx=ctx token=nearest_token /> }.into_any(),
                })
            }}
        </section>
    }
}
