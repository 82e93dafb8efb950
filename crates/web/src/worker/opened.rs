//! "Open a run" (the runs table): a run continued by Hugging Face Trainer comes back into the
//! panel, as `hearth train --resume DIR/checkpoint-M` brings it back to the CLI. The picked
//! directory is planned by `crate::opening`; a hand-off's latest Trainer checkpoint becomes
//! Hearth's checkpoint (`checkpoint_from_trainer`), resumes on the run's corpus and is saved as
//! the run in the panel, so it can be continued, looked inside, sampled and fine-tuned. A plain
//! Trainer checkpoint (no hand-off) opens as a model in the Generate or Fill mask panel, with
//! what cannot be continued named.

use std::rc::Rc;

use hearth_lm::io::checkpoint::Checkpoint;
use hearth_lm::io::handoff::{checkpoint_from_trainer, TrainerCheckpoint, HANDED_FILES, HEARTH_STATE};
use hearth_lm::train::Trainer;
use hearth_lm::ModelConfig;
use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};

use super::run::Run;
use super::{emit, emit_error, models, owner, read_file, runs, state, train_device};
use crate::opening::{join, plan, settings_of, Opening};
use crate::protocol::{Event, LossPoint, RunState, Slot, Topic, TrainDevice};
use crate::units::human_bytes;

const TOPIC: Topic = Topic::Pretrain;
/// `handoff.json` (with the masking generator's state per step), `hearth_state.json` (with the
/// probes of the run's evaluations), `hf_losses.jsonl`, configs and tokenizers: read whole.
const SMALL_FILE_LIMIT: u64 = 64 << 20;

pub async fn open_run(paths: Vec<String>, extra: JsValue) {
    if let Err(e) = open(paths, extra).await {
        emit_error(TOPIC, e);
    }
}

async fn open(paths: Vec<String>, extra: JsValue) -> Result<(), String> {
    let files: Vec<web_sys::File> =
        Array::from(&extra).iter().filter_map(|f| f.dyn_into::<web_sys::File>().ok()).collect();
    if files.len() != paths.len() {
        return Err(format!(
            "{} paths came with {} files: pick the directory again",
            paths.len(),
            files.len()
        ));
    }
    let find = |path: &str| paths.iter().position(|p| p == path).map(|i| files[i].clone());
    match plan(&paths)? {
        Opening::Plain { checkpoint, step } => open_plain(&checkpoint, step, &paths, &files).await,
        Opening::Handoff { root, checkpoint, step } => {
            if !owner::is_owner() {
                return Err(owner::NOT_OWNER.into());
            }
            if let Some(run) = state::run() {
                if matches!(run.state.get(), RunState::Running | RunState::Preparing) {
                    return Err("a run is in progress: pause or stop it before opening another".into());
                }
            }
            let corpus = state::corpus().ok_or(
                "load the run's corpus first (the file it was trained on, or the sample): the run continues on it",
            )?;
            let small = |path: String| {
                let file = find(&path);
                async move {
                    match file {
                        Some(f) => read_file(&f, SMALL_FILE_LIMIT, "a run's record").await.map(Some),
                        None => Ok(None),
                    }
                }
            };
            let handoff_json = small(join(&root, "handoff.json")).await?.ok_or("handoff.json is missing")?;
            let hearth_state = small(join(&root, HEARTH_STATE))
                .await?
                .ok_or_else(|| format!("{HEARTH_STATE} is missing"))?;
            let losses = small(join(&root, "hf_losses.jsonl")).await?;
            let meta: serde_json::Value = serde_json::from_slice(&handoff_json).map_err(|e| {
                format!("handoff.json is not JSON: {}", hearth_lm::error::excerpt(&e.to_string()))
            })?;
            let handed_dir = join(&root, meta["checkpoint"].as_str().unwrap_or("checkpoint-0"));

            // The Trainer checkpoint's weights and optimizer state are read whole: both must fit
            // the training budget before a byte is read.
            let compute = state::compute(TOPIC).ok_or("the compute device is still starting")?;
            let trains_on = train_device::saved(&compute, TrainDevice::Auto);
            let large: u64 = ["model.safetensors", "optimizer.pt"]
                .iter()
                .filter_map(|n| find(&join(&checkpoint, n)))
                .map(|f| f.size() as u64)
                .sum();
            if large.saturating_mul(2) > trains_on.budget.bytes {
                return Err(format!(
                    "{checkpoint}'s weights and optimizer state are {} — coming back holds them twice, more than the {} this tab trains within; continue it with `hearth train --resume {checkpoint}`",
                    human_bytes(large),
                    human_bytes(trains_on.budget.bytes)
                ));
            }
            let mut trainer_files = Checkpoint::default();
            for name in ["config.json", "model.safetensors", "optimizer.pt", "trainer_state.json"] {
                if let Some(f) = find(&join(&checkpoint, name)) {
                    trainer_files
                        .files
                        .push((name.to_string(), read_file(&f, u64::MAX, "a checkpoint file").await?));
                }
            }
            let mut handed_off = Checkpoint::default();
            for name in HANDED_FILES {
                if let Some(bytes) = small(join(&handed_dir, name)).await? {
                    handed_off.files.push((name.to_string(), bytes));
                }
            }
            let ours = checkpoint_from_trainer(TrainerCheckpoint {
                handoff_json: &handoff_json,
                hearth_state: &hearth_state,
                losses: losses.as_deref(),
                checkpoint: &trainer_files,
                handed_off: &handed_off,
            })
            .map_err(|e| format!("{checkpoint}: {e}"))?;
            drop(trainer_files);
            let trainer = Trainer::resume_within(&ours, &corpus.corpus, &trains_on.device, trains_on.budget)
                .map_err(|e| {
                    format!("{checkpoint}: {e} (load the corpus the run was trained on, then open it again)")
                })?;
            // The run in the panel moves to the runs table first, as Start does.
            runs::keep_current().await.map_err(|e| {
                format!(
                    "the run was not opened: the run in the panel could not be kept in the runs table ({e})"
                )
            })?;
            let settings = settings_of(trainer.config());
            let per_step = trainer.config().tokens_per_step().unwrap_or(0);
            let handed_step = meta["step"].as_u64().unwrap_or(0) as usize;
            let curve = trainer_curve(losses.as_deref(), handed_step, step, per_step);
            let total = trainer.config().steps;
            let shown_root = if root.is_empty() { "hand-off".to_string() } else { root.clone() };
            let name = format!("{} (Trainer, step {step})", hearth_lm::error::excerpt(&shown_root));
            let run = Rc::new(Run::new(trainer, settings, corpus, curve, js_sys::Date::now() as u64, name));
            state::set_run(run.clone());
            run.emit_history();
            run.emit_status();
            // The save sends the status with its saved step.
            runs::save(&run).await;
            emit(&Event::Notice {
                topic: TOPIC,
                message: format!(
                    "opened {checkpoint}: Trainer's step {step} of {total}, with its optimizer state, schedule and data position. Resume continues it here; Generate or Fill mask can use it (the trained model)"
                ),
            });
            Ok(())
        }
    }
}

/// The per-step losses `train_hf.py` logged after the hand-off, up to the opened step.
fn trainer_curve(losses: Option<&[u8]>, after: usize, upto: usize, per_step: u64) -> Vec<LossPoint> {
    let text = losses.map(String::from_utf8_lossy).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["event"] == "step")
        .filter_map(|e| {
            let step = e["step"].as_u64()? as usize;
            let loss = e["loss"].as_f64().filter(|l| l.is_finite())?;
            (step > after && step <= upto).then(|| LossPoint {
                step,
                tokens: per_step * step as u64,
                loss,
                lr: e["lr"].as_f64().unwrap_or(0.0),
            })
        })
        .collect()
}

/// A checkpoint of a Trainer run Hearth did not hand off: its weights go to the Generate panel
/// (a decoder) or the Fill mask panel (an encoder), and the Pretrain panel says what it lacks.
async fn open_plain(
    checkpoint: &str,
    step: Option<usize>,
    paths: &[String],
    files: &[web_sys::File],
) -> Result<(), String> {
    let inside: Vec<&web_sys::File> = paths
        .iter()
        .zip(files)
        .filter(|(p, _)| p.rsplit_once('/').map_or("", |(d, _)| d) == checkpoint)
        .map(|(_, f)| f)
        .collect();
    let config =
        inside.iter().find(|f| f.name() == "config.json").ok_or("the checkpoint has no config.json")?;
    let config_json = read_file(config, 1 << 20, "a config").await?;
    let slot =
        match ModelConfig::from_json(&config_json).map_err(|e| format!("{checkpoint}/config.json: {e}"))? {
            ModelConfig::Gpt2(_) | ModelConfig::Llama(_) => Slot::Generate,
            ModelConfig::Bert(_) | ModelConfig::ModernBert(_) => Slot::FillMask,
        };
    let panel = if slot == Slot::Generate { "Generate" } else { "Fill mask" };
    let at = step.map_or(String::new(), |s| format!(" (step {s})"));
    emit(&Event::Notice {
        topic: TOPIC,
        message: format!(
            "{checkpoint}{at} is a Trainer checkpoint of a run Hearth did not hand off (no handoff.json): its weights open in the {panel} panel, to sample, look inside or fine-tune (Start from); its optimizer state, learning-rate schedule and data order cannot be continued exactly"
        ),
    });
    let list: Array = inside.into_iter().map(JsValue::from).collect();
    models::load_files(slot, list.into()).await;
    Ok(())
}
