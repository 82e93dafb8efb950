//! Downloads with a progress bar, kept in browser storage so the second visit is instant.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response, WorkerGlobalScope};

use super::{emit, js_error, storage};
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

pub(super) async fn fetch_with_progress(
    url: &str,
    name: &str,
    topic: Topic,
    optional: bool,
    limit: u64,
) -> Result<Option<Vec<u8>>, String> {
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
    let Some(body) = response.body() else {
        return Ok(Some(Vec::new()));
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total as usize);
    let mut last_report = 0u64;
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| format!("download of {name} broke off: {}", js_error(&e)))?;
        if Reflect::get(&chunk, &JsValue::from_str("done")).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let value = Reflect::get(&chunk, &JsValue::from_str("value")).map_err(|e| js_error(&e))?;
        bytes.extend_from_slice(&Uint8Array::new(&value).to_vec());
        if bytes.len() as u64 > limit {
            return Err(format!("{name} is larger than this page can hold ({})", human_bytes(limit)));
        }
        // Report every 1% or so: enough for a smooth bar without flooding the page.
        let done = bytes.len() as u64;
        if done - last_report > (total / 100).max(256 << 10) {
            last_report = done;
            emit(&Event::Progress { topic, label: format!("downloading {name}"), done, total });
        }
    }
    emit(&Event::Progress {
        topic,
        label: format!("downloaded {name}"),
        done: bytes.len() as u64,
        total: bytes.len() as u64,
    });
    Ok(Some(bytes))
}
