//! Which backend a run trains on. A hardware GPU trains on WebGPU. A software adapter (a CPU
//! emulating a GPU: SwiftShader, lavapipe) can be slower than the CPU backend, so "automatic"
//! times a training step on each the first time the page trains and keeps the faster for the
//! worker's later runs; the run's settings record the choice, so a reload resumes on it.

use std::cell::Cell;

use burn::tensor::Device;
use hearth_lm::model::memory::Budget;
use hearth_lm::train::Corpus;

use super::device::{cpu_device, Compute};
use super::{emit, now_ms, yield_now};
use crate::limits::{training_budget, TRAINING_BUDGET};
use crate::protocol::{Event, Topic, TrainDevice, TrainSettings};

const TOPIC: Topic = Topic::Pretrain;

thread_local! {
    /// What "automatic" chose on this worker's software adapter, once measured.
    static MEASURED: Cell<Option<TrainDevice>> = const { Cell::new(None) };
}

/// Where a run trains, its memory budget there, and the sentence the panel shows about it.
pub struct TrainsOn {
    pub device: Device,
    pub budget: Budget,
    pub note: String,
}

pub fn on_cpu(note: String) -> TrainsOn {
    TrainsOn { device: cpu_device(), budget: Budget::from(TRAINING_BUDGET), note }
}

fn on_gpu(compute: &Compute, note: String) -> TrainsOn {
    TrainsOn { device: compute.device.clone(), budget: training_budget(&compute.info), note }
}

/// A saved run resumes where it trained (`Auto` in runs saved before the choice existed: the
/// worker's device, as then).
pub fn saved(compute: &Compute, device: TrainDevice) -> TrainsOn {
    match device {
        TrainDevice::Cpu => on_cpu(String::new()),
        TrainDevice::Auto | TrainDevice::Webgpu => on_gpu(compute, String::new()),
    }
}

/// Resolves `settings.device` to a backend (writing the choice back into the settings) for a new
/// run on `corpus`. Only "automatic" on a software adapter measures, and only once per worker.
pub async fn resolve(
    compute: &Compute,
    settings: &mut TrainSettings,
    corpus: &Corpus,
) -> Result<TrainsOn, String> {
    if compute.info.backend != "webgpu" {
        settings.device = TrainDevice::Cpu;
        return Ok(on_cpu("Training on the CPU backend (no WebGPU).".into()));
    }
    let wanted = match settings.device {
        TrainDevice::Auto => MEASURED.with(Cell::get).unwrap_or(TrainDevice::Auto),
        chosen => chosen,
    };
    let (choice, note) = match wanted {
        TrainDevice::Cpu => (TrainDevice::Cpu, "Training on the CPU backend.".to_string()),
        TrainDevice::Webgpu => (TrainDevice::Webgpu, "Training on WebGPU.".to_string()),
        TrainDevice::Auto if !compute.info.software => {
            (TrainDevice::Webgpu, "Training on WebGPU.".to_string())
        }
        TrainDevice::Auto => measure(compute, settings, corpus).await?,
    };
    settings.device = choice;
    Ok(match choice {
        TrainDevice::Cpu => on_cpu(note),
        _ => on_gpu(compute, note),
    })
}

/// Times the second of two steps (the first compiles shaders and warms caches) on the CPU backend
/// and on the software adapter, with throwaway trainers built from the run's settings, one after
/// the other so only one is in memory.
async fn measure(
    compute: &Compute,
    settings: &TrainSettings,
    corpus: &Corpus,
) -> Result<(TrainDevice, String), String> {
    emit(&Event::Progress {
        topic: TOPIC,
        label: "timing a training step on the software adapter and on the CPU backend".into(),
        done: 0,
        total: 0,
    });
    yield_now().await;
    // A run that cannot start on the CPU backend cannot start at all: its error is the answer.
    let cpu = step_seconds(settings, corpus, &on_cpu(String::new())).await?;
    let gpu = step_seconds(settings, corpus, &on_gpu(compute, String::new())).await;
    // Chromium's SwiftShader often names itself only by its architecture.
    let adapter = [&compute.info.adapter, &compute.info.architecture]
        .into_iter()
        .find(|name| !name.is_empty() && name.as_str() != "(unnamed)")
        .map_or("the software adapter", |name| name.as_str());
    let (choice, note) = match gpu {
        Ok(gpu) if gpu < cpu => (
            TrainDevice::Webgpu,
            format!("Training on WebGPU: a step took {gpu:.2} s on {adapter} (a software adapter) and {cpu:.2} s on the CPU backend."),
        ),
        Ok(gpu) => (
            TrainDevice::Cpu,
            format!("Training on the CPU backend: a step took {cpu:.2} s there and {gpu:.2} s on {adapter} (a software adapter)."),
        ),
        Err(e) => (TrainDevice::Cpu, format!("Training on the CPU backend: the software adapter could not run a step ({e}).")),
    };
    MEASURED.with(|m| m.set(Some(choice)));
    Ok((choice, note))
}

async fn step_seconds(settings: &TrainSettings, corpus: &Corpus, on: &TrainsOn) -> Result<f64, String> {
    let mut settings = settings.clone();
    let mut trainer = super::training::build(&mut settings, corpus, &on.device, on.budget).await?;
    trainer.step().await.map_err(|e| e.to_string())?;
    let started = now_ms();
    trainer.step().await.map_err(|e| e.to_string())?;
    Ok((now_ms() - started) / 1000.0)
}
