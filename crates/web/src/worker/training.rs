//! Pretraining in the browser: the run's loop, its controls, automatic checkpoints in browser
//! storage (so a reload resumes), and the Hugging Face zip download.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use futures::lock::Mutex;
use hearth_lm::io::checkpoint::{export_model, Checkpoint};
use hearth_lm::train::Corpus;
use hearth_lm::train::{size_preset, Arch, EvalReport, TrainConfig, Trainer};
use hearth_lm::{HfFiles, Tokenizer};
use js_sys::Array;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use super::{emit, emit_bytes, emit_error, now_ms, read_file, state, storage, yield_now};
use crate::protocol::{
    CorpusInfo, EvalPoint, Event, LossPoint, RunState, Topic, TrainAction, TrainSettings, TrainStatus,
};
use crate::zip::zip_stored;

/// Larger texts take minutes just to tokenize in a tab; the CLI is the tool for them.
const CORPUS_LIMIT: u64 = 64 << 20;
const TOPIC: Topic = Topic::Pretrain;

/// An uploaded corpus.
pub struct CorpusFile {
    pub name: String,
    pub corpus: Corpus,
    pub bytes: Vec<u8>,
}

fn corpus_info(name: &str, corpus: &Corpus, bytes: usize) -> CorpusInfo {
    let text = corpus.text();
    let mut distinct: Vec<char> = text.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    CorpusInfo {
        name: name.to_string(),
        bytes,
        chars: corpus.chars(),
        lines: text.lines().count(),
        words: text.split_whitespace().count(),
        distinct_chars: distinct.len(),
        preview: text.chars().take(400).collect(),
    }
}

pub async fn load_corpus(extra: JsValue) {
    let file = Array::from(&extra).iter().find_map(|f| f.dyn_into::<web_sys::File>().ok());
    let Some(file) = file else { return emit_error(TOPIC, "choose a .txt file") };
    let name = file.name();
    let result = async {
        let bytes = read_file(&file, CORPUS_LIMIT, "a training corpus").await?;
        let corpus = Corpus::from_bytes(&bytes).map_err(|e| format!("{name}: {e}"))?;
        Ok::<_, String>(CorpusFile { name: name.clone(), corpus, bytes })
    }
    .await;
    // A bad file changes nothing: the previous corpus and any run stay as they were.
    match result {
        Ok(file) => {
            emit(&Event::CorpusLoaded(corpus_info(&file.name, &file.corpus, file.bytes.len())));
            state::set_corpus(Rc::new(file));
        }
        Err(e) => emit_error(TOPIC, e),
    }
}

/// The form's values as a run configuration, with the limits a tab can live with.
pub fn train_config(s: &TrainSettings) -> Result<TrainConfig, String> {
    let arch: Arch = s.arch.parse().map_err(|e: hearth_lm::Error| e.to_string())?;
    let (n_layer, n_head, n_embd) = size_preset(&s.size).map_err(|e| e.to_string())?;
    if !(1..=1024).contains(&s.context) {
        return Err(format!("context must be between 1 and 1024 tokens, got {}", s.context));
    }
    if !(1..=512).contains(&s.batch_size) {
        return Err(format!("batch must be between 1 and 512, got {}", s.batch_size));
    }
    if !(1..=1_000_000).contains(&s.steps) {
        return Err(format!("steps must be between 1 and 1,000,000, got {}", s.steps));
    }
    if !(s.lr.is_finite() && s.lr > 0.0 && s.lr <= 1.0) {
        return Err(format!("learning rate must be in (0, 1], got {}", s.lr));
    }
    let mut c = TrainConfig::nano(arch);
    c.tokenizer = s.tokenizer.parse().map_err(|e: hearth_lm::Error| e.to_string())?;
    (c.n_layer, c.n_head, c.n_embd) = (n_layer, n_head, n_embd);
    c.data.context = s.context;
    c.data.stride = s.context;
    c.batch_size = s.batch_size;
    c.steps = s.steps;
    c.lr = s.lr;
    c.min_lr = s.lr / 10.0;
    c.warmup = (s.steps / 10).min(100);
    // By default about twenty points on the validation curve, each cheap enough not to stall
    // the run.
    c.eval_every = if s.eval_every == 0 { (s.steps / 20).clamp(10, 250) } else { s.eval_every };
    c.eval_batches = 4;
    c.sample_tokens = 32;
    c.seed = s.seed;
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// Tokens per second over the last steps.
#[derive(Default)]
struct Speed {
    window: VecDeque<(f64, usize)>,
}

impl Speed {
    fn record(&mut self, at_ms: f64, tokens: usize) {
        self.window.push_back((at_ms, tokens));
        if self.window.len() > 20 {
            self.window.pop_front();
        }
    }

    fn tokens_per_s(&self) -> f64 {
        match (self.window.front(), self.window.back()) {
            (Some(first), Some(last)) if self.window.len() > 1 => {
                let tokens: usize = self.window.iter().skip(1).map(|(_, t)| t).sum();
                tokens as f64 / ((last.0 - first.0) / 1000.0).max(1e-6)
            }
            _ => 0.0,
        }
    }

    /// Starts measuring afresh from now (time not spent training must not count).
    fn restart(&mut self) {
        self.window.clear();
        self.record(now_ms(), 0);
    }
}

/// A training run and what the panel shows about it.
pub struct Run {
    trainer: Mutex<Trainer>,
    tokenizer: Rc<Tokenizer>,
    settings: TrainSettings,
    corpus: Rc<CorpusFile>,
    params: usize,
    state: Cell<RunState>,
    step: Cell<usize>,
    total: Cell<usize>,
    tokens_seen: Cell<u64>,
    losses: RefCell<Vec<LossPoint>>,
    evals: RefCell<Vec<EvalPoint>>,
    saved_step: Cell<Option<usize>>,
    speed: RefCell<Speed>,
    driving: Cell<bool>,
}

fn eval_point(r: &EvalReport) -> EvalPoint {
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
    fn new(
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
    async fn checkpoint(&self) -> Result<Checkpoint, String> {
        self.trainer.lock().await.checkpoint().await.map_err(|e| e.to_string())
    }

    /// The model as a Hugging Face directory (waits for the step in progress).
    pub async fn export(&self) -> Result<HfFiles, String> {
        let trainer = self.trainer.lock().await;
        export_model(&trainer).await.map_err(|e| e.to_string())
    }

    fn status(&self) -> TrainStatus {
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

    fn emit_status(&self) {
        emit(&Event::TrainStatus(self.status()));
    }

    fn emit_history(&self) {
        emit(&Event::TrainHistory {
            losses: self.losses.borrow().clone(),
            evals: self.evals.borrow().clone(),
        });
    }
}

pub async fn start(settings: TrainSettings) {
    if let Some(run) = state::run() {
        if matches!(run.state.get(), RunState::Running | RunState::Preparing) {
            return emit_error(TOPIC, "a run is in progress: pause or stop it before starting another");
        }
    }
    let Some(corpus) = state::corpus() else {
        return emit_error(TOPIC, "upload a .txt corpus first");
    };
    let Some(device) = state::device(TOPIC) else { return };
    let config = match train_config(&settings) {
        Ok(c) => c,
        Err(e) => return emit_error(TOPIC, e),
    };
    emit(&Event::Progress {
        topic: TOPIC,
        label: "tokenizing the corpus and building the model".into(),
        done: 0,
        total: 0,
    });
    yield_now().await;
    let trainer = match Trainer::new(config, &corpus.corpus, &device) {
        Ok(t) => t,
        Err(e) => return emit_error(TOPIC, e.to_string()),
    };
    let stats = trainer.stats();
    emit(&Event::Notice {
        topic: TOPIC,
        message: format!(
            "{} tokens (vocabulary {}): {} train / {} validation",
            stats.tokens, stats.vocab_size, stats.train_tokens, stats.val_tokens
        ),
    });
    let run = Rc::new(Run::new(trainer, settings, corpus, Vec::new()));
    run.state.set(RunState::Running);
    state::set_run(run.clone());
    run.emit_history();
    run.emit_status();
    drive(run).await;
}

pub async fn control(action: TrainAction) {
    let Some(run) = state::run() else { return emit_error(TOPIC, "there is no run to control") };
    match (action, run.state.get()) {
        (TrainAction::Pause, RunState::Running) => run.state.set(RunState::Paused),
        (TrainAction::Stop, RunState::Running | RunState::Paused) => {
            run.state.set(RunState::Stopped);
            run.emit_status();
        }
        (TrainAction::Resume, RunState::Paused | RunState::Stopped) => {
            if run.step.get() >= run.total.get() {
                return emit_error(TOPIC, "the run has finished its steps: raise Steps and press Continue");
            }
            run.state.set(RunState::Running);
            run.emit_status();
            drive(run).await;
        }
        _ => {}
    }
}

pub async fn extend(steps: usize) {
    let Some(run) = state::run() else { return emit_error(TOPIC, "there is no run to continue") };
    if steps <= run.step.get() {
        return emit_error(
            TOPIC,
            format!("the run is at step {}: set Steps above that to continue", run.step.get()),
        );
    }
    if steps > 1_000_000 {
        return emit_error(TOPIC, "steps must be at most 1,000,000");
    }
    {
        let mut trainer = run.trainer.lock().await;
        trainer.extend_steps(steps);
        run.total.set(trainer.config().steps);
    }
    if run.state.get() != RunState::Running {
        run.state.set(RunState::Running);
        run.emit_status();
        drive(run).await;
    }
}

/// Steps the run while it is `Running`; saves when it pauses, stops or finishes.
async fn drive(run: Rc<Run>) {
    if run.driving.replace(true) {
        return;
    }
    run.speed.borrow_mut().restart();
    while run.state.get() == RunState::Running {
        let mut trainer = run.trainer.lock().await;
        if trainer.is_done() {
            run.state.set(RunState::Done);
            break;
        }
        let report = match trainer.step().await {
            Ok(r) => r,
            Err(e) => {
                // The trainer kept its last good state; the user can lower the rate and go on.
                run.state.set(RunState::Paused);
                emit_error(TOPIC, e.to_string());
                break;
            }
        };
        run.step.set(report.step);
        run.tokens_seen.set(trainer.tokens_seen());
        run.speed.borrow_mut().record(now_ms(), report.tokens);
        let point = LossPoint { step: report.step, tokens: trainer.tokens_seen(), loss: report.loss };
        run.losses.borrow_mut().push(point.clone());
        emit(&Event::TrainLoss(point));
        let eval_due = trainer.eval_due();
        if eval_due {
            match trainer.evaluate().await {
                Ok(report) => {
                    let point = eval_point(&report);
                    run.evals.borrow_mut().push(point.clone());
                    emit(&Event::TrainEval(point));
                }
                Err(e) => emit_error(TOPIC, format!("evaluation failed: {e}")),
            }
        }
        if trainer.is_done() {
            run.state.set(RunState::Done);
        }
        drop(trainer);
        run.emit_status();
        if eval_due && run.state.get() == RunState::Running {
            save(&run).await;
            // Saving took time that was not training.
            run.speed.borrow_mut().restart();
        }
        yield_now().await;
    }
    run.driving.set(false);
    save(&run).await;
    run.emit_status();
}

/// What sits beside the checkpoint files in storage.
#[derive(Serialize, Deserialize)]
struct SavedRun {
    settings: TrainSettings,
    corpus_name: String,
    files: Vec<String>,
    losses: Vec<LossPoint>,
}

const META: &str = "run/meta.json";
const CORPUS: &str = "run/corpus.txt";

fn file_key(name: &str) -> String {
    storage::local_key(&format!("run/{name}"))
}

/// Writes the run's checkpoint to browser storage; the metadata goes last, so a reload never
/// finds a half-written checkpoint described as complete.
async fn save(run: &Run) {
    let result = async {
        let checkpoint = run.checkpoint().await?;
        storage::delete(&storage::local_key(META)).await?;
        for (name, bytes) in &checkpoint.files {
            storage::put(&file_key(name), bytes).await?;
        }
        storage::put(&storage::local_key(CORPUS), &run.corpus.bytes).await?;
        let meta = SavedRun {
            settings: run.settings.clone(),
            corpus_name: run.corpus.name.clone(),
            files: checkpoint.files.iter().map(|(n, _)| n.clone()).collect(),
            losses: run.losses.borrow().clone(),
        };
        let meta = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
        storage::put(&storage::local_key(META), &meta).await?;
        Ok::<_, String>(())
    }
    .await;
    match result {
        Ok(()) => run.saved_step.set(Some(run.step.get())),
        Err(e) => emit_error(TOPIC, format!("the checkpoint could not be saved in browser storage: {e}")),
    }
}

/// Restores the run saved in browser storage, paused, with its curves.
pub async fn restore_saved() {
    let result = async {
        let Some(meta) = storage::get(&storage::local_key(META)).await? else { return Ok(None) };
        let meta: SavedRun = serde_json::from_slice(&meta)
            .map_err(|e| format!("the saved run is unreadable ({e}); start a new one"))?;
        let bytes =
            storage::get(&storage::local_key(CORPUS)).await?.ok_or("the saved run's corpus is missing")?;
        let corpus = Corpus::from_bytes(&bytes).map_err(|e| e.to_string())?;
        let mut checkpoint = Checkpoint::default();
        for name in &meta.files {
            let data =
                storage::get(&file_key(name)).await?.ok_or_else(|| format!("the saved {name} is missing"))?;
            checkpoint.files.push((name.clone(), data));
        }
        let device = state::device(TOPIC).ok_or("no device")?;
        let trainer = Trainer::resume(&checkpoint, &corpus, &device).map_err(|e| e.to_string())?;
        let file = Rc::new(CorpusFile { name: meta.corpus_name, corpus, bytes });
        emit(&Event::CorpusLoaded(corpus_info(&file.name, &file.corpus, file.bytes.len())));
        state::set_corpus(file.clone());
        let run = Rc::new(Run::new(trainer, meta.settings, file, meta.losses));
        run.saved_step.set(Some(run.step.get()));
        Ok::<_, String>(Some(run))
    }
    .await;
    match result {
        Ok(Some(run)) => {
            state::set_run(run.clone());
            run.emit_history();
            run.emit_status();
            emit(&Event::Notice {
                topic: TOPIC,
                message: format!("restored the saved run at step {} from browser storage", run.step.get()),
            });
        }
        Ok(None) => {}
        Err(e) => emit_error(TOPIC, format!("could not restore the saved run: {e}")),
    }
}

/// The run as a zip: the Hugging Face directory plus what resuming needs.
pub async fn download() {
    let Some(run) = state::run() else { return emit_error(TOPIC, "nothing has been trained yet") };
    let result = async {
        let checkpoint = run.checkpoint().await?;
        let dir = format!("hearth-{}-step{}", run.settings.arch, run.step.get());
        let zip = zip_stored(&dir, &checkpoint.files)?;
        Ok::<_, String>((dir, zip))
    }
    .await;
    match result {
        Ok((dir, zip)) => emit_bytes(&Event::Download { name: format!("{dir}.zip") }, &zip),
        Err(e) => emit_error(TOPIC, e),
    }
}
