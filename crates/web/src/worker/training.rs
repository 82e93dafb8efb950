//! Pretraining in the browser: the run's loop, its controls, automatic checkpoints in browser
//! storage (so a reload resumes), and the Hugging Face zip download.

use std::cell::Cell;
use std::rc::Rc;

use burn::tensor::Device;
use hearth_lm::io::hf::export_model;
use hearth_lm::model::memory::Budget;
use hearth_lm::train::{corpus_of_files, Corpus};
use hearth_lm::train::{size_preset, Arch, SourceFiles, TrainConfig, Trainer};
use hearth_lm::{HfFiles, ModelConfig, Tokenizer};
use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};

use super::builtins;
use super::run::{eval_point, CorpusFile, Run};
use super::runs::{self, Access, Saved};
use super::{emit, emit_error, now_ms, owner, read_file, state, train_device, yield_now};
use crate::protocol::{
    CorpusInfo, Event, LossPoint, RunState, Slot, StartFrom, Topic, TrainAction, TrainArch, TrainSettings,
};

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

/// What a run passes on of the model it was fine-tuned from (nothing for random weights).
pub(super) fn run_source_files(trainer: &Trainer) -> SourceFiles {
    trainer.config().init_from.as_ref().map(|i| i.files.clone()).unwrap_or_default()
}

/// The pretrained model a fine-tune starts from: its files, tokenizer and a name to show.
struct Source {
    files: HfFiles,
    tokenizer: Tokenizer,
    name: String,
    /// Its chat template and generation config, which the run passes on.
    source_files: SourceFiles,
}

/// The model a fine-tune starts from, exported for the run. The run's memory (weights,
/// gradients, moments, activations, checkpoint files) is checked first: the export is itself a
/// copy of the weights, and a model too large to fine-tune here is refused before it is made.
async fn source(from: StartFrom, settings: &TrainSettings, budget: Budget) -> Result<Source, String> {
    let loaded = |slot: Slot, panel: &str| {
        state::model(slot).ok_or_else(|| format!("load a model in the {panel} panel first"))
    };
    let fits = |model: ModelConfig, tokenizer: &Tokenizer| {
        let config = train_config(settings, Some((model, String::new())))?;
        config.check_memory(tokenizer, budget).map(|_| ()).map_err(|e| e.to_string())
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
            fits(m.model.config(), &m.tokenizer)?;
            let files = export_model(&m.model, Some(&m.tokenizer)).await.map_err(|e| e.to_string())?;
            Ok(Source {
                files,
                tokenizer: m.tokenizer.clone(),
                name: m.info.source.clone(),
                source_files: m.source_files.clone(),
            })
        }
        StartFrom::Trained => {
            let run = state::run().ok_or("nothing has been trained here yet")?;
            let (model, source_files) = {
                let trainer = run.trainer.lock().await;
                (trainer.model().config(), run_source_files(&trainer))
            };
            fits(model, &run.tokenizer())?;
            let files = run.export().await?;
            Ok(Source {
                files,
                tokenizer: (*run.tokenizer()).clone(),
                name: format!("the model trained here (step {})", run.step()),
                source_files,
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
    let model_is_random = model.is_none();
    let mut c = match model {
        Some((model, name)) => TrainConfig::fine_tune(model, name),
        None => {
            let arch = match s.arch {
                TrainArch::Gpt2 => Arch::Gpt2,
                TrainArch::Llama => Arch::Llama,
                TrainArch::Bert => Arch::Bert,
                TrainArch::ModernBert => Arch::ModernBert,
            };
            let (n_layer, n_head, n_embd) = size_preset(s.size.as_str()).map_err(|e| e.to_string())?;
            let mut c = TrainConfig::nano(arch);
            // Both spell tokenizers as `hearth train --tokenizer` does.
            c.tokenizer = s.tokenizer.to_string().parse().map_err(|e: hearth_lm::Error| e.to_string())?;
            (c.n_layer, c.n_head, c.n_embd) = (n_layer, n_head, n_embd);
            // Grouped-query attention: two query heads per key/value head where the heads pair up.
            c.llama.n_kv_head = Some(if n_head.is_multiple_of(2) { n_head / 2 } else { n_head });
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
    if model_is_random && c.arch == Arch::Llama {
        c.llama.n_kv_head = a.kv_heads.or(c.llama.n_kv_head);
        c.llama.rope_theta = a.rope_theta.unwrap_or(c.llama.rope_theta);
        c.llama.tie_embeddings = !a.untie_embeddings;
    }
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
        let source = source(settings.start_from, settings, budget).await?;
        let model = ModelConfig::from_json(&source.files.config_json).map_err(|e| e.to_string())?;
        settings.arch = match model {
            ModelConfig::Gpt2(_) => TrainArch::Gpt2,
            ModelConfig::Llama(_) => TrainArch::Llama,
            ModelConfig::Bert(_) => TrainArch::Bert,
            ModelConfig::ModernBert(_) => TrainArch::ModernBert,
        };
        let mut config = train_config(settings, Some((model, source.name)))?;
        if let Some(init) = config.init_from.as_mut() {
            init.files = source.source_files;
        }
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

/// `ticket` holds the device queue while the run is built (and a fine-tune evaluated first); the
/// run's steps then share the device with the panels.
pub async fn start(settings: TrainSettings, ticket: Option<super::activity::Ticket>) {
    if !owner::is_owner() {
        return emit_error(TOPIC, owner::NOT_OWNER);
    }
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
    let count = runs::kept_runs().await.map_or(0, |k| k.len()) + usize::from(state::run().is_some());
    let name = format!("run {}", count + 1);
    // The run in the panel (or a saved run that could not be restored) must be kept first; if it
    // cannot be, the new run does not start and the old one stays where it is.
    if let Err(e) = runs::keep_current().await {
        return emit_error(
            TOPIC,
            format!(
                "the new run did not start: the run saved here could not be kept in the runs table ({e}). \
                 It is unchanged; free browser storage (Device panel) or download it, then press Start again"
            ),
        );
    }
    let id = js_sys::Date::now() as u64;
    let run = Rc::new(Run::new(trainer, settings, corpus, Vec::new(), id, name));
    run.state.set(RunState::Running);
    state::set_run(run.clone());
    run.emit_history();
    run.emit_status();
    drop(ticket);
    drive(run).await;
}

pub async fn control(action: TrainAction) {
    let Some(run) = state::run() else { return emit_error(TOPIC, "there is no run to control") };
    match (action, run.state.get()) {
        (TrainAction::Pause, RunState::Running) => {
            announce_final_save(&run);
            run.state.set(RunState::Paused);
        }
        (TrainAction::Stop, RunState::Running | RunState::Paused) => {
            announce_final_save(&run);
            run.state.set(RunState::Stopped);
            run.emit_status();
        }
        (TrainAction::Resume, RunState::Paused | RunState::Stopped) => {
            if !owner::is_owner() {
                return emit_error(TOPIC, owner::NOT_OWNER);
            }
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
    if !owner::is_owner() {
        return emit_error(TOPIC, owner::NOT_OWNER);
    }
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
            announce_final_save(&run);
            run.state.set(RunState::Done);
        }
        drop(trainer);
        run.emit_status();
        if eval_due && run.state.get() == RunState::Running {
            runs::save(&run).await;
            // Saving took time that was not training.
            run.speed.borrow_mut().restart();
        }
        yield_now().await;
    }
    run.driving.set(false);
    runs::save(&run).await;
    run.emit_status();
    // Released after the save and the status, so the page sees "saving" end only now.
    run.final_save.take();
}

/// The training loop saves when it sees the run stop or pause: the page hears of that save
/// before it hears the new state (Start stays disabled until the save ends).
fn announce_final_save(run: &Run) {
    if run.driving.get() && run.final_save.borrow().is_none() {
        *run.final_save.borrow_mut() = Some(runs::Pending::new("saving the checkpoint"));
    }
}

/// The runs were just granted to this tab (at start, or taken over from another tab, or left
/// by one that closed): tidy storage, restore the saved run, list the table.
pub async fn took_runs() {
    runs::sweep().await;
    restore_saved(false).await;
    runs::list_runs().await;
    emit(&Event::RunsTaken);
}

/// Another tab took the runs: a run training here stops (what it trained since its last save
/// is not written; the other tab restores that save).
pub fn lost_runs() {
    if let Some(run) = state::run() {
        if matches!(run.state.get(), RunState::Running | RunState::Preparing) {
            run.state.set(RunState::Paused);
            run.emit_status();
        }
    }
}

/// Restores the run saved in browser storage, paused, with its curves. A run whose restore took
/// the worker down twice is not restored by itself (safe mode) unless `force`.
pub async fn restore_saved(force: bool) {
    let result = async {
        let _t = runs::begin("restoring the saved run", Access::Write).await?;
        let (meta, corpus, checkpoint) = match runs::begin_restore(force).await? {
            Saved::Nothing => return Ok(None),
            Saved::SafeMode { name, step, attempts } => {
                emit(&Event::SafeMode { name, step, attempts });
                return Ok(None);
            }
            Saved::Found { meta, corpus, checkpoint } => (*meta, corpus, checkpoint),
        };
        let restored = async {
            let file = CorpusFile::stored(meta.corpus_name.clone(), corpus, meta.corpus_jsonl)?;
            let compute = state::compute(TOPIC).ok_or("no device")?;
            // On the backend the run was training on (its settings keep what "automatic" chose).
            let trains_on = train_device::saved(&compute, meta.settings.device);
            let trainer =
                Trainer::resume_within(&checkpoint, &file.corpus, &trains_on.device, trains_on.budget)
                    .map_err(|e| e.to_string())?;
            Ok::<_, String>((file, trainer))
        }
        .await;
        // Restored or refused with a message: either way the worker is still here.
        runs::restore_ended().await;
        let (file, trainer) = restored?;
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
        Err(e) => emit_error(
            TOPIC,
            format!("could not restore the saved run: {e}. It stays in browser storage; Start keeps it in the runs table"),
        ),
    }
}

/// A kept run's last checkpoint as a zip; the run in the panel's from memory.
pub async fn download_run(id: u64) {
    if state::run().is_some_and(|r| r.id == id) {
        return download().await;
    }
    runs::download_run(id).await;
}

/// A run handed to Hugging Face Trainer, as a zip of `hearth handoff`'s directory; the run in the
/// panel's from memory, a kept one's from browser storage.
pub async fn handoff_run(id: u64) {
    if let Some(run) = state::run().filter(|r| r.id == id) {
        let files = {
            let trainer = run.trainer.lock().await;
            trainer.handoff(trainer.config().steps).await.map_err(|e| e.to_string())
        };
        return runs::emit_handoff(run.settings.arch, run.step.get(), files);
    }
    runs::handoff_run(id).await;
}

/// The run as a zip: the Hugging Face directory plus what resuming needs.
pub async fn download() {
    let Some(run) = state::run() else { return emit_error(TOPIC, "nothing has been trained yet") };
    let checkpoint = run.checkpoint().await;
    runs::emit_zip(run.settings.arch, run.step.get(), checkpoint);
}
