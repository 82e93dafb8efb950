//! The page's side of the worker: starts it, queues requests until it listens, and turns its
//! messages into state (and downloads into saved files).

use std::cell::{Cell, RefCell};

use js_sys::{Array, Uint8Array};
use leptos::prelude::Set;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, MessageEvent, Url, Worker};

use super::state::AppState;
use crate::protocol::{Event, Request, Topic};

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    static LISTENING: Cell<bool> = const { Cell::new(false) };
    static QUEUE: RefCell<Vec<Array>> = const { RefCell::new(Vec::new()) };
}

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

/// Starts the worker built by Trunk beside the page.
pub fn start(state: AppState, force_cpu: bool) {
    let worker = match Worker::new("./hearth-worker_loader.js") {
        Ok(w) => w,
        Err(e) => {
            state.topic(Topic::Device).error.set(Some(format!("the compute worker could not start: {e:?}")));
            return;
        }
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
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
                    &JsValue::from_str(&serde_json::to_string(&Request::Init { force_cpu }).expect("json")),
                    &JsValue::NULL,
                ));
                for message in QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut())) {
                    send(&message);
                }
            }
            Event::Download { name } => save_file(name, &data.get(1)),
            _ => {}
        }
        state.apply(event);
    });
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
        state.topic(Topic::Device).error.set(Some(format!(
            "the compute worker stopped ({}); reload the page — the last checkpoint is in browser storage",
            event.message()
        )));
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // Both handlers live as long as the page.
    on_message.forget();
    on_error.forget();
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
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
