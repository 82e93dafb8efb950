//! Pretraining: a causal GPT-2 or a masked BERT from a text corpus, one optimizer step at a
//! time so a caller (the CLI's loop, the browser's worker) can report, pause and checkpoint
//! between steps. Backend-generic; no clocks (the caller times), reads only asynchronously.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::batcher::{eval_batches, Batch, Batcher};
use super::config::{Arch, TrainConfig};
use super::corpus::{document_separator, encode_corpus, encode_documents, Corpus};
use super::masking::{mask_tokens, mlm_token_ids};
use super::optim::{clip_factor, AdamW, GradNorm, StepGrads};
use super::parallel::{self, Prepared};
use super::probe::{self, Probe};
use super::tokenizers::build_tokenizer;
use super::windows::{Dataset, DatasetStats, Split};
use crate::error::{invalid, Error, Result};
use crate::infer::sampling::Sampling;
use crate::io::hf::load_model;
use crate::io::tokenizer::Tokenizer;
use crate::io::weights::Layout;
use crate::model::memory::{human_bytes, Budget, Footprint};
use crate::model::AnyModel;
use crate::rng::Rng;
use crate::tensor::read_f32;

/// One evaluation: a point on the loss curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub step: usize,
    pub tokens_seen: u64,
    #[serde(with = "crate::finite")]
    pub train_loss: f64,
    /// `None` when the run has no validation split.
    #[serde(with = "crate::finite::option")]
    pub val_loss: Option<f64>,
    /// `exp(val_loss)` (of the train loss without a validation split).
    #[serde(with = "crate::finite")]
    pub perplexity: f64,
    #[serde(with = "crate::finite")]
    pub lr: f64,
    pub sample: String,
    /// Passes over the train rows so far (1.5 = half-way through the second).
    #[serde(default)]
    pub epoch: f64,
    /// What the model made of the probe sentence ([`crate::train::probe`]); thinned out of
    /// older evaluations in long runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
}

/// One optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Steps completed, this one included.
    pub step: usize,
    #[serde(with = "crate::finite")]
    pub loss: f64,
    #[serde(with = "crate::finite")]
    pub grad_norm: f64,
    #[serde(with = "crate::finite")]
    pub lr: f64,
    pub tokens: usize,
    /// Passes over the train rows so far.
    pub epoch: f64,
    /// Threads the step's batch was split across ([`Trainer::set_threads`]).
    #[serde(default = "one")]
    pub threads: usize,
}

fn one() -> usize {
    1
}

/// A run in progress.
pub struct Trainer {
    pub(crate) config: TrainConfig,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) data: Dataset,
    /// On the autodiff device; `None` only while a step moves it through the optimizer.
    pub(crate) model: Option<AnyModel>,
    pub(crate) optim: AdamW,
    pub(crate) batcher: Batcher,
    /// Draws the masked-LM corruption.
    pub(crate) mask_rng: Rng,
    pub(crate) step: usize,
    pub(crate) tokens_seen: u64,
    pub(crate) history: Vec<EvalReport>,
    pub(crate) device: Device,
    pub(crate) corpus_fingerprint: u64,
    /// Seconds spent stepping, as the caller timed them (the trainer has no clock).
    pub(crate) train_seconds: f64,
    /// Most threads a step's batch is split across on a CPU backend ([`super::parallel`]).
    pub(crate) max_shards: usize,
    /// Most shards the memory budget allows: each shard holds a whole set of gradients until
    /// they are summed.
    pub(crate) memory_shards: usize,
    /// What the run was admitted with ([`Trainer::admit`]); `None` until then.
    pub(crate) admitted: Option<Footprint>,
}

/// Forces every lazily initialised parameter to take its value.
fn materialize<M: Module>(model: M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
    model
}

/// What a run keeps beside its rows and model: the evaluation history with its probe
/// snapshots, the batcher, small buffers (an allowance).
const BOOKKEEPING: u128 = 1 << 20;

/// A checkpoint's JSON files beside the tokenizer's (`config.json`, `tokenizer_config.json`,
/// `generation_config.json`, `trainer_state.json` with its evaluations): an allowance, as the
/// state grows with the run's history.
const STATE_FILES: u128 = 1 << 20;

/// Mixed into the run's seed for the masking of the evaluation batches (the same positions at
/// every evaluation; a hand-off writes them out).
pub(crate) const EVAL_MASK_SEED: u64 = 0x4556_414C;

/// Seed for step `step`'s dropout masks: a function of (seed, step) so a resumed run draws
/// exactly the masks an uninterrupted one would.
fn step_seed(seed: u64, step: usize) -> u64 {
    Rng::new(seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

impl Trainer {
    /// A fresh run: tokenizer, dataset and a randomly initialised model on `device` (the
    /// autodiff decorator is added here).
    ///
    /// Only runs no machine could hold are refused here; [`Trainer::new_within`] checks a
    /// memory budget.
    pub fn new(config: TrainConfig, corpus: &Corpus, device: &Device) -> Result<Self> {
        Self::new_within(config, corpus, device, u64::MAX)
    }

    /// [`Trainer::new`], refused before allocating when the run needs more than `budget`
    /// bytes ([`TrainConfig::check_memory`]).
    pub fn new_within(
        config: TrainConfig,
        corpus: &Corpus,
        device: &Device,
        budget: impl Into<Budget>,
    ) -> Result<Self> {
        let budget = budget.into();
        config.validate()?;
        let tokenizer = build_tokenizer(&config.tokenizer, corpus, !config.arch.causal())?;
        let need = config.check_memory(&tokenizer, budget)?;
        let device = device.clone().autodiff();
        // Parameters initialise lazily; draw them now, right after seeding, so the seed alone
        // decides them.
        device.seed(config.seed);
        let model = match config.arch {
            Arch::Gpt2 => AnyModel::Gpt2(Box::new(materialize(config.gpt2_config(&tokenizer).init(&device)))),
            Arch::Bert => AnyModel::Bert(Box::new(materialize(config.bert_config(&tokenizer).init(&device)))),
            Arch::Llama => {
                AnyModel::Llama(Box::new(materialize(config.llama_config(&tokenizer).init(&device)?)))
            }
            Arch::ModernBert => AnyModel::ModernBert(Box::new(materialize(
                config.modernbert_config(&tokenizer).init(&device)?,
            ))),
        };
        let mut trainer = Self::assemble(config, tokenizer, corpus, model, device)?.with_epochs()?;
        trainer.admit(need, budget, true)?;
        Ok(trainer)
    }

    /// The run's whole need once its corpus is tokenized: the model's `need` (checked before
    /// any tensor existed) plus what the run holds beside it — its rows and their batch order
    /// ([`Footprint::data`]) — and the small files a checkpoint writes beside the tensors (the
    /// tokenizer's JSON, built as a string and then copied into the file, and the run's state).
    /// Refused, saying what it holds, when that is over `budget`; otherwise a step's shards are
    /// limited to what is left: each shard past the first holds another set of gradients.
    ///
    /// `built_tokenizer`: the run built its tokenizer itself (from the corpus, a built-in
    /// vocabulary or the checkpoint), so it is counted too (measured: GPT-2's holds 4× its JSON,
    /// BERT's 10×); a fine-tune's came loaded with its model, before the check.
    pub(crate) fn admit(&mut self, mut need: Footprint, budget: Budget, built_tokenizer: bool) -> Result<()> {
        let order = self.data.windows(Split::Train) as u128 * std::mem::size_of::<usize>() as u128;
        let tokenizer_json = self.tokenizer.to_json().map_or(0, |j| j.len()) as u128;
        let tokenizer = if built_tokenizer { tokenizer_json.saturating_mul(10) } else { 0 };
        need.data = self
            .data
            .held_bytes()
            .saturating_add(order)
            .saturating_add(tokenizer)
            .saturating_add(BOOKKEEPING);
        need.checkpoint =
            need.checkpoint.saturating_add(tokenizer_json.saturating_mul(2)).saturating_add(STATE_FILES);
        if need.total() > budget.bytes as u128 {
            return Err(invalid!(
                "the run needs ~{} (the model, its training and checkpoints {}; the tokenized corpus of {} \
                 tokens and the run's bookkeeping {}) but ~{} is available; use less text, a smaller batch or a \
                 smaller model",
                human_bytes(need.total()),
                human_bytes(need.total().saturating_sub(need.data)),
                self.stats().tokens,
                human_bytes(need.data),
                human_bytes(budget.bytes as u128),
            ));
        }
        let spare = (budget.bytes as u128).saturating_sub(need.total());
        let extra = spare / need.gradients.max(1);
        self.memory_shards = usize::try_from(extra).unwrap_or(usize::MAX).saturating_add(1);
        self.admitted = Some(need);
        Ok(())
    }

    /// The memory the run was admitted with: the model's estimate, its data and a checkpoint's
    /// small files ([`Trainer::admit`]). `None` for a trainer built without a budget check.
    pub fn admitted(&self) -> Option<Footprint> {
        self.admitted
    }

    /// A new run given in epochs gets its steps now that its rows are known (a resumed run
    /// keeps the steps it saved, which `--steps` may have extended).
    fn with_epochs(mut self) -> Result<Self> {
        if let Some(epochs) = self.config.epochs {
            let rows = self.data.windows(Split::Train);
            self.config.steps = TrainConfig::steps_for_epochs(epochs, rows, self.config.batch_size)?;
        }
        Ok(self)
    }

    /// A fine-tuning run: `config.init_from` names the model whose `weights` (its
    /// `model.safetensors`) it starts from, `tokenizer` is the model's own. The model is built
    /// with the run's dropout; the memory check comes before any tensor exists.
    pub fn fine_tune_within(
        config: TrainConfig,
        weights: &[u8],
        tokenizer: Tokenizer,
        corpus: &Corpus,
        device: &Device,
        budget: impl Into<Budget>,
    ) -> Result<Self> {
        let budget = budget.into();
        config.validate()?;
        let Some(init) = &config.init_from else {
            return Err(invalid!("a fine-tuning run needs the model it starts from"));
        };
        let vocab = init.model.vocab_size();
        if tokenizer.id_bound() > vocab {
            return Err(invalid!(
                "the tokenizer has {} tokens but the model's vocabulary is {vocab}: they do not belong together",
                tokenizer.id_bound()
            ));
        }
        let need = config.check_memory(&tokenizer, budget)?;
        let device = device.clone().autodiff();
        device.seed(config.seed);
        let model_json = config.model_config(&tokenizer).to_json();
        let model = load_model(model_json.as_bytes(), weights, &device)?;
        let mut trainer = Self::assemble(config, tokenizer, corpus, model, device)?.with_epochs()?;
        trainer.admit(need, budget, false)?;
        Ok(trainer)
    }

    /// Builds the run around an existing model (fresh or from a checkpoint).
    pub(crate) fn assemble(
        config: TrainConfig,
        tokenizer: Tokenizer,
        corpus: &Corpus,
        model: AnyModel,
        device: Device,
    ) -> Result<Self> {
        let documents = encode_documents(&tokenizer, corpus)?;
        let vocab = model.vocab_size();
        let separator = document_separator(&tokenizer);
        let data = Dataset::from_documents(
            documents,
            separator,
            corpus.chars(),
            vocab,
            &config.data,
            config.causal(),
        )?;
        let optim = AdamW::new(config.adamw.clone(), Layout::of(&model));
        Ok(Self {
            batcher: Batcher::new(config.seed),
            mask_rng: Rng::new(config.seed ^ 0x4D41_534B),
            config,
            tokenizer,
            data,
            model: Some(model),
            optim,
            step: 0,
            tokens_seen: 0,
            history: Vec::new(),
            device,
            corpus_fingerprint: corpus.fingerprint(),
            train_seconds: 0.0,
            max_shards: parallel::default_shards(),
            memory_shards: usize::MAX,
            admitted: None,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn stats(&self) -> DatasetStats {
        self.data.stats()
    }

    /// Steps completed.
    pub fn step_count(&self) -> usize {
        self.step
    }

    pub fn tokens_seen(&self) -> u64 {
        self.tokens_seen
    }

    /// Adds time the caller spent stepping (saved with the run, so a resumed run's total and
    /// its tokens/s stay right).
    pub fn add_train_seconds(&mut self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.train_seconds += seconds;
        }
    }

    /// Splits each step's batch across at most `threads` threads on a CPU backend (default:
    /// one per core). The step is the same up to float rounding; 1 keeps it on one thread.
    pub fn set_threads(&mut self, threads: usize) {
        self.max_shards = threads.max(1);
    }

    /// Seconds spent stepping, across resumes.
    pub fn train_seconds(&self) -> f64 {
        self.train_seconds
    }

    /// Passes over the train rows so far (1.5 = half-way through the second).
    pub fn epoch(&self) -> f64 {
        self.batcher.progress(self.data.windows(Split::Train))
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.config.steps
    }

    /// Every evaluation so far (the loss curves).
    pub fn history(&self) -> &[EvalReport] {
        &self.history
    }

    pub fn model(&self) -> &AnyModel {
        self.model.as_ref().expect("the model is only absent inside a step")
    }

    /// Parameters of the model (tied embeddings counted once).
    pub fn num_params(&self) -> usize {
        self.model().num_params()
    }

    /// Lengthens the run (a resumed run may go on past its planned end); the cosine
    /// schedule is stretched to the new end.
    pub fn extend_steps(&mut self, steps: usize) {
        self.config.steps = self.config.steps.max(steps);
    }

    /// Evaluates (and so checkpoints) every `every` steps from now on: safe to change on a
    /// resumed run, since it decides only when to look, not what is learned.
    pub fn set_eval_every(&mut self, every: usize) -> Result<()> {
        if every == 0 {
            return Err(invalid!("--eval-every must be at least 1"));
        }
        self.config.eval_every = every;
        Ok(())
    }

    /// Whether an evaluation is due after the step just taken.
    pub fn eval_due(&self) -> bool {
        self.step.is_multiple_of(self.config.eval_every) || self.is_done()
    }

    /// A batch ready for the loss: a masked LM's corruption is drawn here from `rng`. `None`
    /// when a masked batch drew no position to predict.
    fn prepare(&self, model: &AnyModel, batch: Batch, rng: &mut Rng) -> Result<Option<Prepared>> {
        let (rows, context) = (batch.batch_size, batch.context);
        if self.config.causal() {
            let (inputs, targets) = (batch.inputs, batch.targets);
            return Ok(Some(Prepared::Causal { inputs, targets, rows, context }));
        }
        let (mask_id, specials) = mlm_token_ids(&self.tokenizer)?;
        let (inputs, labels) =
            mask_tokens(&batch.inputs, context, model.vocab_size(), mask_id, &specials, rng);
        let prepared = Prepared::Masked { inputs, labels, rows, context };
        Ok((prepared.predictions() > 0).then_some(prepared))
    }

    /// Each batch's mean loss on `model` (evaluation mode): on a CPU backend the batches are
    /// spread over the cores natively, as a step's shards are.
    async fn batch_losses(&self, model: &AnyModel, batches: &[Prepared]) -> Result<Vec<f64>> {
        #[cfg(not(target_arch = "wasm32"))]
        if self.max_shards > 1 && crate::tensor::is_cpu(&model.device()) {
            return parallel::losses(model, batches);
        }
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            out.push(read_f32(batch.loss(model)?).await?[0] as f64);
        }
        Ok(out)
    }

    /// The loss and gradients of a step on one thread: the loss stays a tensor so a GPU reads
    /// it together with the gradient norm.
    async fn loss_and_grads(&self, model: &AnyModel, batch: &Prepared) -> Result<(Tensor<1>, StepGrads)> {
        let loss = batch.loss(model)?;
        let grads = loss.backward();
        let grads = match model {
            AnyModel::Gpt2(m) => self.optim.gradients(m.as_ref(), grads).await?,
            AnyModel::Bert(m) => self.optim.gradients(m.as_ref(), grads).await?,
            AnyModel::Llama(m) => self.optim.gradients(m.as_ref(), grads).await?,
            AnyModel::ModernBert(m) => self.optim.gradients(m.as_ref(), grads).await?,
        };
        Ok((loss, grads))
    }

    /// Loss (read back) and gradients of the step's batch: sharded across the cores on a CPU
    /// backend, in one piece elsewhere.
    async fn step_loss_and_grads(
        &self,
        model: &AnyModel,
        batch: &Prepared,
    ) -> Result<(f64, StepGrads, f64, usize)> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let shards = parallel::shard_count(
                &self.device,
                batch.rows(),
                self.config.dropout,
                self.max_shards.min(self.memory_shards),
            );
            if shards > 1 {
                let (loss, grads, shards) = parallel::loss_and_grads(&self.optim, model, batch, shards)?;
                let norm = grads
                    .host_norm()
                    .ok_or_else(|| Error::Backend("sharded gradients must be in host memory".into()))?;
                return Ok((loss, grads, norm, shards));
            }
        }
        let (loss, grads) = self.loss_and_grads(model, batch).await?;
        let inner = self.device.clone().inner();
        let norm = match model {
            AnyModel::Gpt2(m) => grads.norm(m.as_ref(), &inner),
            AnyModel::Bert(m) => grads.norm(m.as_ref(), &inner),
            AnyModel::Llama(m) => grads.norm(m.as_ref(), &inner),
            AnyModel::ModernBert(m) => grads.norm(m.as_ref(), &inner),
        };
        let (loss, norm) = match norm {
            GradNorm::Device(norm) => {
                let v = read_f32(Tensor::cat(vec![loss.inner(), *norm], 0)).await?;
                (v[0] as f64, v[1] as f64)
            }
            GradNorm::Host(norm) => (read_f32(loss.inner()).await?[0] as f64, norm),
        };
        Ok((loss, grads, norm, 1))
    }

    /// One optimizer step. A NaN or infinite loss (or gradient) is an error and leaves the
    /// model and optimizer exactly as they were.
    pub async fn step(&mut self) -> Result<StepReport> {
        if self.is_done() {
            return Err(invalid!("the run has finished its {} steps", self.config.steps));
        }
        let mut batcher = self.batcher.clone();
        let batch = batcher.next_batch(&self.data, self.config.batch_size, self.config.causal());
        let mut mask_rng = self.mask_rng;
        self.device.seed(step_seed(self.config.seed, self.step));
        let Some(model) = self.model.take() else {
            return Err(invalid!(
                "the last step failed while updating the weights; resume from the last checkpoint"
            ));
        };
        let tokens = batch.batch_size * batch.context;
        let prepared = match self.prepare(&model, batch, &mut mask_rng) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.model = Some(model);
                return Err(invalid!(
                    "step {}: the batch has no token the masked LM may predict (only special tokens); \
                     the corpus needs more text",
                    self.step + 1
                ));
            }
            Err(e) => {
                self.model = Some(model);
                return Err(e);
            }
        };
        let (loss, grads, grad_norm, threads) = match self.step_loss_and_grads(&model, &prepared).await {
            Ok(v) => v,
            Err(e) => {
                self.model = Some(model);
                return Err(e);
            }
        };
        if !loss.is_finite() || !grad_norm.is_finite() {
            self.model = Some(model);
            return Err(Error::InvalidInput(format!(
                "training diverged at step {}: the loss is {loss} (gradient norm {grad_norm}); \
                 the last checkpoint is kept — try a lower learning rate",
                self.step + 1
            )));
        }
        let lr = self.config.schedule().at(self.step);
        let scale = clip_factor(grad_norm, self.config.grad_clip);
        // The update cannot fail on a backend that got this far (the loss and norm were read);
        // if it ever does, the run stops with the error and its last checkpoint.
        let model = match model {
            AnyModel::Gpt2(m) => AnyModel::Gpt2(Box::new(self.optim.step(*m, grads, lr, scale).await?)),
            AnyModel::Bert(m) => AnyModel::Bert(Box::new(self.optim.step(*m, grads, lr, scale).await?)),
            AnyModel::Llama(m) => AnyModel::Llama(Box::new(self.optim.step(*m, grads, lr, scale).await?)),
            AnyModel::ModernBert(m) => {
                AnyModel::ModernBert(Box::new(self.optim.step(*m, grads, lr, scale).await?))
            }
        };
        self.model = Some(model);
        self.batcher = batcher;
        self.mask_rng = mask_rng;
        self.step += 1;
        self.tokens_seen += tokens as u64;
        Ok(StepReport { step: self.step, loss, grad_norm, lr, tokens, epoch: self.epoch(), threads })
    }

    /// Loss per prediction over the evaluation batches of a split, without gradients or dropout
    /// (each batch weighted by its predictions, as `hearth eval` weights its windows).
    async fn split_loss(&self, model: &AnyModel, split: Split) -> Result<f64> {
        let c = &self.config;
        let batches = eval_batches(&self.data, split, c.batch_size, c.eval_batches, c.causal());
        // A fixed masking seed so every evaluation corrupts the same positions.
        let mut rng = Rng::new(c.seed ^ EVAL_MASK_SEED);
        let mut prepared = Vec::with_capacity(batches.len());
        for batch in batches {
            prepared.extend(self.prepare(model, batch, &mut rng)?);
        }
        let losses = self.batch_losses(model, &prepared).await?;
        let (mut total, mut count) = (0.0, 0usize);
        for (batch, loss) in prepared.iter().zip(losses) {
            total += loss * batch.predictions() as f64;
            count += batch.predictions();
        }
        if count == 0 {
            return Err(invalid!("the {split:?} split has nothing to predict"));
        }
        Ok(total / count as f64)
    }

    /// Evaluates on both splits, draws a sample, and appends to the history.
    pub async fn evaluate(&mut self) -> Result<EvalReport> {
        let model = self.model().valid();
        let train_loss = self.split_loss(&model, Split::Train).await?;
        let val_loss = if self.data.windows(Split::Val) > 0 {
            Some(self.split_loss(&model, Split::Val).await?)
        } else {
            None
        };
        let sample = self.sample(&model).await?;
        let probe = self.probe(&model).await?;
        let report = EvalReport {
            step: self.step,
            tokens_seen: self.tokens_seen,
            train_loss,
            val_loss,
            perplexity: val_loss.unwrap_or(train_loss).exp(),
            lr: self.config.schedule().at(self.step.saturating_sub(1)),
            sample,
            epoch: self.epoch(),
            probe,
        };
        self.history.push(report.clone());
        probe::thin(&mut self.history);
        Ok(report)
    }

    /// The probe sentence's tokens: the configured text, or the start of the validation split
    /// (of the train split when there is none).
    pub fn probe_ids(&self) -> Result<Vec<u32>> {
        let split = if self.data.windows(Split::Val) > 0 { Split::Val } else { Split::Train };
        let start = self.data.window(split, 0);
        probe::probe_ids(self.model(), &self.tokenizer, &self.config.probe, start)
    }

    /// What the model (evaluation mode) makes of the probe sentence; `None` when it has no
    /// tokens.
    async fn probe(&self, model: &AnyModel) -> Result<Option<Probe>> {
        let ids = self.probe_ids()?;
        if ids.is_empty() {
            return Ok(None);
        }
        probe::probe(model, &self.tokenizer, &ids).await.map(Some)
    }

    fn sample_prompt(&self) -> String {
        if !self.config.sample_prompt.is_empty() {
            return self.config.sample_prompt.clone();
        }
        let first = self.data.window(Split::Train, 0);
        let n = first.len().clamp(1, 16);
        self.tokenizer.decode(&first[..n]).unwrap_or_default()
    }

    /// A decoder: a seeded continuation of the sample prompt. A masked LM: the prompt with
    /// every fifth token masked and filled in, predictions in brackets.
    async fn sample(&self, model: &AnyModel) -> Result<String> {
        let prompt = self.sample_prompt();
        let ids = encode_corpus(&self.tokenizer, &Corpus::from_bytes(prompt.as_bytes())?)?;
        match model {
            AnyModel::Gpt2(_) | AnyModel::Llama(_) => {
                let m = model.causal().expect("a decoder");
                let sampling = Sampling::new(0.8, Some(40), None)?;
                let new = crate::infer::generate::generate(
                    m,
                    &ids,
                    self.config.sample_tokens,
                    sampling,
                    self.config.seed,
                )
                .await?;
                let mut all = ids.clone();
                all.extend(new);
                self.tokenizer.decode(&all)
            }
            AnyModel::Bert(_) | AnyModel::ModernBert(_) => {
                let m = model.masked().expect("an encoder");
                let ids: Vec<u32> = ids.into_iter().take(m.context()).collect();
                let (mask_id, _) = mlm_token_ids(&self.tokenizer)?;
                let masked: Vec<u32> =
                    ids.iter().enumerate().map(|(i, &id)| if i % 5 == 2 { mask_id } else { id }).collect();
                let preds =
                    crate::infer::fill_mask::fill_mask_ids(m, &self.tokenizer, &masked, mask_id, 1).await?;
                let mut parts = Vec::with_capacity(ids.len());
                let mut preds = preds.into_iter();
                for (i, &id) in masked.iter().enumerate() {
                    if id == mask_id {
                        let p = preds.next().map(|p| p.predictions[0].id).unwrap_or(id);
                        parts.push(format!("[{}]", self.tokenizer.decode(&[p])?.trim()));
                    } else {
                        parts.push(self.tokenizer.decode(&ids[i..=i])?);
                    }
                }
                Ok(parts.join(" "))
            }
        }
    }
}
