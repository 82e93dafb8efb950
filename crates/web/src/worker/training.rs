//! Pretraining in the browser: the run's loop, its controls, automatic checkpoints in browser
//! storage (so a reload resumes), and the Hugging Face zip download.

use std::rc::Rc;

use hearth_lm::io::checkpoint::Checkpoint;
use hearth_lm::train::Corpus;
use hearth_lm::train::{size_preset, Arch, TrainConfig, Trainer};
use js_sys::Array;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use super::run::{eval_point, CorpusFile, Run};
use super::{emit, emit_bytes, emit_error, now_ms, read_file, state, storage, yield_now};
use crate::limits::{check_training_buffer, TRAINING_BUDGET};
use crate::protocol::{CorpusInfo, Event, LossPoint, RunState, Topic, TrainAction, TrainArch, TrainSettings};
use crate::zip::zip_stored;

/// Larger texts take minutes just to tokenize in a tab; the CLI is the tool for them.
const CORPUS_LIMIT: u64 = 64 << 20;
const TOPIC: Topic = Topic::Pretrain;

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
    let arch = match s.arch {
        TrainArch::Gpt2 => Arch::Gpt2,
        TrainArch::Bert => Arch::Bert,
    };
    let (n_layer, n_head, n_embd) = size_preset(s.size.as_str()).map_err(|e| e.to_string())?;
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
    // Both spell tokenizers as `hearth train --tokenizer` does.
    c.tokenizer = s.tokenizer.to_string().parse().map_err(|e: hearth_lm::Error| e.to_string())?;
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
    let trainer = match Trainer::new_within(config, &corpus.corpus, &device, TRAINING_BUDGET) {
        Ok(t) => t,
        Err(e) => return emit_error(TOPIC, e.to_string()),
    };
    // Before the first step allocates its activations: each must fit one GPU buffer.
    if let Some(compute) = state::compute(TOPIC) {
        let largest = trainer.config().largest_buffer(trainer.tokenizer());
        if let Err(e) = check_training_buffer(&compute.info, largest, trainer.config().batch_size) {
            return emit_error(TOPIC, e);
        }
    }
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

/// What sits beside the checkpoint files in storage: the switch that says which generation of
/// files is the checkpoint.
#[derive(Serialize, Deserialize)]
struct SavedRun {
    settings: TrainSettings,
    corpus_name: String,
    files: Vec<String>,
    losses: Vec<LossPoint>,
    /// The generation the files are stored under. Absent in checkpoints saved before
    /// generations existed, whose files sit directly under `run/`.
    #[serde(default)]
    generation: Option<u64>,
    /// Where the corpus is stored (by content, so a save rewrites it only for a new corpus).
    #[serde(default)]
    corpus_key: Option<String>,
}

const META: &str = "run/meta.json";
/// The corpus of checkpoints saved before generations existed.
const LEGACY_CORPUS: &str = "run/corpus.txt";

fn file_key(generation: Option<u64>, name: &str) -> String {
    match generation {
        Some(g) => storage::local_key(&format!("run/g{g}/{name}")),
        None => storage::local_key(&format!("run/{name}")),
    }
}

/// FNV-1a of the corpus bytes: its storage key.
fn corpus_key(bytes: &[u8]) -> String {
    let hash =
        bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    storage::local_key(&format!("run/corpus-{hash:016x}.txt"))
}

impl SavedRun {
    fn corpus(&self) -> String {
        self.corpus_key.clone().unwrap_or_else(|| storage::local_key(LEGACY_CORPUS))
    }

    fn keys(&self) -> Vec<String> {
        self.files.iter().map(|n| file_key(self.generation, n)).collect()
    }
}

/// The checkpoint the switch points at now, if one is readable.
async fn saved_meta() -> Result<Option<SavedRun>, String> {
    let Some(meta) = storage::get(&storage::local_key(META)).await? else { return Ok(None) };
    serde_json::from_slice(&meta)
        .map(Some)
        .map_err(|e| format!("the saved run is unreadable ({e}); start a new one"))
}

/// Writes the run's checkpoint to browser storage as a transaction: the files go under a new
/// generation, then one write of `meta.json` switches to it, then the previous generation is
/// deleted. A failure anywhere before the switch (a full quota, a closed tab) leaves the
/// previous checkpoint whole and still the one a reload restores.
async fn save(run: &Run) {
    let result = async {
        let checkpoint = run.checkpoint().await?;
        // An unreadable switch is as good as none: the new generation replaces it.
        let previous = saved_meta().await.ok().flatten();
        let generation = previous.as_ref().and_then(|m| m.generation).map_or(1, |g| g + 1);
        let meta = SavedRun {
            settings: run.settings.clone(),
            corpus_name: run.corpus.name.clone(),
            files: checkpoint.files.iter().map(|(n, _)| n.clone()).collect(),
            losses: run.losses.borrow().clone(),
            generation: Some(generation),
            corpus_key: Some(corpus_key(&run.corpus.bytes)),
        };
        let new_corpus = previous.as_ref().map(SavedRun::corpus) != Some(meta.corpus());
        let written = async {
            for (name, bytes) in &checkpoint.files {
                storage::put(&file_key(Some(generation), name), bytes).await?;
            }
            if new_corpus {
                storage::put(&meta.corpus(), &run.corpus.bytes).await?;
            }
            let switch = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
            storage::put(&storage::local_key(META), &switch).await
        }
        .await;
        if let Err(e) = written {
            // Nothing points at the new generation: take it away again and say why.
            for key in meta.keys() {
                let _ = storage::delete(&key).await;
            }
            if new_corpus {
                let _ = storage::delete(&meta.corpus()).await;
            }
            let kept = previous.map_or(String::new(), |_| "; the previous checkpoint is kept".into());
            return Err(format!("{e}{}{kept}", storage::usage().await));
        }
        if let Some(previous) = previous {
            for key in previous.keys() {
                let _ = storage::delete(&key).await;
            }
            if new_corpus {
                let _ = storage::delete(&previous.corpus()).await;
            }
        }
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
        let Some(meta) = saved_meta().await? else { return Ok(None) };
        let bytes = storage::get(&meta.corpus()).await?.ok_or("the saved run's corpus is missing")?;
        let corpus = Corpus::from_bytes(&bytes).map_err(|e| e.to_string())?;
        let mut checkpoint = Checkpoint::default();
        for name in &meta.files {
            let data = storage::get(&file_key(meta.generation, name))
                .await?
                .ok_or_else(|| format!("the saved {name} is missing"))?;
            checkpoint.files.push((name.clone(), data));
        }
        let device = state::device(TOPIC).ok_or("no device")?;
        let trainer = Trainer::resume_within(&checkpoint, &corpus, &device, TRAINING_BUDGET)
            .map_err(|e| e.to_string())?;
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
        let dir = format!("hearth-{}-step{}", run.settings.arch.as_str(), run.step.get());
        let zip = zip_stored(&dir, &checkpoint.files)?;
        Ok::<_, String>((dir, zip))
    }
    .await;
    match result {
        Ok((dir, zip)) => emit_bytes(&Event::Download { name: format!("{dir}.zip") }, &zip),
        Err(e) => emit_error(TOPIC, e),
    }
}
