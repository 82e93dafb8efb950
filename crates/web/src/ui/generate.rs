//! The generate panel: next-token candidates one greedy step at a time, streamed sampling with
//! temperature, top-k and top-p, and the next-token distribution before and after them.

use leptos::prelude::*;

use super::bridge::post;
use super::charts::{bars, show_token};
use super::model_source::ModelSource;
use super::state::AppState;
use super::verify::Verify;
use super::widgets::Status;
use crate::protocol::{Request, SamplingParams, Slot, Topic};

/// Asks for the distribution of the current prompt and sliders (the answer replaces the chart
/// only if nothing newer was asked meanwhile).
fn refresh_distribution(state: AppState) {
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
fn Slider(
    label: &'static str,
    testid: &'static str,
    min: f64,
    max: f64,
    step: f64,
    value: Signal<f64>,
    set: Callback<f64>,
    #[prop(into)] shown: Signal<String>,
) -> impl IntoView {
    view! {
        <label class="slider">
            <span class="slider-label">{label}</span>
            <input
                type="range"
                min=min.to_string()
                max=max.to_string()
                step=step.to_string()
                data-testid=testid
                prop:value=move || value.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f64>() {
                        set.run(v.clamp(min, max));
                    }
                }
            />
            <output>{move || shown.get()}</output>
        </label>
    }
}

#[component]
pub fn GeneratePanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let seed = RwSignal::new(42u64);
    let max_tokens = RwSignal::new(40usize);
    let sampling = state.sampling;
    let set_sampling = move |f: &dyn Fn(&mut SamplingParams)| {
        sampling.update(|s| f(s));
        refresh_distribution(state);
    };
    // A newly loaded model gets its chart.
    Effect::new(move |_| {
        if state.gen_model.get().is_some() {
            refresh_distribution(state);
        }
    });
    let generate = move |_| {
        state.generating.set(true);
        state.generated.set(None);
        post(&Request::Generate {
            prompt: state.prompt.get_untracked(),
            sampling: sampling.get_untracked(),
            seed: seed.get_untracked(),
            max_new_tokens: max_tokens.get_untracked(),
        });
    };
    view! {
        <section class="panel" data-testid="generate-panel">
            <h2>"Generate"</h2>
            <ModelSource panel=Slot::Generate />
            <textarea
                data-testid="generate-prompt"
                rows="3"
                prop:value=move || state.prompt.get()
                on:input=move |ev| {
                    state.prompt.set(event_target_value(&ev));
                    refresh_distribution(state);
                }
            ></textarea>
            <div class="sliders">
                <Slider
                    label="temperature"
                    testid="temperature"
                    min=0.0
                    max=2.0
                    step=0.05
                    value=Signal::derive(move || sampling.get().temperature as f64)
                    set=Callback::new(move |v: f64| set_sampling(&|s: &mut SamplingParams| s.temperature = v as f32))
                    shown=Signal::derive(move || {
                        let t = sampling.get().temperature;
                        if t == 0.0 { "0 (greedy)".to_string() } else { format!("{t:.2}") }
                    })
                />
                <Slider
                    label="top-k"
                    testid="top-k"
                    min=0.0
                    max=200.0
                    step=1.0
                    value=Signal::derive(move || sampling.get().top_k as f64)
                    set=Callback::new(move |v: f64| set_sampling(&|s: &mut SamplingParams| s.top_k = v as usize))
                    shown=Signal::derive(move || {
                        let k = sampling.get().top_k;
                        if k == 0 { "off".to_string() } else { k.to_string() }
                    })
                />
                <Slider
                    label="top-p"
                    testid="top-p"
                    min=0.05
                    max=1.0
                    step=0.05
                    value=Signal::derive(move || sampling.get().top_p as f64)
                    set=Callback::new(move |v: f64| set_sampling(&|s: &mut SamplingParams| s.top_p = v as f32))
                    shown=Signal::derive(move || {
                        let p = sampling.get().top_p;
                        if p >= 1.0 { "off".to_string() } else { format!("{p:.2}") }
                    })
                />
                <label class="slider">
                    <span class="slider-label">"seed"</span>
                    <input
                        type="number"
                        min="0"
                        data-testid="seed"
                        prop:value=move || seed.get().to_string()
                        on:change=move |ev| seed.set(event_target_value(&ev).trim().parse().unwrap_or(42))
                    />
                </label>
                <label class="slider">
                    <span class="slider-label">"max tokens"</span>
                    <input
                        type="number"
                        min="1"
                        max="2048"
                        data-testid="max-tokens"
                        prop:value=move || max_tokens.get().to_string()
                        on:change=move |ev| {
                            let n = event_target_value(&ev).trim().parse::<usize>().unwrap_or(40).clamp(1, 2048);
                            max_tokens.set(n);
                        }
                    />
                </label>
            </div>
            <div class="row">
                <button data-testid="next-token" on:click=move |_| post(&Request::NextToken { prompt: state.prompt.get_untracked() })>
                    "Next token (greedy)"
                </button>
                <button data-testid="generate-run" class="primary" prop:disabled=move || state.generating.get() on:click=generate>
                    "Generate"
                </button>
                <button data-testid="generate-stop" prop:disabled=move || !state.generating.get() on:click=move |_| post(&Request::StopGenerate)>
                    "Stop"
                </button>
            </div>
            <div class="two-columns">
                <div>
                    <h4>"Next token: model's distribution (T = 1)"</h4>
                    {move || state.distribution.get().map(|(before, _)| bars(before, None, "dist-before"))}
                </div>
                <div>
                    <h4>"After temperature / top-k / top-p"</h4>
                    {move || state.distribution.get().map(|(_, after)| bars(after, None, "dist-after"))}
                </div>
            </div>
            {move || {
                state
                    .next
                    .get()
                    .map(|(chosen, candidates)| {
                        view! {
                            <div class="next-token">
                                <h4>{format!("Appended {} ({:.1}%)", show_token(&chosen.token), 100.0 * chosen.prob)}</h4>
                                {bars(candidates, Some(chosen.id), "next-candidates")}
                            </div>
                        }
                    })
            }}
            <div class="output" data-testid="generate-output">
                <span class="prompt-text">{move || state.prompt.get()}</span>
                <span class="generated-text">{move || state.generated.get().map(|g| g.text)}</span>
            </div>
            <p class="muted">
                {move || {
                    state.generated.get().map(|g| {
                        format!(
                            "{} new tokens{}{}",
                            g.ids.len(),
                            if g.tokens_per_s > 0.0 { format!(" · {:.1} tokens/s", g.tokens_per_s) } else { String::new() },
                            if g.done { " · done" } else { "" }
                        )
                    })
                }}
            </p>
            <p class="ids" data-testid="generate-ids">
                {move || state.generated.get().map(|g| g.ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))}
            </p>
            <Verify panel=Slot::Generate text=Signal::derive(move || state.prompt.get()) />
            <Status topic=Topic::Generate testid="generate" />
        </section>
    }
}
