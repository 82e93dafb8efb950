//! A run handed to Hugging Face Trainer: the files of `hearth handoff` (and the page's "Continue
//! on a cluster"), as named bytes the caller writes under one directory.
//!
//! - `checkpoint-N/`: Trainer's own layout, which `Trainer.train(resume_from_checkpoint=…)`
//!   resumes — the model's Hugging Face files, `optimizer.pt` (`torch.optim.AdamW`'s
//!   `state_dict`: per parameter `step`, `exp_avg`, `exp_avg_sq` in PyTorch's orientation;
//!   decayed parameters first, as Trainer groups them), `scheduler.pt` (`LambdaLR`'s state after
//!   N steps) and `trainer_state.json` (`global_step`, `log_history` from the run's evaluations).
//!   No `rng_state.pth`: PyTorch's dropout stream cannot be Hearth's, so a run with dropout
//!   continues with the same distribution, not the same masks (without dropout, exactly).
//! - `data/`: the train windows (`train.parquet`, one row of `context + 1` token ids each), the
//!   order in which steps 1…T draw them (`order.parquet`: the seeded shuffle replayed from step 1,
//!   so Trainer's own skipping of the first N batches lands on step N + 1), and the fixed
//!   evaluation windows of both splits.
//! - `handoff.json`: what `train_hf.py` needs beyond Trainer's files — the schedule's formula,
//!   the parameters' order and groups, batch, context, clipping, evaluation.
//!
//! A masked LM's corruption is drawn by Hearth's generator every step, which PyTorch cannot draw:
//! its hand-off writes the corrupted rows and labels of the steps still to come instead of an
//! order, and the generator's state after each (for coming back at any of them).

use std::collections::BTreeMap;

use serde_json::json;

use super::checkpoint::{Checkpoint, TrainerState};
use super::parquet::{to_parquet, Column};
use super::torch::{from_torch_bytes, to_torch_bytes, PtTensor, PtValue};
use super::weights::{stored_parameters, to_safetensors, Layout, NamedTensor, StoredParameter};
use crate::error::{excerpt, invalid, Error, Result};
use crate::model::AnyModel;
use crate::rng::Rng;
use crate::train::batcher::{eval_batches, eval_indices, Batch, Batcher};
use crate::train::masking::{mask_tokens, mlm_token_ids};
use crate::train::trainer::{EvalReport, Trainer, EVAL_MASK_SEED};
use crate::train::Split;

/// The format of `handoff.json`, raised when its meaning changes.
const FORMAT: u32 = 1;

/// Hearth's state of the run when it was handed off, at the hand-off's top level.
pub const HEARTH_STATE: &str = "hearth_state.json";

/// `train_hf.py`, written beside the data: continues the run with Trainer.
pub const TRAIN_HF_PY: &str = include_str!("handoff/train_hf.py");

/// The README of a hand-off directory.
pub const README: &str = include_str!("handoff/README.md");

/// Most token values a masked hand-off writes (its rows are written out, not indexed).
const MAX_MASKED_VALUES: usize = 1 << 28;

/// Masked batches as a Parquet file of `input_ids` (corrupted) and `labels` (-100 where nothing is
/// predicted, as transformers' masked-LM loss ignores), drawn as Hearth's steps draw them; the
/// generator's state after each batch is pushed to `states`.
fn masked_rows(
    batches: &[Batch],
    vocab: usize,
    mask_id: u32,
    specials: &[u32],
    rng: &mut Rng,
    states: &mut Vec<Rng>,
) -> Result<Vec<u8>> {
    let (mut inputs, mut labels) = (Vec::new(), Vec::new());
    for batch in batches {
        let (x, y) = mask_tokens(&batch.inputs, batch.context, vocab, mask_id, specials, rng);
        states.push(*rng);
        for (xr, yr) in x.chunks(batch.context.max(1)).zip(y.chunks(batch.context.max(1))) {
            inputs.push(xr.to_vec());
            labels.push(yr.iter().map(|l| l.map_or(-100, |v| v as i32)).collect::<Vec<i32>>());
        }
    }
    let rows: Vec<&[u32]> = inputs.iter().map(Vec::as_slice).collect();
    to_parquet(&[
        Column::Int32Lists { name: "input_ids", rows },
        Column::SignedLists { name: "labels", rows: labels },
    ])
}

/// What the model's parameters are, in the order the optimizer holds them.
fn parameters(model: &AnyModel) -> Vec<StoredParameter> {
    let layout = Layout::of(model);
    match model {
        AnyModel::Gpt2(m) => stored_parameters(m.as_ref(), layout),
        AnyModel::Bert(m) => stored_parameters(m.as_ref(), layout),
        AnyModel::Llama(m) => stored_parameters(m.as_ref(), layout),
        AnyModel::ModernBert(m) => stored_parameters(m.as_ref(), layout),
    }
}

/// `params` in the order PyTorch's `named_parameters()` lists them: depth first, a module's own
/// parameters before its submodules' (BERT's `cls.predictions.bias` before
/// `cls.predictions.transform.*`), submodules in the order they first appear. Burn visits the
/// fields in their declared order instead, which mixes the two.
fn torch_order(params: Vec<StoredParameter>) -> Vec<StoredParameter> {
    fn emit(prefix: &str, params: &[StoredParameter], taken: &mut [bool], out: &mut Vec<usize>) {
        fn below<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
            if prefix.is_empty() {
                Some(key)
            } else {
                key.strip_prefix(prefix)?.strip_prefix('.')
            }
        }
        let under = |key| below(prefix, key);
        // This module's own parameters first.
        for (i, p) in params.iter().enumerate() {
            if !taken[i] && under(&p.key).is_some_and(|rest| !rest.contains('.')) {
                taken[i] = true;
                out.push(i);
            }
        }
        // Then each submodule, in the order of first appearance.
        let mut children: Vec<String> = Vec::new();
        for p in params {
            if let Some((child, _)) = under(&p.key).and_then(|rest| rest.split_once('.')) {
                if !children.iter().any(|c| c == child) {
                    children.push(child.to_string());
                }
            }
        }
        for child in children {
            let path = if prefix.is_empty() { child } else { format!("{prefix}.{child}") };
            emit(&path, params, taken, out);
        }
    }
    let mut taken = vec![false; params.len()];
    let mut order = Vec::with_capacity(params.len());
    emit("", &params, &mut taken, &mut order);
    let mut slots: Vec<Option<StoredParameter>> = params.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// `values` (a `[rows, cols]` matrix in the module's orientation, flat) as its transpose.
fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

impl Trainer {
    /// The hand-off directory's files for a run continued to `steps` steps in all (at least the
    /// steps taken; more extends the schedule as `--resume --steps` does).
    pub async fn handoff(&self, steps: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let c = &self.config;
        if steps < self.step {
            return Err(invalid!(
                "the run has taken {} steps; hand it off for at least that many",
                self.step
            ));
        }
        let n = self.step;
        let mut schedule = c.schedule();
        schedule.decay_steps = steps;

        // The optimizer: decayed parameters first (Trainer's groups), then the others.
        let params = torch_order(parameters(self.model()));
        let decays = |p: &StoredParameter| c.adamw.decay_all || p.shape.len() >= 2;
        let ordered: Vec<&StoredParameter> =
            params.iter().filter(|p| decays(p)).chain(params.iter().filter(|p| !decays(p))).collect();
        let decayed = params.iter().filter(|p| decays(p)).count();
        let mut moments = self.optim.moments().await?;
        let mut state = Vec::new();
        for (index, p) in ordered.iter().enumerate() {
            let Some((avg, sq)) = moments.remove(&p.key) else {
                if n == 0 {
                    continue;
                }
                return Err(Error::Backend(format!("no optimizer moments for `{}`", p.key)));
            };
            let orient = |v: Vec<f32>| if p.transposed { transposed(&v, p.shape[1], p.shape[0]) } else { v };
            let tensor = |v: Vec<f32>| PtTensor::new(p.shape.clone(), orient(v)).map(PtValue::Tensor);
            state.push((
                PtValue::Int(index as i64),
                PtValue::dict([
                    ("step", PtValue::Tensor(PtTensor::new(vec![], vec![self.optim.steps() as f32])?)),
                    ("exp_avg", tensor(avg)?),
                    ("exp_avg_sq", tensor(sq)?),
                ]),
            ));
        }
        let lr_now = schedule.at(n);
        let group = |weight_decay: f64, range: std::ops::Range<usize>| {
            PtValue::dict([
                ("weight_decay", PtValue::Float(weight_decay)),
                ("lr", PtValue::Float(lr_now)),
                ("betas", PtValue::Tuple(vec![PtValue::Float(c.adamw.beta1), PtValue::Float(c.adamw.beta2)])),
                ("eps", PtValue::Float(c.adamw.eps)),
                ("amsgrad", PtValue::Bool(false)),
                ("maximize", PtValue::Bool(false)),
                ("foreach", PtValue::None),
                ("capturable", PtValue::Bool(false)),
                ("differentiable", PtValue::Bool(false)),
                ("fused", PtValue::None),
                ("decoupled_weight_decay", PtValue::Bool(true)),
                ("initial_lr", PtValue::Float(c.lr)),
                ("params", PtValue::List(range.map(|i| PtValue::Int(i as i64)).collect())),
            ])
        };
        let mut groups = vec![group(c.adamw.weight_decay, 0..decayed)];
        if decayed < ordered.len() {
            groups.push(group(0.0, decayed..ordered.len()));
        }
        let group_count = groups.len();
        let optimizer =
            PtValue::dict([("state", PtValue::Dict(state)), ("param_groups", PtValue::List(groups))]);

        // LambdaLR after n steps: the next update uses `at(n)`.
        let repeat = |v: f64| PtValue::List(vec![PtValue::Float(v); group_count]);
        let scheduler = PtValue::dict([
            ("base_lrs", repeat(c.lr)),
            ("last_epoch", PtValue::Int(n as i64)),
            ("_step_count", PtValue::Int(n as i64 + 1)),
            ("_is_initial", PtValue::Bool(false)),
            ("_get_lr_called_within_step", PtValue::Bool(false)),
            ("_last_lr", repeat(lr_now)),
            ("lr_lambdas", PtValue::List(vec![PtValue::None; group_count])),
        ]);

        let train_windows = self.data.windows(Split::Train);
        if train_windows == 0 {
            return Err(invalid!("the run has no train windows to hand off"));
        }
        let log_history: Vec<serde_json::Value> = self
            .history
            .iter()
            .filter(|r| r.step > 0)
            .flat_map(|r| {
                let mut entries = vec![
                    json!({ "step": r.step, "epoch": r.epoch, "loss": r.train_loss, "learning_rate": r.lr }),
                ];
                if let Some(val) = r.val_loss {
                    entries.push(json!({ "step": r.step, "epoch": r.epoch, "eval_loss": val }));
                }
                entries
            })
            .collect();
        let trainer_state = json!({
            "epoch": self.epoch(),
            "global_step": n,
            "max_steps": steps,
            "logging_steps": 1,
            "eval_steps": c.eval_every,
            "save_steps": c.eval_every,
            "train_batch_size": c.batch_size,
            "num_train_epochs": 1,
            "num_input_tokens_seen": self.tokens_seen,
            "total_flos": 0.0,
            "log_history": log_history,
            "best_metric": null,
            "best_global_step": null,
            "best_model_checkpoint": null,
            "is_local_process_zero": true,
            "is_world_process_zero": true,
            "is_hyper_param_search": false,
            "trial_name": null,
            "trial_params": null,
            // Trainer saves its control flags under this name and looks them up at its next save.
            "stateful_callbacks": { "TrainerControl": { "args": {
                "should_training_stop": false, "should_epoch_stop": false, "should_save": false,
                "should_evaluate": false, "should_log": false }, "attributes": {} } },
        });

        // The data. A causal run: its windows and the order of steps 1…T (replayed, and checked
        // against the run's position); Trainer skips the steps taken. A masked run: the rows of
        // steps N+1…T as corrupted and labelled by Hearth's generator, which Trainer cannot draw.
        let mut data: Vec<(String, Vec<u8>)> = Vec::new();
        let mut mask_states = Vec::new();
        if c.causal() {
            let draws =
                steps.checked_mul(c.batch_size).filter(|&d| d <= i32::MAX as usize).ok_or_else(|| {
                    invalid!(
                        "{steps} steps × batch {} is more rows than a hand-off's order holds",
                        c.batch_size
                    )
                })?;
            let mut batcher = Batcher::new(self.batcher.seed());
            let mut order = Vec::with_capacity(draws);
            for i in 0..draws {
                if i == n * c.batch_size
                    && (batcher.epoch(), batcher.position())
                        != (self.batcher.epoch(), self.batcher.position())
                {
                    return Err(invalid!(
                        "the run's data order cannot be replayed (its corpus changed size since it started)"
                    ));
                }
                order.push(batcher.next_index(train_windows) as i32);
            }
            let all: Vec<&[u32]> = (0..train_windows).map(|i| self.data.window(Split::Train, i)).collect();
            let windows = to_parquet(&[Column::Int32Lists { name: "input_ids", rows: all }])?;
            data.push(("data/train.parquet".into(), windows));
            data.push((
                "data/order.parquet".into(),
                to_parquet(&[Column::Int32 { name: "window", values: order }])?,
            ));
        } else {
            let values = (steps - n).checked_mul(c.batch_size).and_then(|r| r.checked_mul(c.data.context));
            if values.is_none_or(|v| v > MAX_MASKED_VALUES) {
                return Err(invalid!(
                    "{} steps of batch {} × {} tokens are more masked rows than one hand-off writes; hand off fewer steps",
                    steps - n,
                    c.batch_size,
                    c.data.context
                ));
            }
            let (mask_id, specials) = mlm_token_ids(&self.tokenizer)?;
            let mut batcher = self.batcher.clone();
            let mut rng = self.mask_rng;
            mask_states.push(rng);
            let batches: Vec<Batch> =
                (n..steps).map(|_| batcher.next_batch(&self.data, c.batch_size, false)).collect();
            let vocab = self.model().vocab_size();
            let rows = masked_rows(&batches, vocab, mask_id, &specials, &mut rng, &mut mask_states)?;
            data.push(("data/masked_train.parquet".into(), rows));
        }
        for (split, name) in
            [(Split::Train, "data/eval_train.parquet"), (Split::Val, "data/eval_validation.parquet")]
        {
            let indices = eval_indices(self.data.windows(split), c.batch_size, c.eval_batches);
            if indices.is_empty() {
                continue;
            }
            let bytes = if c.causal() {
                let rows = indices.iter().map(|&i| self.data.window(split, i)).collect();
                to_parquet(&[Column::Int32Lists { name: "input_ids", rows }])?
            } else {
                // Hearth's evaluation masks: a generator of a fixed seed, per split.
                let (mask_id, specials) = mlm_token_ids(&self.tokenizer)?;
                let batches = eval_batches(&self.data, split, c.batch_size, c.eval_batches, false);
                let mut rng = Rng::new(c.seed ^ EVAL_MASK_SEED);
                let vocab = self.model().vocab_size();
                masked_rows(&batches, vocab, mask_id, &specials, &mut rng, &mut Vec::new())?
            };
            data.push((name.into(), bytes));
        }
        let mut files = Vec::new();
        let dir = format!("checkpoint-{n}");
        for (name, bytes) in self.checkpoint().await?.files {
            match name.as_str() {
                // Hearth's own optimizer stays out: Trainer's replaces it.
                "optimizer.safetensors" => {}
                // Hearth's state (the run's settings, history, data position) beside the
                // checkpoints, for coming back (`checkpoint_from_trainer`).
                "trainer_state.json" => files.push((HEARTH_STATE.into(), bytes)),
                _ => files.push((format!("{dir}/{name}"), bytes)),
            }
        }
        files.push((format!("{dir}/optimizer.pt"), to_torch_bytes(&optimizer, "optimizer")?));
        files.push((format!("{dir}/scheduler.pt"), to_torch_bytes(&scheduler, "scheduler")?));
        files.push((format!("{dir}/trainer_state.json"), pretty(&trainer_state)));
        files.extend(data);
        let meta = json!({
            "format": FORMAT,
            "hearth": env!("CARGO_PKG_VERSION"),
            "arch": c.arch.name(),
            "checkpoint": dir,
            "step": n,
            "steps": steps,
            "batch_size": c.batch_size,
            "context": c.data.context,
            "seed": c.seed,
            "dropout": c.dropout,
            "grad_clip": c.grad_clip,
            "eval_every": c.eval_every,
            "eval_batches": c.eval_batches,
            "schedule": schedule,
            "adamw": c.adamw,
            "parameters": ordered.iter().map(|p| &p.key).collect::<Vec<_>>(),
            "decayed_parameters": decayed,
            "transposed": ordered.iter().filter(|p| p.transposed).map(|p| &p.key).collect::<Vec<_>>(),
            "train_windows": train_windows,
            "objective": if c.causal() { "causal" } else { "masked" },
            // A masked run's generator after steps N…T, for coming back at any of them.
            "mask_rng": mask_states,
            "tokens_seen": self.tokens_seen,
        });
        files.push(("handoff.json".into(), pretty(&meta)));
        files.push(("train_hf.py".into(), TRAIN_HF_PY.as_bytes().to_vec()));
        files.push(("README.md".into(), README.as_bytes().to_vec()));
        Ok(files)
    }
}

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("a json value serialises")
}

/// What a hand-off's optimizer file holds, read back: each parameter's index, moments and
/// step, in the groups' order (for tests and for coming back).
pub fn read_optimizer(bytes: &[u8]) -> Result<BTreeMap<i64, (PtTensor, PtTensor, f32)>> {
    let value = super::torch::from_torch_bytes(bytes)?;
    let bad = |what: &str| invalid!("optimizer.pt: {what}");
    let Some(PtValue::Dict(state)) = value.get("state") else {
        return Err(bad("no `state` dict"));
    };
    let mut out = BTreeMap::new();
    for (key, entry) in state {
        let PtValue::Int(index) = key else { return Err(bad("a state key is not a parameter index")) };
        let tensor = |name: &str| match entry.get(name) {
            Some(PtValue::Tensor(t)) => Ok(t.clone()),
            _ => Err(bad(&format!("parameter {index} has no `{name}` tensor"))),
        };
        let step = tensor("step")?;
        out.insert(
            *index,
            (tensor("exp_avg")?, tensor("exp_avg_sq")?, step.data.first().copied().unwrap_or(0.0)),
        );
    }
    Ok(out)
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
            let keys: Vec<String> = fields
                .iter()
                .take(6)
                .map(|(k, _)| match k {
                    PtValue::Str(s) => format!("`{}`", excerpt(s)),
                    other => excerpt(&format!("{other:?}")).into_owned(),
                })
                .collect();
            return Err(invalid!(
                "optimizer.pt is not AdamW's state (`{name}` holds {}): Hearth continues AdamW runs only",
                keys.join(", ")
            ));
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
            Ok(self::transposed(values, rows, cols))
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
    for name in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "chat_template.jinja",
    ] {
        if let Some(bytes) = t.handed_off.get(name).or_else(|| t.checkpoint.get(name)) {
            files.push((name.to_string(), bytes.to_vec()));
        }
    }
    files.push(("optimizer.safetensors".into(), to_safetensors(&moments)?));
    files.push(("trainer_state.json".into(), serde_json::to_vec_pretty(&state).expect("a state serialises")));
    Ok(Checkpoint { files })
}
