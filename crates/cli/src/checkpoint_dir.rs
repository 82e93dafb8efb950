//! Checkpoint directories on disk, written as transactions. A run's `--out` must hold a complete
//! checkpoint at every moment — through a crash, a full disk or a kill mid-save — because it may
//! be the only copy of hours of training:
//!
//! 1. the new checkpoint is written into a fresh, uniquely named sibling directory, every file
//!    and the directory itself flushed to disk (`fsync`);
//! 2. on Linux it is swapped with `--out` in one atomic `renameat2(RENAME_EXCHANGE)`, so `--out`
//!    names the old checkpoint until the instant it names the new one; elsewhere (or on a
//!    filesystem without exchange) the old one is first renamed aside, and a reader that finds no
//!    `--out` takes that aside copy ([`load_checkpoint`]);
//! 3. only then is the previous checkpoint deleted.
//!
//! Sibling names start with a dot and carry the process id, a random token of this process and
//! a counter: `.NAME.KIND-PID-TOKEN-N`. The token keeps a sibling left by a killed process from
//! colliding with a later process that got the same pid (in a container every run is PID 1), and
//! tells such leftovers from a live save: [`save_checkpoint`] removes the siblings of dead runs.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use hearth_lm::io::checkpoint::Checkpoint;

use crate::model_dir::{read_json, read_weights};

/// What a checkpoint directory always holds (the resume state marks it as ours).
pub const STATE_FILE: &str = "trainer_state.json";

/// The kinds of sibling a save makes: the new checkpoint while it is written, and the previous
/// one set aside where no atomic exchange is available.
const PARTIAL: &str = "partial";
const PREVIOUS: &str = "previous";

/// This process's token: 64 random bits (the standard library seeds `RandomState` from the OS).
fn token() -> u64 {
    static TOKEN: OnceLock<u64> = OnceLock::new();
    *TOKEN.get_or_init(|| RandomState::new().hash_one(std::process::id()))
}

fn dir_name(dir: &Path) -> Result<String, String> {
    Ok(dir
        .file_name()
        .ok_or_else(|| format!("{} does not name a directory", dir.display()))?
        .to_string_lossy()
        .into_owned())
}

/// A sibling of `dir` no one else uses: `.NAME.KIND-PID-TOKEN-N`.
fn sibling(dir: &Path, kind: &str) -> Result<PathBuf, String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = dir_name(dir)?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(parent(dir).join(format!(".{name}.{kind}-{}-{:016x}-{n}", std::process::id(), token())))
}

/// A new, empty sibling directory of `dir`: a name that exists already (whoever left it) is
/// skipped, never reused.
fn fresh_sibling(dir: &Path, kind: &str) -> Result<PathBuf, String> {
    for _ in 0..100 {
        let path = sibling(dir, kind)?;
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    Err(format!("cannot create a new directory beside {}: every name tried exists", dir.display()))
}

/// Who left a sibling named `.NAME.KIND-REST`, read from `REST`.
#[derive(Debug, PartialEq)]
enum Owner {
    /// This process.
    Us,
    /// A process that may still be running (another pid that is alive, or whose liveness this
    /// platform cannot tell).
    MaybeLive,
    /// A process that is gone: our pid without our token (a crashed process whose pid we got),
    /// a pid that no longer runs, or a name without a token (written before tokens).
    Dead,
}

fn owner(rest: &str) -> Owner {
    let mut parts = rest.split('-');
    let (Some(pid), Some(token_hex)) = (parts.next().and_then(|p| p.parse::<u32>().ok()), parts.next())
    else {
        return Owner::Dead;
    };
    let Some(theirs) =
        u64::from_str_radix(token_hex, 16).ok().filter(|_| token_hex.len() == 16 && parts.next().is_some())
    else {
        return Owner::Dead;
    };
    if pid == std::process::id() {
        return if theirs == token() { Owner::Us } else { Owner::Dead };
    }
    if process_alive(pid) {
        Owner::MaybeLive
    } else {
        Owner::Dead
    }
}

/// Whether a process with this pid runs now; `true` where the platform cannot tell.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the siblings of `dir` that dead processes left: partial checkpoints always, a set-aside
/// previous checkpoint only while `dir` itself holds a complete one (otherwise the aside copy is
/// what [`load_checkpoint`] reads).
fn sweep_stale(dir: &Path) -> Result<(), String> {
    let name = dir_name(dir)?;
    let Ok(entries) = fs::read_dir(parent(dir)) else { return Ok(()) };
    let complete = dir.join(STATE_FILE).is_file();
    for entry in entries.filter_map(|e| e.ok()) {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        for (kind, removable) in [(PARTIAL, true), (PREVIOUS, complete)] {
            if let Some(rest) = file_name.strip_prefix(&format!(".{name}.{kind}-")) {
                if removable && owner(rest) == Owner::Dead {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    Ok(())
}

fn parent(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Flushes a directory's entries (the names of files just created or renamed in it). Only Unix
/// can open a directory to flush it; elsewhere (Windows refuses `File::open` on a directory)
/// renames are made durable by the filesystem's own journal and there is nothing to call.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot flush {}: {e}", dir.display()))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), String> {
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Atomically swaps two existing paths; `false` where the platform or filesystem cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> bool {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> bool {
    false
}

/// Writes `checkpoint` to `dir` as a transaction (see the module docs). On any error the
/// previous checkpoint in `dir` is untouched and the partial one is removed.
pub fn save_checkpoint(dir: &Path, checkpoint: &Checkpoint) -> Result<(), String> {
    fs::create_dir_all(parent(dir)).map_err(|e| format!("cannot create {}: {e}", parent(dir).display()))?;
    sweep_stale(dir)?;
    let fresh = fresh_sibling(dir, PARTIAL)?;
    let written = checkpoint
        .files
        .iter()
        .try_for_each(|(name, bytes)| write_synced(&fresh.join(name), bytes))
        .and_then(|()| sync_dir(&fresh));
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&fresh);
        return Err(format!("{e}; the previous checkpoint in {} is kept", dir.display()));
    }
    let swapped = if dir.exists() {
        if exchange(&fresh, dir) {
            // `fresh` now names the previous checkpoint.
            Ok(Some(fresh.clone()))
        } else {
            replace_by_renames(&fresh, dir).map(Some)
        }
    } else {
        fs::rename(&fresh, dir).map(|()| None).map_err(|e| format!("cannot write {}: {e}", dir.display()))
    };
    let previous = match swapped {
        Ok(previous) => previous,
        Err(e) => {
            let _ = fs::remove_dir_all(&fresh);
            return Err(e);
        }
    };
    sync_dir(&parent(dir))?;
    if let Some(previous) = previous {
        let _ = fs::remove_dir_all(previous);
    }
    Ok(())
}

/// Two renames where an exchange is not available: `dir` → aside, `fresh` → `dir`. Between them
/// `dir` is missing but the aside copy is complete, and [`load_checkpoint`] finds it.
fn replace_by_renames(fresh: &Path, dir: &Path) -> Result<PathBuf, String> {
    let aside = sibling(dir, PREVIOUS)?;
    fs::rename(dir, &aside).map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
    if let Err(e) = fs::rename(fresh, dir) {
        let _ = fs::rename(&aside, dir);
        return Err(format!("cannot replace {}: {e}", dir.display()));
    }
    Ok(aside)
}

/// The checkpoint set aside by an interrupted [`replace_by_renames`], if `dir` is missing.
fn aside_copy(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let prefix = format!(".{name}.{PREVIOUS}-");
    fs::read_dir(parent(dir))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .find(|p| p.join(STATE_FILE).is_file())
}

/// The files a checkpoint consists of (`Checkpoint::files`), and whether each holds weights
/// (bounded by memory) or JSON (bounded by [`MAX_JSON_BYTES`]). Nothing else in the directory is
/// read: a stray file there (a log, a copy of a corpus) costs nothing.
const CHECKPOINT_FILES: [(&str, bool); 8] = [
    ("chat_template.jinja", false),
    ("config.json", false),
    ("generation_config.json", false),
    ("model.safetensors", true),
    ("optimizer.safetensors", true),
    ("tokenizer.json", false),
    ("tokenizer_config.json", false),
    (STATE_FILE, false),
];

/// Reads a checkpoint directory's files (or its aside copy's, see [`save_checkpoint`]), each
/// checked against its size limit before it is read.
pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint, String> {
    let source = if dir.exists() { dir.to_path_buf() } else { aside_copy(dir).unwrap_or(dir.to_path_buf()) };
    if !source.is_dir() {
        return Err(format!("cannot read checkpoint {}: not a directory", dir.display()));
    }
    read_files(&source, &CHECKPOINT_FILES)
}

/// The files `names` of `dir` that exist, each `(name, holds weights)` read within its limit:
/// weights bounded by memory, JSON by [`crate::model_dir::MAX_JSON_BYTES`].
pub fn read_files(dir: &Path, names: &[(&str, bool)]) -> Result<Checkpoint, String> {
    let mut files = Vec::new();
    for &(name, weights) in names {
        let path = dir.join(name);
        if path.is_file() {
            let bytes = if weights { read_weights(&path)? } else { read_json(&path)? };
            files.push((name.to_string(), bytes));
        }
    }
    Ok(Checkpoint { files })
}

/// Whether `dir` holds something a new run must not silently replace: a checkpoint, or any
/// file at all (a directory of the user's).
pub fn occupied(dir: &Path) -> bool {
    match fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(_) => dir.exists() && !dir.is_dir(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_dir::MAX_JSON_BYTES;

    fn checkpoint(tag: &str) -> Checkpoint {
        Checkpoint { files: vec![(STATE_FILE.into(), tag.as_bytes().to_vec()), ("b".into(), vec![1, 2])] }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hearth-ckpt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_save_replaces_the_previous_checkpoint_and_leaves_no_siblings() {
        let root = temp("replace");
        let out = root.join("run.old"); // a name the old scheme used for its own temp directory
        save_checkpoint(&out, &checkpoint("one")).unwrap();
        save_checkpoint(&out, &checkpoint("two")).unwrap();
        let loaded = load_checkpoint(&out).unwrap();
        assert_eq!(loaded.get(STATE_FILE), Some(&b"two"[..]));
        let names: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("run.old")]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_interrupted_two_rename_save_is_still_loadable() {
        let root = temp("aside");
        let out = root.join("run");
        save_checkpoint(&out, &checkpoint("one")).unwrap();
        // The moment between the two renames: the previous checkpoint is aside, `out` missing.
        fs::rename(&out, sibling(&out, PREVIOUS).unwrap()).unwrap();
        assert_eq!(load_checkpoint(&out).unwrap().get(STATE_FILE), Some(&b"one"[..]));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_failed_save_keeps_the_previous_checkpoint() {
        let root = temp("fail");
        let out = root.join("run");
        save_checkpoint(&out, &checkpoint("one")).unwrap();
        // A file name that cannot be created makes the write fail half-way.
        let mut bad = checkpoint("two");
        bad.files.push(("no/such/dir/file".into(), vec![0]));
        assert!(save_checkpoint(&out, &bad).is_err());
        assert_eq!(load_checkpoint(&out).unwrap().get(STATE_FILE), Some(&b"one"[..]));
        assert_eq!(fs::read_dir(&root).unwrap().count(), 1, "the partial directory is removed");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn leftovers_of_a_crashed_process_with_our_pid_neither_block_a_save_nor_stay() {
        let root = temp("pid-reuse");
        let out = root.join("run");
        let pid = std::process::id();
        // What a killed process with our pid left: the names of the scheme before tokens (a
        // counter from 0 in every process) and of this scheme with another token.
        for n in 0..100 {
            fs::create_dir(root.join(format!(".run.partial-{pid}-{n}"))).unwrap();
        }
        fs::create_dir(root.join(format!(".run.partial-{pid}-{:016x}-0", token() ^ 1))).unwrap();
        save_checkpoint(&out, &checkpoint("one")).unwrap();
        save_checkpoint(&out, &checkpoint("two")).unwrap();
        assert_eq!(load_checkpoint(&out).unwrap().get(STATE_FILE), Some(&b"two"[..]));
        let names: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("run")], "the dead process's siblings are swept");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_name_taken_by_someone_else_is_skipped() {
        let root = temp("taken");
        let out = root.join("run");
        // The very next names this process would try, taken (as by a process sharing our pid
        // and token, which cannot happen, or by a user): the save picks another.
        let next = sibling(&out, PARTIAL).unwrap();
        let next = next.to_string_lossy();
        // Only the last field is the counter (the root's name may hold "-N" too).
        let (stem, n) = next.rsplit_once('-').unwrap();
        let n: u32 = n.parse().unwrap();
        for k in 1..4 {
            fs::create_dir(format!("{stem}-{}", n + k)).unwrap();
        }
        save_checkpoint(&out, &checkpoint("one")).unwrap();
        assert_eq!(load_checkpoint(&out).unwrap().get(STATE_FILE), Some(&b"one"[..]));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_live_save_and_a_needed_aside_copy_are_not_swept() {
        let root = temp("live");
        let out = root.join("run");
        save_checkpoint(&out, &checkpoint("one")).unwrap();
        // Another live process's partial save (pid 1 runs on every Linux system) is left alone.
        let live = root.join(format!(".run.partial-1-{:016x}-0", 7));
        fs::create_dir(&live).unwrap();
        // The moment between the two renames of a dead process: `run` missing, the copy aside.
        let aside = root.join(format!(".run.previous-{}-{:016x}-0", std::process::id(), token() ^ 1));
        fs::rename(&out, &aside).unwrap();
        assert_eq!(load_checkpoint(&out).unwrap().get(STATE_FILE), Some(&b"one"[..]));
        sweep_stale(&out).unwrap();
        assert!(aside.is_dir(), "the only complete checkpoint is kept");
        if cfg!(target_os = "linux") {
            assert!(live.is_dir(), "a live process's save is kept");
        }
        // Once a new save completes, the dead process's aside copy goes.
        save_checkpoint(&out, &checkpoint("two")).unwrap();
        sweep_stale(&out).unwrap();
        assert!(!aside.exists());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn owners_are_read_from_the_name() {
        let pid = std::process::id();
        assert_eq!(owner(&format!("{pid}-{:016x}-3", token())), Owner::Us);
        assert_eq!(owner(&format!("{pid}-{:016x}-3", token() ^ 1)), Owner::Dead);
        assert_eq!(owner(&format!("{pid}-3")), Owner::Dead, "the scheme before tokens");
        assert_eq!(owner("garbage"), Owner::Dead);
        if cfg!(target_os = "linux") {
            assert_eq!(owner(&format!("1-{:016x}-0", 5)), Owner::MaybeLive);
            assert_eq!(owner(&format!("{}-{:016x}-0", u32::MAX, 5)), Owner::Dead);
        }
    }

    #[test]
    fn only_a_checkpoints_own_files_are_read_and_each_within_its_limit() {
        let root = temp("stray");
        let out = root.join("run");
        save_checkpoint(&out, &checkpoint("one")).unwrap();
        // A stray file beside the checkpoint's own is not read (a sparse file: 1 TB on paper).
        let stray = File::create(out.join("corpus-copy.bin")).unwrap();
        stray.set_len(1 << 40).unwrap();
        let loaded = load_checkpoint(&out).unwrap();
        assert_eq!(loaded.get(STATE_FILE), Some(&b"one"[..]));
        assert!(loaded.get("corpus-copy.bin").is_none());
        // The checkpoint's own JSON over its limit is refused with both sizes, unread.
        File::create(out.join(STATE_FILE)).unwrap().set_len(MAX_JSON_BYTES + 1).unwrap();
        let e = load_checkpoint(&out).unwrap_err();
        assert!(e.contains("trainer_state.json is 67.1 MB, more than"), "{e}");
        fs::remove_dir_all(root).unwrap();
    }
}
