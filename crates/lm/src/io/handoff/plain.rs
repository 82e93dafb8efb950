//! A checkpoint of a Trainer run that Hearth did not hand off, continued in Hearth (`hearth train
//! --resume DIR/checkpoint-M` with no `handoff.json` beside it). The run starts from its weights as
//! a fine-tune does, then takes over what the checkpoint holds of the optimizer: AdamW's moments
//! of every parameter (in Trainer's order: decayed parameters first, each group in PyTorch's
//! `named_parameters` order, as the hand-off writes them), the update count and the step. What a
//! plain checkpoint does not hold is named to the user instead of guessed: the learning-rate
//! schedule's formula (Trainer keeps it in `training_args.bin`, a pickle of Python objects that
//! `weights_only` loading refuses), the data order (Trainer's sampler over a dataset Hearth does
//! not have) and PyTorch's random state (dropout masks).

use super::{parameters, torch_order, trainer_groups, transposed};
use crate::error::{invalid, Result};
use crate::io::torch::{from_torch_bytes, PtValue};
use crate::io::weights::NamedTensor;
use crate::train::trainer::Trainer;

/// What continuing a plain Trainer checkpoint took over, and what it could not.
#[derive(Debug, Clone, PartialEq)]
pub struct Adopted {
    /// Trainer's `global_step`: the run continues from the next one.
    pub step: usize,
    /// Parameters whose AdamW moments came from `optimizer.pt`.
    pub parameters: usize,
    /// What the checkpoint does not hold, in words.
    pub lacking: Vec<String>,
}

impl Trainer {
    /// Takes over a plain Trainer checkpoint's step and AdamW state (`optimizer.pt`,
    /// `trainer_state.json`) for this fine-tune of its weights. Refused, with what differs: another
    /// optimizer, AdamW settings other than this run's (the flags to pass are named), groups or
    /// shapes that are not this model's, a step at or past this run's planned steps.
    pub fn adopt_trainer_checkpoint(&mut self, optimizer_pt: &[u8], trainer_state: &[u8]) -> Result<Adopted> {
        let hf_state: serde_json::Value = serde_json::from_slice(trainer_state)
            .map_err(|e| invalid!("trainer_state.json is not JSON: {e}"))?;
        let step = hf_state["global_step"]
            .as_u64()
            .ok_or_else(|| invalid!("trainer_state.json has no global_step"))? as usize;
        if step >= self.config.steps {
            return Err(invalid!(
                "the checkpoint is at step {step}: give --steps above it to continue (this run plans {})",
                self.config.steps
            ));
        }
        let optimizer = from_torch_bytes(optimizer_pt)?;
        let Some(PtValue::List(groups)) = optimizer.get("param_groups") else {
            return Err(invalid!("optimizer.pt has no param_groups"));
        };
        let Some(PtValue::Dict(entries)) = optimizer.get("state") else {
            return Err(invalid!("optimizer.pt has no state"));
        };

        // Another optimizer's state (Adafactor's factored moments) is named before anything else.
        for (key, entry) in entries {
            let PtValue::Dict(fields) = entry else {
                return Err(invalid!("optimizer.pt's state of parameter {key:?} is not a dict"));
            };
            let has = |name: &str| fields.iter().any(|(k, _)| *k == PtValue::Str(name.into()));
            if !(has("exp_avg") && has("exp_avg_sq") && has("step")) {
                return Err(super::back::not_adamw("a parameter", fields));
            }
        }

        // Trainer's order: the decayed parameters, then the others, each in PyTorch's order.
        let c = &self.config;
        let params = torch_order(parameters(self.model()));
        let (ordered, decayed) = trainer_groups(&params, c.adamw.decay_all);
        let sizes: Vec<usize> = groups
            .iter()
            .map(|g| match g.get("params") {
                Some(PtValue::List(ids)) => ids.len(),
                _ => 0,
            })
            .collect();
        let expected_sizes: Vec<usize> =
            [decayed, ordered.len() - decayed].into_iter().filter(|&n| n > 0).collect();
        if sizes != expected_sizes {
            return Err(invalid!(
                "optimizer.pt groups its parameters as {sizes:?}; Trainer groups this model's as {expected_sizes:?} (decayed, then the rest): it is not this model's optimizer state"
            ));
        }

        // AdamW's settings, which the continued run must share.
        for (i, group) in groups.iter().enumerate() {
            let float = |key: &str| match group.get(key) {
                Some(PtValue::Float(v)) => Some(*v),
                Some(PtValue::Int(v)) => Some(*v as f64),
                _ => None,
            };
            let beta = |at: usize| match group.get("betas") {
                Some(PtValue::Tuple(b) | PtValue::List(b)) => match b.get(at) {
                    Some(PtValue::Float(v)) => Some(*v),
                    _ => None,
                },
                _ => None,
            };
            let decay = if i == 0 && decayed > 0 { c.adamw.weight_decay } else { 0.0 };
            let same = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= 1e-12 * b.abs().max(1.0));
            let checks = [
                ("betas[0]", "--beta1", beta(0), c.adamw.beta1),
                ("betas[1]", "--beta2", beta(1), c.adamw.beta2),
                ("eps", "", float("eps"), c.adamw.eps),
                ("weight_decay", "--weight-decay", float("weight_decay"), decay),
            ];
            if let Some((key, flag, got, want)) = checks.iter().find(|(_, _, got, want)| !same(*got, *want)) {
                let got = got.map_or("nothing".to_string(), |g| g.to_string());
                let how = if flag.is_empty() { String::new() } else { format!(": pass {flag} {got}") };
                return Err(invalid!(
                    "optimizer.pt's group {i} has {key} = {got}, this run's is {want}{how} to continue the same AdamW"
                ));
            }
        }

        // The moments, by index, in Hearth's names and orientation.
        let mut moments: Vec<NamedTensor> = Vec::with_capacity(2 * entries.len());
        let mut updates: Option<f32> = None;
        for (key, entry) in entries {
            let PtValue::Int(index) = key else {
                return Err(invalid!("optimizer.pt's state is not keyed by index"));
            };
            let p = usize::try_from(*index).ok().and_then(|i| ordered.get(i)).ok_or_else(|| {
                invalid!("optimizer.pt has state for parameter {index}; this model has {}", ordered.len())
            })?;
            let tensor = |name: &str| match entry.get(name) {
                Some(PtValue::Tensor(t)) => Some(t),
                _ => None,
            };
            let (Some(avg), Some(sq), Some(count)) =
                (tensor("exp_avg"), tensor("exp_avg_sq"), tensor("step"))
            else {
                return Err(invalid!(
                    "optimizer.pt is not AdamW's state (parameter {index} has no exp_avg, exp_avg_sq and step): Hearth continues AdamW runs only"
                ));
            };
            for t in [avg, sq] {
                if t.shape != p.shape {
                    return Err(invalid!(
                        "optimizer.pt's parameter {index} has shape {:?}; this model's `{}` has {:?}: it is not this model's optimizer state",
                        t.shape,
                        p.key,
                        p.shape
                    ));
                }
            }
            let count = count.data.first().copied().unwrap_or(-1.0);
            if updates.is_some_and(|u| u != count) || !(count >= 0.0 && count.fract() == 0.0) {
                return Err(invalid!(
                    "optimizer.pt's step counts differ between parameters ({count} at {index})"
                ));
            }
            updates = Some(count);
            let back = |values: &[f32]| {
                if p.transposed {
                    transposed(values, p.shape[0], p.shape[1])
                } else {
                    values.to_vec()
                }
            };
            let n = avg.data.len();
            moments.push((format!("exp_avg.{}", p.key), vec![n], back(avg.data.as_slice())));
            moments.push((format!("exp_avg_sq.{}", p.key), vec![n], back(sq.data.as_slice())));
        }
        if entries.len() != ordered.len() {
            return Err(invalid!(
                "optimizer.pt holds {} parameters' state; this model has {}",
                entries.len(),
                ordered.len()
            ));
        }
        let updates = updates.unwrap_or(0.0) as u64;
        let expected = params.iter().map(|p| (p.key.clone(), p.shape.iter().product())).collect();
        let device = self.device.clone().inner();
        let parameters = entries.len();
        self.optim.import_state(moments, updates, &expected, &device)?;
        self.step = step;
        self.tokens_seen = self.config.tokens_per_step().unwrap_or(0).saturating_mul(step as u64);
        let lacking = vec![
            format!(
                "the learning-rate schedule: Trainer keeps its formula in training_args.bin, not in the checkpoint, so Hearth's continues from step {step} ({} warmup steps, {} decay from {} to {} at step {}; --lr, --warmup, --decay, --min-lr)",
                self.config.warmup,
                self.config.decay,
                self.config.lr,
                self.config.min_lr,
                self.config.steps
            ),
            "the data order: Trainer's sampler and dataset are not in the checkpoint, so the corpus is shuffled afresh".into(),
            "PyTorch's random state (rng_state.pth): dropout draws its own masks".into(),
        ];
        Ok(Adopted { step, parameters, lacking })
    }
}
