//! Tokenize, fill-mask, next-token and generate requests, and the WebGPU-versus-CPU check.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use burn::tensor::{Int, Tensor};
use hearth_lm::chat::{Message, Now};
use hearth_lm::infer::sampling::{argmax, top_k_probs};
use hearth_lm::io::hf::{export_model, load_model};
use hearth_lm::model::precision::WeightDtype;
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::{AnyModel, Generator, Sampling, Tokenizer};

use super::builtins;
use super::device::cpu_device;
use super::state::LoadedModel;
use super::{emit, emit_error, now_ms, state, yield_now};
use crate::protocol::{Candidate, Event, SamplingParams, Slot, Topic};
use crate::units::parse_ids;

/// How many ranked candidates the charts show.
const CANDIDATES: usize = 10;

thread_local! {
    /// Parsing GPT-2's tokenizer.json takes a while; the tokenize panel asks on every keystroke.
    static BUILTIN: RefCell<HashMap<String, Rc<Tokenizer>>> = RefCell::new(HashMap::new());
}

async fn tokenizer_named(name: &str) -> Result<Rc<Tokenizer>, String> {
    if name == "trained" {
        return state::run()
            .map(|run| run.tokenizer())
            .ok_or_else(|| "nothing has been trained yet: its tokenizer appears after a run starts".into());
    }
    if let Some(t) = BUILTIN.with(|b| b.borrow().get(name).cloned()) {
        return Ok(t);
    }
    builtins::ensure(name, Topic::Tokenize).await?;
    let t = Rc::new(Tokenizer::builtin(name).map_err(|e| e.to_string())?);
    BUILTIN.with(|b| b.borrow_mut().insert(name.to_string(), t.clone()));
    Ok(t)
}

pub async fn tokenize(seq: u64, tokenizer: &str, text: &str) {
    let result = tokenizer_named(tokenizer).await.and_then(|t| t.encode(text).map_err(|e| e.to_string()));
    match result {
        Ok(enc) => emit(&Event::Tokenized {
            seq,
            ids: enc.ids,
            tokens: enc.tokens,
            attention_mask: enc.attention_mask,
            special: enc.special_tokens_mask.iter().map(|&s| s == 1).collect(),
        }),
        Err(e) => emit_error(Topic::Tokenize, e),
    }
}

pub async fn decode(tokenizer: &str, ids: &str) {
    let result = match parse_ids(ids) {
        Ok(ids) => tokenizer_named(tokenizer).await.and_then(|t| t.decode(&ids).map_err(|e| e.to_string())),
        Err(e) => Err(e),
    };
    match result {
        Ok(text) => emit(&Event::Decoded { text }),
        Err(e) => emit_error(Topic::Tokenize, e),
    }
}

pub(super) fn loaded(slot: Slot) -> Option<Rc<LoadedModel>> {
    let model = state::model(slot);
    if model.is_none() {
        let what = match slot {
            Slot::FillMask => "a BERT masked LM",
            Slot::Generate => "a GPT-2 model",
        };
        emit_error(
            Topic::from(slot),
            format!("load {what} first (hub URL, files, or the model trained here)"),
        );
    }
    model
}

pub(super) fn candidates(
    tokenizer: &Tokenizer,
    ranked: impl IntoIterator<Item = (u32, f32)>,
) -> Vec<Candidate> {
    ranked
        .into_iter()
        .map(|(id, prob)| Candidate { id, token: tokenizer.decode(&[id]).unwrap_or_default(), prob })
        .collect()
}

pub async fn fill_mask(text: &str, top_k: usize) {
    let Some(m) = loaded(Slot::FillMask) else { return };
    let Some(model) = m.model.masked() else { return };
    let mask = m.tokenizer.mask_token().map_or_else(|| "[MASK]".to_string(), |(token, _)| token);
    if !text.contains(&mask) {
        return emit_error(
            Topic::FillMask,
            format!("the text has no {mask}: write {mask} where a word should be predicted"),
        );
    }
    let top_k = top_k.clamp(1, 100);
    match hearth_lm::fill_mask(model, &m.tokenizer, text, top_k).await {
        Ok(masks) => {
            let tokens = m.tokenizer.encode(text).map(|e| e.tokens).unwrap_or_default();
            let masks = masks
                .into_iter()
                .map(|mask| {
                    mask.predictions
                        .into_iter()
                        .map(|p| Candidate { id: p.id, token: p.token, prob: p.prob as f32 })
                        .collect()
                })
                .collect();
            emit(&Event::FillMasked { tokens, masks })
        }
        Err(e) => emit_error(Topic::FillMask, e.to_string()),
    }
}

/// Prompt ids; an empty prompt starts from `<|endoftext|>` as GPT-2 itself does.
fn prompt_ids(tokenizer: &Tokenizer, prompt: &str) -> Result<Vec<u32>, String> {
    let ids = tokenizer.encode_ids(prompt).map_err(|e| e.to_string())?;
    if !ids.is_empty() {
        return Ok(ids);
    }
    tokenizer
        .token_to_id("<|endoftext|>")
        .map(|id| vec![id])
        .ok_or_else(|| "type a prompt to continue".to_string())
}

pub fn sampling_of(p: SamplingParams) -> Result<Sampling, String> {
    let top_k = (p.top_k > 0).then_some(p.top_k);
    let top_p = (p.top_p < 1.0).then_some(p.top_p);
    Sampling::new(p.temperature, top_k, top_p).map_err(|e| e.to_string())
}

/// Logits of the next token after `ids` with the generate panel's model.
async fn next_logits(m: &LoadedModel, ids: &[u32]) -> Result<Vec<f32>, String> {
    let Some(model) = m.model.causal() else { return Err("not a causal model".into()) };
    let mut generator = Generator::new(model, ids, Sampling::ArgMax, 0).map_err(|e| e.to_string())?;
    generator.next_logits().await.map_err(|e| e.to_string())
}

pub async fn distribution(seq: u64, prompt: &str, params: SamplingParams) {
    let Some(m) = loaded(Slot::Generate) else { return };
    let result = async {
        let sampling = sampling_of(params)?;
        let logits = next_logits(&m, &prompt_ids(&m.tokenizer, prompt)?).await?;
        let before = top_k_probs(&logits, CANDIDATES).into_iter().map(|(id, p)| (id, p as f32));
        let mut after = sampling.distribution(&logits);
        after.truncate(CANDIDATES);
        Ok::<_, String>((candidates(&m.tokenizer, before), candidates(&m.tokenizer, after)))
    }
    .await;
    match result {
        Ok((before, after)) => emit(&Event::Distribution { seq, before, after }),
        Err(e) => emit_error(Topic::Generate, e),
    }
}

pub async fn next_token(prompt: &str) {
    let Some(m) = loaded(Slot::Generate) else { return };
    let result = async {
        let mut ids = prompt_ids(&m.tokenizer, prompt)?;
        let logits = next_logits(&m, &ids).await?;
        let chosen = argmax(&logits);
        let ranked = top_k_probs(&logits, CANDIDATES);
        let prob = ranked.iter().find(|(id, _)| *id == chosen).map_or(0.0, |(_, p)| *p as f32);
        if prompt.is_empty() {
            // The `<|endoftext|>` that started an empty prompt is not part of the text.
            ids.clear();
        }
        ids.push(chosen);
        let text = m.tokenizer.decode(&ids).map_err(|e| e.to_string())?;
        let chosen = candidates(&m.tokenizer, [(chosen, prob)]).remove(0);
        let ranked = candidates(&m.tokenizer, ranked.into_iter().map(|(id, p)| (id, p as f32)));
        Ok::<_, String>((text, chosen, ranked))
    }
    .await;
    match result {
        Ok((prompt, chosen, candidates)) => emit(&Event::NextToken { prompt, chosen, candidates }),
        Err(e) => emit_error(Topic::Generate, e),
    }
}

pub async fn generate(prompt: &str, params: SamplingParams, seed: u64, max_new_tokens: usize) {
    let Some(m) = loaded(Slot::Generate) else { return };
    let epoch = state::bump_generation();
    if let Err(e) = stream(&m, prompt, params, seed, max_new_tokens, epoch).await {
        emit_error(Topic::Generate, e);
    }
}

async fn stream(
    m: &LoadedModel,
    prompt: &str,
    params: SamplingParams,
    seed: u64,
    max_new_tokens: usize,
    epoch: u64,
) -> Result<(), String> {
    let ids = prompt_ids(&m.tokenizer, prompt)?;
    let decode = |new: &[u32]| m.tokenizer.decode(new);
    stream_ids(m, &ids, params, seed, max_new_tokens, epoch, &m.generation.eos_token_ids, &decode).await
}

/// Generates after `ids`, streaming `decode` of the new tokens, until `max_new_tokens`, a Stop,
/// or one of `eos` (the checkpoint's end of text or of a chat reply, included in the ids as
/// transformers' `generate` includes it).
#[allow(clippy::too_many_arguments)]
async fn stream_ids(
    m: &LoadedModel,
    ids: &[u32],
    params: SamplingParams,
    seed: u64,
    max_new_tokens: usize,
    epoch: u64,
    eos: &[u32],
    decode: &dyn Fn(&[u32]) -> hearth_lm::Result<String>,
) -> Result<(), String> {
    let Some(model) = m.model.causal() else { return Err("not a causal model".into()) };
    if max_new_tokens == 0 || max_new_tokens > 2048 {
        return Err(format!("max tokens must be between 1 and 2048, got {max_new_tokens}"));
    }
    let sampling = sampling_of(params)?;
    let mut generator = Generator::new(model, ids, sampling, seed).map_err(|e| e.to_string())?;
    let start = now_ms();
    for i in 0..max_new_tokens {
        if !state::generation_is_current(epoch) {
            break;
        }
        generator.step().await.map_err(|e| e.to_string())?;
        let new = generator.new_tokens().to_vec();
        let text = decode(&new).map_err(|e| e.to_string())?;
        let seconds = (now_ms() - start) / 1000.0;
        let at_eos = new.last().is_some_and(|id| eos.contains(id));
        let done = i + 1 == max_new_tokens || at_eos;
        let tokens_per_s = (i + 1) as f64 / seconds.max(1e-6);
        emit(&Event::Generated { text, ids: new, done, at_eos, tokens_per_s });
        if done {
            return Ok(());
        }
        // Let a "stop" message in between tokens.
        yield_now().await;
    }
    if !state::generation_is_current(epoch) {
        let new = generator.new_tokens().to_vec();
        let text = decode(&new).map_err(|e| e.to_string())?;
        emit(&Event::Generated { text, ids: new, done: true, at_eos: false, tokens_per_s: 0.0 });
    }
    Ok(())
}

/// Chat mode: the conversation through the model's chat template (as transformers'
/// `apply_chat_template(..., add_generation_prompt=True)` renders it), then the reply streamed
/// until the checkpoint's eos ids, decoded without special tokens.
pub async fn chat(system: &str, turns: &[Message], params: SamplingParams, seed: u64, max_new_tokens: usize) {
    let Some(m) = loaded(Slot::Generate) else { return };
    let epoch = state::bump_generation();
    let result = async {
        let template = m.chat.as_ref().ok_or(
            "this model has no chat template (a base model): continue text instead, or load an instruct checkpoint",
        )?;
        let mut messages = Vec::with_capacity(turns.len() + 1);
        if !system.trim().is_empty() {
            messages.push(Message::new("system", system));
        }
        messages.extend(turns.iter().cloned());
        let now = Now { unix_seconds: (js_sys::Date::now() / 1000.0) as i64 };
        let (text, ids) = template.prompt(&m.tokenizer, &messages, now).map_err(|e| e.to_string())?;
        emit(&Event::ChatPrompt { text, tokens: ids.len() });
        let eos = template.eos_ids(&m.generation, &m.tokenizer);
        let decode = |new: &[u32]| m.tokenizer.decode_plain(new);
        stream_ids(&m, &ids, params, seed, max_new_tokens, epoch, &eos, &decode).await
    }
    .await;
    if let Err(e) = result {
        emit_error(Topic::Generate, e);
    }
}

/// Full logits of `ids` (`[t, vocab]`, flattened).
async fn all_logits(model: &AnyModel, ids: &[u32]) -> Result<Vec<f32>, String> {
    // Out of range, the embedding lookup would read past its table on the GPU.
    hearth_lm::model::check_ids(ids, model.vocab_size()).map_err(|e| e.to_string())?;
    match model {
        AnyModel::Gpt2(_) | AnyModel::Llama(_) => {
            let m = model.causal().expect("a decoder");
            let device = m.device();
            let n = m.context();
            let ids = &ids[ids.len().saturating_sub(n)..];
            read_f32(m.forward(ids_tensor(ids, &device), None)).await.map_err(|e| e.to_string())
        }
        AnyModel::Bert(_) | AnyModel::ModernBert(_) => {
            let m = model.masked().expect("an encoder");
            let device = m.device();
            let ids = &ids[..ids.len().min(m.context())];
            let keep = Tensor::<2, Int>::ones([1, ids.len()], &device);
            read_f32(m.mlm_head(m.hidden(ids_tensor(ids, &device), keep))).await.map_err(|e| e.to_string())
        }
    }
}

/// What a comparison with the CPU backend (always f32) compared: the backend, and f16 weights
/// when the model has them, since the difference then includes f16's rounding (~1e-3 on the
/// fixtures, hearth-lm's `tests/f16_weights.rs`), not only the kernels'.
pub(super) fn compared(model: &AnyModel, backend: &str) -> String {
    match model.weight_dtype() {
        WeightDtype::F16 => format!("{backend} (f16 weights)"),
        WeightDtype::F32 => backend.to_string(),
    }
}

/// The same weights on the CPU backend, to compare a device's results with.
pub(super) async fn on_cpu(model: &AnyModel) -> Result<AnyModel, String> {
    let files = export_model(model, None).await.map_err(|e| e.to_string())?;
    load_model(&files.config_json, &files.model_safetensors, &cpu_device()).map_err(|e| e.to_string())
}

/// The slot's model on the current device and on the CPU backend: the largest logit difference.
pub async fn verify(slot: Slot, text: &str) {
    let topic = Topic::from(slot);
    let Some(m) = loaded(slot) else { return };
    let Some(compute) = state::compute(topic) else { return };
    let result = async {
        let mut ids = m.tokenizer.encode_ids(text).map_err(|e| e.to_string())?;
        if ids.is_empty() {
            ids = prompt_ids(&m.tokenizer, "")?;
        }
        let here = all_logits(&m.model, &ids).await?;
        emit(&Event::Progress {
            topic,
            label: "running the same model on the CPU backend".into(),
            done: 0,
            total: 0,
        });
        let cpu = on_cpu(&m.model).await?;
        let there = all_logits(&cpu, &ids).await?;
        if here.len() != there.len() {
            return Err(format!("the backends returned {} and {} logits", here.len(), there.len()));
        }
        // A NaN anywhere is a failed check, not a difference that `max` would skip.
        let max_abs_diff = here
            .iter()
            .zip(&there)
            .map(|(a, b)| (a - b).abs())
            .map(|d| if d.is_nan() { f32::INFINITY } else { d })
            .fold(0.0f32, f32::max);
        Ok::<_, String>((max_abs_diff, here.len()))
    }
    .await;
    let backend = compared(&m.model, &compute.info.backend);
    match result {
        Ok((max_abs_diff, logits)) => emit(&Event::Verified { slot, max_abs_diff, logits, backend }),
        Err(e) => emit_error(topic, e),
    }
}
