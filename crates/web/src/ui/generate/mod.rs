//! The generate panel: next-token candidates one greedy step at a time, streamed sampling with
//! temperature, top-k and top-p, and the next-token distribution before and after them. One
//! file per part: the controls, the distribution, the output.

mod chat;
mod controls;
mod distribution;
mod output;

use leptos::prelude::*;

use self::chat::ChatPanel;
use self::controls::GenerateControls;
use self::distribution::Distribution;
use self::output::GenerateOutput;
use crate::protocol::{Request, Slot, Topic};
use crate::ui::bridge::post;
use crate::ui::inside::InsidePanel;
use crate::ui::model_source::ModelSource;
use crate::ui::state::AppState;
use crate::ui::verify::Verify;
use crate::ui::widgets::Status;

/// Asks for the distribution of the current prompt and sliders (the answer replaces the chart
/// only if nothing newer was asked meanwhile).
pub(super) fn refresh_distribution(state: AppState) {
    if state.gen_model.get_untracked().is_none() {
        return;
    }
    let seq = state.dist_seq.get_untracked() + 1;
    state.dist_seq.set(seq);
    post(&Request::Distribution {
        seq,
        prompt: state.prompt.get_untracked(),
        sampling: state.sampling.get_untracked(),
    });
}

#[component]
pub fn GeneratePanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    // A newly loaded model gets its chart.
    Effect::new(move |_| {
        if state.gen_model.get().is_some() {
            refresh_distribution(state);
        }
    });
    // Chat mode, offered when the model has a chat template (an instruct checkpoint).
    let chat = RwSignal::new(false);
    let can_chat = move || state.gen_model.get().is_some_and(|m| m.chat);
    Effect::new(move |_| {
        if !can_chat() {
            chat.set(false);
        }
    });
    view! {
        <section class="panel" data-testid="generate-panel">
            <h2>"Generate"</h2>
            <ModelSource panel=Slot::Generate />
            <div class="row mode" class:hidden=move || !can_chat()>
                <button data-testid="generate-mode-text" class:active=move || !chat.get() on:click=move |_| chat.set(false)>
                    "Continue text"
                </button>
                <button data-testid="generate-mode-chat" class:active=move || chat.get() on:click=move |_| chat.set(true)>
                    "Chat"
                </button>
            </div>
            <div class:hidden=move || !chat.get()><ChatPanel /></div>
            <div class:hidden=move || chat.get()>
            <textarea
                data-testid="generate-prompt"
                rows="3"
                prop:value=move || state.prompt.get()
                on:input=move |ev| {
                    state.prompt.set(event_target_value(&ev));
                    refresh_distribution(state);
                }
            ></textarea>
            <GenerateControls />
            <Distribution />
            <GenerateOutput />
            </div>
            <Verify panel=Slot::Generate text=Signal::derive(move || state.prompt.get()) />
            <Status topic=Topic::Generate testid="generate" />
            <InsidePanel panel=Slot::Generate text=Signal::derive(move || state.prompt.get()) />
        </section>
    }
}
