//! The tokenize panel: live token chips with ids, the attention mask and special tokens, and
//! any id decoded back to text.

use leptos::prelude::*;

use super::bridge::post;
use super::charts::show_token;
use super::state::AppState;
use super::widgets::Status;
use crate::protocol::{Request, Topic};

#[component]
pub fn TokenizePanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let tokenizer = RwSignal::new("gpt2".to_string());
    let text = RwSignal::new("Swimming at the beach is".to_string());
    let ids_input = RwSignal::new("15496, 11, 314, 716".to_string());
    let send = move || {
        let seq = state.tokenize_seq.get_untracked() + 1;
        state.tokenize_seq.set(seq);
        post(&Request::Tokenize { seq, tokenizer: tokenizer.get_untracked(), text: text.get_untracked() });
    };
    // Tokenize once on load, then on every change.
    send();
    let decode = move || {
        post(&Request::Decode { tokenizer: tokenizer.get_untracked(), ids: ids_input.get_untracked() })
    };
    let has_trained = move || state.train.get().is_some();
    view! {
        <section class="panel" data-testid="tokenize-panel">
            <h2>"Tokenize"</h2>
            <div class="row">
                <label>
                    "Tokenizer "
                    <select
                        data-testid="tokenizer-select"
                        prop:value=move || tokenizer.get()
                        on:change=move |ev| {
                            tokenizer.set(event_target_value(&ev));
                            send();
                        }
                    >
                        <option value="gpt2">"GPT-2 (byte-level BPE, 50,257)"</option>
                        <option value="bert-base-uncased">"BERT (WordPiece uncased, 30,522)"</option>
                        <option value="trained" prop:disabled=move || !has_trained()>"The trained model's tokenizer"</option>
                    </select>
                </label>
            </div>
            <textarea
                data-testid="tokenize-input"
                rows="3"
                prop:value=move || text.get()
                on:input=move |ev| {
                    text.set(event_target_value(&ev));
                    send();
                }
            ></textarea>
            {move || {
                state
                    .tokenized
                    .get()
                    .map(|t| {
                        let count = t.ids.len();
                        let ids = t.ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
                        let mask = t.attention_mask.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
                        let chips = t
                            .tokens
                            .iter()
                            .zip(&t.ids)
                            .zip(&t.special)
                            .enumerate()
                            .map(|(i, ((tok, id), &special))| {
                                view! {
                                    <span class="chip" class:special=special class:alt=i % 2 == 1 title=if special { "special token" } else { "" }>
                                        <span class="chip-text">{show_token(tok)}</span>
                                        <span class="chip-id">{id.to_string()}</span>
                                    </span>
                                }
                            })
                            .collect_view();
                        view! {
                            <p class="muted">{format!("{count} tokens")}</p>
                            <div class="chips" data-testid="token-chips">{chips}</div>
                            <dl class="encoding">
                                <dt>"ids"</dt>
                                <dd data-testid="token-ids">{ids}</dd>
                                <dt>"attention mask"</dt>
                                <dd data-testid="attention-mask">{mask}</dd>
                            </dl>
                        }
                    })
            }}
            <h3>"Decode ids"</h3>
            <div class="row">
                <input
                    class="grow"
                    data-testid="decode-input"
                    prop:value=move || ids_input.get()
                    on:input=move |ev| ids_input.set(event_target_value(&ev))
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" {
                            decode();
                        }
                    }
                />
                <button data-testid="decode-run" on:click=move |_| decode()>"Decode"</button>
            </div>
            <pre class="decoded" data-testid="decode-output">{move || state.decoded.get().map(|t| format!("{t:?}"))}</pre>
            <Status topic=Topic::Tokenize testid="tokenize" />
        </section>
    }
}
