//! The page's side of the worker: starts it, queues requests until it listens, and turns its
//! messages into state (and downloads into saved files).

use std::cell::{Cell, RefCell};

use js_sys::{Array, Uint8Array};
use leptos::prelude::{GetUntracked, Set};
use wasm_bindgen::prelude::*;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, MessageEvent, Url, Worker};

use super::state::AppState;
use crate::adapter::js as adapter;
use crate::kernels::{self, AdapterKind, Choice, Kernels};
use crate::protocol::{Event, Request, Topic};

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    static LISTENING: Cell<bool> = const { Cell::new(false) };
    static QUEUE: RefCell<Vec<Array>> = const { RefCell::new(Vec::new()) };
    /// Times the worker was restarted after a crash: a worker that keeps crashing is not
    /// restarted forever.
    static RESTARTS: Cell<u32> = const { Cell::new(0) };
    /// The worker build started (and restarted after a crash).
    static KERNELS: Cell<Kernels> = const { Cell::new(Kernels::Plain) };
    /// Counts the workers started: a dying worker can still deliver queued errors and messages
    /// after its successor started, and those must not count against the new one.
    static GENERATION: Cell<u32> = const { Cell::new(0) };
    /// Test hook `?test-hooks=fail-tuned` (`Request::Init`).
    static FAIL_TUNED: Cell<bool> = const { Cell::new(false) };
    /// Test hook `?test-hooks=crash-restore` (`Request::Init`).
    static CRASH_RESTORE: Cell<bool> = const { Cell::new(false) };
}

const MAX_RESTARTS: u32 = 3;

/// Sends a request to the worker.
pub fn post(request: &Request) {
    post_with(request, &JsValue::NULL);
}

/// Sends a request with a JS value beside it (picked files).
pub fn post_with(request: &Request, extra: &JsValue) {
    let json = serde_json::to_string(request).expect("requests serialize");
    let message = Array::of2(&JsValue::from_str(&json), extra);
    if !LISTENING.with(Cell::get) {
        QUEUE.with(|q| q.borrow_mut().push(message));
        return;
    }
    send(&message);
}

fn send(message: &Array) {
    WORKER.with(|w| {
        if let Some(worker) = w.borrow().as_ref() {
            if let Err(e) = worker.post_message(message) {
                web_sys::console::error_1(&e);
            }
        }
    });
}

/// Asks the browser to keep this site's storage under pressure (`navigator.storage.persist()`,
/// a page-only call): checkpoints of hours of training live there. The answer (a prompt in some
/// browsers) does not matter to anything else, so it is not awaited.
fn persist_storage() {
    let call = || -> Option<()> {
        let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
        let manager = js_sys::Reflect::get(&navigator, &"storage".into()).ok()?;
        let persist = js_sys::Reflect::get(&manager, &"persist".into()).ok()?;
        persist.dyn_into::<js_sys::Function>().ok()?.call0(&manager).ok()?;
        Some(())
    };
    let _ = call();
}

/// Chooses the worker build from the adapter the page is offered (`kernels::choose`: the fused
/// and autotuned kernels on a hardware adapter, the plain ones elsewhere), then starts it.
pub fn begin(state: AppState, force_cpu: bool, requested: Option<String>, hooks: Hooks) {
    persist_storage();
    FAIL_TUNED.with(|f| f.set(hooks.fail_tuned));
    CRASH_RESTORE.with(|f| f.set(hooks.crash_restore));
    wasm_bindgen_futures::spawn_local(async move {
        let adapter = if force_cpu {
            AdapterKind::Missing
        } else {
            match adapter::request().await {
                Ok(found) if adapter::is_software(&found) => AdapterKind::Software,
                Ok(_) => AdapterKind::Hardware,
                Err(_) => AdapterKind::Missing,
            }
        };
        use_kernels(state, kernels::choose(requested.as_deref(), force_cpu, adapter));
        start(state, force_cpu);
    });
}

/// The test hooks `?test-hooks=…` turns on in every worker the page starts.
#[derive(Clone, Copy, Default)]
pub struct Hooks {
    pub fail_tuned: bool,
    pub crash_restore: bool,
}

/// Sets the build the next (re)start uses.
fn use_kernels(state: AppState, choice: Choice) {
    KERNELS.with(|k| k.set(choice.kernels));
    state.kernels.set(Some(choice));
}

/// The plain build replaces a tuned one that failed (`kernels::fallback*`) at its next start.
fn fall_back(state: AppState, choice: Choice) {
    web_sys::console::warn_1(&choice.reason.clone().into());
    use_kernels(state, choice);
}

/// Starts the worker build chosen by [`begin`], which Trunk built beside the page.
fn start(state: AppState, force_cpu: bool) {
    // A new worker restores the saved run before Start may replace it.
    state.runs_taken.set(false);
    let generation = GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    });
    let current = move || GENERATION.with(Cell::get) == generation;
    let worker = match Worker::new(KERNELS.with(Cell::get).loader()) {
        Ok(w) => w,
        Err(e) => {
            state.topic(Topic::Device).error.set(Some(format!("the compute worker could not start: {e:?}")));
            return;
        }
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        if !current() {
            return;
        }
        let data = Array::from(&event.data());
        let json = data.get(0).as_string().unwrap_or_default();
        let event: Event = match serde_json::from_str(&json) {
            Ok(e) => e,
            Err(e) => {
                web_sys::console::error_1(&format!("bad message from the worker: {e}").into());
                return;
            }
        };
        match &event {
            Event::Started => {
                LISTENING.with(|l| l.set(true));
                send(&Array::of2(
                    &JsValue::from_str(
                        &serde_json::to_string(&Request::Init {
                            force_cpu,
                            fail_tuned: FAIL_TUNED.with(Cell::get),
                            crash_restore: CRASH_RESTORE.with(Cell::get),
                            owner: state.owner.get_untracked() == Some(true),
                        })
                        .expect("json"),
                    ),
                    &JsValue::NULL,
                ));
                for message in QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut())) {
                    send(&message);
                }
            }
            Event::Download { name } => save_file(name, &data.get(1)),
            Event::Ready(info) => {
                if let Some(choice) = kernels::fallback(KERNELS.with(Cell::get), force_cpu, info) {
                    fall_back(state, choice);
                    restart(state, force_cpu);
                    return;
                }
            }
            Event::DeviceLost { message } => {
                restart_after_crash(state, force_cpu, format!("the GPU device was lost — {message}"));
                return;
            }
            _ => {}
        }
        state.apply(event);
    });
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
        if !current() {
            return;
        }
        // A crashed tuned worker is followed by the plain one, with the usual recovery.
        if let Some(choice) = kernels::fallback_after_crash(KERNELS.with(Cell::get), &event.message()) {
            fall_back(state, choice);
        }
        restart_after_crash(state, force_cpu, event.message());
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // Both handlers live as long as the page.
    on_message.forget();
    on_error.forget();
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
}

/// A trapped worker (a GPU device lost, a driver crash, memory exhausted) is dead: start a new
/// one, which restores the last checkpoint from browser storage on its own, and tell the user
/// what happened and how to go on. Requests posted meanwhile wait for the new worker.
pub fn restart_after_crash(state: AppState, force_cpu: bool, why: String) {
    if let Some(old) = WORKER.with(|w| w.borrow_mut().take()) {
        old.terminate();
    }
    LISTENING.with(|l| l.set(false));
    state.generating.set(false);
    let restarts = RESTARTS.with(|r| {
        r.set(r.get() + 1);
        r.get()
    });
    if restarts > MAX_RESTARTS {
        state.topic(Topic::Device).error.set(Some(format!(
            "the compute worker stopped again ({why}); reload the page — the last checkpoint is in browser storage"
        )));
        return;
    }
    state.recovered.set(Some(format!(
        "The compute worker stopped ({why}). It was restarted{}; the last checkpoint is restored from browser storage.",
        if force_cpu { " on the CPU" } else { "" }
    )));
    start(state, force_cpu);
}

/// Replaces the worker by a new one on the chosen backend (the user's choice after a crash).
pub fn restart(state: AppState, force_cpu: bool) {
    if let Some(old) = WORKER.with(|w| w.borrow_mut().take()) {
        old.terminate();
    }
    LISTENING.with(|l| l.set(false));
    start(state, force_cpu);
}

/// Offers `bytes` to the user as a file download.
fn save_file(name: &str, bytes: &JsValue) {
    let parts = Array::of1(&Uint8Array::new(bytes));
    let options = BlobPropertyBag::new();
    options.set_type("application/zip");
    let Ok(blob) = Blob::new_with_u8_array_sequence_and_options(&parts, &options) else { return };
    let Ok(url) = Url::create_object_url_with_blob(&blob) else { return };
    let document = web_sys::window().and_then(|w| w.document());
    if let Some(anchor) =
        document.and_then(|d| d.create_element("a").ok()).and_then(|a| a.dyn_into::<HtmlAnchorElement>().ok())
    {
        anchor.set_href(&url);
        anchor.set_download(name);
        anchor.click();
    }
    // The URL is not revoked: the browser may still be reading it when click() returns, and
    // one blob per download is a small price.
}
