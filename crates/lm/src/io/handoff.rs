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
//! Causal LMs only for now: a masked LM's corruption is drawn from Hearth's generator every step,
//! which a hand-off would have to write out step by step.

use std::collections::BTreeMap;

use serde_json::json;

use super::parquet::{to_parquet, Column};
use super::torch::{to_torch_bytes, PtTensor, PtValue};
use super::weights::{stored_parameters, Layout, StoredParameter};
use crate::error::{invalid, Error, Result};
use crate::model::AnyModel;
use crate::train::batcher::{eval_indices, Batcher};
use crate::train::trainer::Trainer;
use crate::train::Split;

/// The format of `handoff.json`, raised when its meaning changes.
const FORMAT: u32 = 1;

/// `train_hf.py`, written beside the data: continues the run with Trainer.
pub const TRAIN_HF_PY: &str = include_str!("handoff/train_hf.py");

/// The README of a hand-off directory.
pub const README: &str = include_str!("handoff/README.md");

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
        if !c.causal() {
            return Err(invalid!(
                "only causal LMs (GPT-2, the Llama family) can be handed off yet: a masked LM's corruption is drawn by Hearth every step"
            ));
        }
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
        let params = parameters(self.model());
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

        // The data: the order from step 1 (replayed, and checked against the run's position).
        let draws = steps.checked_mul(c.batch_size).filter(|&d| d <= i32::MAX as usize).ok_or_else(|| {
            invalid!("{steps} steps × batch {} is more rows than a hand-off's order holds", c.batch_size)
        })?;
        let mut batcher = Batcher::new(self.batcher.seed());
        let mut order = Vec::with_capacity(draws);
        for i in 0..draws {
            if i == n * c.batch_size
                && (batcher.epoch(), batcher.position()) != (self.batcher.epoch(), self.batcher.position())
            {
                return Err(invalid!(
                    "the run's data order cannot be replayed (its corpus changed size since it started)"
                ));
            }
            order.push(batcher.next_index(train_windows) as i32);
        }
        let rows = |split: Split, indices: &[usize]| -> Vec<&[u32]> {
            indices.iter().map(|&i| self.data.window(split, i)).collect()
        };
        let all_train: Vec<usize> = (0..train_windows).collect();
        let eval_train = eval_indices(train_windows, c.batch_size, c.eval_batches);
        let eval_val = eval_indices(self.data.windows(Split::Val), c.batch_size, c.eval_batches);

        let mut files = Vec::new();
        let dir = format!("checkpoint-{n}");
        for (name, bytes) in self.checkpoint().await?.files {
            // Hearth's own optimizer and state stay out: Trainer's replace them.
            if name != "optimizer.safetensors" && name != "trainer_state.json" {
                files.push((format!("{dir}/{name}"), bytes));
            }
        }
        files.push((format!("{dir}/optimizer.pt"), to_torch_bytes(&optimizer, "optimizer")?));
        files.push((format!("{dir}/scheduler.pt"), to_torch_bytes(&scheduler, "scheduler")?));
        files.push((format!("{dir}/trainer_state.json"), pretty(&trainer_state)));
        let windows = |split, indices: &[usize]| {
            to_parquet(&[Column::Int32Lists { name: "input_ids", rows: rows(split, indices) }])
        };
        files.push(("data/train.parquet".into(), windows(Split::Train, &all_train)?));
        files.push((
            "data/order.parquet".into(),
            to_parquet(&[Column::Int32 { name: "window", values: order }])?,
        ));
        files.push(("data/eval_train.parquet".into(), windows(Split::Train, &eval_train)?));
        if !eval_val.is_empty() {
            files.push(("data/eval_validation.parquet".into(), windows(Split::Val, &eval_val)?));
        }
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
