//! The device panel: which backend runs the models, the adapter and its limits, and which
//! models fit it.

use hearth_lm::model::precision::WeightDtype;
use hearth_lm::{BertConfig, Gpt2Config, LlamaConfig, ModelConfig, ModernBertConfig};
use leptos::prelude::*;

use super::bridge::post;
use super::state::AppState;
use super::widgets::Status;
use crate::kernels::{Choice, Kernels};
use crate::limits::{check_fits, CPU_WEIGHTS_LIMIT};
use crate::protocol::{DeviceInfo, Request, Topic};
use crate::units::{human_bytes, human_count, saturating_bytes};

/// The models people ask about, by name.
fn known_models() -> Vec<(String, ModelConfig)> {
    let mut out = Vec::new();
    for name in ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"] {
        if let Ok(c) = Gpt2Config::preset(name) {
            out.push((name.to_string(), ModelConfig::Gpt2(c)));
        }
    }
    for name in ["SmolLM2-135M", "SmolLM2-360M", "Qwen2.5-0.5B", "Qwen3-0.6B", "Llama-3.2-1B"] {
        if let Ok(c) = LlamaConfig::preset(name) {
            out.push((name.to_string(), ModelConfig::Llama(Box::new(c))));
        }
    }
    for name in ["bert-base-uncased", "bert-large-uncased"] {
        if let Ok(c) = BertConfig::preset(name) {
            out.push((name.to_string(), ModelConfig::Bert(c)));
        }
    }
    for name in ["ModernBERT-base", "ModernBERT-large"] {
        if let Ok(c) = ModernBertConfig::preset(name) {
            out.push((name.to_string(), ModelConfig::ModernBert(Box::new(c))));
        }
    }
    out
}

/// What the storage line says: the dtype of the weights here, and why.
fn storage_line(info: &DeviceInfo) -> String {
    match (info.weights(), info.backend.as_str()) {
        (WeightDtype::F16, _) => {
            "Weights are stored as f16 (this adapter has shader-f16): half the memory of \
             f32; matrix products run in f16, everything else in f32."
                .into()
        }
        (_, "webgpu") => {
            "Weights are stored as f32: this adapter has no shader-f16, so it cannot compute in f16.".into()
        }
        _ => "Weights are stored as f32 (the CPU backend computes in f32).".into(),
    }
}

/// Which worker build computes here and why (`kernels::choose`), on WebGPU, where it matters.
fn kernels_line(info: &DeviceInfo, choice: Option<Choice>) -> Option<String> {
    let running = Kernels::parse(&info.kernels).unwrap_or(Kernels::Plain);
    let reason = choice.map(|c| format!(": {}", c.reason)).unwrap_or_default();
    (info.backend == "webgpu").then(|| format!("GPU kernels: {}{reason}.", running.label()))
}

/// The rule the fit table applies on this device, in words.
fn fit_rule(info: &DeviceInfo) -> String {
    if info.backend == "webgpu" {
        format!(
            "Weights stream from the download or the file to the GPU tensor by tensor, so the tab holds one \
             tensor at a time. A model fits when its largest tensor fits one storage binding ({}). WebGPU \
             does not say how much memory the GPU has: a model that passes here and still does not fit \
             fails when its tensors are allocated, with a message.",
            human_bytes(info.max_binding.min(info.max_buffer))
        )
    } else {
        format!(
            "The CPU backend keeps the weights in browser memory: up to {} of them (4 GiB in all for the tab).",
            human_bytes(CPU_WEIGHTS_LIMIT)
        )
    }
}

/// What browser storage keeps (downloaded models, the runs' checkpoints), and buttons that
/// forget the downloads or the kept runs.
#[component]
fn StoredDownloads() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <h3>"Kept in this browser"</h3>
        <div class="row">
            <button data-testid="stored-list" on:click=move |_| post(&Request::StoredList)>"List"</button>
            <button data-testid="stored-clear" on:click=move |_| post(&Request::StoredClear)>
                "Forget all downloads"
            </button>
            <button data-testid="runs-clear" on:click=move |_| post(&Request::RunsClear)>
                "Delete the kept runs (not the run in the Pretrain panel)"
            </button>
        </div>
        {move || {
            let runs = state.stored_runs.get();
            (!runs.is_empty()).then(|| {
                let total: u64 = runs.iter().map(|(_, b)| b).sum();
                view! {
                    <table class="stored" data-testid="stored-runs">
                        <thead><tr><th>"Runs"</th><th>"Size"</th></tr></thead>
                        <tbody>
                            {runs.into_iter().map(|(what, bytes)| view! {
                                <tr><td>{what}</td><td>{human_bytes(bytes)}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <p class="muted" data-testid="stored-runs-total">{format!("{} for the runs", human_bytes(total))}</p>
                }
            })
        }}
        {move || state.stored.get().map(|files| {
            let total: u64 = files.iter().map(|(_, b)| b).sum();
            view! {
                <table class="stored" data-testid="stored">
                    <thead><tr><th>"File"</th><th>"Size"</th></tr></thead>
                    <tbody>
                        {files.into_iter().map(|(url, bytes)| view! {
                            <tr><td>{url}</td><td>{human_bytes(bytes)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <p class="muted" data-testid="stored-total">{format!("{} of downloads", human_bytes(total))}</p>
            }
        })}
    }
}

#[component]
pub fn DevicePanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <section class="panel" data-testid="device-panel">
            <h2>"Device"</h2>
            {move || match state.device.get() {
                None => view! { <p>"Starting the compute worker and asking the browser for a GPU…"</p> }.into_any(),
                Some(info) => {
                    let rows = info.limits.clone();
                    let models = known_models();
                    let info2 = info.clone();
                    view! {
                        <p class="backend-line">
                            "Backend: " <strong class="badge">{info.backend.clone()}</strong>
                            {info
                                .fallback_reason
                                .clone()
                                .map(|r| view! { <span class="notice">" — using the CPU backend because " {r}</span> })}
                        </p>
                        {kernels_line(&info, state.kernels.get()).map(|line| view! { <p class="muted" data-testid="kernels">{line}</p> })}
                        {(info.backend == "webgpu")
                            .then(|| {
                                view! {
                                    <dl class="adapter">
                                        <dt>"Adapter"</dt> <dd data-testid="adapter">{info.adapter.clone()}</dd>
                                        <dt>"Vendor"</dt> <dd>{info.vendor.clone()}</dd>
                                        <dt>"Architecture"</dt> <dd>{info.architecture.clone()}</dd>
                                        <dt>"Type"</dt> <dd data-testid="device-type">{info.device_type.clone()}</dd>
                                    </dl>
                                    <table class="limits" data-testid="limits">
                                        <thead><tr><th>"Limit"</th><th>"Value"</th></tr></thead>
                                        <tbody>
                                            {rows
                                                .into_iter()
                                                .map(|(name, value)| {
                                                    let shown = if name.contains("Size") && value >= 1 << 20 {
                                                        format!("{} ({value})", human_bytes(value))
                                                    } else {
                                                        value.to_string()
                                                    };
                                                    view! { <tr><td>{name}</td><td>{shown}</td></tr> }
                                                })
                                                .collect_view()}
                                        </tbody>
                                    </table>
                                }
                            })}
                        <h3>"Which models fit"</h3>
                        <p class="muted" data-testid="fits-rule">{fit_rule(&info)}</p>
                        <p class="muted" data-testid="weights-storage">{storage_line(&info)}</p>
                        <table class="fits" data-testid="fits">
                            <thead><tr><th>"Model"</th><th>"Parameters"</th><th>{format!("Weights ({})", info.weights().name())}</th><th>"Largest tensor"</th><th>"Fits?"</th></tr></thead>
                            <tbody>
                                {models
                                    .into_iter()
                                    .map(|(name, config)| {
                                        let storage = info2.weights();
                                        let params = config.num_parameters();
                                        let weights = saturating_bytes(config.weight_bytes(storage));
                                        let largest = saturating_bytes(config.largest_tensor_bytes(storage));
                                        let row_id = format!("fits-{name}");
                                        let verdict = match check_fits(&info2, weights, largest) {
                                            Ok(()) => "yes".to_string(),
                                            Err(e) => format!("no: {e}"),
                                        };
                                        view! {
                                            <tr data-testid=row_id>
                                                <td>{name}</td>
                                                <td>{human_count(params)}</td>
                                                <td>{human_bytes(weights)}</td>
                                                <td>{human_bytes(largest)}</td>
                                                <td>{verdict}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    }
                        .into_any()
                }
            }}
            <StoredDownloads />
            <Status topic=Topic::Device testid="device" />
        </section>
    }
}
