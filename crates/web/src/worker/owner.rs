//! One tab at a time owns the runs: it trains, saves, archives, renames and deletes them. Other
//! tabs of the site share the same storage but only read it (their inference panels work as
//! usual); the page says so with a banner and offers to take over. Two tabs that both wrote lost
//! runs (issue 31: tab B archived A, tab A's next autosave deleted it).
//!
//! The Web Locks API holds the ownership: the browser releases a lock when the worker holding it
//! ends, so a closed or crashed tab frees it, and a tab waiting for it gets it then. A
//! `BroadcastChannel` tells the other tabs when the runs changed, so their tables follow.
//! Everything is reached through `Reflect`, so no unstable web-sys features are compiled.

use std::cell::{Cell, RefCell};

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{emit, runs, training};
use crate::protocol::Event;

const LOCK: &str = "hearth-runs";
const CHANNEL: &str = "hearth-runs";

/// What a tab that does not own the runs answers to training and storage requests.
pub const NOT_OWNER: &str =
    "Hearth is open in another tab: training and saving happen there (\"Use this tab\" takes them over)";

/// How long a starting worker waits for the lock before it says another tab has it: a worker
/// restarted after a crash waits here for its predecessor's lock to be released.
const GRACE_MS: i32 = 1500;

thread_local! {
    static OWNER: Cell<bool> = const { Cell::new(false) };
    /// Whether the page has been told who owns the runs (at most once before the grace ends).
    static TOLD: Cell<bool> = const { Cell::new(false) };
    static CHANNEL_PORT: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

pub fn is_owner() -> bool {
    OWNER.with(Cell::get)
}

fn locks() -> Option<JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then_some(locks)
}

/// Asks for the runs at start: granted at once when no other tab has them, within the grace
/// when this tab's previous worker is still going away, else when the owner closes. A tab that
/// owned them before its worker was replaced (`take_back`) takes them back: another tab queued
/// for the lock would otherwise get it when the old worker ended.
pub fn claim(take_back: bool) {
    listen();
    if locks().is_none() {
        // A browser without Web Locks (none that has WebGPU): one tab is all it can coordinate.
        return granted();
    }
    if let Err(e) = request(take_back) {
        web_sys::console::error_1(&e);
        return granted();
    }
    wasm_bindgen_futures::spawn_local(async {
        sleep(GRACE_MS).await;
        if !is_owner() && !TOLD.with(|t| t.replace(true)) {
            emit(&Event::Owner { owner: false });
            runs::list_runs().await;
        }
    });
}

/// Takes the runs from the tab that owns them (which stops training and is told so).
pub fn take_over() {
    if is_owner() {
        return;
    }
    if let Err(e) = request(true) {
        web_sys::console::error_1(&e);
    }
}

/// `navigator.locks.request(LOCK, { steal }, callback)`: the callback runs once the lock is
/// held and returns a promise that never settles, so it is held until this worker ends. The
/// request's own promise rejects if another tab steals the lock.
fn request(steal: bool) -> Result<(), JsValue> {
    let locks = locks().ok_or_else(|| JsValue::from_str("no Web Locks"))?;
    let options = Object::new();
    Reflect::set(&options, &"steal".into(), &steal.into())?;
    let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        granted();
        Promise::new(&mut |_, _| {}).into()
    });
    let request: Function = Reflect::get(&locks, &"request".into())?.dyn_into()?;
    let held: Promise = request.call3(&locks, &LOCK.into(), &options, &callback)?.dyn_into()?;
    let on_lost = Closure::once_into_js(move |_reason: JsValue| lost());
    let catch: Function = Reflect::get(&held, &"catch".into())?.dyn_into()?;
    catch.call1(&held, &on_lost)?;
    Ok(())
}

fn granted() {
    // A request queued before a take-over can be granted later too: the runs are taken once.
    if OWNER.with(|o| o.replace(true)) {
        return;
    }
    TOLD.with(|t| t.set(true));
    emit(&Event::Owner { owner: true });
    wasm_bindgen_futures::spawn_local(training::took_runs());
}

/// Another tab took the runs: training here stops (its last checkpoint is what the other tab
/// restores), and this tab waits to get them back when that tab closes.
fn lost() {
    if !OWNER.with(|o| o.replace(false)) {
        return;
    }
    emit(&Event::Owner { owner: false });
    training::lost_runs();
    if let Err(e) = request(false) {
        web_sys::console::error_1(&e);
    }
}

/// Tells the other tabs that the runs changed (after a save, an archive, a rename, a delete).
pub fn announce() {
    CHANNEL_PORT.with(|c| {
        if let Some(port) = c.borrow().as_ref() {
            if let Ok(post) = Reflect::get(port, &"postMessage".into()).and_then(|p| p.dyn_into::<Function>())
            {
                let _ = post.call1(port, &"runs-changed".into());
            }
        }
    });
}

/// Opens the channel: a tab that does not own the runs lists them again when told they changed.
fn listen() {
    if CHANNEL_PORT.with(|c| c.borrow().is_some()) {
        return;
    }
    let open = || -> Result<JsValue, JsValue> {
        let class: Function = Reflect::get(&js_sys::global(), &"BroadcastChannel".into())?.dyn_into()?;
        let port = Reflect::construct(&class, &js_sys::Array::of1(&CHANNEL.into()))?;
        let on_message = Closure::<dyn FnMut(JsValue)>::new(|_event: JsValue| {
            if !is_owner() {
                wasm_bindgen_futures::spawn_local(runs::list_runs());
            }
        });
        Reflect::set(&port, &"onmessage".into(), on_message.as_ref())?;
        // The handler lives as long as the worker.
        on_message.forget();
        Ok(port)
    };
    match open() {
        Ok(port) => CHANNEL_PORT.with(|c| *c.borrow_mut() = Some(port)),
        Err(e) => web_sys::console::warn_1(&e),
    }
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
