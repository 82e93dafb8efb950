//! The activity line: every request that computes on the device waits its turn in one queue, and
//! the page is told at once what runs and what waits behind it.
//!
//! Requests are handled concurrently on the worker's event loop, but the device runs one thing
//! at a time: a Start pressed behind four inside views on a software adapter waited 90 s with
//! nothing on the page saying so (issue 31). Now each request is listed the moment it arrives,
//! a waiting one can be cancelled (it leaves the queue without computing), a running generation
//! stops at its next token, and a newer request of the same view supersedes an older one still
//! waiting. Training steps do not queue: a run gives the device back between steps, so the
//! panels keep answering while it trains.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use futures::lock::{Mutex, OwnedMutexGuard};

use super::{emit, state};
use crate::protocol::{Event, Job, JobKind, Topic};

struct Entry {
    job: Job,
    /// Requests with the same key replace each other while they wait (a slider's previews).
    key: Option<String>,
    cancelled: bool,
}

thread_local! {
    static DEVICE: Arc<Mutex<()>> = Arc::new(Mutex::new(()));
    static JOBS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// A job listed on the activity line; while it holds the device, the queue waits for it. Dropped
/// when the request is done.
pub(super) struct Ticket {
    id: u64,
    _device: Option<OwnedMutexGuard<()>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        JOBS.with(|j| j.borrow_mut().retain(|e| e.job.id != self.id));
        announce();
    }
}

fn register(kind: JobKind, topic: Topic, label: String, key: Option<String>, running: bool) -> u64 {
    let id = NEXT_ID.with(|n| n.replace(n.get() + 1));
    JOBS.with(|j| {
        let mut jobs = j.borrow_mut();
        if let Some(key) = &key {
            // The newer request answers the same question: the older one need not run.
            for e in jobs.iter_mut().filter(|e| !e.job.running && e.key.as_ref() == Some(key)) {
                e.cancelled = true;
            }
        }
        jobs.push(Entry {
            job: Job { id, kind, topic, label, running, cancellable: !running },
            key,
            cancelled: false,
        });
    });
    announce();
    id
}

/// Waits for the device behind the jobs already queued. `None` when the job was cancelled (or
/// superseded) while it waited: the caller computes nothing.
pub(super) async fn queue(
    kind: JobKind,
    topic: Topic,
    label: impl Into<String>,
    key: Option<String>,
) -> Option<Ticket> {
    let id = register(kind, topic, label.into(), key, false);
    let guard = DEVICE.with(Arc::clone).lock_owned().await;
    let ticket = Ticket { id, _device: Some(guard) };
    let cancelled = JOBS.with(|j| {
        let mut jobs = j.borrow_mut();
        let entry = jobs.iter_mut().find(|e| e.job.id == id)?;
        if entry.cancelled {
            return Some(true);
        }
        entry.job.running = true;
        // Only a generation stops part-way (between tokens); the other jobs are one pass.
        entry.job.cancellable = kind == JobKind::Generate;
        Some(false)
    });
    if cancelled != Some(false) {
        return None; // the ticket's drop lists the queue without it
    }
    announce();
    Some(ticket)
}

/// Lists a job that does not wait for the device (a download, reading files).
pub(super) fn track(kind: JobKind, topic: Topic, label: impl Into<String>) -> Ticket {
    let id = register(kind, topic, label.into(), None, true);
    Ticket { id, _device: None }
}

/// The page's Cancel on the activity line.
pub(super) fn cancel(id: u64) {
    let found = JOBS.with(|j| {
        let mut jobs = j.borrow_mut();
        let entry = jobs.iter_mut().find(|e| e.job.id == id && !e.cancelled)?;
        if !entry.job.cancellable {
            return None;
        }
        if !entry.job.running {
            entry.cancelled = true;
        }
        Some(entry.job.clone())
    });
    let Some(job) = found else { return };
    if job.running {
        // A generation checks its epoch before each token.
        state::bump_generation();
    } else {
        emit(&Event::Cancelled { topic: job.topic, label: job.label });
        announce();
    }
}

/// Cancels every waiting job of `kind` (Generate's Stop pressed before its generation began).
pub(super) fn cancel_waiting(kind: JobKind) {
    let waiting: Vec<u64> = JOBS.with(|j| {
        j.borrow()
            .iter()
            .filter(|e| e.job.kind == kind && !e.job.running && !e.cancelled)
            .map(|e| e.job.id)
            .collect()
    });
    for id in waiting {
        cancel(id);
    }
}

fn announce() {
    let jobs: Vec<Job> =
        JOBS.with(|j| j.borrow().iter().filter(|e| !e.cancelled).map(|e| e.job.clone()).collect());
    emit(&Event::Activity { jobs });
}
