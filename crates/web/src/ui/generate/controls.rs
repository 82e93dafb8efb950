//! The sampling sliders (temperature, top-k, top-p), seed and length, and the buttons that
//! take one greedy step, generate, or stop.

use leptos::prelude::*;

use super::refresh_distribution;
use crate::protocol::{JobKind, Request, SamplingParams, Topic};
use crate::ui::bridge::post;
use crate::ui::state::AppState;

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
pub fn GenerateControls() -> impl IntoView {
    let state = expect_context::<AppState>();
    let seed = RwSignal::new(42u64);
    let max_tokens = RwSignal::new(40usize);
    let sampling = state.sampling;
    let set_sampling = move |f: &dyn Fn(&mut SamplingParams)| {
        sampling.update(|s| f(s));
        refresh_distribution(state);
    };
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
            <button data-testid="next-token"
                prop:disabled=move || state.job_pending(JobKind::NextToken, Topic::Generate)
                on:click=move |_| post(&Request::NextToken { prompt: state.prompt.get_untracked() })>
                "Next token (greedy)"
            </button>
            <button data-testid="generate-run" class="primary" prop:disabled=move || state.generating.get() || state.job_pending(JobKind::Generate, Topic::Generate)
                on:click=generate>
                "Generate"
            </button>
            <button data-testid="generate-stop" prop:disabled=move || !state.generating.get() on:click=move |_| post(&Request::StopGenerate)>
                "Stop"
            </button>
        </div>
    }
}
