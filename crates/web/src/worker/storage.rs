//! Browser storage through the Cache API (available in workers, holds large binary bodies):
//! downloaded checkpoints, so a second visit is instant, and the training run's checkpoint, so a
//! reload resumes.

use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response, WorkerGlobalScope};

use super::js_error;

const CACHE_NAME: &str = "hearth-v1";

async fn open() -> Result<Cache, String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let caches = scope.caches().map_err(|e| format!("browser storage is unavailable: {}", js_error(&e)))?;
    let cache = JsFuture::from(caches.open(CACHE_NAME))
        .await
        .map_err(|e| format!("cannot open browser storage: {}", js_error(&e)))?;
    Ok(cache.unchecked_into())
}

const LOCAL: &str = "https://hearth.local/";

/// Keys are URLs: remote files under their own address, our own under a local namespace.
pub fn local_key(name: &str) -> String {
    format!("{LOCAL}{name}")
}

/// The downloads kept (remote URLs only, not the runs' checkpoints), with their sizes.
pub async fn downloads() -> Result<Vec<(String, u64)>, String> {
    entries(|url| !url.starts_with(LOCAL)).await
}

/// Our own entries (the runs' checkpoints, corpora and tables), by key, with their sizes.
pub async fn local_entries() -> Result<Vec<(String, u64)>, String> {
    entries(|url| url.starts_with(LOCAL)).await
}

/// The entries whose key `wanted` accepts, with their sizes. Sizes come from each entry's
/// `Blob`, which the browser can answer without reading the bytes.
async fn entries(wanted: impl Fn(&str) -> bool) -> Result<Vec<(String, u64)>, String> {
    let cache = open().await?;
    let keys = JsFuture::from(cache.keys()).await.map_err(|e| js_error(&e))?;
    let mut out = Vec::new();
    for request in js_sys::Array::from(&keys).iter() {
        let Some(url) = js_sys::Reflect::get(&request, &"url".into()).ok().and_then(|u| u.as_string()) else {
            continue;
        };
        if !wanted(&url) {
            continue;
        }
        let found = JsFuture::from(cache.match_with_str(&url)).await.map_err(|e| js_error(&e))?;
        let size = match found.dyn_into::<Response>() {
            Ok(response) => match response.blob() {
                Ok(promise) => JsFuture::from(promise)
                    .await
                    .ok()
                    .and_then(|b| b.dyn_into::<web_sys::Blob>().ok())
                    .map_or(0, |b| b.size() as u64),
                Err(_) => 0,
            },
            Err(_) => 0,
        };
        out.push((url, size));
    }
    out.sort();
    Ok(out)
}

/// The stored entry under `key`, if any, as a response whose body can be streamed.
pub async fn response(key: &str) -> Result<Option<Response>, String> {
    let cache = open().await?;
    let found = JsFuture::from(cache.match_with_str(key)).await.map_err(|e| js_error(&e))?;
    if found.is_undefined() || found.is_null() {
        return Ok(None);
    }
    Ok(Some(found.unchecked_into()))
}

/// The stored bytes under `key`, if any.
pub async fn get(key: &str) -> Result<Option<Vec<u8>>, String> {
    let Some(response) = response(key).await? else { return Ok(None) };
    let buffer = JsFuture::from(response.array_buffer().map_err(|e| js_error(&e))?)
        .await
        .map_err(|e| format!("browser storage returned an unreadable entry: {}", js_error(&e)))?;
    Ok(Some(Uint8Array::new(&buffer).to_vec()))
}

pub async fn put(key: &str, bytes: &[u8]) -> Result<(), String> {
    let cache = open().await?;
    let body = Uint8Array::from(bytes);
    let response = Response::new_with_opt_buffer_source(Some(&body))
        .map_err(|e| format!("cannot store {key}: {}", js_error(&e)))?;
    JsFuture::from(cache.put_with_str(key, &response))
        .await
        .map_err(|e| format!("browser storage refused {key} (quota?): {}", js_error(&e)))?;
    Ok(())
}

/// Bytes a download may run ahead of browser storage: enough that the cache keeps writing while
/// the worker uploads a large tensor, little against a model's size.
const BACKLOG_BYTES: f64 = (128 << 20) as f64;

/// A body written into browser storage while it arrives, so a large download is kept without
/// ever being whole in wasm memory. The entry exists only once [`StoreWriter::finish`] has
/// closed it: a load that fails [`StoreWriter::abandon`]s it and nothing is stored.
pub struct StoreWriter {
    /// The `ReadableStreamDefaultController` of the body the cache is reading.
    controller: JsValue,
    /// The cache's `put`, which settles once the body is closed (stored) or errored (not).
    put: JsFuture,
}

impl StoreWriter {
    pub async fn new(key: &str) -> Result<StoreWriter, String> {
        let cache = open().await?;
        // The stream calls `start` with its controller inside the constructor.
        let slot = std::rc::Rc::new(std::cell::RefCell::new(JsValue::UNDEFINED));
        let keep = slot.clone();
        let start = wasm_bindgen::closure::Closure::once_into_js(move |controller: JsValue| {
            *keep.borrow_mut() = controller;
        });
        let source = js_sys::Object::new();
        js_sys::Reflect::set(&source, &"start".into(), &start).map_err(|e| js_error(&e))?;
        // Counted in bytes from zero, so `desiredSize` is minus the bytes queued.
        let strategy = web_sys::ByteLengthQueuingStrategy::new(&web_sys::QueuingStrategyInit::new(0.0))
            .map_err(|e| js_error(&e))?;
        let body = web_sys::ReadableStream::new_with_underlying_source_and_strategy(
            &source,
            strategy.unchecked_ref(),
        )
        .map_err(|e| format!("cannot store {key}: {}", js_error(&e)))?;
        let controller = slot.borrow().clone();
        let response = Response::new_with_opt_readable_stream(Some(&body))
            .map_err(|e| format!("cannot store {key}: {}", js_error(&e)))?;
        let put = JsFuture::from(cache.put_with_str(key, &response));
        Ok(StoreWriter { controller, put })
    }

    /// Appends bytes (queued for the cache as they are; storage failures surface in `finish`).
    pub fn write(&self, chunk: &Uint8Array) {
        let _ = self.call("enqueue", chunk);
    }

    /// Whether the cache has fallen behind: more than [`BACKLOG_BYTES`] queued, held in the
    /// worker's JS memory. Without this a download faster than the disk queues most of the file
    /// there (a GPT-2 XL is 6.4 GB).
    pub fn backlogged(&self) -> bool {
        js_sys::Reflect::get(&self.controller, &"desiredSize".into())
            .ok()
            .and_then(|d| d.as_f64())
            .is_some_and(|d| d < -BACKLOG_BYTES)
    }

    /// Closes the body and waits until the cache has stored it.
    pub async fn finish(self, key: &str) -> Result<(), String> {
        self.call("close", &JsValue::UNDEFINED).map_err(|e| js_error(&e))?;
        self.put
            .await
            .map(|_| ())
            .map_err(|e| format!("browser storage refused {key} (quota?): {}", js_error(&e)))
    }

    /// Errors the body: the cache stores nothing.
    pub async fn abandon(self) {
        let _ = self.call("error", &JsValue::from_str("the load failed"));
        let _ = self.put.await;
    }

    fn call(&self, method: &str, arg: &JsValue) -> Result<JsValue, JsValue> {
        let f: js_sys::Function = js_sys::Reflect::get(&self.controller, &method.into())?.dyn_into()?;
        f.call1(&self.controller, arg)
    }
}

pub async fn delete(key: &str) -> Result<(), String> {
    let cache = open().await?;
    JsFuture::from(cache.delete_with_str(key)).await.map(|_: JsValue| ()).map_err(|e| js_error(&e))
}

/// ", browser storage holds X of Y" from `navigator.storage.estimate()`, or nothing where the
/// browser does not say. Read through `Reflect` so no extra web-sys features are compiled.
pub async fn usage() -> String {
    let estimate = async {
        let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
        let manager = js_sys::Reflect::get(&navigator, &"storage".into()).ok()?;
        let call =
            js_sys::Reflect::get(&manager, &"estimate".into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
        let promise = call.call0(&manager).ok()?.dyn_into::<js_sys::Promise>().ok()?;
        let result = JsFuture::from(promise).await.ok()?;
        let number = |field: &str| js_sys::Reflect::get(&result, &field.into()).ok()?.as_f64();
        Some((number("usage")?, number("quota")?))
    };
    match estimate.await {
        Some((used, quota)) => format!(
            " (browser storage holds {} of the {} this site may use)",
            crate::units::human_bytes(used as u64),
            crate::units::human_bytes(quota as u64)
        ),
        None => String::new(),
    }
}
