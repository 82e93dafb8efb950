//! Pretraining in the browser: the run's loop, its controls, automatic checkpoints in browser
//! storage (so a reload resumes), and the Hugging Face zip download.

use std::cell::Cell;
use std::rc::Rc;

use burn::tensor::Device;
use hearth_lm::io::checkpoint::Checkpoint;
use hearth_lm::io::hf::export_model;
use hearth_lm::model::memory::Budget;
use hearth_lm::train::{corpus_of_files, Corpus};
use hearth_lm::train::{size_preset, Arch, TrainConfig, Trainer};
use hearth_lm::{HfFiles, ModelConfig, Tokenizer};
use js_sys::Array;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use super::builtins;
use super::run::{eval_point, CorpusFile, Run};
use super::train_device;
use super::{emit, emit_bytes, emit_error, now_ms, read_file, state, storage, yield_now};
use crate::protocol::{
    CorpusInfo, Event, LossPoint, RunState, RunSummary, Slot, StartFrom, Topic, TrainAction, TrainArch,
    TrainSettings,
};
use crate::zip::zip_stored;

/// Larger texts take minutes just to tokenize in a tab; the CLI is the tool for them.
const CORPUS_LIMIT: u64 = 64 << 20;
const TOPIC: Topic = Topic::Pretrain;

/// Where the page serves the Shakespeare sample (Trunk copies `web/corpus/` beside the page).
const SAMPLE_URL: &str = "corpus/tiny_shakespeare_like.txt";

fn corpus_info(name: &str, corpus: &Corpus, bytes: usize) -> CorpusInfo {
    let docs = corpus.documents();
    let distinct: std::collections::BTreeSet<char> = docs.iter().flat_map(|d| d.chars()).collect();
    CorpusInfo {
        name: name.to_string(),
        documents: docs.len(),
        bytes,
        chars: corpus.chars(),
        lines: docs.iter().map(|d| d.lines().count()).sum(),
        words: docs.iter().map(|d| d.split_whitespace().count()).sum(),
        distinct_chars: distinct.len(),
        preview: docs.iter().flat_map(|d| d.chars()).take(400).collect(),
    }
}

/// The picked files (text, JSONL, CSV; one or several) as one corpus of documents.
pub async fn load_corpus(extra: JsValue, text_field: String) {
    let files: Vec<web_sys::File> =
        Array::from(&extra).iter().filter_map(|f| f.dyn_into::<web_sys::File>().ok()).collect();
    if files.is_empty() {
        return emit_error(TOPIC, "choose a .txt, .jsonl or .csv file");
    }
    let result = async {
        let mut read = Vec::with_capacity(files.len());
        let mut total = 0u64;
        for file in &files {
            let bytes = read_file(file, CORPUS_LIMIT.saturating_sub(total), "a training corpus").await?;
            total += bytes.len() as u64;
            read.push((file.name(), bytes));
        }
        let field = Some(text_field.trim()).filter(|f| !f.is_empty());
        let corpus = corpus_of_files(&read, field).map_err(|e| e.to_string())?;
        let name = match read.as_slice() {
            [(one, _)] => one.clone(),
            many => format!(
                "{} files ({})",
                many.len(),
                many.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            ),
        };
        Ok::<_, String>((CorpusFile::new(name, corpus), total))
    }
    .await;
    use_corpus(result);
}

/// The Shakespeare sample the app ships: a first visit can train without a file.
pub async fn load_sample() {
    let result = async {
        let bytes = super::fetch::fetch_with_progress(
            SAMPLE_URL,
            "the Shakespeare sample",
            TOPIC,
            false,
            CORPUS_LIMIT,
        )
        .await?
        .ok_or("the sample is missing from this site")?;
        let corpus = Corpus::from_bytes(&bytes).map_err(|e| e.to_string())?;
        let size = bytes.len() as u64;
        Ok::<_, String>((CorpusFile::new("tiny_shakespeare_like.txt (sample)".into(), corpus), size))
    }
    .await;
    use_corpus(result);
}

/// A bad file changes nothing: the previous corpus and any run stay as they were.
fn use_corpus(result: Result<(CorpusFile, u64), String>) {
    match result {
        Ok((file, size)) => {
            emit(&Event::CorpusLoaded(corpus_info(&file.name, &file.corpus, size as usize)));
            state::set_corpus(Rc::new(file));
        }
        Err(e) => emit_error(TOPIC, e),
    }
}

/// The pretrained model a fine-tune starts from: its files, tokenizer and a name to show.
struct Source {
    files: HfFiles,
    tokenizer: Tokenizer,
    name: String,
}

async fn source(from: StartFrom) -> Result<Source, String> {
    let loaded = |slot: Slot, panel: &str| {
        state::model(slot).ok_or_else(|| format!("load a model in the {panel} panel first"))
    };
    match from {
        StartFrom::Random => Err("random weights have no source model".into()),
        StartFrom::Generate | StartFrom::FillMask => {
            let (slot, panel) = if from == StartFrom::Generate {
                (Slot::Generate, "Generate")
            } else {
                (Slot::FillMask, "Fill mask")
            };
            let m = loaded(slot, panel)?;
            let files = export_model(&m.model, Some(&m.tokenizer)).await.map_err(|e| e.to_string())?;
            Ok(Source { files, tokenizer: m.tokenizer.clone(), name: m.info.source.clone() })
        }
        StartFrom::Trained => {
            let run = state::run().ok_or("nothing has been trained here yet")?;
            let files = run.export().await?;
            Ok(Source {
                files,
                tokenizer: (*run.tokenizer()).clone(),
                name: format!("the model trained here (step {})", run.step()),
            })
        }
    }
}

/// The form's values as a run configuration, with the limits a tab can live with. `model` is
/// the pretrained model's config for a fine-tune.
pub fn train_config(s: &TrainSettings, model: Option<(ModelConfig, String)>) -> Result<TrainConfig, String> {
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
    let mut c = match model {
        Some((model, name)) => TrainConfig::fine_tune(model, name),
        None => {
            let arch = match s.arch {
                TrainArch::Gpt2 => Arch::Gpt2,
                TrainArch::Bert => Arch::Bert,
            };
            let (n_layer, n_head, n_embd) = size_preset(s.size.as_str()).map_err(|e| e.to_string())?;
            let mut c = TrainConfig::nano(arch);
            // Both spell tokenizers as `hearth train --tokenizer` does.
            c.tokenizer = s.tokenizer.to_string().parse().map_err(|e: hearth_lm::Error| e.to_string())?;
            (c.n_layer, c.n_head, c.n_embd) = (n_layer, n_head, n_embd);
            // nanoGPT's recipe scaled to the run: decay to a tenth, warm up over a tenth.
            c.min_lr = s.lr / 10.0;
            c.warmup = (s.steps / 10).min(100);
            c
        }
    };
    c.data.context = s.context;
    c.data.stride = s.context;
    c.data.packing = s.packing;
    c.batch_size = s.batch_size;
    c.steps = s.steps;
    c.epochs = (s.epochs > 0.0).then_some(s.epochs);
    c.lr = s.lr;
    let a = &s.advanced;
    c.warmup = a.warmup.unwrap_or(c.warmup);
    c.min_lr = a.min_lr.unwrap_or(c.min_lr.min(c.lr));
    c.adamw.weight_decay = a.weight_decay.unwrap_or(c.adamw.weight_decay);
    c.dropout = a.dropout.unwrap_or(c.dropout);
    c.grad_clip = a.grad_clip.unwrap_or(c.grad_clip);
    // By default about twenty points on the validation curve, each cheap enough not to stall
    // the run.
    c.eval_every = if s.eval_every == 0 { (s.steps / 20).clamp(10, 250) } else { s.eval_every };
    c.eval_batches = 4;
    c.sample_tokens = 32;
    c.seed = s.seed;
    c.probe = s.probe.trim().to_string();
    if let Some(epochs) = c.epochs {
        TrainConfig::steps_for_epochs(epochs, 1, 1).map_err(|e| e.to_string())?;
    }
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// A new run's trainer on `device`: random weights, or the pretrained model the settings name
/// (whose architecture the settings then take).
pub(super) async fn build(
    settings: &mut TrainSettings,
    corpus: &Corpus,
    device: &Device,
    budget: Budget,
) -> Result<Trainer, String> {
    if settings.start_from.pretrained() {
        let source = source(settings.start_from).await?;
        let model = ModelConfig::from_json(&source.files.config_json).map_err(|e| e.to_string())?;
        settings.arch = match model {
            ModelConfig::Gpt2(_) => TrainArch::Gpt2,
            ModelConfig::Bert(_) => TrainArch::Bert,
        };
        let config = train_config(settings, Some((model, source.name)))?;
        Trainer::fine_tune_within(
            config,
            &source.files.model_safetensors,
            source.tokenizer,
            corpus,
            device,
            budget,
        )
        .map_err(|e| e.to_string())
    } else {
        let config = train_config(settings, None)?;
        Trainer::new_within(config, corpus, device, budget).map_err(|e| e.to_string())
    }
}

thread_local! {
    /// A run is being set up (choosing its backend can take seconds of timed steps).
    static STARTING: Cell<bool> = const { Cell::new(false) };
}

/// Clears [`STARTING`] however `start` returns.
struct Starting;

impl Drop for Starting {
    fn drop(&mut self) {
        STARTING.with(|s| s.set(false));
    }
}

pub async fn start(settings: TrainSettings) {
    if let Some(run) = state::run() {
        if matches!(run.state.get(), RunState::Running | RunState::Preparing) {
            return emit_error(TOPIC, "a run is in progress: pause or stop it before starting another");
        }
    }
    if STARTING.with(|s| s.replace(true)) {
        return emit_error(TOPIC, "a run is already starting");
    }
    let _starting = Starting;
    let Some(corpus) = state::corpus() else {
        return emit_error(TOPIC, "load a corpus first (a file, or the sample)");
    };
    let Some(compute) = state::compute(TOPIC) else { return };
    let mut settings = settings;
    // Random weights with GPT-2's or BERT's vocabulary: its file, before the device is measured
    // on a step of the run.
    if settings.start_from == StartFrom::Random {
        if let Err(e) = builtins::ensure(&settings.tokenizer.to_string(), TOPIC).await {
            return emit_error(TOPIC, e);
        }
    }
    // Where it trains: WebGPU, the CPU backend, or (on a software adapter) the faster of the two.
    let trains_on = match train_device::resolve(&compute, &mut settings, &corpus.corpus).await {
        Ok(choice) => choice,
        Err(e) => return emit_error(TOPIC, e),
    };
    emit(&Event::Progress {
        topic: TOPIC,
        label: "tokenizing the corpus and building the model".into(),
        done: 0,
        total: 0,
    });
    yield_now().await;
    let mut trainer = match build(&mut settings, &corpus.corpus, &trains_on.device, trains_on.budget).await {
        Ok(t) => t,
        Err(e) => return emit_error(TOPIC, e),
    };
    let stats = trainer.stats();
    emit(&Event::Notice {
        topic: TOPIC,
        message: format!(
            "{} {} document{}, {} tokens (vocabulary {}): {} train / {} validation; {} rows of {} tokens ({}), {} tokens in no row",
            trains_on.note,
            stats.documents,
            if stats.documents == 1 { "" } else { "s" },
            stats.tokens,
            stats.vocab_size,
            stats.train_tokens,
            stats.val_tokens,
            stats.train_windows,
            trainer.config().data.context,
            trainer.config().data.packing,
            stats.dropped_tokens
        ),
    });
    // A fine-tune's curve starts at the pretrained model's loss on this text.
    if trainer.config().init_from.is_some() {
        if let Err(e) = trainer.evaluate().await {
            return emit_error(TOPIC, format!("evaluating the pretrained model failed: {e}"));
        }
    }
    // Named by its place among the runs, counted before the run it replaces moves to the table
    // (where it stays with its last checkpoint).
    let name = format!("run {}", runs_count().await + 1);
    archive_current().await;
    let id = js_sys::Date::now() as u64;
    let run = Rc::new(Run::new(trainer, settings, corpus, Vec::new(), id, name));
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
        let started = now_ms();
        let report = trainer.step().await;
        trainer.add_train_seconds((now_ms() - started) / 1000.0);
        run.train_seconds.set(trainer.train_seconds());
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                // The trainer kept its last good state; the user can lower the rate and go on.
                run.state.set(RunState::Paused);
                emit_error(TOPIC, e.to_string());
                break;
            }
        };
        run.step.set(report.step);
        run.epoch.set(report.epoch);
        run.tokens_seen.set(trainer.tokens_seen());
        run.speed.borrow_mut().record(now_ms(), report.tokens);
        let point =
            LossPoint { step: report.step, tokens: trainer.tokens_seen(), loss: report.loss, lr: report.lr };
        run.losses.borrow_mut().push(point.clone());
        emit(&Event::TrainLoss(point));
        let eval_due = trainer.eval_due();
        if eval_due {
            match trainer.evaluate().await {
                Ok(report) => {
                    // The trainer thins old probes out of a long run; the panel's copy follows.
                    *run.evals.borrow_mut() = trainer.history().iter().map(eval_point).collect();
                    emit(&Event::TrainEval(eval_point(&report)));
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
#[derive(Clone, Serialize, Deserialize)]
struct SavedRun {
    /// The run's key in the runs table (0 in checkpoints saved before the table existed).
    #[serde(default)]
    id: u64,
    #[serde(default)]
    name: String,
    /// The corpus is kept as JSON lines (several documents) rather than text.
    #[serde(default)]
    corpus_jsonl: bool,
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

/// Writes the switch: from now on `meta` is the checkpoint a reload restores.
async fn put_meta(meta: &SavedRun) -> Result<(), String> {
    let switch = serde_json::to_vec(meta).map_err(|e| e.to_string())?;
    storage::put(&storage::local_key(META), &switch).await
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
        // Unique across runs: a kept run's files stay under their generation.
        let after = previous.as_ref().and_then(|m| m.generation).map_or(1, |g| g + 1);
        let generation = after.max(js_sys::Date::now() as u64);
        // The switch may still point at the run this one replaced (kept in the runs table):
        // its files are not this run's to delete.
        let previous = previous.filter(|m| m.id == run.id || m.id == 0);
        let meta = SavedRun {
            id: run.id,
            name: run.name.borrow().clone(),
            corpus_jsonl: run.corpus.jsonl,
            settings: run.settings.clone(),
            corpus_name: run.corpus.name.clone(),
            files: checkpoint.files.iter().map(|(n, _)| n.clone()).collect(),
            losses: run.losses.borrow().clone(),
            generation: Some(generation),
            corpus_key: Some(corpus_key(&run.corpus.bytes)),
        };
        // The runs table, read once: whose corpus is still in use.
        let kept = kept_runs().await;
        let new_corpus = !corpus_in_use(&meta.corpus(), previous.as_ref(), &kept);
        let written = async {
            for (name, bytes) in &checkpoint.files {
                storage::put(&file_key(Some(generation), name), bytes).await?;
            }
            if new_corpus {
                storage::put(&meta.corpus(), &run.corpus.bytes).await?;
            }
            put_meta(&meta).await
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
            if !corpus_in_use(&previous.corpus(), Some(&meta), &kept) {
                let _ = storage::delete(&previous.corpus()).await;
            }
        }
        Ok::<_, String>(())
    }
    .await;
    match result {
        Ok(()) => {
            run.saved_step.set(Some(run.step.get()));
            list_runs().await;
        }
        Err(e) => emit_error(TOPIC, format!("the checkpoint could not be saved in browser storage: {e}")),
    }
}

/// Restores the run saved in browser storage, paused, with its curves.
pub async fn restore_saved() {
    let result = async {
        let Some(meta) = saved_meta().await? else { return Ok(None) };
        let bytes = storage::get(&meta.corpus()).await?.ok_or("the saved run's corpus is missing")?;
        let file = CorpusFile::stored(meta.corpus_name.clone(), bytes, meta.corpus_jsonl)?;
        let checkpoint = read_checkpoint(&meta).await?;
        let compute = state::compute(TOPIC).ok_or("no device")?;
        // On the backend the run was training on (its settings keep what "automatic" chose).
        let trains_on = train_device::saved(&compute, meta.settings.device);
        let trainer = Trainer::resume_within(&checkpoint, &file.corpus, &trains_on.device, trains_on.budget)
            .map_err(|e| e.to_string())?;
        let file = Rc::new(file);
        emit(&Event::CorpusLoaded(corpus_info(&file.name, &file.corpus, file.bytes.len())));
        state::set_corpus(file.clone());
        // Checkpoints from before the runs table get an id and a name now.
        let id = if meta.id == 0 { js_sys::Date::now() as u64 } else { meta.id };
        let name = if meta.name.is_empty() { "run 1".to_string() } else { meta.name.clone() };
        let run = Rc::new(Run::new(trainer, meta.settings, file, meta.losses, id, name));
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

async fn read_checkpoint(meta: &SavedRun) -> Result<Checkpoint, String> {
    let mut checkpoint = Checkpoint::default();
    for name in &meta.files {
        let data = storage::get(&file_key(meta.generation, name))
            .await?
            .ok_or_else(|| format!("the saved {name} is missing"))?;
        checkpoint.files.push((name.clone(), data));
    }
    Ok(checkpoint)
}

/// A run kept in the runs table: its row, and the switch of its last checkpoint.
#[derive(Clone, Serialize, Deserialize)]
struct KeptRun {
    summary: RunSummary,
    meta: SavedRun,
}

const RUNS: &str = "runs/index.json";

async fn kept_runs() -> Vec<KeptRun> {
    match storage::get(&storage::local_key(RUNS)).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
        _ => Vec::new(),
    }
}

async fn put_kept_runs(runs: &[KeptRun]) -> Result<(), String> {
    let bytes = serde_json::to_vec(runs).map_err(|e| e.to_string())?;
    storage::put(&storage::local_key(RUNS), &bytes).await
}

async fn runs_count() -> usize {
    kept_runs().await.len() + usize::from(state::run().is_some())
}

/// Whether a corpus key is used by a kept run or by `other`.
fn corpus_in_use(key: &str, other: Option<&SavedRun>, kept: &[KeptRun]) -> bool {
    other.is_some_and(|m| m.corpus() == key) || kept.iter().any(|k| k.meta.corpus() == key)
}

/// Moves the run in the panel (and its saved checkpoint) into the runs table before a new run
/// takes the panel. Its checkpoint files stay where they are.
async fn archive_current() {
    let Some(run) = state::run() else { return };
    let Ok(Some(meta)) = saved_meta().await else { return };
    if meta.id != run.id && meta.id != 0 {
        return;
    }
    let mut summary = run.summary();
    summary.current = false;
    let mut runs = kept_runs().await;
    runs.retain(|k| k.summary.id != summary.id);
    runs.insert(0, KeptRun { summary, meta });
    if let Err(e) = put_kept_runs(&runs).await {
        emit_error(TOPIC, format!("the previous run could not be kept in the runs table: {e}"));
    }
}

/// The runs table: the run in the panel first, then the kept ones, newest first.
pub async fn list_runs() {
    let mut rows: Vec<RunSummary> = state::run().map(|r| r.summary()).into_iter().collect();
    rows.extend(kept_runs().await.into_iter().map(|k| k.summary));
    emit(&Event::Runs(rows));
}

pub async fn rename_run(id: u64, name: String) {
    let name = name.trim().chars().take(80).collect::<String>();
    if name.is_empty() {
        return emit_error(TOPIC, "a run's name cannot be empty");
    }
    match state::run().filter(|r| r.id == id) {
        Some(run) => {
            *run.name.borrow_mut() = name.clone();
            // Only the switch carries the name: the checkpoint's files stay as they are.
            if let Ok(Some(mut meta)) = saved_meta().await {
                if meta.id == id {
                    meta.name = name;
                    if let Err(e) = put_meta(&meta).await {
                        return emit_error(TOPIC, e);
                    }
                }
            }
        }
        None => {
            let mut runs = kept_runs().await;
            for k in runs.iter_mut().filter(|k| k.summary.id == id) {
                k.summary.name = name.clone();
                k.meta.name = name.clone();
            }
            if let Err(e) = put_kept_runs(&runs).await {
                return emit_error(TOPIC, e);
            }
        }
    }
    list_runs().await;
}

pub async fn delete_run(id: u64) {
    if state::run().is_some_and(|r| r.id == id) {
        return emit_error(TOPIC, "the run in the panel cannot be deleted; start another run first");
    }
    let mut runs = kept_runs().await;
    let Some(at) = runs.iter().position(|k| k.summary.id == id) else { return list_runs().await };
    let gone = runs.remove(at);
    if let Err(e) = put_kept_runs(&runs).await {
        return emit_error(TOPIC, e);
    }
    for key in gone.meta.keys() {
        let _ = storage::delete(&key).await;
    }
    let current = saved_meta().await.ok().flatten();
    if !corpus_in_use(&gone.meta.corpus(), current.as_ref(), &runs) {
        let _ = storage::delete(&gone.meta.corpus()).await;
    }
    list_runs().await;
}

/// A kept run's last checkpoint as a zip (the run in the panel downloads with `download`).
pub async fn download_run(id: u64) {
    if state::run().is_some_and(|r| r.id == id) {
        return download().await;
    }
    let kept = kept_runs().await.into_iter().find(|k| k.summary.id == id);
    let Some(kept) = kept else { return emit_error(TOPIC, "that run is no longer kept") };
    let checkpoint = read_checkpoint(&kept.meta).await;
    emit_zip(kept.summary.settings.arch, kept.summary.step, checkpoint);
}

/// A checkpoint offered as `hearth-<arch>-step<N>.zip`.
fn emit_zip(arch: TrainArch, step: usize, checkpoint: Result<Checkpoint, String>) {
    let dir = format!("hearth-{}-step{step}", arch.as_str());
    match checkpoint.and_then(|c| zip_stored(&dir, &c.files)) {
        Ok(zip) => emit_bytes(&Event::Download { name: format!("{dir}.zip") }, &zip),
        Err(e) => emit_error(TOPIC, e),
    }
}

/// The run as a zip: the Hugging Face directory plus what resuming needs.
pub async fn download() {
    let Some(run) = state::run() else { return emit_error(TOPIC, "nothing has been trained yet") };
    let checkpoint = run.checkpoint().await;
    emit_zip(run.settings.arch, run.step.get(), checkpoint);
}
