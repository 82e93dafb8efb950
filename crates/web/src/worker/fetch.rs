//! Downloads with a progress bar, kept in browser storage so the second visit is instant.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader, Response, WorkerGlobalScope};

use super::{emit, js_error, storage, yield_now};
use crate::hub::check_download;
use crate::protocol::{Event, Topic};
use crate::units::human_bytes;

/// The bytes at `url`: from browser storage if an earlier visit kept them, else fetched with
/// progress reports for `topic` and then stored. `Ok(None)` when the server says 404 and
/// `optional` (a directory without `tokenizer.json`).
pub async fn fetch_cached(
    url: &str,
    topic: Topic,
    optional: bool,
    limit: u64,
) -> Result<Option<Vec<u8>>, String> {
    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    if let Ok(Some(bytes)) = storage::get(url).await {
        // An entry kept by an older version may be a bad answer: check it like a download.
        if check_download(&name, &bytes).is_ok() {
            emit(&Event::Progress {
                topic,
                label: format!("{name}: from browser storage"),
                done: bytes.len() as u64,
                total: bytes.len() as u64,
            });
            return Ok(Some(bytes));
        }
        let _ = storage::delete(url).await;
    }
    let Some(bytes) = fetch_with_progress(url, &name, topic, optional, limit).await? else {
        return Ok(None);
    };
    // Only what parses is kept: a bad answer is reported now and fetched afresh next time.
    check_download(&name, &bytes).map_err(|e| format!("{url}: {e}"))?;
    if let Err(e) = storage::put(url, &bytes).await {
        // Still usable now; only the next visit will download again.
        emit(&Event::Notice { topic, message: format!("{name} was not kept for next time: {e}") });
    }
    Ok(Some(bytes))
}

/// `Content-Length`, when the server sent it (read through JS: one header does not warrant
/// another web-sys feature, which would rebuild every crate that uses web-sys).
fn content_length(response: &Response) -> Option<u64> {
    let headers = Reflect::get(response, &JsValue::from_str("headers")).ok()?;
    let get: js_sys::Function = Reflect::get(&headers, &JsValue::from_str("get")).ok()?.dyn_into().ok()?;
    get.call1(&headers, &JsValue::from_str("content-length")).ok()?.as_string()?.parse().ok()
}

/// The response for `url`, checked: `Ok(None)` on 404 when `optional`, an error on any other
/// failure or a `Content-Length` over `limit`. Returns the length when the server sent it.
async fn open_download(
    url: &str,
    name: &str,
    optional: bool,
    limit: u64,
) -> Result<Option<(Response, u64)>, String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let response: Response = JsFuture::from(scope.fetch_with_str(url))
        .await
        .map_err(|e| {
            format!("download of {url} failed (offline, or the server does not allow it): {}", js_error(&e))
        })?
        .unchecked_into();
    if response.status() == 404 && optional {
        return Ok(None);
    }
    if !response.ok() {
        return Err(format!(
            "download of {url} failed: HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    let total = content_length(&response).unwrap_or(0);
    if total > limit {
        return Err(format!(
            "{name} is {}: too large for this page (limit {})",
            human_bytes(total),
            human_bytes(limit)
        ));
    }
    Ok(Some((response, total)))
}

/// What [`read_body`] hands each chunk to: its bytes, and the JS chunk they were copied from.
pub(super) type BodyChunk<'a> = dyn FnMut(&[u8], &Uint8Array) -> Result<(), String> + 'a;

/// Hands `on_chunk` every chunk of `body` as it arrives, the bytes copied into `buffer` (which
/// is reused, so memory holds one chunk, not the body) and the JS chunk beside them. While
/// `backlog` says so (a consumer behind, such as browser storage writing a copy), reading waits.
pub(super) async fn read_body(
    body: &ReadableStream,
    name: &str,
    on_chunk: &mut BodyChunk<'_>,
    backlog: &dyn Fn() -> bool,
) -> Result<(), String> {
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut buffer = Vec::new();
    let result: Result<(), String> = async {
        loop {
            let chunk = JsFuture::from(reader.read())
                .await
                .map_err(|e| format!("reading {name} broke off: {}", js_error(&e)))?;
            if Reflect::get(&chunk, &JsValue::from_str("done")).ok().and_then(|d| d.as_bool()).unwrap_or(true)
            {
                return Ok(());
            }
            let value: Uint8Array =
                Reflect::get(&chunk, &JsValue::from_str("value")).map_err(|e| js_error(&e))?.unchecked_into();
            buffer.resize(value.length() as usize, 0);
            value.copy_to(&mut buffer);
            on_chunk(&buffer, &value)?;
            while backlog() {
                yield_now().await;
            }
        }
    }
    .await;
    if result.is_err() {
        // Stop the source (a download, a file read) instead of leaving it running.
        let _ = reader.cancel();
    }
    result
}

pub(super) async fn fetch_with_progress(
    url: &str,
    name: &str,
    topic: Topic,
    optional: bool,
    limit: u64,
) -> Result<Option<Vec<u8>>, String> {
    let Some((response, total)) = open_download(url, name, optional, limit).await? else {
        return Ok(None);
    };
    let Some(body) = response.body() else {
        return Ok(Some(Vec::new()));
    };
    let mut bytes = Vec::with_capacity(total as usize);
    let mut last_report = 0u64;
    read_body(
        &body,
        name,
        &mut |chunk, _| {
            bytes.extend_from_slice(chunk);
            if bytes.len() as u64 > limit {
                return Err(format!("{name} is larger than this page can hold ({})", human_bytes(limit)));
            }
            // Report every 1% or so: enough for a smooth bar without flooding the page.
            let done = bytes.len() as u64;
            if done - last_report > (total / 100).max(256 << 10) {
                last_report = done;
                emit(&Event::Progress { topic, label: format!("downloading {name}"), done, total });
            }
            Ok(())
        },
        &|| false,
    )
    .await?;
    emit(&Event::Progress {
        topic,
        label: format!("downloaded {name}"),
        done: bytes.len() as u64,
        total: bytes.len() as u64,
    });
    Ok(Some(bytes))
}

/// Where a streamed file comes from, for its progress label.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Storage,
    Network,
    File,
}

/// Why streaming a file failed, and whether its bytes are at fault (a stored copy that is
/// truncated or not the format) rather than what they hold (a model that does not fit).
pub struct Failed {
    pub message: String,
    pub bad_bytes: bool,
}

/// What [`stream_cached`] hands each chunk to, with where it came from.
pub type FileChunk<'a> = dyn FnMut(&[u8], Origin) -> Result<(), Failed> + 'a;

/// Streams the file at `url` into `on_chunk` — from browser storage if an earlier visit kept
/// it, else from the network while writing it to storage — without holding it whole. It is
/// kept only if `on_chunk` and `complete` accept every byte (what does not load is not kept).
/// A stored copy whose bytes are at fault is forgotten and downloaded afresh, `restart` called
/// before the second attempt.
pub async fn stream_cached(
    url: &str,
    topic: Topic,
    on_chunk: &mut FileChunk<'_>,
    complete: &mut dyn FnMut() -> Result<(), Failed>,
    restart: &mut dyn FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    if let Ok(Some(stored)) = storage::response(url).await {
        if let Some(body) = stored.body() {
            let mut failure = None;
            let read = read_body(
                &body,
                &name,
                &mut |chunk, _| {
                    on_chunk(chunk, Origin::Storage).map_err(|f| {
                        let message = f.message.clone();
                        failure = Some(f);
                        message
                    })
                },
                &|| false,
            )
            .await;
            let result = match (read, failure) {
                (Ok(()), _) => complete(),
                (Err(_), Some(failure)) => Err(failure),
                // The storage itself could not be read: as good as a bad copy.
                (Err(message), None) => Err(Failed { message, bad_bytes: true }),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(f) if !f.bad_bytes => return Err(f.message),
                Err(_) => {}
            }
        }
        let _ = storage::delete(url).await;
        restart()?;
    }
    let (response, _) = open_download(url, &name, false, u64::MAX).await?.ok_or("not found")?;
    let Some(body) = response.body() else {
        return Err(format!("{name}: the server sent no body"));
    };
    let writer = storage::StoreWriter::new(url).await.ok();
    let read = read_body(
        &body,
        &name,
        &mut |chunk, js| {
            if let Some(w) = &writer {
                w.write(js);
            }
            on_chunk(chunk, Origin::Network).map_err(|f| f.message)
        },
        &|| writer.as_ref().is_some_and(storage::StoreWriter::backlogged),
    )
    .await
    .and_then(|()| complete().map_err(|f| f.message));
    match (read, writer) {
        (Ok(()), Some(writer)) => {
            if let Err(e) = writer.finish(url).await {
                // Loaded all the same; only the next visit will download again.
                emit(&Event::Notice { topic, message: format!("{name} was not kept for next time: {e}") });
            }
            Ok(())
        }
        (Ok(()), None) => Ok(()),
        (Err(e), writer) => {
            if let Some(writer) = writer {
                writer.abandon().await;
            }
            Err(e)
        }
    }
}
