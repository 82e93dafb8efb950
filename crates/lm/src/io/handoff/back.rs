//! Coming back: a Trainer checkpoint of a handed-off run turned into Hearth's checkpoint, which
//! `Trainer::resume_within` continues (`hearth train --resume DIR/checkpoint-M`).

use super::{FORMAT, HEARTH_STATE};
use crate::error::{excerpt, invalid, Result};
use crate::io::checkpoint::{Checkpoint, TrainerState};
use crate::io::torch::{from_torch_bytes, PtTensor, PtValue};
use crate::io::weights::{to_safetensors, NamedTensor};
use crate::rng::Rng;
use crate::train::batcher::Batcher;
use crate::train::trainer::EvalReport;

/// The handed-off checkpoint's small files that coming back takes from it (the run's own
/// `config.json`, tokenizer, chat template, generation config), whatever Trainer wrote since.
pub const HANDED_FILES: [&str; 5] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
];

/// The refusal of an `optimizer.pt` entry without AdamW's moments (Adafactor's factored ones,
/// say), naming the keys it holds instead.
pub(super) fn not_adamw(what: &str, fields: &[(PtValue, PtValue)]) -> crate::error::Error {
    let keys: Vec<String> = fields
        .iter()
        .take(6)
        .map(|(k, _)| match k {
            PtValue::Str(s) => format!("`{}`", excerpt(s)),
            other => excerpt(&format!("{other:?}")).into_owned(),
        })
        .collect();
    invalid!(
        "optimizer.pt is not AdamW's state ({what} holds {}): Hearth continues AdamW runs only",
        keys.join(", ")
    )
}

/// A Trainer checkpoint of a handed-off run, and the hand-off it continues: what coming back
/// (`hearth train --resume DIR/checkpoint-M`) reads.
pub struct TrainerCheckpoint<'a> {
    /// The hand-off's `handoff.json` and `hearth_state.json`.
    pub handoff_json: &'a [u8],
    pub hearth_state: &'a [u8],
    /// `hf_losses.jsonl`, whose evaluations join the run's history, if it is there.
    pub losses: Option<&'a [u8]>,
    /// checkpoint-M's files (`config.json`, `model.safetensors`, `optimizer.pt`,
    /// `trainer_state.json`, and the tokenizer's if Trainer saved them).
    pub checkpoint: &'a Checkpoint,
    /// The handed-off checkpoint's small files: its `config.json` (the run's own), the tokenizer,
    /// chat template and generation config.
    pub handed_off: &'a Checkpoint,
}

/// Hearth's checkpoint of a run that Trainer continued to step M: the weights, the AdamW moments
/// back in Hearth's layout, the step, the data position (the handed-off order after M steps) and
/// the history (Hearth's, then `train_hf.py`'s evaluations), for [`Trainer::resume_within`].
/// Refused with what differs: another optimizer than AdamW (Adafactor's factored moments),
/// changed AdamW settings, a checkpoint past the handed-off order, moments that do not fit.
pub fn checkpoint_from_trainer(t: TrainerCheckpoint) -> Result<Checkpoint> {
    let meta: serde_json::Value =
        serde_json::from_slice(t.handoff_json).map_err(|e| invalid!("handoff.json is not JSON: {e}"))?;
    if meta["format"] != FORMAT {
        return Err(invalid!(
            "handoff.json has format {}, not {FORMAT}",
            excerpt(&meta["format"].to_string())
        ));
    }
    let mut state: TrainerState =
        serde_json::from_slice(t.hearth_state).map_err(|e| invalid!("{HEARTH_STATE} is corrupt: {e}"))?;
    let names: Vec<String> = serde_json::from_value(meta["parameters"].clone())
        .map_err(|_| invalid!("handoff.json has no parameter list"))?;
    let transposed: Vec<String> = serde_json::from_value(meta["transposed"].clone()).unwrap_or_default();
    let steps = meta["steps"].as_u64().ok_or_else(|| invalid!("handoff.json has no `steps`"))? as usize;
    let windows =
        meta["train_windows"].as_u64().ok_or_else(|| invalid!("handoff.json has no `train_windows`"))?;
    let require =
        |name: &str| t.checkpoint.get(name).ok_or_else(|| invalid!("the Trainer checkpoint has no {name}"));
    let hf_state: serde_json::Value = serde_json::from_slice(require("trainer_state.json")?)
        .map_err(|e| invalid!("the Trainer checkpoint's trainer_state.json is not JSON: {e}"))?;
    let step = hf_state["global_step"]
        .as_u64()
        .ok_or_else(|| invalid!("the Trainer checkpoint's trainer_state.json has no global_step"))?
        as usize;
    if step < state.step || step > steps {
        return Err(invalid!(
            "checkpoint step {step} is outside the hand-off's steps {}…{steps}; hand the run off again for more",
            state.step
        ));
    }

    // AdamW's state, back in Hearth's names and orientation.
    let optimizer = from_torch_bytes(require("optimizer.pt")?)?;
    let c = &state.config;
    let Some(PtValue::List(groups)) = optimizer.get("param_groups") else {
        return Err(invalid!("optimizer.pt has no param_groups"));
    };
    let Some(PtValue::Dict(entries)) = optimizer.get("state") else {
        return Err(invalid!("optimizer.pt has no state"));
    };
    if entries.len() != names.len() && !(step == 0 && entries.is_empty()) {
        return Err(invalid!(
            "optimizer.pt holds {} parameters' state; the run has {}",
            entries.len(),
            names.len()
        ));
    }
    let mut moments: Vec<NamedTensor> = Vec::with_capacity(2 * entries.len());
    let mut updates = None;
    for (key, entry) in entries {
        let PtValue::Int(index) = key else {
            return Err(invalid!("optimizer.pt's state is not keyed by index"));
        };
        let name = usize::try_from(*index).ok().and_then(|i| names.get(i)).ok_or_else(|| {
            invalid!("optimizer.pt has state for parameter {index}, past the run's {}", names.len())
        })?;
        let PtValue::Dict(fields) = entry else {
            return Err(invalid!("optimizer.pt's state of `{name}` is not a dict"));
        };
        let field = |key: &str| match entry.get(key) {
            Some(PtValue::Tensor(t)) => Some(t),
            _ => None,
        };
        let (Some(avg), Some(sq), Some(count)) = (field("exp_avg"), field("exp_avg_sq"), field("step"))
        else {
            return Err(not_adamw(&format!("`{name}`"), fields));
        };
        let count = count.data.first().copied().unwrap_or(-1.0);
        if updates.is_some_and(|u| u != count) || !(count >= 0.0 && count.fract() == 0.0) {
            return Err(invalid!(
                "optimizer.pt's step counts differ between parameters ({count} at `{name}`)"
            ));
        }
        updates = Some(count);
        let back = |tensor: &PtTensor| -> Result<Vec<f32>> {
            let values = tensor.data.as_slice();
            if !transposed.contains(name) {
                return Ok(values.to_vec());
            }
            let [rows, cols] = tensor.shape[..] else {
                return Err(invalid!("`{name}` is a matrix, but its moment has shape {:?}", tensor.shape));
            };
            Ok(super::transposed(values, rows, cols))
        };
        let len = avg.data.len();
        moments.push((format!("exp_avg.{name}"), vec![len], back(avg)?));
        moments.push((format!("exp_avg_sq.{name}"), vec![sq.data.len()], back(sq)?));
    }
    // The groups' settings, once the state is known to be AdamW's.
    for (i, group) in groups.iter().enumerate() {
        let float = |key: &str| match group.get(key) {
            Some(PtValue::Float(v)) => Some(*v),
            Some(PtValue::Int(v)) => Some(*v as f64),
            _ => None,
        };
        let betas = match group.get("betas") {
            Some(PtValue::Tuple(b) | PtValue::List(b)) => {
                b.iter().map(|v| if let PtValue::Float(f) = v { Some(*f) } else { None }).collect()
            }
            _ => vec![],
        };
        let decay = if i == 0 { c.adamw.weight_decay } else { 0.0 };
        let same = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= 1e-12 * b.abs().max(1.0));
        let expected = [
            ("betas[0]", betas.first().copied().flatten(), c.adamw.beta1),
            ("betas[1]", betas.get(1).copied().flatten(), c.adamw.beta2),
            ("eps", float("eps"), c.adamw.eps),
            ("weight_decay", float("weight_decay"), decay),
        ];
        if let Some((key, got, want)) = expected.iter().find(|(_, got, want)| !same(*got, *want)) {
            return Err(invalid!(
                "optimizer.pt's group {i} has {key} = {}, the run's is {want}: Hearth continues the run's own AdamW",
                got.map_or("nothing".to_string(), |g| g.to_string())
            ));
        }
    }
    let updates = updates.map_or(0, |u| u as u64);
    if updates != step as u64 {
        return Err(invalid!("optimizer.pt has taken {updates} updates at step {step}"));
    }

    // The run at step M: the schedule to the hand-off's steps, the data position, the history.
    let handed_step = state.step;
    state.config.steps = steps;
    state.step = step;
    state.optimizer_steps = updates;
    let per_step =
        state.config.tokens_per_step().ok_or_else(|| invalid!("the run's batch is too large to count"))?;
    state.tokens_seen = per_step * step as u64;
    let draws = (step as u64).saturating_mul(state.config.batch_size as u64);
    state.batcher = Batcher::after(state.batcher.seed(), draws, windows as usize);
    if !state.config.causal() {
        let states: Vec<Rng> = serde_json::from_value(meta["mask_rng"].clone())
            .map_err(|_| invalid!("handoff.json has no masking generator states"))?;
        state.mask_rng = *states
            .get(step - handed_step)
            .ok_or_else(|| invalid!("handoff.json has no masking generator state for step {step}"))?;
    }
    let schedule = state.config.schedule();
    for line in t.losses.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default().lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let at = entry["step"].as_u64().unwrap_or(0) as usize;
        if entry["event"] != "eval" || at <= handed_step || at > step {
            continue;
        }
        let (Some(train_loss), val_loss) = (entry["train_loss"].as_f64(), entry["val_loss"].as_f64()) else {
            continue;
        };
        state.history.push(EvalReport {
            step: at,
            tokens_seen: per_step * at as u64,
            train_loss,
            val_loss,
            perplexity: val_loss.unwrap_or(train_loss).exp(),
            lr: schedule.at(at.saturating_sub(1)),
            sample: String::new(),
            epoch: (at as u64 * state.config.batch_size as u64) as f64 / windows.max(1) as f64,
            probe: None,
        });
    }

    // The run's own config.json: Trainer rewrites it with transformers' defaults filled in (a
    // Llama's bos/eos ids 1 and 2, say), which are not the run's; the weights are checked
    // against it when they load.
    let mut files = vec![("model.safetensors".to_string(), require("model.safetensors")?.to_vec())];
    for name in HANDED_FILES {
        if let Some(bytes) = t.handed_off.get(name).or_else(|| t.checkpoint.get(name)) {
            files.push((name.to_string(), bytes.to_vec()));
        }
    }
    files.push(("optimizer.safetensors".into(), to_safetensors(&moments)?));
    files.push(("trainer_state.json".into(), serde_json::to_vec_pretty(&state).expect("a state serialises")));
    Ok(Checkpoint { files })
}
