//! The worker: every model, tokenizer and training step runs here, off the page's thread, so
//! the UI stays responsive. Requests are handled concurrently on the worker's event loop; the
//! long ones (generation, training) give the loop back between tokens and steps. Those that
//! compute on the device take turns in one queue, which the page's activity line shows
//! (`activity.rs`).

mod activity;
mod builtins;
mod device;
mod fetch;
mod infer;
mod inside;
mod models;
mod opened;
mod owner;
mod run;
mod runs;
mod state;
mod storage;
mod stored;
mod train_device;
mod training;

use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::protocol::{Event, InsideQuery, JobKind, Request, Slot, Topic};
use crate::units::human_bytes;

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Sends an event to the page.
pub(crate) fn emit(event: &Event) {
    emit_with(event, &JsValue::NULL);
}

/// Sends an event with a JS value beside it (the bytes of a download).
pub(crate) fn emit_with(event: &Event, extra: &JsValue) {
    let json = serde_json::to_string(event).expect("events serialize");
    let message = Array::of2(&JsValue::from_str(&json), extra);
    if let Err(e) = scope().post_message(&message) {
        web_sys::console::error_1(&e);
    }
}

pub(crate) fn emit_error(topic: Topic, message: impl Into<String>) {
    emit(&Event::Error { topic, message: message.into() });
}

pub(crate) fn emit_bytes(event: &Event, bytes: &[u8]) {
    emit_with(event, &Uint8Array::from(bytes).into());
}

/// The worker's entry point: installs the message handler.
pub fn start() {
    console_error_panic_hook::set_once();
    let handler = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        let data = Array::from(&event.data());
        let json = data.get(0).as_string().unwrap_or_default();
        let extra = data.get(1);
        match serde_json::from_str::<Request>(&json) {
            Ok(request) => wasm_bindgen_futures::spawn_local(handle(request, extra)),
            Err(e) => emit_error(Topic::Device, format!("bad request from the page: {e}")),
        }
    });
    scope().set_onmessage(Some(handler.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    handler.forget();
    // Messages posted before the handler existed were dropped: the page waits for this.
    emit(&Event::Started);
}

/// How a request shows on the activity line: its kind, panel, label, the key under which a newer
/// one supersedes it while it waits, and whether it waits for the device.
fn job_of(request: &Request) -> Option<(JobKind, Topic, String, Option<String>, bool)> {
    let panel = |slot: &Slot| match slot {
        Slot::FillMask => "Fill mask",
        Slot::Generate => "Generate",
    };
    Some(match request {
        Request::LoadUrl { slot, .. } | Request::LoadFiles { slot } | Request::UseTrained { slot } => {
            (JobKind::Load, Topic::from(*slot), format!("loading a model ({})", panel(slot)), None, false)
        }
        Request::FillMask { .. } => (JobKind::FillMask, Topic::FillMask, "fill mask".into(), None, true),
        Request::Distribution { .. } => (
            JobKind::Distribution,
            Topic::Generate,
            "next-token distribution".into(),
            Some("distribution".into()),
            true,
        ),
        Request::NextToken { .. } => (JobKind::NextToken, Topic::Generate, "next token".into(), None, true),
        Request::Generate { max_new_tokens, .. } => {
            (JobKind::Generate, Topic::Generate, format!("generating {max_new_tokens} tokens"), None, true)
        }
        Request::Chat { .. } => (JobKind::Generate, Topic::Generate, "chat reply".into(), None, true),
        Request::Verify { slot, .. } => {
            (JobKind::Verify, Topic::from(*slot), format!("check against CPU ({})", panel(slot)), None, true)
        }
        Request::VerifyInside { slot, .. } => (
            JobKind::Verify,
            Topic::from(*slot),
            format!("check views against CPU ({})", panel(slot)),
            None,
            true,
        ),
        Request::Inside { slot, query, .. } => {
            // (view, question): a newer question of the same kind replaces one still waiting (the
            // attention of another layer); a view's other questions (the projection beside the
            // neighbours) keep their place.
            let (view, question) = match query {
                InsideQuery::Attention { .. } => ("attention", "layer"),
                InsideQuery::AttentionFrom { .. } => ("attention", "token"),
                InsideQuery::Lens { .. } => ("logit lens", "lens"),
                InsideQuery::Surprisal { .. } => ("surprisal", "surprisal"),
                InsideQuery::Nearest { .. } => ("embeddings", "nearest"),
                InsideQuery::Projection { .. } => ("embeddings", "projection"),
            };
            let key = format!("inside {} {question}", panel(slot));
            (JobKind::Inside, Topic::from(*slot), format!("{view} ({})", panel(slot)), Some(key), true)
        }
        Request::TrainStart { .. } => {
            (JobKind::StartTraining, Topic::Pretrain, "start training".into(), None, true)
        }
        _ => return None,
    })
}

async fn handle(request: Request, extra: JsValue) {
    let ticket = match job_of(&request) {
        Some((kind, topic, label, key, true)) => match activity::queue(kind, topic, label, key).await {
            Some(ticket) => Some(ticket),
            None => return,
        },
        Some((kind, topic, label, _, false)) => Some(activity::track(kind, topic, label)),
        None => None,
    };
    match request {
        Request::Init { force_cpu, fail_tuned, crash_restore, owner } => {
            state::init(force_cpu, fail_tuned).await;
            runs::set_crash_restore(crash_restore);
            // Once the device is up: the tab that gets the runs restores the saved one and sends
            // the runs table again (the page may have asked before it was back).
            owner::claim(owner);
        }
        Request::TakeOver => owner::take_over(),
        Request::SavedRetry => {
            training::restore_saved(true).await;
            runs::list_runs().await;
        }
        Request::SavedDownload => runs::download_saved().await,
        Request::SavedSetAside => runs::set_saved_aside().await,
        Request::RunsClear => {
            if let Err(e) = runs::clear_kept().await {
                emit_error(Topic::Device, format!("cannot delete the kept runs: {e}"));
            }
            stored::list().await;
        }
        Request::Tokenize { seq, tokenizer, text } => infer::tokenize(seq, &tokenizer, &text).await,
        Request::Decode { tokenizer, ids } => infer::decode(&tokenizer, &ids).await,
        Request::LoadUrl { slot, url } => models::load_url(slot, &url).await,
        Request::LoadFiles { slot } => models::load_files(slot, extra).await,
        Request::UseTrained { slot } => models::use_trained(slot).await,
        Request::FillMask { text, top_k } => infer::fill_mask(&text, top_k).await,
        Request::Distribution { seq, prompt, sampling } => infer::distribution(seq, &prompt, sampling).await,
        Request::NextToken { prompt } => infer::next_token(&prompt).await,
        Request::Generate { prompt, sampling, seed, max_new_tokens } => {
            infer::generate(&prompt, sampling, seed, max_new_tokens).await
        }
        Request::StopGenerate => {
            // A generation still waiting for the device leaves the queue; a running one stops at
            // its next token.
            activity::cancel_waiting(JobKind::Generate);
            state::bump_generation();
        }
        Request::Cancel { job } => activity::cancel(job),
        Request::Chat { system, turns, sampling, seed, max_new_tokens } => {
            infer::chat(&system, &turns, sampling, seed, max_new_tokens).await
        }
        Request::Verify { slot, text } => infer::verify(slot, &text).await,
        Request::Inside { seq, slot, text, query } => inside::inside(seq, slot, &text, query).await,
        Request::VerifyInside { slot, text } => inside::verify(slot, &text).await,
        Request::LoadCorpus { text_field } => training::load_corpus(extra, text_field).await,
        Request::LoadSample => training::load_sample().await,
        Request::RunsList => runs::list_runs().await,
        Request::RunRename { id, name } => runs::rename_run(id, name).await,
        Request::RunDelete { id } => runs::delete_run(id).await,
        Request::RunDownload { id } => training::download_run(id).await,
        Request::RunHandoff { id } => training::handoff_run(id).await,
        Request::OpenRun { paths } => opened::open_run(paths, extra).await,
        Request::TrainStart { settings } => training::start(settings, ticket).await,
        Request::TrainControl { action } => training::control(action).await,
        Request::TrainExtend { steps } => training::extend(steps).await,
        Request::DownloadTrained => training::download().await,
        Request::StoredList => stored::list().await,
        Request::StoredClear => stored::clear().await,
        Request::Crash => panic!("hearth test crash: the worker traps on request"),
        Request::LoseDevice => device::lose_for_test(),
    }
}

/// Lets the event loop run (incoming messages, the page's rendering of what we sent).
pub(crate) async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Milliseconds since the worker started (for tokens/s and ETA).
pub(crate) fn now_ms() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map_or(0.0, |p| p.now())
}

/// Bytes of a picked file, refusing files over `limit` before reading them.
pub(crate) async fn read_file(file: &web_sys::File, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let size = file.size() as u64;
    if size > limit {
        return Err(format!(
            "{} is {} — too large for browser memory as {what} (limit {})",
            file.name(),
            human_bytes(size),
            human_bytes(limit)
        ));
    }
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("cannot read {}: {}", file.name(), js_error(&e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A JS exception in words (shared with the page, which reads the adapter the same way).
pub(crate) use crate::adapter::js::message as js_error;
