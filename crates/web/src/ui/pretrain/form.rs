//! The pretrain form: architecture, size, tokenizer and the training numbers, with an estimate
//! of parameters and memory.

use hearth_lm::train::size_preset;
use hearth_lm::{BertConfig, Gpt2Config, ModelConfig};
use leptos::prelude::*;

use crate::protocol::{SizePreset, TrainArch, TrainSettings, TrainTokenizer};
use crate::ui::state::AppState;
use crate::units::{human_bytes, human_count};

/// (value, label) of the form's drop-downs, from the choices' own lists.
fn options<T: Copy>(all: &[T], value: fn(T) -> String, label: fn(T) -> String) -> Vec<(String, String)> {
    all.iter().map(|&c| (value(c), label(c))).collect()
}

/// Parameters, and memory for weights, gradients, two AdamW moments and activations.
fn estimate(s: &TrainSettings, distinct_chars: usize) -> (usize, u64) {
    let (layers, heads, width) = size_preset(s.size.as_str()).unwrap_or((12, 12, 768));
    let vocab = s.tokenizer.vocab_size(distinct_chars);
    let context = s.context.max(1);
    let config = match s.arch {
        TrainArch::Bert => {
            ModelConfig::Bert(BertConfig::new(vocab, width, layers, heads, 4 * width, context))
        }
        TrainArch::Gpt2 => ModelConfig::Gpt2(Gpt2Config::new(vocab, context, width, layers, heads)),
    };
    // The same estimate the worker checks before it allocates (hearth_lm::model::memory).
    let bytes = config.training_footprint(s.batch_size, context).total();
    (config.num_parameters(), u64::try_from(bytes).unwrap_or(u64::MAX))
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
    options: Vec<(String, String)>,
    value: Signal<String>,
    set: Callback<String>,
) -> impl IntoView {
    view! {
        <label class="field">
            <span>{label}</span>
            <select data-testid=testid prop:value=move || value.get() on:change=move |ev| set.run(event_target_value(&ev))>
                {options.into_iter().map(|(v, text)| view! { <option value=v>{text}</option> }).collect_view()}
            </select>
        </label>
    }
}

/// The form's fields, editing `settings`; a value that does not parse is reported, not kept.
#[component]
pub fn PretrainForm(settings: RwSignal<TrainSettings>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let form_error = RwSignal::new(None::<String>);
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
    let text_of = move |f: fn(&TrainSettings) -> String| Signal::derive(move || f(&settings.get()));
    // A choice from a <select> is always one of the options; anything else is ignored.
    let choose = move |apply: fn(&mut TrainSettings, &str) -> bool| {
        Callback::new(move |v: String| {
            settings.update(|s| {
                apply(s, &v);
            })
        })
    };
    view! {
        <div class="form">
            <Choice label="Architecture" testid="train-arch"
                options=options(&TrainArch::ALL, |a| a.as_str().into(), |a| a.label().into())
                value=text_of(|s| s.arch.as_str().into())
                set=choose(|s, v| v.parse().map(|a| s.arch = a).is_ok()) />
            <Choice label="Size" testid="train-size"
                options=options(&SizePreset::ALL, |p| p.as_str().into(), |p| p.label().into())
                value=text_of(|s| s.size.as_str().into())
                set=choose(|s, v| v.parse().map(|p| s.size = p).is_ok()) />
            <Choice label="Tokenizer" testid="train-tokenizer"
                options=options(&TrainTokenizer::OFFERED, |t| t.to_string(), TrainTokenizer::label)
                value=text_of(|s| s.tokenizer.to_string())
                set=choose(|s, v| v.parse().map(|t| s.tokenizer = t).is_ok()) />
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
    }
}
