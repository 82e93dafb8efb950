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

mod back;
mod plain;

use std::collections::BTreeMap;

use serde_json::json;

pub use back::{checkpoint_from_trainer, TrainerCheckpoint, HANDED_FILES};
pub use plain::Adopted;

use super::parquet::{to_parquet, Column};
use super::torch::{to_torch_bytes, PtTensor, PtValue};
use super::weights::{stored_parameters, Layout, StoredParameter};
use crate::error::{invalid, Error, Result};
use crate::model::AnyModel;
use crate::rng::Rng;
use crate::train::batcher::{eval_batches, eval_indices, Batch, Batcher};
use crate::train::masking::{mask_tokens, mlm_token_ids};
use crate::train::trainer::{Trainer, EVAL_MASK_SEED};
use crate::train::Split;

/// The format of `handoff.json`, raised when its meaning changes.
const FORMAT: u32 = 1;

/// Hearth's state of the run when it was handed off, at the hand-off's top level.
pub const HEARTH_STATE: &str = "hearth_state.json";

/// `train_hf.py`, written beside the data: continues the run with Trainer.
pub const TRAIN_HF_PY: &str = include_str!("train_hf.py");

/// The README of a hand-off directory.
pub const README: &str = include_str!("README.md");

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

/// `params` (in PyTorch's order) as Trainer's `create_optimizer` groups them: the decayed ones
/// (every matrix, or all with `decay_all`), then the rest; and how many are decayed.
fn trainer_groups(params: &[StoredParameter], decay_all: bool) -> (Vec<&StoredParameter>, usize) {
    let decays = |p: &StoredParameter| decay_all || p.shape.len() >= 2;
    let ordered: Vec<&StoredParameter> =
        params.iter().filter(|p| decays(p)).chain(params.iter().filter(|p| !decays(p))).collect();
    let decayed = params.iter().filter(|p| decays(p)).count();
    (ordered, decayed)
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
        let (ordered, decayed) = trainer_groups(&params, c.adamw.decay_all);
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
