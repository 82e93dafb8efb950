//! AdamW with decoupled weight decay, global-norm gradient clipping and the warmup + cosine
//! learning-rate schedule — written out (rather than Burn's optimizer) so that it matches
//! `torch.optim.AdamW` step for step and its state is keyed by Hugging Face parameter names,
//! which survive a save to safetensors and a reload.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::weights::{Layout, NamedTensor, ParamPath};
use crate::tensor::read_f32;

/// AdamW hyper-parameters (PyTorch names and defaults, nanoGPT's choice of what decays).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Decay every parameter (as `torch.optim.AdamW(model.parameters())`), or only matrices
    /// (nanoGPT: biases and LayerNorm scales are not decayed).
    pub decay_all: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, decay_all: false }
    }
}

/// First and second moments of one parameter, flattened.
#[derive(Debug, Clone)]
struct Moments {
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
}

/// The optimizer and its state.
#[derive(Debug, Clone)]
pub struct AdamW {
    config: AdamWConfig,
    layout: Layout,
    /// Updates taken so far (PyTorch's `state["step"]`).
    step: u64,
    state: BTreeMap<String, Moments>,
}

struct Update<'a> {
    optim: &'a mut AdamW,
    grads: &'a mut GradientsParams,
    lr: f64,
    grad_scale: f64,
    path: ParamPath,
}

impl ModuleMapper for Update<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let key = self.path.key(self.optim.layout);
        let updated = self.optim.update(&key, tensor.inner(), grad * self.grad_scale, self.lr);
        let updated = Tensor::from_inner(updated);
        let updated = if require_grad { updated.require_grad() } else { updated };
        Param::from_mapped_value(id, updated, mapper)
    }
}

impl AdamW {
    pub fn new(config: AdamWConfig, layout: Layout) -> Self {
        Self { config, layout, step: 0, state: BTreeMap::new() }
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update of every parameter that has a gradient. `grad_scale` multiplies the
    /// gradients first (global-norm clipping).
    pub fn step<M: Module>(&mut self, model: M, mut grads: GradientsParams, lr: f64, grad_scale: f64) -> M {
        self.step += 1;
        let mut update =
            Update { optim: self, grads: &mut grads, lr, grad_scale, path: ParamPath::default() };
        model.map(&mut update)
    }

    /// `torch.optim.adamw._single_tensor_adamw` for one parameter, on the inner backend. The
    /// moments are taken out of the map so each update owns them and CPU backends can work in
    /// place.
    fn update<const D: usize>(&mut self, key: &str, param: Tensor<D>, grad: Tensor<D>, lr: f64) -> Tensor<D> {
        let c = &self.config;
        let shape = param.dims();
        let n: usize = shape.iter().product();
        let device = param.device();
        let Moments { exp_avg, exp_avg_sq } = self.state.remove(key).unwrap_or_else(|| Moments {
            exp_avg: Tensor::zeros([n], &device),
            exp_avg_sq: Tensor::zeros([n], &device),
        });
        let g = grad.reshape([n]);
        let exp_avg = exp_avg * c.beta1 + g.clone() * (1.0 - c.beta1);
        let exp_avg_sq = exp_avg_sq * c.beta2 + g.clone() * g * (1.0 - c.beta2);

        let decays = c.decay_all || D >= 2;
        let param = if decays && c.weight_decay != 0.0 { param * (1.0 - lr * c.weight_decay) } else { param };
        // powi takes an i32; past 2³¹ steps β^t is 0 in f64 anyway.
        let t = i32::try_from(self.step).unwrap_or(i32::MAX);
        let bias_correction1 = 1.0 - c.beta1.powi(t);
        let bias_correction2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let step_size = lr / bias_correction1;
        let denom = exp_avg_sq.clone().sqrt() * (1.0 / bias_correction2_sqrt) + c.eps;
        let delta = exp_avg.clone() * step_size / denom;
        self.state.insert(key.to_string(), Moments { exp_avg, exp_avg_sq });
        param - delta.reshape(shape)
    }

    /// The moments as `exp_avg.<key>` / `exp_avg_sq.<key>` tensors, for a checkpoint.
    pub async fn export_state(&self) -> Result<Vec<NamedTensor>> {
        let mut out = Vec::with_capacity(2 * self.state.len());
        for (key, m) in &self.state {
            out.push((
                format!("exp_avg.{key}"),
                m.exp_avg.dims().to_vec(),
                read_f32(m.exp_avg.clone()).await?,
            ));
            out.push((
                format!("exp_avg_sq.{key}"),
                m.exp_avg_sq.dims().to_vec(),
                read_f32(m.exp_avg_sq.clone()).await?,
            ));
        }
        Ok(out)
    }

    /// Restores moments saved by [`AdamW::export_state`] after `steps` updates, for a model whose
    /// parameters are `expected` (Hugging Face key → element count). Everything is checked
    /// before anything is kept: each name must be a moment of a parameter, each shape that
    /// parameter's, each value finite (and the second moment ≥ 0), and after any update every
    /// parameter must have both moments — a resume that silently restarted a moment from zero
    /// would no longer be exact.
    pub fn import_state(
        &mut self,
        tensors: Vec<NamedTensor>,
        steps: u64,
        expected: &BTreeMap<String, usize>,
        device: &Device,
    ) -> Result<()> {
        let bad = |msg: String| Error::Safetensors(format!("optimizer.safetensors: {msg}"));
        let mut avg = BTreeMap::new();
        let mut sq = BTreeMap::new();
        for (name, shape, values) in tensors {
            let (key, second) = if let Some(key) = name.strip_prefix("exp_avg_sq.") {
                (key.to_string(), true)
            } else if let Some(key) = name.strip_prefix("exp_avg.") {
                (key.to_string(), false)
            } else {
                return Err(bad(format!("unexpected tensor `{name}`")));
            };
            let Some(&n) = expected.get(&key) else {
                return Err(bad(format!("`{name}` belongs to no parameter of this model")));
            };
            if shape != [n] || values.len() != n {
                return Err(bad(format!("`{name}` has shape {shape:?}, but the parameter has {n} values")));
            }
            if values.iter().any(|v| !v.is_finite() || (second && *v < 0.0)) {
                return Err(bad(format!("`{name}` holds a non-finite or impossible value")));
            }
            if (if second { &mut sq } else { &mut avg }).insert(key, values).is_some() {
                return Err(bad(format!("`{name}` appears twice")));
            }
        }
        if steps > 0 {
            for key in expected.keys() {
                for (map, prefix) in [(&avg, "exp_avg"), (&sq, "exp_avg_sq")] {
                    if !map.contains_key(key) {
                        return Err(bad(format!("`{prefix}.{key}` is missing after {steps} steps")));
                    }
                }
            }
        } else if !avg.is_empty() || !sq.is_empty() {
            return Err(bad("moments are present but no step was taken".into()));
        }
        if avg.len() != sq.len() {
            return Err(bad("first and second moments do not pair up".into()));
        }
        let tensor = |values: Vec<f32>| {
            let n = values.len();
            Tensor::<1>::from_data(TensorData::new(values, [n]), device)
        };
        self.state.clear();
        for (key, exp_avg) in avg {
            let exp_avg_sq = sq.remove(&key).ok_or_else(|| bad(format!("`exp_avg_sq.{key}` is missing")))?;
            self.state.insert(key, Moments { exp_avg: tensor(exp_avg), exp_avg_sq: tensor(exp_avg_sq) });
        }
        self.step = steps;
        Ok(())
    }
}

/// Collects gradients under Hugging Face keys.
struct GradCollector<'a> {
    grads: &'a GradientsParams,
    layout: Layout,
    path: ParamPath,
    out: Vec<(String, Vec<usize>, Tensor<1>)>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let shape = g.dims().to_vec();
            let n = shape.iter().product::<usize>();
            self.out.push((self.path.key(self.layout), shape, g.reshape([n])));
        }
    }
}

/// Every gradient under its Hugging Face key, in Burn's orientation (for inspection and tests).
pub async fn gradient_tensors<M: Module>(
    model: &M,
    grads: &GradientsParams,
    layout: Layout,
) -> Result<Vec<NamedTensor>> {
    let mut collector = GradCollector { grads, layout, path: ParamPath::default(), out: Vec::new() };
    model.visit(&mut collector);
    let mut out = Vec::with_capacity(collector.out.len());
    for (key, shape, t) in collector.out {
        out.push((key, shape, read_f32(t).await?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Sum of squared gradients of every parameter, on the device.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = (g.clone() * g).sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// The global L2 norm of all gradients, as a `[1]` tensor on the device (read it together
/// with the loss to keep one host round trip per step).
pub fn global_grad_norm<M: Module>(model: &M, grads: &GradientsParams, device: &Device) -> Tensor<1> {
    let mut visitor = SquaredNorm { grads, total: None };
    model.visit(&mut visitor);
    visitor.total.unwrap_or_else(|| Tensor::zeros([1], device)).sqrt()
}

/// `torch.nn.utils.clip_grad_norm_`'s factor: gradients are scaled by it when their norm
/// exceeds `max_norm` (0 disables clipping).
pub fn clip_factor(norm: f64, max_norm: f64) -> f64 {
    if max_norm <= 0.0 {
        return 1.0;
    }
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// Learning-rate schedule: linear warmup to `lr`, then cosine decay to `min_lr` at
/// `decay_steps` (nanoGPT's `get_lr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub lr: f64,
    pub min_lr: f64,
    pub warmup: usize,
    pub decay_steps: usize,
    pub decay: Decay,
}

/// The shape of the learning rate's fall after warmup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    /// Half a cosine from `lr` to `min_lr` (nanoGPT); the default for pretraining.
    #[default]
    Cosine,
    /// A straight line from `lr` to `min_lr` (Hugging Face's `get_linear_schedule_with_warmup`,
    /// the `Trainer`'s default); the default for fine-tuning.
    Linear,
}

impl std::str::FromStr for Decay {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s {
            "cosine" => Ok(Self::Cosine),
            "linear" => Ok(Self::Linear),
            other => Err(crate::error::invalid!("unknown schedule `{other}` (cosine or linear)")),
        }
    }
}

impl std::fmt::Display for Decay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cosine => "cosine",
            Self::Linear => "linear",
        })
    }
}

impl LrSchedule {
    /// Learning rate for update number `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / (self.warmup + 1) as f64;
        }
        if step >= self.decay_steps {
            return self.min_lr;
        }
        let progress = (step - self.warmup) as f64 / (self.decay_steps - self.warmup).max(1) as f64;
        let coeff = match self.decay {
            Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            // Update k of T uses lr·(T − k)/T, as Hugging Face's scheduler before its k-th step.
            Decay::Linear => 1.0 - progress,
        };
        self.min_lr + coeff * (self.lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_min() {
        let s = LrSchedule { lr: 1e-3, min_lr: 1e-4, warmup: 100, decay_steps: 2000, decay: Decay::Cosine };
        assert!((s.at(0) - 1e-3 / 101.0).abs() < 1e-12);
        assert!((s.at(99) - 1e-3 * 100.0 / 101.0).abs() < 1e-12);
        assert!((s.at(100) - 1e-3).abs() < 1e-12);
        assert!((s.at(1050) - 5.5e-4).abs() < 1e-9);
        assert!((s.at(2000) - 1e-4).abs() < 1e-12);
        assert!(s.at(500) > s.at(600));
    }

    #[test]
    fn clipping_only_shrinks() {
        assert_eq!(clip_factor(0.5, 1.0), 1.0);
        assert!((clip_factor(4.0, 1.0) - 0.25).abs() < 1e-6);
        assert_eq!(clip_factor(100.0, 0.0), 1.0);
    }
}
