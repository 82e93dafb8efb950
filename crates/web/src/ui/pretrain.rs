//! The pretrain panel: upload a text, choose a model, train with live curves and samples,
//! pause/resume/stop, and download the result as a Hugging Face directory.

use hearth_lm::train::size_preset;
use hearth_lm::{BertConfig, Gpt2Config};
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use super::bridge::{post, post_with};
use super::charts::loss_chart;
use super::state::AppState;
use super::widgets::Status;
use crate::protocol::{Request, RunState, Topic, TrainAction, TrainSettings};
use crate::units::{human_bytes, human_count, human_duration};

/// Sends the first file of a picker or a drop to the worker.
fn send_corpus(files: Option<web_sys::FileList>) {
    if let Some(file) = files.and_then(|f| f.item(0)) {
        post_with(&Request::LoadCorpus, &js_sys::Array::of1(&JsValue::from(file)).into());
    }
}

/// (value, label) of the form's drop-downs.
const ARCHS: &[(&str, &str)] = &[("gpt2", "GPT (causal LM)"), ("bert", "BERT (masked LM)")];
const SIZES: &[(&str, &str)] = &[
    ("micro", "micro: 2 layers × 64"),
    ("nano", "nano: 4 layers × 128"),
    ("baby", "baby: 6 layers × 384"),
    ("gpt2", "GPT-2 small: 12 layers × 768"),
];
const TOKENIZERS: &[(&str, &str)] = &[
    ("chars", "characters"),
    ("bytes", "bytes"),
    ("bpe:1024", "BPE trained on the text (1,024)"),
    ("bpe:4096", "BPE trained on the text (4,096)"),
    ("gpt2", "GPT-2 (50,257)"),
    ("bert-base-uncased", "BERT uncased (30,522)"),
];

/// Vocabulary the tokenizer choice gives on this corpus.
fn vocab_size(tokenizer: &str, distinct_chars: usize) -> usize {
    match tokenizer {
        "chars" => distinct_chars + 1,
        "bytes" => 257,
        "gpt2" => 50257,
        "bert-base-uncased" => 30522,
        other => other.strip_prefix("bpe:").and_then(|n| n.parse().ok()).unwrap_or(4096),
    }
}

/// Parameters, and memory for weights, gradients, two AdamW moments and activations.
fn estimate(s: &TrainSettings, distinct_chars: usize) -> (usize, u64) {
    let (layers, heads, width) = size_preset(&s.size).unwrap_or((12, 12, 768));
    let vocab = vocab_size(&s.tokenizer, distinct_chars);
    let params = if s.arch == "bert" {
        BertConfig::new(vocab, width, layers, heads, 4 * width, s.context.max(1)).num_parameters()
    } else {
        Gpt2Config::new(vocab, s.context.max(1), width, layers, heads).num_parameters()
    };
    let tokens = (s.batch_size * s.context) as u64;
    // About 16 activations of `width` per token and layer are kept for the backward pass, plus
    // the logits and their gradient.
    let activations = tokens * (16 * width as u64 * layers as u64 + 2 * vocab as u64) * 4;
    (params, params as u64 * 16 + activations)
}

#[component]
fn Field(
    label: &'static str,
    testid: &'static str,
    value: Signal<String>,
    set: Callback<String>,
) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <input
                data-testid=testid
                prop:value=move || value.get()
                on:change=move |ev| set.run(event_target_value(&ev))
            />
        </label>
    }
}

#[component]
fn Choice(
    label: &'static str,
    testid: &'static str,
    options: &'static [(&'static str, &'static str)],
    value: Signal<String>,
    set: Callback<String>,
) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <select data-testid=testid prop:value=move || value.get() on:change=move |ev| set.run(event_target_value(&ev))>
                {options.iter().map(|&(v, text)| view! { <option value=v>{text}</option> }).collect_view()}
            </select>
        </label>
    }
}

#[component]
pub fn PretrainPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let settings = RwSignal::new(TrainSettings::default());
    let by_tokens = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    let form_error = RwSignal::new(None::<String>);
    let status = state.train;
    let run_state = move || status.get().map(|s| s.state).unwrap_or(RunState::Idle);
    let running = move || matches!(run_state(), RunState::Running | RunState::Preparing);
    let numeric = move |field: &'static str| {
        Callback::new(move |v: String| {
            let v = v.trim().to_string();
            let ok = settings.try_update(|s| match field {
                "context" => v.parse().map(|x| s.context = x).is_ok(),
                "batch" => v.parse().map(|x| s.batch_size = x).is_ok(),
                "steps" => v.parse().map(|x| s.steps = x).is_ok(),
                "lr" => v.parse::<f64>().map(|x| s.lr = x).is_ok(),
                "eval" => v.parse().map(|x| s.eval_every = x).is_ok(),
                _ => v.parse().map(|x| s.seed = x).is_ok(),
            });
            form_error.set((ok == Some(false)).then(|| format!("`{v}` is not a valid {field}")));
        })
    };
    // A run the worker reports (a restored one, after a reload) puts its settings in the form,
    // once: later edits to the form stay the user's.
    let shown_run = StoredValue::new(None::<TrainSettings>);
    Effect::new(move |_| {
        // Steps as the run now stands (Continue may have raised them).
        if let Some(run) = status.get().map(|s| TrainSettings { steps: s.total_steps, ..s.settings }) {
            if shown_run.get_value().as_ref() != Some(&run) {
                shown_run.set_value(Some(run.clone()));
                settings.set(run);
            }
        }
    });
    let text_of = move |f: fn(&TrainSettings) -> String| Signal::derive(move || f(&settings.get()));
    let start = move |_| {
        state.losses.set(Vec::new());
        state.evals.set(Vec::new());
        post(&Request::TrainStart { settings: settings.get_untracked() });
    };
    let proceed = move |_| {
        let s = status.get_untracked();
        let wanted = settings.get_untracked().steps;
        match s {
            Some(s) if wanted > s.total_steps => post(&Request::TrainExtend { steps: wanted }),
            _ => post(&Request::TrainControl { action: TrainAction::Resume }),
        }
    };
    view! {
        <section class="panel" data-testid="pretrain-panel">
            <h2>"Pretrain"</h2>
            <div
                class="dropzone"
                class:dragging=move || dragging.get()
                on:dragover=move |ev: leptos::ev::DragEvent| {
                    ev.prevent_default();
                    dragging.set(true);
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=move |ev: leptos::ev::DragEvent| {
                    ev.prevent_default();
                    dragging.set(false);
                    send_corpus(ev.data_transfer().and_then(|d| d.files()));
                }
            >
                <p>"Drop a .txt file here, or "</p>
                <label class="file-button">
                    "choose a file"
                    <input
                        type="file"
                        accept=".txt,text/plain"
                        data-testid="corpus-upload"
                        on:change=move |ev| {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            send_corpus(input.files());
                            input.set_value("");
                        }
                    />
                </label>
            </div>
            {move || {
                state.corpus.get().map(|c| {
                    view! {
                        <div class="corpus" data-testid="corpus-stats">
                            <strong>{c.name.clone()}</strong>
                            {format!(
                                " · {} · {} characters · {} lines · {} words · {} distinct characters",
                                human_bytes(c.bytes as u64),
                                human_count(c.chars),
                                human_count(c.lines),
                                human_count(c.words),
                                c.distinct_chars
                            )}
                            <pre class="preview">{c.preview.clone()}</pre>
                        </div>
                    }
                })
            }}
            <div class="form">
                <Choice label="Architecture" testid="train-arch" options=ARCHS
                    value=text_of(|s| s.arch.clone()) set=Callback::new(move |v| settings.update(|s| s.arch = v)) />
                <Choice label="Size" testid="train-size" options=SIZES
                    value=text_of(|s| s.size.clone()) set=Callback::new(move |v| settings.update(|s| s.size = v)) />
                <Choice label="Tokenizer" testid="train-tokenizer" options=TOKENIZERS
                    value=text_of(|s| s.tokenizer.clone()) set=Callback::new(move |v| settings.update(|s| s.tokenizer = v)) />
                <Field label="Context" testid="train-context" value=text_of(|s| s.context.to_string()) set=numeric("context") />
                <Field label="Batch" testid="train-batch" value=text_of(|s| s.batch_size.to_string()) set=numeric("batch") />
                <Field label="Steps" testid="train-steps" value=text_of(|s| s.steps.to_string()) set=numeric("steps") />
                <Field label="Learning rate" testid="train-lr" value=text_of(|s| s.lr.to_string()) set=numeric("lr") />
                <Field label="Evaluate every (0 = auto)" testid="train-eval-every" value=text_of(|s| s.eval_every.to_string()) set=numeric("eval") />
                <Field label="Seed" testid="train-seed" value=text_of(|s| s.seed.to_string()) set=numeric("seed") />
            </div>
            <p class="muted" data-testid="train-estimate">
                {move || {
                    let distinct = state.corpus.get().map_or(65, |c| c.distinct_chars);
                    let (params, bytes) = estimate(&settings.get(), distinct);
                    format!("≈ {} parameters · ≈ {} of memory while training", human_count(params), human_bytes(bytes))
                }}
            </p>
            {move || form_error.get().map(|e| view! { <p class="error">{e}</p> })}
            <div class="row">
                <button class="primary" data-testid="train-start" prop:disabled=running on:click=start>"Start"</button>
                <button data-testid="train-pause" prop:disabled=move || run_state() != RunState::Running
                    on:click=move |_| post(&Request::TrainControl { action: TrainAction::Pause })>"Pause"</button>
                <button data-testid="train-resume"
                    prop:disabled=move || !matches!(run_state(), RunState::Paused | RunState::Stopped | RunState::Done)
                    on:click=proceed>"Resume / continue"</button>
                <button data-testid="train-stop" prop:disabled=move || !matches!(run_state(), RunState::Running | RunState::Paused)
                    on:click=move |_| post(&Request::TrainControl { action: TrainAction::Stop })>"Stop"</button>
                <button data-testid="train-download" prop:disabled=move || status.get().is_none_or(|s| s.step == 0)
                    on:click=move |_| post(&Request::DownloadTrained)>"Download (Hugging Face zip)"</button>
            </div>
            {move || {
                status.get().map(|s| {
                    let fraction = s.step as f64 / s.total_steps.max(1) as f64;
                    let eta = s.eta_s.map(human_duration).unwrap_or_else(|| "–".into());
                    view! {
                        <div class="train-progress">
                            <progress max="1" value=fraction.to_string()></progress>
                            <span>
                                {format!("{:?}", s.state).to_lowercase()} " · step "
                                <strong data-testid="train-step">{s.step.to_string()}</strong>
                                {format!(" / {} · {} tokens seen · {:.0} tokens/s · ETA {eta}", s.total_steps, human_count(s.tokens_seen as usize), s.tokens_per_s)}
                            </span>
                        </div>
                        <dl class="numbers">
                            <dt>"train loss"</dt>
                            <dd data-testid="train-loss">{s.loss.map(|l| format!("{l:.4}")).unwrap_or_default()}</dd>
                            <dt>"val loss"</dt>
                            <dd data-testid="val-loss">{s.val_loss.map(|l| format!("{l:.4}")).unwrap_or_default()}</dd>
                            <dt>"perplexity"</dt>
                            <dd data-testid="perplexity">{s.perplexity.map(|p| format!("{p:.2}")).unwrap_or_default()}</dd>
                            <dt>"parameters"</dt>
                            <dd>{human_count(s.params)}</dd>
                            <dt>"saved"</dt>
                            <dd data-testid="train-saved">{s.saved_step.map(|st| format!("step {st}, in browser storage")).unwrap_or_else(|| "not yet".into())}</dd>
                            <dt>"tokens/s"</dt>
                            <dd data-testid="train-tps">{format!("{:.0}", s.tokens_per_s)}</dd>
                        </dl>
                    }
                })
            }}
            <div class="row">
                <label>
                    <input type="checkbox" data-testid="train-xaxis" prop:checked=move || by_tokens.get()
                        on:change=move |ev| by_tokens.set(event_target_checked(&ev)) />
                    " x-axis: tokens seen (instead of steps)"
                </label>
                <span class="legend"><span class="swatch train"></span>" train " <span class="swatch val"></span>" validation"</span>
            </div>
            <div data-testid="loss-chart">{move || loss_chart(&state.losses.get(), &state.evals.get(), by_tokens.get())}</div>
            <h3>"Samples as it learns"</h3>
            <ol class="samples" data-testid="train-samples">
                {move || {
                    state.evals.get().into_iter().rev().take(8).map(|e| {
                        view! { <li><span class="muted">{format!("step {}: ", e.step)}</span><pre>{e.sample}</pre></li> }
                    }).collect_view()
                }}
            </ol>
            <Status topic=Topic::Pretrain testid="pretrain" />
        </section>
    }
}
