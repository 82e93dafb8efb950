//! Pretraining: a causal GPT-2 or a masked BERT from a text corpus, one optimizer step at a
//! time so a caller (the CLI's loop, the browser's worker) can report, pause and checkpoint
//! between steps. Backend-generic; no clocks (the caller times), reads only asynchronously.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Gradients, Tensor};
use serde::{Deserialize, Serialize};

use crate::bert::BertForMaskedLM;
use crate::config::{BertConfig, Gpt2Config};
use crate::data::{build_tokenizer, encode_corpus, TokenizerChoice};
use crate::data::{
    eval_batches, mask_tokens, mlm_token_ids, Batch, Batcher, Corpus, DataConfig, Dataset, DatasetStats,
    Split,
};
use crate::error::{invalid, Error, Result};
use crate::generate::{int_tensor, read_f32};
use crate::gpt2::Gpt2LMHeadModel;
use crate::optim::{clip_factor, global_grad_norm, AdamW, AdamWConfig, LrSchedule};
use crate::sampling::{Rng, Sampling};
use crate::score::{cross_entropy, masked_lm_loss};
use crate::tokenizer::Tokenizer;
use crate::weights::Layout;

/// The two pretraining objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Causal language modelling with GPT-2.
    Gpt2,
    /// Masked language modelling with BERT.
    Bert,
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gpt2" | "gpt" => Ok(Arch::Gpt2),
            "bert" => Ok(Arch::Bert),
            other => Err(invalid!("unknown architecture `{other}` (gpt2 or bert)")),
        }
    }
}

/// Model sizes by name: `(n_layer, n_head, n_embd)`.
pub fn size_preset(name: &str) -> Result<(usize, usize, usize)> {
    Ok(match name {
        // Small enough to train in seconds, even on a software GPU.
        "micro" => (2, 2, 64),
        // nanoGPT's CPU shakespeare_char configuration.
        "nano" => (4, 4, 128),
        // nanoGPT's "baby GPT" (train_shakespeare_char.py).
        "baby" => (6, 6, 384),
        "gpt2" | "bert-base-uncased" => (12, 12, 768),
        "gpt2-medium" | "bert-large-uncased" => (24, 16, 1024),
        "gpt2-large" => (36, 20, 1280),
        "gpt2-xl" => (48, 25, 1600),
        other => {
            return Err(invalid!(
                "unknown size preset `{other}` (micro, nano, baby, gpt2, gpt2-medium, gpt2-large, gpt2-xl, bert-base-uncased, bert-large-uncased)"
            ))
        }
    })
}

/// Everything that defines a run; saved in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub arch: Arch,
    pub tokenizer: TokenizerChoice,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    pub data: DataConfig,
    pub batch_size: usize,
    /// Optimizer steps in the whole run.
    pub steps: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup: usize,
    pub adamw: AdamWConfig,
    /// Global gradient-norm bound; 0 disables clipping.
    pub grad_clip: f64,
    pub dropout: f64,
    /// Evaluate every this many steps (and at the last step).
    pub eval_every: usize,
    /// Batches per split per evaluation.
    pub eval_batches: usize,
    pub seed: u64,
    /// GPT: the text samples continue; BERT: a sentence whose tokens are masked and predicted.
    /// Empty means the corpus's first line.
    pub sample_prompt: String,
    /// New tokens per GPT sample.
    pub sample_tokens: usize,
}

impl TrainConfig {
    /// nanoGPT's CPU recipe for shakespeare_char, as a starting point.
    pub fn nano(arch: Arch) -> Self {
        Self {
            arch,
            tokenizer: TokenizerChoice::Chars,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            data: DataConfig { context: 64, stride: 64, val_fraction: 0.1 },
            batch_size: 12,
            steps: 2000,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup: 100,
            adamw: AdamWConfig { beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1, decay_all: false },
            grad_clip: 1.0,
            dropout: 0.0,
            eval_every: 250,
            eval_batches: 20,
            seed: 1337,
            sample_prompt: String::new(),
            sample_tokens: 100,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("n-layer", self.n_layer),
            ("n-head", self.n_head),
            ("n-embd", self.n_embd),
            ("batch-size", self.batch_size),
            ("steps", self.steps),
            ("eval-every", self.eval_every),
            ("eval-batches", self.eval_batches),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(invalid!("--{name} must be at least 1"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(invalid!("n-embd {} must be divisible by n-head {}", self.n_embd, self.n_head));
        }
        let finite_pos = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid!("--{name} must be a finite number ≥ 0, got {v}"))
            }
        };
        finite_pos("lr", self.lr)?;
        finite_pos("min-lr", self.min_lr)?;
        finite_pos("weight-decay", self.adamw.weight_decay)?;
        finite_pos("grad-clip", self.grad_clip)?;
        if self.lr == 0.0 || self.lr > 10.0 {
            return Err(invalid!("--lr must be in (0, 10], got {}", self.lr));
        }
        if self.min_lr > self.lr {
            return Err(invalid!("--min-lr {} exceeds --lr {}", self.min_lr, self.lr));
        }
        for (name, b) in [("beta1", self.adamw.beta1), ("beta2", self.adamw.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(invalid!("--{name} must be in [0, 1), got {b}"));
            }
        }
        if !(self.adamw.eps > 0.0 && self.adamw.eps.is_finite()) {
            return Err(invalid!("--eps must be positive"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(invalid!("--dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.data.context < 2 {
            return Err(invalid!("--context must be at least 2"));
        }
        Ok(())
    }

    pub fn schedule(&self) -> LrSchedule {
        LrSchedule { lr: self.lr, min_lr: self.min_lr, warmup: self.warmup, decay_steps: self.steps }
    }

    /// The GPT-2 config of this run for a vocabulary of `vocab` tokens.
    pub fn gpt2_config(&self, tokenizer: &Tokenizer) -> Gpt2Config {
        let mut c = Gpt2Config::new(
            tokenizer.vocab_size(),
            self.data.context,
            self.n_embd,
            self.n_layer,
            self.n_head,
        );
        (c.embd_pdrop, c.attn_pdrop, c.resid_pdrop) = (self.dropout, self.dropout, self.dropout);
        let eot = tokenizer.token_to_id("<|endoftext|>");
        (c.bos_token_id, c.eos_token_id) = (eot, eot);
        c
    }

    /// The BERT config of this run (MLP 4× wide, as BERT's).
    pub fn bert_config(&self, tokenizer: &Tokenizer) -> BertConfig {
        let mut c = BertConfig::new(
            tokenizer.vocab_size(),
            self.n_embd,
            self.n_layer,
            self.n_head,
            4 * self.n_embd,
            self.data.context,
        );
        (c.hidden_dropout_prob, c.attention_probs_dropout_prob) = (self.dropout, self.dropout);
        c.pad_token_id = tokenizer.token_to_id("[PAD]");
        c
    }
}

/// One evaluation: a point on the loss curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub step: usize,
    pub tokens_seen: u64,
    pub train_loss: f64,
    /// `None` when the run has no validation split.
    pub val_loss: Option<f64>,
    /// `exp(val_loss)` (of the train loss without a validation split).
    pub perplexity: f64,
    pub lr: f64,
    pub sample: String,
}

/// One optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Steps completed, this one included.
    pub step: usize,
    pub loss: f64,
    pub grad_norm: f64,
    pub lr: f64,
    pub tokens: usize,
}

/// The model being trained.
// One per run, moved through every optimizer step: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum TrainModel {
    Gpt2(Gpt2LMHeadModel),
    Bert(BertForMaskedLM),
}

impl TrainModel {
    /// The device the parameters live on (autodiff while training, plain for evaluation).
    pub fn device(&self) -> Device {
        match self {
            TrainModel::Gpt2(m) => m.device(),
            TrainModel::Bert(m) => m.device(),
        }
    }

    pub fn layout(&self) -> Layout {
        match self {
            TrainModel::Gpt2(_) => Layout::Gpt2,
            TrainModel::Bert(_) => Layout::Bert,
        }
    }
}

/// A run in progress.
pub struct Trainer {
    pub(crate) config: TrainConfig,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) data: Dataset,
    /// On the autodiff device; `None` only while a step moves it through the optimizer.
    pub(crate) model: Option<TrainModel>,
    pub(crate) optim: AdamW,
    pub(crate) batcher: Batcher,
    /// Draws the masked-LM corruption.
    pub(crate) mask_rng: Rng,
    pub(crate) step: usize,
    pub(crate) tokens_seen: u64,
    pub(crate) history: Vec<EvalReport>,
    pub(crate) device: Device,
    pub(crate) corpus_fingerprint: u64,
}

/// Gradients by parameter and their global norm (`[1]`, on `device`).
fn grads_and_norm<M: Module>(grads: Gradients, model: &M, device: &Device) -> (GradientsParams, Tensor<1>) {
    let grads = GradientsParams::from_grads(grads, model);
    let norm = global_grad_norm(model, &grads, device);
    (grads, norm)
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

/// FNV-1a of the corpus: a resumed run must see the same text.
pub(crate) fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Seed for step `step`'s dropout masks: a function of (seed, step) so a resumed run draws
/// exactly the masks an uninterrupted one would.
fn step_seed(seed: u64, step: usize) -> u64 {
    Rng::new(seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

impl Trainer {
    /// A fresh run: tokenizer, dataset and a randomly initialised model on `device` (the
    /// autodiff decorator is added here).
    pub fn new(config: TrainConfig, corpus: &Corpus, device: &Device) -> Result<Self> {
        config.validate()?;
        let tokenizer = build_tokenizer(&config.tokenizer, corpus, config.arch == Arch::Bert)?;
        let device = device.clone().autodiff();
        // Parameters initialise lazily; draw them now, right after seeding, so the seed alone
        // decides them.
        device.seed(config.seed);
        let model = match config.arch {
            Arch::Gpt2 => TrainModel::Gpt2(materialize(config.gpt2_config(&tokenizer).init(&device))),
            Arch::Bert => TrainModel::Bert(materialize(config.bert_config(&tokenizer).init(&device))),
        };
        Self::assemble(config, tokenizer, corpus, model, device)
    }

    /// Builds the run around an existing model (fresh or from a checkpoint).
    pub(crate) fn assemble(
        config: TrainConfig,
        tokenizer: Tokenizer,
        corpus: &Corpus,
        model: TrainModel,
        device: Device,
    ) -> Result<Self> {
        let tokens = encode_corpus(&tokenizer, corpus)?;
        let data = Dataset::new(tokens, corpus.chars(), tokenizer.vocab_size(), &config.data)?;
        let optim = AdamW::new(config.adamw.clone(), model.layout());
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
            corpus_fingerprint: fingerprint(corpus.text()),
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

    pub fn is_done(&self) -> bool {
        self.step >= self.config.steps
    }

    /// Every evaluation so far (the loss curves).
    pub fn history(&self) -> &[EvalReport] {
        &self.history
    }

    pub fn model(&self) -> &TrainModel {
        self.model.as_ref().expect("the model is only absent inside a step")
    }

    /// Parameters of the model (tied embeddings counted once).
    pub fn num_params(&self) -> usize {
        match self.model() {
            TrainModel::Gpt2(m) => m.num_params(),
            TrainModel::Bert(m) => m.num_params(),
        }
    }

    /// Lengthens the run (a resumed run may go on past its planned end); the cosine
    /// schedule is stretched to the new end.
    pub fn extend_steps(&mut self, steps: usize) {
        self.config.steps = self.config.steps.max(steps);
    }

    /// Whether an evaluation is due after the step just taken.
    pub fn eval_due(&self) -> bool {
        self.step.is_multiple_of(self.config.eval_every) || self.is_done()
    }

    /// Loss of a batch on `model` (autodiff or not).
    fn batch_loss(&self, model: &TrainModel, batch: &Batch, rng: &mut Rng) -> Result<Tensor<1>> {
        let device = &model.device();
        let (b, t) = (batch.batch_size, batch.context);
        match model {
            TrainModel::Gpt2(m) => {
                let logits = m.forward(int_tensor(&batch.inputs, [b, t], device), None);
                let vocab = m.config().vocab_size;
                Ok(cross_entropy(logits.reshape([b * t, vocab]), int_tensor(&batch.targets, [b * t], device)))
            }
            TrainModel::Bert(m) => {
                let (mask_id, specials) = mlm_token_ids(&self.tokenizer)?;
                let vocab = m.config().vocab_size;
                let (inputs, labels) = mask_tokens(&batch.inputs, t, vocab, mask_id, &specials, rng);
                Ok(masked_lm_loss(m, &inputs, &labels, [b, t]))
            }
        }
    }

    /// One optimizer step. A NaN or infinite loss (or gradient) is an error and leaves the
    /// model and optimizer exactly as they were.
    pub async fn step(&mut self) -> Result<StepReport> {
        if self.is_done() {
            return Err(invalid!("the run has finished its {} steps", self.config.steps));
        }
        let mut batcher = self.batcher.clone();
        let batch = batcher.next_batch(&self.data, self.config.batch_size);
        let mut mask_rng = self.mask_rng;
        self.device.seed(step_seed(self.config.seed, self.step));
        let model = self.model.take().expect("model present between steps");
        let inner = self.device.clone().inner();
        let loss = match self.batch_loss(&model, &batch, &mut mask_rng) {
            Ok(loss) => loss,
            Err(e) => {
                self.model = Some(model);
                return Err(e);
            }
        };
        let grads = loss.backward();
        let (grads, norm) = match &model {
            TrainModel::Gpt2(m) => grads_and_norm(grads, m, &inner),
            TrainModel::Bert(m) => grads_and_norm(grads, m, &inner),
        };
        let values = read_f32(Tensor::cat(vec![loss.inner(), norm], 0)).await;
        let values = match values {
            Ok(v) => v,
            Err(e) => {
                self.model = Some(model);
                return Err(e);
            }
        };
        let (loss, grad_norm) = (values[0] as f64, values[1] as f64);
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
        let model = match model {
            TrainModel::Gpt2(m) => TrainModel::Gpt2(self.optim.step(m, grads, lr, scale)),
            TrainModel::Bert(m) => TrainModel::Bert(self.optim.step(m, grads, lr, scale)),
        };
        self.model = Some(model);
        self.batcher = batcher;
        self.mask_rng = mask_rng;
        self.step += 1;
        let tokens = batch.batch_size * batch.context;
        self.tokens_seen += tokens as u64;
        Ok(StepReport { step: self.step, loss, grad_norm, lr, tokens })
    }

    /// Mean loss over the evaluation batches of a split, without gradients or dropout.
    async fn split_loss(&self, model: &TrainModel, split: Split) -> Result<f64> {
        let batches = eval_batches(&self.data, split, self.config.batch_size, self.config.eval_batches);
        // A fixed masking seed so every evaluation corrupts the same positions.
        let mut rng = Rng::new(self.config.seed ^ 0x4556_414C);
        let mut total = 0.0;
        for batch in &batches {
            total += read_f32(self.batch_loss(model, batch, &mut rng)?).await?[0] as f64;
        }
        Ok(total / batches.len().max(1) as f64)
    }

    /// Evaluates on both splits, draws a sample, and appends to the history.
    pub async fn evaluate(&mut self) -> Result<EvalReport> {
        let model = match self.model() {
            TrainModel::Gpt2(m) => TrainModel::Gpt2(m.valid()),
            TrainModel::Bert(m) => TrainModel::Bert(m.valid()),
        };
        let train_loss = self.split_loss(&model, Split::Train).await?;
        let val_loss = if self.data.windows(Split::Val) > 0 {
            Some(self.split_loss(&model, Split::Val).await?)
        } else {
            None
        };
        let sample = self.sample(&model).await?;
        let report = EvalReport {
            step: self.step,
            tokens_seen: self.tokens_seen,
            train_loss,
            val_loss,
            perplexity: val_loss.unwrap_or(train_loss).exp(),
            lr: self.config.schedule().at(self.step.saturating_sub(1)),
            sample,
        };
        self.history.push(report.clone());
        Ok(report)
    }

    fn sample_prompt(&self) -> String {
        if !self.config.sample_prompt.is_empty() {
            return self.config.sample_prompt.clone();
        }
        let first = self.data.window(Split::Train, 0);
        let n = first.len().clamp(1, 16);
        self.tokenizer.decode(&first[..n]).unwrap_or_default()
    }

    /// GPT: a seeded continuation of the sample prompt. BERT: the prompt with every fifth
    /// token masked and filled in, predictions in brackets.
    async fn sample(&self, model: &TrainModel) -> Result<String> {
        let prompt = self.sample_prompt();
        let ids = encode_corpus(&self.tokenizer, &Corpus::from_bytes(prompt.as_bytes())?)?;
        match model {
            TrainModel::Gpt2(m) => {
                let sampling = Sampling::new(0.8, Some(40), None)?;
                let new =
                    crate::generate::generate(m, &ids, self.config.sample_tokens, sampling, self.config.seed)
                        .await?;
                let mut all = ids.clone();
                all.extend(new);
                self.tokenizer.decode(&all)
            }
            TrainModel::Bert(m) => {
                let ids: Vec<u32> = ids.into_iter().take(m.config().max_position_embeddings).collect();
                let (mask_id, _) = mlm_token_ids(&self.tokenizer)?;
                let masked: Vec<u32> =
                    ids.iter().enumerate().map(|(i, &id)| if i % 5 == 2 { mask_id } else { id }).collect();
                let preds = crate::fill_mask::fill_mask_ids(m, &self.tokenizer, &masked, mask_id, 1).await?;
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
