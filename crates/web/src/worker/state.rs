//! What the worker holds between requests. Handlers clone `Rc`s out and never keep a borrow
//! across an `await`, so concurrent requests cannot trip over each other.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use hearth_lm::{AnyModel, Tokenizer};

use super::device::{self, Compute};
use super::run::{CorpusFile, Run};
use super::{emit, emit_error};
use crate::protocol::{Event, ModelInfo, Slot, Topic};

/// A model ready for inference in the fill-mask or generate panel.
pub struct LoadedModel {
    pub model: AnyModel,
    pub tokenizer: Tokenizer,
    pub info: ModelInfo,
    /// An instruct checkpoint's chat template (the Generate panel's Chat mode).
    pub chat: Option<hearth_lm::chat::ChatTemplate>,
    /// Its `generation_config.json`: the ids that end a reply, its sampling defaults.
    pub generation: hearth_lm::chat::GenerationConfig,
    /// Those files as they came, which a fine-tune from this model passes on.
    pub source_files: hearth_lm::train::SourceFiles,
}

#[derive(Default)]
struct State {
    compute: Option<Compute>,
    models: HashMap<Slot, Rc<LoadedModel>>,
    corpus: Option<Rc<CorpusFile>>,
    run: Option<Rc<Run>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
    /// Bumped to cancel a generation in progress.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

pub async fn init(force_cpu: bool, fail_tuned: bool) {
    let compute = device::init(force_cpu, fail_tuned).await;
    emit(&Event::Ready(compute.info.clone()));
    STATE.with(|s| s.borrow_mut().compute = Some(compute));
}

/// The compute device, or an error for `topic` if the worker has not started yet.
pub fn compute(topic: Topic) -> Option<Compute> {
    let compute = STATE.with(|s| s.borrow().compute.clone());
    if compute.is_none() {
        emit_error(topic, "the compute device is still starting; try again in a moment");
    }
    compute
}

pub fn model(slot: Slot) -> Option<Rc<LoadedModel>> {
    STATE.with(|s| s.borrow().models.get(&slot).cloned())
}

pub fn set_model(slot: Slot, model: Rc<LoadedModel>) {
    STATE.with(|s| s.borrow_mut().models.insert(slot, model));
}

pub fn corpus() -> Option<Rc<CorpusFile>> {
    STATE.with(|s| s.borrow().corpus.clone())
}

pub fn set_corpus(corpus: Rc<CorpusFile>) {
    STATE.with(|s| s.borrow_mut().corpus = Some(corpus));
}

pub fn run() -> Option<Rc<Run>> {
    STATE.with(|s| s.borrow().run.clone())
}

pub fn set_run(run: Rc<Run>) {
    STATE.with(|s| s.borrow_mut().run = Some(run));
}

/// Starts a new generation epoch, cancelling the one in progress; returns the new epoch.
pub fn bump_generation() -> u64 {
    GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    })
}

pub fn generation_is_current(epoch: u64) -> bool {
    GENERATION.with(|g| g.get() == epoch)
}
