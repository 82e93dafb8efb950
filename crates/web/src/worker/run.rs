//! A training run as the worker keeps it between requests: the trainer behind a lock, what the
//! pretrain panel shows about it (state, curves, speed), and the corpus it trains on. Owned here,
//! apart from the request handlers in `training.rs`, so that `state.rs` can hold a run without
//! importing the handlers that use the state.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use futures::lock::Mutex;
use hearth_lm::io::checkpoint::{export_model, Checkpoint};
use hearth_lm::train::{Corpus, EvalReport, Trainer};
use hearth_lm::{HfFiles, Tokenizer};

use super::{emit, now_ms};
use crate::protocol::{EvalPoint, Event, LossPoint, RunState, TrainSettings, TrainStatus};

/// An uploaded corpus.
pub struct CorpusFile {
    pub name: String,
    pub corpus: Corpus,
    pub bytes: Vec<u8>,
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
}

pub(super) fn eval_point(r: &EvalReport) -> EvalPoint {
    EvalPoint {
        step: r.step,
        tokens: r.tokens_seen,
        train_loss: r.train_loss,
        val_loss: r.val_loss,
        perplexity: r.perplexity,
        sample: r.sample.clone(),
    }
}

impl Run {
    pub(super) fn new(
        trainer: Trainer,
        settings: TrainSettings,
        corpus: Rc<CorpusFile>,
        losses: Vec<LossPoint>,
    ) -> Self {
        let state = if trainer.is_done() { RunState::Done } else { RunState::Paused };
        Self {
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
        let tokens_per_step = (self.settings.batch_size * self.settings.context) as f64;
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
        }
    }

    pub(super) fn emit_status(&self) {
        emit(&Event::TrainStatus(self.status()));
    }

    pub(super) fn emit_history(&self) {
        emit(&Event::TrainHistory {
            losses: self.losses.borrow().clone(),
            evals: self.evals.borrow().clone(),
        });
    }
}
