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
//! Sibling names start with a dot and carry the process id and a counter, so they cannot collide
//! with a user's `--out` (say `run.old`) or with another process saving beside it.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use hearth_lm::io::checkpoint::Checkpoint;

/// What a checkpoint directory always holds (the resume state marks it as ours).
pub const STATE_FILE: &str = "trainer_state.json";

/// A sibling of `dir` no one else uses: `.NAME.KIND-PID-N`.
fn sibling(dir: &Path, kind: &str) -> Result<PathBuf, String> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = dir
        .file_name()
        .ok_or_else(|| format!("{} does not name a directory", dir.display()))?
        .to_string_lossy()
        .into_owned();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(parent(dir).join(format!(".{name}.{kind}-{}-{n}", std::process::id())))
}

fn parent(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Flushes a directory's entries (the names of files just created or renamed in it).
fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot flush {}: {e}", dir.display()))
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
    let fresh = sibling(dir, "partial")?;
    fs::create_dir_all(parent(dir)).map_err(|e| format!("cannot create {}: {e}", parent(dir).display()))?;
    fs::create_dir(&fresh).map_err(|e| format!("cannot create {}: {e}", fresh.display()))?;
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
    let aside = sibling(dir, "previous")?;
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
    let prefix = format!(".{name}.previous-");
    fs::read_dir(parent(dir))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .find(|p| p.join(STATE_FILE).is_file())
}

/// Reads every file of a checkpoint directory (or of its aside copy, see [`save_checkpoint`]).
pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint, String> {
    let source = if dir.exists() { dir.to_path_buf() } else { aside_copy(dir).unwrap_or(dir.to_path_buf()) };
    let entries =
        fs::read_dir(&source).map_err(|e| format!("cannot read checkpoint {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().is_file() {
            let bytes =
                fs::read(entry.path()).map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
            files.push((entry.file_name().to_string_lossy().into_owned(), bytes));
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
        fs::rename(&out, sibling(&out, "previous").unwrap()).unwrap();
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
}
