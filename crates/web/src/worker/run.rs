//! A training run as the worker keeps it between requests: the trainer behind a lock, what the
//! pretrain panel shows about it (state, curves, speed), and the corpus it trains on. Owned here,
//! apart from the request handlers in `training.rs`, so that `state.rs` can hold a run without
//! importing the handlers that use the state.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use futures::lock::Mutex;
use hearth_lm::io::checkpoint::{export_model, Checkpoint};
use hearth_lm::train::{documents_of, Corpus, EvalReport, Trainer};
use hearth_lm::{HfFiles, Tokenizer};

use super::{emit, now_ms};
use crate::protocol::{EvalPoint, Event, LossPoint, RunState, RunSummary, TrainSettings, TrainStatus};

/// An uploaded corpus, with the bytes it is kept as in browser storage: the text itself for one
/// document (what checkpoints saved before documents existed hold), JSON lines for several.
pub struct CorpusFile {
    pub name: String,
    pub corpus: Corpus,
    pub bytes: Vec<u8>,
    pub jsonl: bool,
}

impl CorpusFile {
    pub fn new(name: String, corpus: Corpus) -> Self {
        let docs = corpus.documents();
        let (bytes, jsonl) = if docs.len() == 1 {
            (docs[0].as_bytes().to_vec(), false)
        } else {
            let lines: String =
                docs.iter().map(|d| format!("{}\n", serde_json::json!({ "text": d }))).collect();
            (lines.into_bytes(), true)
        };
        Self { name, corpus, bytes, jsonl }
    }

    /// A corpus read back from storage.
    pub fn stored(name: String, bytes: Vec<u8>, jsonl: bool) -> Result<Self, String> {
        let corpus = if jsonl {
            let docs = documents_of("corpus.jsonl", &bytes, None).map_err(|e| e.to_string())?;
            Corpus::from_documents(docs)
        } else {
            Corpus::from_bytes(&bytes)
        }
        .map_err(|e| e.to_string())?;
        Ok(Self { name, corpus, bytes, jsonl })
    }
}

/// Tokens per second over the last steps.
#[derive(Default)]
pub(super) struct Speed {
    window: VecDeque<(f64, usize)>,
}

impl Speed {
    pub(super) fn record(&mut self, at_ms: f64, tokens: usize) {
        self.window.push_back((at_ms, tokens));
        if self.window.len() > 20 {
            self.window.pop_front();
        }
    }

    pub(super) fn tokens_per_s(&self) -> f64 {
        match (self.window.front(), self.window.back()) {
            (Some(first), Some(last)) if self.window.len() > 1 => {
                let tokens: usize = self.window.iter().skip(1).map(|(_, t)| t).sum();
                tokens as f64 / ((last.0 - first.0) / 1000.0).max(1e-6)
            }
            _ => 0.0,
        }
    }

    /// Starts measuring afresh from now (time not spent training must not count).
    pub(super) fn restart(&mut self) {
        self.window.clear();
        self.record(now_ms(), 0);
    }
}

/// A training run and what the panel shows about it.
pub struct Run {
    /// When it started (ms since 1970): its key in the runs table.
    pub(super) id: u64,
    pub(super) name: RefCell<String>,
    /// "random weights", or the pretrained model it fine-tunes.
    pub(super) start: String,
    /// Seconds spent stepping, across reloads (the trainer's count, mirrored for the runs table).
    pub(super) train_seconds: Cell<f64>,
    pub(super) trainer: Mutex<Trainer>,
    pub(super) tokenizer: Rc<Tokenizer>,
    pub(super) settings: TrainSettings,
    pub(super) corpus: Rc<CorpusFile>,
    pub(super) params: usize,
    pub(super) state: Cell<RunState>,
    pub(super) step: Cell<usize>,
    pub(super) total: Cell<usize>,
    pub(super) tokens_seen: Cell<u64>,
    pub(super) losses: RefCell<Vec<LossPoint>>,
    pub(super) evals: RefCell<Vec<EvalPoint>>,
    pub(super) saved_step: Cell<Option<usize>>,
    pub(super) speed: RefCell<Speed>,
    pub(super) driving: Cell<bool>,
    /// Stop or Pause while the run trains: the page is told a save is coming before it is told
    /// the run stopped, and until that save ends, so Start is never enabled in between (a click
    /// that landed on it as it was disabled again was lost).
    pub(super) final_save: RefCell<Option<super::runs::Pending>>,
    /// Passes over the train rows so far, as of the last step.
    pub(super) epoch: Cell<f64>,
    tokens_per_step: usize,
}

pub(super) fn eval_point(r: &EvalReport) -> EvalPoint {
    EvalPoint {
        step: r.step,
        tokens: r.tokens_seen,
        train_loss: r.train_loss,
        val_loss: r.val_loss,
        perplexity: r.perplexity,
        sample: r.sample.clone(),
        epoch: r.epoch,
        lr: r.lr,
        probe: r.probe.clone(),
    }
}

impl Run {
    pub(super) fn new(
        trainer: Trainer,
        settings: TrainSettings,
        corpus: Rc<CorpusFile>,
        losses: Vec<LossPoint>,
        id: u64,
        name: String,
    ) -> Self {
        let state = if trainer.is_done() { RunState::Done } else { RunState::Paused };
        let trainer_tokens = trainer.config().tokens_per_step().unwrap_or(0) as usize;
        let epoch = trainer.epoch();
        let train_seconds = trainer.train_seconds();
        let start = trainer
            .config()
            .init_from
            .as_ref()
            .map_or_else(|| "random weights".to_string(), |i| i.source.clone());
        Self {
            id,
            name: RefCell::new(name),
            start,
            train_seconds: Cell::new(train_seconds),
            tokenizer: Rc::new(trainer.tokenizer().clone()),
            params: trainer.num_params(),
            step: Cell::new(trainer.step_count()),
            total: Cell::new(trainer.config().steps),
            tokens_seen: Cell::new(trainer.tokens_seen()),
            evals: RefCell::new(trainer.history().iter().map(eval_point).collect()),
            losses: RefCell::new(losses),
            trainer: Mutex::new(trainer),
            settings,
            corpus,
            state: Cell::new(state),
            saved_step: Cell::new(None),
            speed: RefCell::default(),
            driving: Cell::new(false),
            final_save: RefCell::new(None),
            epoch: Cell::new(epoch),
            tokens_per_step: trainer_tokens,
        }
    }

    pub fn tokenizer(&self) -> Rc<Tokenizer> {
        self.tokenizer.clone()
    }

    pub fn step(&self) -> usize {
        self.step.get()
    }

    /// Everything a resume needs (waits for the step in progress).
    pub(super) async fn checkpoint(&self) -> Result<Checkpoint, String> {
        self.trainer.lock().await.checkpoint().await.map_err(|e| e.to_string())
    }

    /// The model as a Hugging Face directory (waits for the step in progress).
    pub async fn export(&self) -> Result<HfFiles, String> {
        let trainer = self.trainer.lock().await;
        export_model(&trainer).await.map_err(|e| e.to_string())
    }

    pub(super) fn status(&self) -> TrainStatus {
        let evals = self.evals.borrow();
        let last_eval = evals.last();
        let speed = self.speed.borrow().tokens_per_s();
        let tokens_per_step = self.tokens_per_step as f64;
        let remaining = self.total.get().saturating_sub(self.step.get()) as f64;
        let running = self.state.get() == RunState::Running;
        TrainStatus {
            state: self.state.get(),
            step: self.step.get(),
            total_steps: self.total.get(),
            tokens_seen: self.tokens_seen.get(),
            loss: self.losses.borrow().last().map(|p| p.loss).or(last_eval.map(|e| e.train_loss)),
            val_loss: last_eval.and_then(|e| e.val_loss),
            perplexity: last_eval.map(|e| e.perplexity),
            tokens_per_s: speed,
            eta_s: (running && speed > 0.0).then(|| remaining * tokens_per_step / speed),
            params: self.params,
            settings: self.settings.clone(),
            saved_step: self.saved_step.get(),
            epoch: self.epoch.get(),
        }
    }

    pub(super) fn emit_status(&self) {
        emit(&Event::TrainStatus(self.status()));
    }

    /// The run's row in the runs table.
    pub(super) fn summary(&self) -> RunSummary {
        // The table draws curves; the probes (megabytes in a long run) stay with the run.
        let evals: Vec<EvalPoint> =
            self.evals.borrow().iter().map(|e| EvalPoint { probe: None, ..e.clone() }).collect();
        let last = evals.last();
        let seconds = self.train_seconds.get();
        RunSummary {
            id: self.id,
            name: self.name.borrow().clone(),
            start: self.start.clone(),
            settings: self.settings.clone(),
            corpus_name: self.corpus.name.clone(),
            step: self.step.get(),
            total_steps: self.total.get(),
            params: self.params,
            train_loss: last.map(|e| e.train_loss),
            val_loss: last.and_then(|e| e.val_loss),
            tokens_per_s: if seconds > 0.0 { self.tokens_seen.get() as f64 / seconds } else { 0.0 },
            seconds,
            evals,
            current: true,
        }
    }

    pub(super) fn emit_history(&self) {
        emit(&Event::TrainHistory {
            losses: self.losses.borrow().clone(),
            evals: self.evals.borrow().clone(),
        });
    }
}
