//! The pretrain form: where the weights start (random, or a model loaded in another panel to
//! fine-tune), architecture, size, tokenizer, packing and the training numbers, an "Advanced"
//! part for the rest of the recipe, and an estimate of parameters and memory.

use hearth_lm::model::llama::config::Family;
use hearth_lm::train::{size_preset, swiglu_width};
use hearth_lm::{BertConfig, Gpt2Config, LlamaConfig, ModelConfig, ModernBertConfig};
use leptos::prelude::*;

use crate::protocol::{
    ModelInfo, Packing, SizePreset, StartFrom, TrainArch, TrainDevice, TrainSettings, TrainTokenizer,
};
use crate::ui::state::AppState;
use crate::units::{human_bytes, human_count};

/// (value, label) of the form's drop-downs, from the choices' own lists.
fn options<T: Copy>(all: &[T], value: fn(T) -> String, label: fn(T) -> String) -> Vec<(String, String)> {
    all.iter().map(|&c| (value(c), label(c))).collect()
}

/// A Llama-style shape as the worker builds it (`TrainConfig::llama_config`): SwiGLU at 8/3 of
/// the width, two query heads per key/value head where they pair up unless `kv` says, the
/// embedding tied to the head unless `untied`.
fn llama(
    vocab: usize,
    context: usize,
    (width, layers, heads): (usize, usize, usize),
    kv: Option<usize>,
    untied: bool,
) -> LlamaConfig {
    let kv = kv.unwrap_or(if heads.is_multiple_of(2) { heads / 2 } else { heads }).max(1);
    let mut c = LlamaConfig::new(Family::Llama, vocab, width, swiglu_width(width), layers, heads, kv);
    c.max_position_embeddings = context;
    c.tie_word_embeddings = !untied;
    c
}

/// Parameters, and memory for weights, gradients, two AdamW moments and activations. A
/// fine-tune is estimated from the source model's shape.
fn estimate(s: &TrainSettings, distinct_chars: usize, source: Option<&ModelInfo>) -> (usize, u64) {
    let context = s.context.max(1);
    if let Some(m) = source {
        let heads = (m.hidden / 64).max(1);
        let config = match m.arch {
            TrainArch::Bert => ModelConfig::Bert(BertConfig::new(
                m.vocab_size,
                m.hidden,
                m.layers,
                heads,
                4 * m.hidden,
                m.context,
            )),
            TrainArch::Gpt2 => {
                ModelConfig::Gpt2(Gpt2Config::new(m.vocab_size, m.context, m.hidden, m.layers, heads))
            }
            TrainArch::Llama => ModelConfig::Llama(Box::new(llama(
                m.vocab_size,
                m.context,
                (m.hidden, m.layers, heads),
                None,
                false,
            ))),
            TrainArch::ModernBert => ModelConfig::ModernBert(Box::new(ModernBertConfig::new(
                m.vocab_size,
                m.hidden,
                swiglu_width(m.hidden),
                m.layers,
                heads,
                m.context,
            ))),
        };
        let bytes = config.training_footprint(s.batch_size, context).total();
        return (m.params, u64::try_from(bytes).unwrap_or(u64::MAX));
    }
    let (layers, heads, width) = size_preset(s.size.as_str()).unwrap_or((12, 12, 768));
    let vocab = s.tokenizer.vocab_size(distinct_chars);
    let config = match s.arch {
        TrainArch::Bert => {
            ModelConfig::Bert(BertConfig::new(vocab, width, layers, heads, 4 * width, context))
        }
        TrainArch::Gpt2 => ModelConfig::Gpt2(Gpt2Config::new(vocab, context, width, layers, heads)),
        TrainArch::ModernBert => ModelConfig::ModernBert(Box::new(ModernBertConfig::new(
            vocab,
            width,
            swiglu_width(width),
            layers,
            heads,
            context,
        ))),
        TrainArch::Llama => {
            let a = &s.advanced;
            ModelConfig::Llama(Box::new(llama(
                vocab,
                context,
                (width, layers, heads),
                a.kv_heads,
                a.untie_embeddings,
            )))
        }
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
            // Blank in the advanced part: the recipe's default.
            let opt_f = |v: &str| if v.is_empty() { Ok(None) } else { v.parse::<f64>().map(Some) };
            let opt_u = |v: &str| if v.is_empty() { Ok(None) } else { v.parse::<usize>().map(Some) };
            let ok = settings.try_update(|s| match field {
                "context" => v.parse().map(|x| s.context = x).is_ok(),
                "batch" => v.parse().map(|x| s.batch_size = x).is_ok(),
                "steps" => v.parse().map(|x| s.steps = x).is_ok(),
                "epochs" => {
                    if v.is_empty() {
                        s.epochs = 0.0;
                        true
                    } else {
                        v.parse::<f64>().map(|x| s.epochs = x).is_ok()
                    }
                }
                "lr" => v.parse::<f64>().map(|x| s.lr = x).is_ok(),
                "eval" => v.parse().map(|x| s.eval_every = x).is_ok(),
                "warmup" => opt_u(&v).map(|x| s.advanced.warmup = x).is_ok(),
                "min-lr" => opt_f(&v).map(|x| s.advanced.min_lr = x).is_ok(),
                "weight-decay" => opt_f(&v).map(|x| s.advanced.weight_decay = x).is_ok(),
                "dropout" => opt_f(&v).map(|x| s.advanced.dropout = x).is_ok(),
                "grad-clip" => opt_f(&v).map(|x| s.advanced.grad_clip = x).is_ok(),
                "kv-heads" => opt_u(&v).map(|x| s.advanced.kv_heads = x).is_ok(),
                "rope-theta" => opt_f(&v).map(|x| s.advanced.rope_theta = x).is_ok(),
                _ => v.parse().map(|x| s.seed = x).is_ok(),
            });
            form_error.set((ok == Some(false)).then(|| format!("`{v}` is not a valid {field}")));
        })
    };
    let pretrained = move || settings.with(|s| s.start_from.pretrained());
    // The model a fine-tune would start from, as the page knows it.
    let source = move || -> Option<ModelInfo> {
        match settings.with(|s| s.start_from) {
            StartFrom::Generate => state.gen_model.get(),
            StartFrom::FillMask => state.fill_model.get(),
            _ => None,
        }
    };
    let source_line = move || {
        let s = settings.get();
        match s.start_from {
            StartFrom::Random => None,
            StartFrom::Trained => Some(match state.train.get() {
                Some(t) => format!(
                    "Fine-tunes the model trained here ({}, {}, step {}); its architecture and tokenizer are kept.",
                    t.settings.arch.label(),
                    human_count(t.params),
                    t.step
                ),
                None => "Nothing has been trained here yet.".to_string(),
            }),
            _ => Some(match source() {
                Some(m) => format!(
                    "Fine-tunes {} ({}, {} layers × {}, vocabulary {}, up to {} tokens); its architecture and tokenizer ({}) are kept.",
                    m.source,
                    m.arch.label(),
                    m.layers,
                    m.hidden,
                    human_count(m.vocab_size),
                    m.context,
                    m.tokenizer
                ),
                None => "Load a model in that panel first.".to_string(),
            }),
        }
    };
    let advanced_text = move |f: fn(&TrainSettings) -> Option<String>| {
        Signal::derive(move || f(&settings.get()).unwrap_or_default())
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
            <Choice label="Start from" testid="train-start-from"
                options=options(&StartFrom::ALL, |f| f.as_str().into(), |f| f.label().into())
                value=text_of(|s| s.start_from.as_str().into())
                set=choose(|s, v| v.parse().map(|f: StartFrom| {
                    // Hugging Face Trainer's fine-tuning rate, or the pretraining one, when the
                    // user has not set their own.
                    if f.pretrained() && s.lr == TrainSettings::default().lr {
                        s.lr = TrainSettings::FINE_TUNE_LR;
                    } else if !f.pretrained() && s.lr == TrainSettings::FINE_TUNE_LR {
                        s.lr = TrainSettings::default().lr;
                    }
                    s.start_from = f;
                }).is_ok()) />
        </div>
        {move || source_line().map(|line| view! {
            <p class="muted" data-testid="train-source">
                {line}
                " Defaults follow Hugging Face TrainingArguments for fine-tuning: learning rate 5e-5 decaying linearly to 0, \
                 no warmup, AdamW β₂ 0.999, no weight decay, gradients clipped at 1.0, the model's own dropout."
            </p>
        })}
        <div class="form">
            <Show when=move || !pretrained()>
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
            </Show>
            <Choice label="Packing" testid="train-packing"
                options=vec![
                    ("concat".into(), "concat: documents joined by end-of-text, cut into windows".into()),
                    ("per-doc".into(), "per document: context-sized chunks, remainders dropped".into()),
                ]
                value=text_of(|s| s.packing.to_string())
                set=choose(|s, v| v.parse::<Packing>().map(|p| s.packing = p).is_ok()) />
            <Field label="Context" testid="train-context" value=text_of(|s| s.context.to_string()) set=numeric("context") />
            <Field label="Batch" testid="train-batch" value=text_of(|s| s.batch_size.to_string()) set=numeric("batch") />
            <Field label="Steps" testid="train-steps" value=text_of(|s| s.steps.to_string()) set=numeric("steps") />
            <Field label="Epochs (instead of steps)" testid="train-epochs"
                value=text_of(|s| if s.epochs > 0.0 { s.epochs.to_string() } else { String::new() }) set=numeric("epochs") />
            <Field label="Learning rate" testid="train-lr" value=text_of(|s| s.lr.to_string()) set=numeric("lr") />
            <Field label="Evaluate every (0 = auto)" testid="train-eval-every" value=text_of(|s| s.eval_every.to_string()) set=numeric("eval") />
            <Field label="Seed" testid="train-seed" value=text_of(|s| s.seed.to_string()) set=numeric("seed") />
            <Choice label="Train on" testid="train-device"
                options=options(&TrainDevice::ALL, |d| d.as_str().into(), |d| d.label().into())
                value=text_of(|s| s.device.as_str().into())
                set=choose(|s, v| v.parse().map(|d| s.device = d).is_ok()) />
            <Field label="Probe sentence (blank = start of the validation split)" testid="train-probe"
                value=text_of(|s| s.probe.clone())
                set=Callback::new(move |v: String| settings.update(|s| s.probe = v)) />
        </div>
        <details class="advanced" data-testid="train-advanced">
            <summary>"Advanced (blank = the recipe's default)"</summary>
            <div class="form">
                <Field label="Warmup steps" testid="train-warmup" value=advanced_text(|s| s.advanced.warmup.map(|v| v.to_string())) set=numeric("warmup") />
                <Field label="Minimum learning rate" testid="train-min-lr" value=advanced_text(|s| s.advanced.min_lr.map(|v| v.to_string())) set=numeric("min-lr") />
                <Field label="Weight decay" testid="train-weight-decay" value=advanced_text(|s| s.advanced.weight_decay.map(|v| v.to_string())) set=numeric("weight-decay") />
                <Field label="Dropout" testid="train-dropout" value=advanced_text(|s| s.advanced.dropout.map(|v| v.to_string())) set=numeric("dropout") />
                <Field label="Gradient clip (0 = off)" testid="train-grad-clip" value=advanced_text(|s| s.advanced.grad_clip.map(|v| v.to_string())) set=numeric("grad-clip") />
                // The Llama-style shape's own knobs (a fine-tune keeps its model's).
                <Show when=move || !pretrained() && settings.with(|s| s.arch == TrainArch::Llama)>
                    <Field label="Key/value heads (blank = half the query heads)" testid="train-kv-heads"
                        value=advanced_text(|s| s.advanced.kv_heads.map(|v| v.to_string())) set=numeric("kv-heads") />
                    <Field label="Rope theta (blank = 10000)" testid="train-rope-theta"
                        value=advanced_text(|s| s.advanced.rope_theta.map(|v| v.to_string())) set=numeric("rope-theta") />
                    <label class="field">
                        <span>"Output head"</span>
                        <select data-testid="train-untie"
                            prop:value=move || if settings.with(|s| s.advanced.untie_embeddings) { "untied" } else { "tied" }
                            on:change=move |ev| {
                                let untied = event_target_value(&ev) == "untied";
                                settings.update(|s| s.advanced.untie_embeddings = untied);
                            }>
                            <option value="tied">"tied to the token embedding"</option>
                            <option value="untied">"a matrix of its own (untied)"</option>
                        </select>
                    </label>
                </Show>
            </div>
        </details>
        <p class="muted" data-testid="train-estimate">
            {move || {
                let distinct = state.corpus.get().map_or(65, |c| c.distinct_chars);
                let (params, bytes) = estimate(&settings.get(), distinct, source().as_ref());
                format!("≈ {} parameters · ≈ {} of memory while training", human_count(params), human_bytes(bytes))
            }}
        </p>
        {move || form_error.get().map(|e| view! { <p class="error">{e}</p> })}
    }
}
