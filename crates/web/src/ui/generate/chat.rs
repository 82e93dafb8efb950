//! Chat mode of the Generate panel, for instruct checkpoints: a system prompt and the turns of a
//! conversation, rendered in the worker by the model's own chat template (as transformers'
//! `apply_chat_template(..., add_generation_prompt=True)` renders it); the reply streams and
//! ends at the checkpoint's eos ids. The prompt the model sees is shown on demand.

use leptos::prelude::*;

use hearth_lm::chat::Message;

use crate::protocol::{JobKind, Request, SamplingParams, Topic};
use crate::ui::bridge::post;
use crate::ui::state::AppState;

#[component]
pub fn ChatPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let system = RwSignal::new(String::new());
    let turns: RwSignal<Vec<Message>> = RwSignal::new(Vec::new());
    let input = RwSignal::new(String::new());
    let max_tokens = RwSignal::new(256usize);
    let temperature = RwSignal::new(0.0f32);
    // A reply is streaming: the conversation waits for it.
    let pending = RwSignal::new(false);
    // The streamed reply joins the conversation when it ends (at eos, the limit, or Stop); a
    // reply that failed or was cancelled before its first token gives the turn back to the input.
    Effect::new(move |_| {
        let generating = state.generating.get();
        let generated = state.generated.get();
        if !pending.get_untracked() || generating {
            return;
        }
        pending.set(false);
        match generated.filter(|g| g.done) {
            Some(g) => turns.update(|t| t.push(Message::new("assistant", &g.text))),
            None => {
                let mut back = None;
                turns.update(|t| back = t.pop());
                if let Some(m) = back {
                    input.set(m.content);
                }
            }
        }
    });
    let send = move || {
        let text = input.get_untracked();
        if text.trim().is_empty() || pending.get_untracked() {
            return;
        }
        turns.update(|t| t.push(Message::new("user", &text)));
        input.set(String::new());
        pending.set(true);
        state.generating.set(true);
        state.generated.set(None);
        let t = temperature.get_untracked();
        post(&Request::Chat {
            system: system.get_untracked(),
            turns: turns.get_untracked(),
            sampling: SamplingParams { temperature: t, top_k: if t > 0.0 { 50 } else { 0 }, top_p: 1.0 },
            seed: 42,
            max_new_tokens: max_tokens.get_untracked(),
        });
    };
    let busy = move || pending.get() || state.job_pending(JobKind::Generate, Topic::Generate);
    view! {
        <div class="chat" data-testid="chat-panel">
            <label class="chat-system">
                "System prompt (blank: the template's default, if it has one)"
                <textarea
                    data-testid="chat-system"
                    rows="2"
                    prop:value=move || system.get()
                    on:input=move |ev| system.set(event_target_value(&ev))
                ></textarea>
            </label>
            <div class="chat-turns" data-testid="chat-turns">
                {move || {
                    turns
                        .get()
                        .into_iter()
                        .map(|m| {
                            let class = format!("chat-turn {}", m.role);
                            view! {
                                <div class=class data-testid="chat-turn" data-role=m.role.clone()>
                                    <span class="chat-role">{m.role.clone()}</span>
                                    <span class="chat-text">{m.content.clone()}</span>
                                </div>
                            }
                        })
                        .collect_view()
                }}
                {move || pending.get().then(|| view! {
                    <div class="chat-turn assistant streaming" data-testid="chat-streaming">
                        <span class="chat-role">"assistant"</span>
                        <span class="chat-text">{move || state.generated.get().map(|g| g.text).unwrap_or_else(|| "…".into())}</span>
                    </div>
                })}
            </div>
            <textarea
                data-testid="chat-input"
                rows="2"
                placeholder="Your message (Enter sends, Shift+Enter a new line)"
                prop:value=move || input.get()
                on:input=move |ev| input.set(event_target_value(&ev))
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && !ev.shift_key() {
                        ev.prevent_default();
                        send();
                    }
                }
            ></textarea>
            <div class="row">
                <button class="primary" data-testid="chat-send" prop:disabled=busy on:click=move |_| send()>"Send"</button>
                <button data-testid="chat-stop" prop:disabled=move || !pending.get() on:click=move |_| post(&Request::StopGenerate)>
                    "Stop"
                </button>
                <button
                    data-testid="chat-reset"
                    prop:disabled=move || pending.get()
                    on:click=move |_| {
                        turns.set(Vec::new());
                        state.chat_prompt.set(None);
                    }
                >
                    "New conversation"
                </button>
                <label>
                    "temperature (0 = greedy) "
                    <input
                        type="number"
                        min="0"
                        max="2"
                        step="0.1"
                        class="narrow"
                        data-testid="chat-temperature"
                        prop:value=move || temperature.get().to_string()
                        on:change=move |ev| temperature.set(event_target_value(&ev).parse::<f32>().unwrap_or(0.0).clamp(0.0, 2.0))
                    />
                </label>
                <label>
                    "max tokens "
                    <input
                        type="number"
                        min="1"
                        max="2048"
                        class="narrow"
                        data-testid="chat-max-tokens"
                        prop:value=move || max_tokens.get().to_string()
                        on:change=move |ev| max_tokens.set(event_target_value(&ev).trim().parse::<usize>().unwrap_or(256).clamp(1, 2048))
                    />
                </label>
            </div>
            <details data-testid="chat-prompt-details">
                <summary>"The prompt the model sees"</summary>
                {move || state.chat_prompt.get().map(|(text, tokens)| view! {
                    <p class="muted">{format!("{tokens} tokens, rendered by the checkpoint's chat template:")}</p>
                    <pre class="chat-prompt" data-testid="chat-prompt">{text}</pre>
                })}
            </details>
        </div>
    }
}
