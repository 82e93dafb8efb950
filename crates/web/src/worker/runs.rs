//! The runs in browser storage, one transaction at a time.
//!
//! The run in the panel has a switch, `run/meta.json`, naming the generation of files that is
//! its checkpoint; the runs table, `runs/index.json`, keeps the switches of earlier runs; corpora
//! are stored once by content. Every transaction on them — save, keep (before Start), rename,
//! delete, download, restore, sweep, clear — goes through one queue, so none interleaves with
//! another: a save that switched generations while Start archived the previous one, or a rename
//! rewriting the switch during a save, lost or orphaned runs (issue 31). Only the tab that owns
//! the runs (`owner.rs`) writes.
//!
//! The invariants: a switch is replaced only by a save of its own run or once its run is in the
//! table; a generation is deleted only after the switch moved off it; a corpus only when
//! neither the switch nor a kept run uses it; an unreadable table is an error, never an empty
//! table that the next write would replace.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;

use futures::lock::{Mutex, OwnedMutexGuard};
use hearth_lm::io::checkpoint::Checkpoint;
use serde::{Deserialize, Serialize};

use super::run::Run;
use super::{emit, emit_bytes, emit_error, owner, state, storage};
use crate::protocol::{Event, LossPoint, RunSummary, Topic, TrainArch, TrainSettings};
use crate::units::human_bytes;
use hearth_lm::io::zip::zip_stored;

const TOPIC: Topic = Topic::Pretrain;

thread_local! {
    static QUEUE: Arc<Mutex<()>> = Arc::new(Mutex::new(()));
    /// Transactions waiting or in flight: the page shows "saving…" while there are any.
    static PENDING: Cell<usize> = const { Cell::new(0) };
    /// Test hook (`?test-hooks=crash-restore`): restoring traps the worker.
    static CRASH_RESTORE: Cell<bool> = const { Cell::new(false) };
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Reads only: allowed in a tab that does not own the runs.
    Read,
    Write,
}

/// Counts a transaction from the moment it is asked for, so the page shows at once that it
/// waits; the page is told when the last one ends.
pub(super) struct Pending;

impl Pending {
    pub(super) fn new(what: &str) -> Self {
        PENDING.with(|p| p.set(p.get() + 1));
        emit(&Event::Storage { busy: Some(what.to_string()) });
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let left = PENDING.with(|p| {
            p.set(p.get().saturating_sub(1));
            p.get()
        });
        if left == 0 {
            emit(&Event::Storage { busy: None });
        }
    }
}

/// A transaction in flight: the queue is held until it is dropped.
pub(super) struct Transaction {
    _guard: OwnedMutexGuard<()>,
    _pending: Pending,
    access: Access,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.access == Access::Write && owner::is_owner() {
            owner::announce();
        }
    }
}

/// Waits for the transaction in flight, then holds the queue. A write is refused in a tab that
/// does not own the runs.
pub(super) async fn begin(what: &str, access: Access) -> Result<Transaction, String> {
    let pending = Pending::new(what);
    let guard = QUEUE.with(Arc::clone).lock_owned().await;
    if access == Access::Write {
        still_owner()?;
    }
    emit(&Event::Storage { busy: Some(what.to_string()) });
    Ok(Transaction { _guard: guard, _pending: pending, access })
}

/// Checked before each write of a transaction: another tab may take the runs between two awaits.
fn still_owner() -> Result<(), String> {
    if owner::is_owner() {
        Ok(())
    } else {
        Err(owner::NOT_OWNER.into())
    }
}

pub(super) fn set_crash_restore(on: bool) {
    CRASH_RESTORE.with(|c| c.set(on));
}

/// What sits beside the checkpoint files in storage: the switch that says which generation of
/// files is the checkpoint.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct SavedRun {
    /// The run's key in the runs table (0 in checkpoints saved before the table existed).
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub name: String,
    /// The corpus is kept as JSON lines (several documents) rather than text.
    #[serde(default)]
    pub corpus_jsonl: bool,
    pub settings: TrainSettings,
    pub corpus_name: String,
    pub files: Vec<String>,
    pub losses: Vec<LossPoint>,
    /// The generation the files are stored under. Absent in checkpoints saved before
    /// generations existed, whose files sit directly under `run/`.
    #[serde(default)]
    pub generation: Option<u64>,
    /// Where the corpus is stored (by content, so a save rewrites it only for a new corpus).
    #[serde(default)]
    pub corpus_key: Option<String>,
    /// The run's row as of this save: what the table shows if the run is kept without being
    /// loaded (it could not be restored, or was set aside). Absent in older checkpoints.
    #[serde(default)]
    pub summary: Option<RunSummary>,
}

const META: &str = "run/meta.json";
/// The corpus of checkpoints saved before generations existed.
const LEGACY_CORPUS: &str = "run/corpus.txt";
const RUNS: &str = "runs/index.json";
/// Safe mode's marker: written before a restore, removed after it ends (well or with an error).
/// Found at start, it says the last restore took the worker down.
const RESTORING: &str = "run/restoring.json";
/// Restores that may crash the worker before the saved run is no longer restored by itself.
const CRASHES: u32 = 2;

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
    pub fn corpus(&self) -> String {
        self.corpus_key.clone().unwrap_or_else(|| storage::local_key(LEGACY_CORPUS))
    }

    fn keys(&self) -> Vec<String> {
        self.files.iter().map(|n| file_key(self.generation, n)).collect()
    }

    /// Its row in the runs table when the run is not loaded.
    fn summary(&self) -> RunSummary {
        let mut summary = self.summary.clone().unwrap_or_else(|| {
            let last = self.losses.last();
            RunSummary {
                id: self.id,
                name: String::new(),
                start: "–".into(),
                settings: self.settings.clone(),
                corpus_name: self.corpus_name.clone(),
                step: last.map_or(0, |p| p.step),
                total_steps: self.settings.steps,
                params: 0,
                train_loss: last.map(|p| p.loss),
                val_loss: None,
                tokens_per_s: 0.0,
                seconds: 0.0,
                evals: Vec::new(),
                current: false,
            }
        });
        summary.id = self.id;
        summary.name = if self.name.is_empty() { "saved run".into() } else { self.name.clone() };
        summary.current = false;
        summary
    }
}

/// The checkpoint the switch points at now, if any. Unreadable is an error.
pub(super) async fn saved_meta() -> Result<Option<SavedRun>, String> {
    let Some(meta) = storage::get(&storage::local_key(META)).await? else { return Ok(None) };
    serde_json::from_slice(&meta).map(Some).map_err(|e| {
        format!(
            "the saved run's record (run/meta.json) is unreadable ({}); it cannot be restored",
            excerpt(&e)
        )
    })
}

/// Writes the switch: from now on `meta` is the checkpoint a reload restores.
async fn put_meta(meta: &SavedRun) -> Result<(), String> {
    still_owner()?;
    let switch = serde_json::to_vec(meta).map_err(|e| e.to_string())?;
    storage::put(&storage::local_key(META), &switch).await
}

/// A run kept in the runs table: its row, and the switch of its last checkpoint.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct KeptRun {
    pub summary: RunSummary,
    pub meta: SavedRun,
}

/// The runs table. Unreadable is an error: an empty table in its place would be written over it.
pub(super) async fn kept_runs() -> Result<Vec<KeptRun>, String> {
    match storage::get(&storage::local_key(RUNS)).await? {
        None => Ok(Vec::new()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("the runs table in browser storage is unreadable ({})", excerpt(&e))),
    }
}

async fn put_kept_runs(runs: &[KeptRun]) -> Result<(), String> {
    still_owner()?;
    let bytes = serde_json::to_vec(runs).map_err(|e| e.to_string())?;
    storage::put(&storage::local_key(RUNS), &bytes).await
}

/// A parse error quotes what it read: at most a line of it.
fn excerpt(e: &serde_json::Error) -> String {
    e.to_string().chars().take(200).collect()
}

/// Whether a corpus key is used by the switch or by a kept run. With the table unreadable
/// (`None`) every corpus is taken to be in use.
fn corpus_in_use(key: &str, switch: Option<&SavedRun>, kept: Option<&[KeptRun]>) -> bool {
    switch.is_some_and(|m| m.corpus() == key)
        || kept.is_none_or(|kept| kept.iter().any(|k| k.meta.corpus() == key))
}

/// Saves the run in the panel (its autosave, and the save when it pauses, stops or finishes).
/// In a tab that no longer owns the runs nothing is written: the owner has its own checkpoint.
pub(super) async fn save(run: &Run) {
    let result = async {
        let _t = begin("saving the checkpoint", Access::Write).await?;
        let step = save_locked(run).await?;
        // The page hears of the saved step before "saving" ends, so Start, enabled by the
        // end, never meets the previous saved step.
        run.saved_step.set(Some(step));
        run.emit_status();
        Ok::<_, String>(step)
    }
    .await;
    match result {
        Ok(_) => list_runs().await,
        Err(e) if !owner::is_owner() => {
            emit(&Event::Notice { topic: TOPIC, message: format!("not saved here: {e}") });
        }
        Err(e) => emit_error(TOPIC, format!("the checkpoint could not be saved in browser storage: {e}")),
    }
}

/// The save itself, inside a transaction: the files go under a new generation, then one write
/// of the switch moves to it, then the previous generation is deleted. A failure before the
/// switch (a full quota, a closed tab) leaves the previous checkpoint whole and still the one a
/// reload restores. Returns the step saved.
async fn save_locked(run: &Run) -> Result<usize, String> {
    let step = run.step.get();
    let checkpoint = run.checkpoint().await?;
    // An unreadable switch cannot be restored: the new generation replaces it (its files are
    // swept at the next start).
    let previous = saved_meta().await.ok().flatten();
    let mut table = kept_runs().await;
    // Unique across runs: a kept run's files stay under their generation.
    let after = previous.as_ref().and_then(|m| m.generation).map_or(1, |g| g + 1);
    let generation = after.max(js_sys::Date::now() as u64);
    let own = |m: &SavedRun| m.id == run.id || m.id == 0;
    // The switch of another run (one that could not be restored, say) is replaced only once
    // its run is in the table.
    if let Some(other) = previous.as_ref().filter(|&m| !own(m)) {
        let table = table.as_mut().map_err(|e| format!("{e}; the saved run it would replace is kept"))?;
        if !table.iter().any(|k| k.summary.id == other.id) {
            table.insert(0, KeptRun { summary: other.summary(), meta: other.clone() });
            put_kept_runs(table).await?;
        }
    }
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
        summary: Some(RunSummary { current: false, ..run.summary() }),
    };
    let table = table.as_deref().ok();
    let new_corpus = !corpus_in_use(&meta.corpus(), previous.as_ref(), table);
    let written = async {
        for (name, bytes) in &checkpoint.files {
            still_owner()?;
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
    if let Some(previous) = previous.filter(own) {
        for key in previous.keys() {
            let _ = storage::delete(&key).await;
        }
        if !corpus_in_use(&previous.corpus(), Some(&meta), table) {
            let _ = storage::delete(&previous.corpus()).await;
        }
    }
    Ok(step)
}

/// Before a new run takes the panel: the run there (saved first if it has unsaved steps), or a
/// saved run that could not be restored, moves to the runs table. An error means it could not be
/// kept, and the new run must not start.
pub(super) async fn keep_current() -> Result<(), String> {
    let current = state::run();
    let _t = begin("keeping the current run in the runs table", Access::Write).await?;
    if let Some(run) = &current {
        if run.step.get() > 0 && run.saved_step.get() != Some(run.step.get()) {
            let step = save_locked(run).await?;
            run.saved_step.set(Some(step));
        }
    }
    let Some(mut meta) = saved_meta().await? else { return Ok(()) };
    let mut runs = kept_runs().await?;
    let summary = match current.filter(|r| meta.id == r.id || meta.id == 0) {
        Some(run) => {
            if meta.id == 0 {
                // A checkpoint from before the table: it gets the run's id, in the switch too,
                // so the next save does not take it for its own.
                meta.id = run.id;
                put_meta(&meta).await?;
            }
            RunSummary { current: false, ..run.summary() }
        }
        None if runs.iter().any(|k| k.summary.id == meta.id) => return Ok(()),
        None => meta.summary(),
    };
    runs.retain(|k| k.summary.id != summary.id);
    runs.insert(0, KeptRun { summary, meta });
    put_kept_runs(&runs).await
}

/// The runs table: the run in the panel first, then the kept ones, newest first.
pub(super) async fn list_runs() {
    let mut rows: Vec<RunSummary> = state::run().map(|r| r.summary()).into_iter().collect();
    let current = rows.first().map(|r| r.id);
    match kept_runs().await {
        Ok(kept) => rows.extend(kept.into_iter().map(|k| k.summary).filter(|k| Some(k.id) != current)),
        Err(e) => {
            emit_error(TOPIC, format!("{e}: the kept runs are not shown; nothing is written over them"))
        }
    }
    emit(&Event::Runs(rows));
}

pub(super) async fn rename_run(id: u64, name: String) {
    let name = name.trim().chars().take(80).collect::<String>();
    if name.is_empty() {
        return emit_error(TOPIC, "a run's name cannot be empty");
    }
    let result = async {
        let _t = begin("renaming the run", Access::Write).await?;
        match state::run().filter(|r| r.id == id) {
            Some(run) => {
                *run.name.borrow_mut() = name.clone();
                // Only the switch carries the name: the checkpoint's files stay as they are.
                if let Some(mut meta) = saved_meta().await? {
                    if meta.id == id {
                        meta.name = name;
                        put_meta(&meta).await?;
                    }
                }
            }
            None => {
                let mut runs = kept_runs().await?;
                for k in runs.iter_mut().filter(|k| k.summary.id == id) {
                    k.summary.name = name.clone();
                    k.meta.name = name.clone();
                }
                put_kept_runs(&runs).await?;
            }
        }
        Ok::<_, String>(())
    }
    .await;
    if let Err(e) = result {
        emit_error(TOPIC, e);
    }
    list_runs().await;
}

pub(super) async fn delete_run(id: u64) {
    if state::run().is_some_and(|r| r.id == id) {
        return emit_error(TOPIC, "the run in the panel cannot be deleted; start another run first");
    }
    let result = async {
        let _t = begin("deleting the run", Access::Write).await?;
        let mut runs = kept_runs().await?;
        let Some(at) = runs.iter().position(|k| k.summary.id == id) else { return Ok(()) };
        let gone = runs.remove(at);
        put_kept_runs(&runs).await?;
        for key in gone.meta.keys() {
            let _ = storage::delete(&key).await;
        }
        let current = saved_meta().await.ok().flatten();
        if !corpus_in_use(&gone.meta.corpus(), current.as_ref(), Some(&runs)) {
            let _ = storage::delete(&gone.meta.corpus()).await;
        }
        Ok::<_, String>(())
    }
    .await;
    if let Err(e) = result {
        emit_error(TOPIC, e);
    }
    list_runs().await;
}

/// The files of a stored checkpoint.
pub(super) async fn read_checkpoint(meta: &SavedRun) -> Result<Checkpoint, String> {
    let mut checkpoint = Checkpoint::default();
    for name in &meta.files {
        let data = storage::get(&file_key(meta.generation, name))
            .await?
            .ok_or_else(|| format!("the saved {name} is missing"))?;
        checkpoint.files.push((name.clone(), data));
    }
    Ok(checkpoint)
}

/// Kept run `id` and the files of its last checkpoint (the caller holds the storage transaction).
async fn kept_checkpoint(id: u64) -> Result<(KeptRun, Checkpoint), String> {
    let kept = kept_runs().await?.into_iter().find(|k| k.summary.id == id);
    let kept = kept.ok_or("that run is no longer kept")?;
    let checkpoint = read_checkpoint(&kept.meta).await?;
    Ok((kept, checkpoint))
}

/// A kept run's last checkpoint as a zip (the run in the panel downloads from memory).
pub(super) async fn download_run(id: u64) {
    let result = async {
        let _t = begin("reading the run's checkpoint", Access::Read).await?;
        let (kept, checkpoint) = kept_checkpoint(id).await?;
        Ok::<_, String>((kept.summary.settings.arch, kept.summary.step, checkpoint))
    }
    .await;
    match result {
        Ok((arch, step, checkpoint)) => emit_zip(arch, step, Ok(checkpoint)),
        Err(e) => emit_error(TOPIC, e),
    }
}

/// A kept run handed to Hugging Face Trainer: its checkpoint and corpus read from storage, the run
/// resumed on the CPU backend (no step is taken: its moments are read out) and handed off.
pub(super) async fn handoff_run(id: u64) {
    let result = async {
        let _t = begin("handing the run off", Access::Read).await?;
        let (kept, checkpoint) = kept_checkpoint(id).await?;
        let corpus = storage::get(&kept.meta.corpus()).await?.ok_or("the run's corpus is missing")?;
        let file =
            super::run::CorpusFile::stored(kept.meta.corpus_name.clone(), corpus, kept.meta.corpus_jsonl)?;
        let on = super::train_device::on_cpu(String::new());
        let trainer =
            hearth_lm::train::Trainer::resume_within(&checkpoint, &file.corpus, &on.device, on.budget)
                .map_err(|e| e.to_string())?;
        let files = trainer.handoff(trainer.config().steps).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((kept.summary.settings.arch, kept.summary.step, files))
    }
    .await;
    match result {
        Ok((arch, step, files)) => emit_handoff(arch, step, Ok(files)),
        Err(e) => emit_error(TOPIC, e),
    }
}

/// A hand-off offered as `hearth-<arch>-step<N>-trainer.zip`, with how to continue it.
pub(super) fn emit_handoff(arch: TrainArch, step: usize, files: Result<Vec<(String, Vec<u8>)>, String>) {
    let dir = format!("hearth-{}-step{step}-trainer", arch.as_str());
    match files.and_then(|f| zip_stored(&dir, &f)) {
        Ok(zip) => {
            emit_bytes(&Event::Download { name: format!("{dir}.zip") }, &zip);
            emit(&Event::Notice {
                topic: TOPIC,
                message: format!(
                    "{dir}.zip: unzip it where PyTorch is, then `python {dir}/train_hf.py {dir}` (or `accelerate launch --num_processes K …`) continues the run with Hugging Face Trainer"
                ),
            });
        }
        Err(e) => emit_error(TOPIC, e),
    }
}

/// A checkpoint offered as `hearth-<arch>-step<N>.zip`.
pub(super) fn emit_zip(arch: TrainArch, step: usize, checkpoint: Result<Checkpoint, String>) {
    let dir = format!("hearth-{}-step{step}", arch.as_str());
    match checkpoint.and_then(|c| zip_stored(&dir, &c.files)) {
        Ok(zip) => emit_bytes(&Event::Download { name: format!("{dir}.zip") }, &zip),
        Err(e) => emit_error(TOPIC, e),
    }
}

/// Safe mode's record: how many restores of run `id` began without ending.
#[derive(Default, Serialize, Deserialize)]
struct Restoring {
    id: u64,
    attempts: u32,
}

/// The saved run and what restoring it needs, or why it is not restored by itself.
pub(super) enum Saved {
    Nothing,
    /// It crashed the worker `CRASHES` times: the page offers retry, download and set aside.
    SafeMode {
        name: String,
        step: usize,
        attempts: u32,
    },
    Found {
        meta: Box<SavedRun>,
        corpus: Vec<u8>,
        checkpoint: Checkpoint,
    },
}

/// Reads the saved run for a restore, inside `transaction`, and marks the restore as begun
/// (`restore_ended` clears the mark). `force` retries a run in safe mode.
pub(super) async fn begin_restore(force: bool) -> Result<Saved, String> {
    let Some(meta) = saved_meta().await? else { return Ok(Saved::Nothing) };
    let key = storage::local_key(RESTORING);
    let mark: Restoring = match storage::get(&key).await? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        None => Restoring::default(),
    };
    let attempts = if mark.id == meta.id { mark.attempts } else { 0 };
    if attempts >= CRASHES && !force {
        let step = meta.losses.last().map_or(0, |p| p.step);
        return Ok(Saved::SafeMode { name: meta.summary().name, step, attempts });
    }
    // A full storage must not stop the restore: the mark only protects against a crash.
    let mark = Restoring { id: meta.id, attempts: attempts + 1 };
    let _ = storage::put(&key, &serde_json::to_vec(&mark).map_err(|e| e.to_string())?).await;
    if CRASH_RESTORE.with(Cell::get) {
        panic!("hearth test crash: the worker traps while restoring (?test-hooks=crash-restore)");
    }
    let corpus = storage::get(&meta.corpus()).await?.ok_or("the saved run's corpus is missing")?;
    let checkpoint = read_checkpoint(&meta).await?;
    Ok(Saved::Found { meta: Box::new(meta), corpus, checkpoint })
}

/// The restore ended without taking the worker down (restored, or refused with a message).
pub(super) async fn restore_ended() {
    let _ = storage::delete(&storage::local_key(RESTORING)).await;
}

/// Safe mode: the saved run's files as a zip, as they are in storage.
pub(super) async fn download_saved() {
    let result = async {
        let _t = begin("reading the saved run", Access::Read).await?;
        let meta = saved_meta().await?.ok_or("there is no saved run")?;
        let step = meta.losses.last().map_or(0, |p| p.step);
        Ok::<_, String>((meta.settings.arch, step, read_checkpoint(&meta).await?))
    }
    .await;
    match result {
        Ok((arch, step, checkpoint)) => emit_zip(arch, step, Ok(checkpoint)),
        Err(e) => emit_error(TOPIC, e),
    }
}

/// Safe mode: the saved run moves to the runs table without being loaded; no run is saved any
/// more, so nothing is restored at the next start.
pub(super) async fn set_saved_aside() {
    let result = async {
        let _t = begin("setting the saved run aside", Access::Write).await?;
        let Some(meta) = saved_meta().await? else { return Ok(()) };
        let mut runs = kept_runs().await?;
        if !runs.iter().any(|k| k.summary.id == meta.id) {
            runs.insert(0, KeptRun { summary: meta.summary(), meta });
            put_kept_runs(&runs).await?;
        }
        storage::delete(&storage::local_key(META)).await?;
        storage::delete(&storage::local_key(RESTORING)).await?;
        Ok::<_, String>(())
    }
    .await;
    match result {
        Ok(()) => emit(&Event::Notice {
            topic: TOPIC,
            message: "the saved run is in the runs table (not loaded); Download gets its files".into(),
        }),
        Err(e) => emit_error(TOPIC, e),
    }
    list_runs().await;
}

/// Every key the switch and the table refer to, or `None` when either is unreadable (then
/// nothing may be called an orphan).
async fn referenced() -> Option<BTreeSet<String>> {
    let meta = saved_meta().await.ok()?;
    let kept = kept_runs().await.ok()?;
    let mut keys: BTreeSet<String> = [META, RUNS, RESTORING].iter().map(|k| storage::local_key(k)).collect();
    for m in meta.iter().chain(kept.iter().map(|k| &k.meta)) {
        keys.extend(m.keys());
        keys.insert(m.corpus());
    }
    Some(keys)
}

/// Removes the generations and corpora nothing refers to (a tab closed mid-save, a crash): at
/// start, in the tab that owns the runs.
pub(super) async fn sweep() {
    let result = async {
        let _t = begin("removing what interrupted saves left", Access::Write).await?;
        let Some(keep) = referenced().await else { return Ok((0, 0)) };
        let prefix = storage::local_key("run/");
        let (mut count, mut bytes) = (0usize, 0u64);
        for (key, size) in storage::local_entries().await? {
            if key.starts_with(&prefix) && !keep.contains(&key) {
                still_owner()?;
                storage::delete(&key).await?;
                count += 1;
                bytes += size;
            }
        }
        Ok::<_, String>((count, bytes))
    }
    .await;
    match result {
        Ok((0, _)) => {}
        Ok((count, bytes)) => emit(&Event::Notice {
            topic: TOPIC,
            message: format!(
                "removed {count} file{} ({}) that interrupted saves had left in browser storage",
                if count == 1 { "" } else { "s" },
                human_bytes(bytes)
            ),
        }),
        Err(e) => emit_error(TOPIC, format!("could not tidy browser storage: {e}")),
    }
}

/// The runs' storage for the Device panel: (what, bytes) per run, corpora and tables, and
/// whatever nothing refers to.
pub(super) async fn storage_rows() -> Result<Vec<(String, u64)>, String> {
    let _t = begin("listing browser storage", Access::Read).await?;
    let entries = storage::local_entries().await?;
    let meta = saved_meta().await.ok().flatten();
    let kept = kept_runs().await.unwrap_or_default();
    let mut owners: Vec<(String, BTreeSet<String>)> = Vec::new();
    if let Some(m) = &meta {
        owners.push((format!("{} (the run in the panel)", m.summary().name), m.keys().into_iter().collect()));
    }
    for k in &kept {
        owners.push((k.summary.name.clone(), k.meta.keys().into_iter().collect()));
    }
    let corpora: BTreeSet<String> =
        meta.iter().chain(kept.iter().map(|k| &k.meta)).map(|m| m.corpus()).collect();
    let mut rows: Vec<(String, u64)> = owners.iter().map(|(name, _)| (name.clone(), 0)).collect();
    let (mut corpus_bytes, mut tables, mut orphans) = (0u64, 0u64, 0u64);
    for (key, size) in entries {
        if let Some(at) = owners.iter().position(|(_, keys)| keys.contains(&key)) {
            rows[at].1 += size;
        } else if corpora.contains(&key) {
            corpus_bytes += size;
        } else if [META, RUNS, RESTORING].iter().any(|k| storage::local_key(k) == key) {
            tables += size;
        } else {
            orphans += size;
        }
    }
    rows.push(("training corpora".into(), corpus_bytes));
    rows.push(("runs table and switch".into(), tables));
    if orphans > 0 {
        rows.push(("left by interrupted saves (removed at the next start)".into(), orphans));
    }
    Ok(rows)
}

/// Deletes every kept run (not the run in the panel) and whatever nothing refers to.
pub(super) async fn clear_kept() -> Result<(), String> {
    {
        let _t = begin("deleting the kept runs", Access::Write).await?;
        let runs = kept_runs().await.unwrap_or_default();
        put_kept_runs(&[]).await?;
        let current = saved_meta().await.ok().flatten();
        for k in &runs {
            for key in k.meta.keys() {
                let _ = storage::delete(&key).await;
            }
            if !corpus_in_use(&k.meta.corpus(), current.as_ref(), Some(&[])) {
                let _ = storage::delete(&k.meta.corpus()).await;
            }
        }
    }
    sweep().await;
    list_runs().await;
    Ok(())
}
