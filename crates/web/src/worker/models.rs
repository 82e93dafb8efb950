//! Models for the fill-mask and generate panels: from a Hugging Face URL, from files picked on
//! disk, or from the run trained in the pretrain panel. Weights from a URL or a file are
//! streamed onto the device tensor by tensor (`hearth_lm::io::streamed`): the worker's memory
//! holds one tensor at a time, not the file.

use std::cell::RefCell;
use std::rc::Rc;

use hearth_lm::chat::{ChatTemplate, GenerationConfig};
use hearth_lm::io::hf::{load_model_as, shard_files, tokenizer_for_config};
use hearth_lm::io::streamed::ModelStream;
use hearth_lm::model::precision::WeightDtype;
use hearth_lm::train::SourceFiles;
use hearth_lm::{AnyModel, HfFiles, ModelConfig, Tokenizer};
use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};

use super::builtins;
use super::device::Compute;
use super::fetch::{fetch_cached, read_body, stream_cached, Failed, Origin};
use super::state::{self, LoadedModel};
use super::{emit, emit_error, now_ms, read_file};
use crate::hub::directory_url;
use crate::limits::{check_fits, weight_limits, TENSOR_IN_FLIGHT_LIMIT};
use crate::protocol::{Event, LoadStats, ModelInfo, Slot, Topic, TrainArch};
use crate::units::saturating_bytes;

pub async fn load_url(slot: Slot, url: &str) {
    let result = match directory_url(url) {
        Ok(base) => load_from_url(&base, slot).await,
        Err(e) => Err(e),
    };
    publish(slot, result);
}

/// config.json and tokenizer.json whole (small), then the weights streamed onto the device.
async fn load_from_url(base: &str, slot: Slot) -> Result<LoadedModel, String> {
    let topic = Topic::from(slot);
    let config_json = fetch_cached(&format!("{base}config.json"), topic, false, 1 << 20)
        .await?
        .ok_or("config.json is missing")?;
    // Refuse a model the device cannot hold before downloading hundreds of megabytes.
    let config = precheck(&config_json, slot)?;
    let tokenizer_json = fetch_cached(&format!("{base}tokenizer.json"), topic, true, 64 << 20).await?;
    let tokenizer = tokenizer_for(&config_json, tokenizer_json.as_deref(), &config, topic).await?;
    let mut chat = ChatFiles::default();
    if matches!(config, ModelConfig::Llama(_)) {
        // An instruct checkpoint's template and generation config: small, and absent from base models.
        for (name, slot) in chat.slots() {
            *slot = fetch_cached(&format!("{base}{name}"), topic, true, CHAT_FILE_LIMIT).await?;
        }
    }
    let chat = chat.parse(&config)?;
    let compute = state::compute(topic).ok_or("the compute device is still starting")?;
    // A sharded checkpoint (as SmolLM2 and Qwen publish their larger models) names its files in
    // an index; without one, the weights are one model.safetensors.
    let index =
        fetch_cached(&format!("{base}model.safetensors.index.json"), topic, true, INDEX_LIMIT).await?;
    let files = match &index {
        Some(bytes) => shard_files(bytes).map_err(|e| e.to_string())?,
        None => vec!["model.safetensors".to_string()],
    };
    let sharded = index.is_some();
    let started = now_ms();
    let loading = RefCell::new(Some(Loading::new(&config_json, &compute, topic, sharded)?));
    let model = RefCell::new(None);
    for (i, file) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let url = format!("{base}{file}");
        loading.borrow_mut().as_mut().expect("loading").start_file(file, i, files.len());
        stream_cached(
            &url,
            topic,
            &mut |chunk, origin| loading.borrow_mut().as_mut().expect("loading").push(chunk, origin),
            &mut || {
                if !last {
                    return loading.borrow_mut().as_mut().expect("loading").end_shard();
                }
                let done = loading.borrow_mut().take().expect("loading").finish()?;
                *model.borrow_mut() = Some(done);
                Ok(())
            },
            &mut || {
                if sharded {
                    // The earlier shards' tensors are on the device already; this shard's stored
                    // copy was bad and is gone, so a second load downloads it afresh.
                    return Err(format!("the copy of {file} kept in browser storage was damaged and has been removed: load the model again"));
                }
                *loading.borrow_mut() = Some(Loading::new(&config_json, &compute, topic, false)?);
                Ok(())
            },
        )
        .await?;
    }
    let (model, file_bytes) = model.into_inner().expect("the stream completed");
    let stats = LoadStats {
        files: files_label(files.len()),
        file_bytes,
        seconds: (now_ms() - started) / 1000.0,
        worker_memory: worker_memory(),
    };
    Ok(assemble(
        model,
        tokenizer,
        &config,
        base.to_string(),
        tokenizer_name(tokenizer_json.is_some(), &config),
        Some(stats),
        chat,
    ))
}

/// What the load statistics call the weights' files.
fn files_label(files: usize) -> String {
    if files > 1 {
        format!("{files} shards")
    } else {
        "model.safetensors".into()
    }
}

/// A file name as a message quotes it: at most 80 characters.
fn bounded(name: &str) -> String {
    name.chars().take(80).collect()
}

/// `model.safetensors.index.json`: a few hundred bytes per tensor name (Qwen's is ~30 KB).
const INDEX_LIMIT: u64 = 8 << 20;

/// Files beside the weights that make a checkpoint chat: at most this many bytes each.
const CHAT_FILE_LIMIT: u64 = 1 << 20;

/// `tokenizer_config.json` (its `chat_template` and special tokens), `chat_template.jinja` and
/// `generation_config.json`, where the checkpoint has them.
#[derive(Default)]
struct ChatFiles {
    tokenizer_config: Option<Vec<u8>>,
    jinja: Option<Vec<u8>>,
    generation: Option<Vec<u8>>,
}

impl ChatFiles {
    fn slots(&mut self) -> [(&'static str, &mut Option<Vec<u8>>); 3] {
        [
            ("tokenizer_config.json", &mut self.tokenizer_config),
            ("chat_template.jinja", &mut self.jinja),
            ("generation_config.json", &mut self.generation),
        ]
    }

    /// Without `generation_config.json`, generation stops at `config`'s eos ids (as in transformers).
    fn parse(&self, config: &ModelConfig) -> Result<Chat, String> {
        let files = SourceFiles::from_bytes(
            self.tokenizer_config.as_deref(),
            self.jinja.as_deref(),
            self.generation.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        chat_of(files, config)
    }
}

/// A model's chat template and generation config, and the files they came from.
type Chat = (Option<ChatTemplate>, GenerationConfig, SourceFiles);

fn chat_of(files: SourceFiles, config: &ModelConfig) -> Result<Chat, String> {
    let template = files.chat_template().map_err(|e| e.to_string())?;
    let generation = match &files.generation_config {
        Some(text) => GenerationConfig::from_json(text.as_bytes()).map_err(|e| e.to_string())?,
        None => GenerationConfig::from_model_config(config),
    };
    Ok((template, generation, files))
}

/// What the model line says of a generation config, named by the file it came from
/// (`config.json`'s eos ids where the checkpoint has no `generation_config.json`).
fn describe_generation(g: &GenerationConfig, from_file: bool) -> Option<String> {
    if g.eos_token_ids.is_empty() && g.do_sample.is_none() {
        return None;
    }
    let ids: Vec<String> = g.eos_token_ids.iter().map(u32::to_string).collect();
    let ends =
        if ids.is_empty() { String::new() } else { format!("generation ends at id {}", ids.join(" or ")) };
    let sampling = match g.do_sample {
        Some(true) => format!(
            "; published sampling: temperature {}, top-k {}, top-p {}",
            g.temperature.map_or("1".into(), |t| t.to_string()),
            g.top_k.map_or("off".into(), |k| k.to_string()),
            g.top_p.map_or("off".into(), |p| p.to_string())
        ),
        Some(false) => "; published sampling: greedy".into(),
        None => String::new(),
    };
    let file = if from_file { "generation_config.json" } else { "config.json" };
    Some(format!("{file}: {ends}{sampling}"))
}

/// The weights arriving for one load: what streams them onto the device, with progress.
struct Loading {
    stream: ModelStream,
    topic: Topic,
    backend: String,
    last_report: u64,
    /// The file arriving, and "(shard i of n)" when there are several.
    file: String,
    shard: String,
}

impl Loading {
    fn new(config_json: &[u8], compute: &Compute, topic: Topic, sharded: bool) -> Result<Self, String> {
        let (max_model, max_tensor) = weight_limits(&compute.info);
        let stream =
            ModelStream::new(config_json, &compute.device, compute.info.weights(), max_model, max_tensor)
                .map(|stream| stream.with_in_flight_limit(TENSOR_IN_FLIGHT_LIMIT))
                .map(|stream| if sharded { stream.sharded() } else { stream })
                .map_err(|e| e.to_string())?;
        Ok(Self {
            stream,
            topic,
            backend: compute.info.backend.clone(),
            last_report: 0,
            file: "model.safetensors".into(),
            shard: String::new(),
        })
    }

    /// The next file starts (the `i`th of `n`).
    fn start_file(&mut self, name: &str, i: usize, n: usize) {
        self.file = bounded(name);
        self.shard = if n > 1 { format!(" (shard {} of {n})", i + 1) } else { String::new() };
        self.last_report = 0;
    }

    fn push(&mut self, chunk: &[u8], origin: Origin) -> Result<(), Failed> {
        self.stream.push(chunk).map_err(failed)?;
        // Report every 1% or so: enough for a smooth bar without flooding the page.
        let (done, total) = self.stream.progress();
        let total = total.unwrap_or(0);
        if done - self.last_report > (total / 100).max(1 << 20) || done == total {
            self.last_report = done;
            let from = match origin {
                Origin::Storage => " from browser storage",
                Origin::Network => "",
                Origin::File => " from the file",
            };
            emit(&Event::Progress {
                topic: self.topic,
                label: format!("{}{}{from} → {}, tensor by tensor", self.file, self.shard, self.backend),
                done,
                total,
            });
        }
        Ok(())
    }

    /// A shard has arrived whole (a shard cut short is its bytes' fault).
    fn end_shard(&mut self) -> Result<(), Failed> {
        self.stream.end_shard().map_err(failed)
    }

    /// The model and the bytes of its files.
    fn finish(self) -> Result<(AnyModel, u64), Failed> {
        let bytes = self.stream.received_bytes();
        Ok((self.stream.finish().map_err(failed)?, bytes))
    }
}

/// A bad file (truncated, not safetensors) is the bytes' fault: a stored copy of it is dropped.
fn failed(e: hearth_lm::Error) -> Failed {
    Failed { bad_bytes: matches!(e, hearth_lm::Error::Safetensors(_)), message: e.to_string() }
}

/// The worker's wasm memory: it only grows, so this is its high-water mark.
fn worker_memory() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}

/// The architecture matches the panel and the model fits the device.
fn precheck(config_json: &[u8], slot: Slot) -> Result<ModelConfig, String> {
    let config = ModelConfig::from_json(config_json).map_err(|e| e.to_string())?;
    match (&config, slot) {
        (ModelConfig::Gpt2(_) | ModelConfig::Llama(_), Slot::Generate)
        | (ModelConfig::Bert(_) | ModelConfig::ModernBert(_), Slot::FillMask) => {}
        (ModelConfig::Gpt2(_) | ModelConfig::Llama(_), Slot::FillMask) => {
            return Err(format!(
                "this is a causal model ({}); fill-mask needs a masked LM (BERT, ModernBERT)",
                config.architecture()
            ))
        }
        (ModelConfig::Bert(_) | ModelConfig::ModernBert(_), Slot::Generate) => {
            return Err(format!(
                "this is a masked LM ({}); generation needs a causal LM (GPT-2, Llama, Qwen)",
                config.architecture()
            ))
        }
    }
    if let Some(compute) = state::compute(Topic::from(slot)) {
        let weights = compute.info.weights();
        check_fits(
            &compute.info,
            saturating_bytes(config.weight_bytes(weights)),
            saturating_bytes(config.largest_tensor_bytes(weights)),
        )?;
    }
    Ok(config)
}

/// The directory's tokenizer, or the architecture's built-in one (fetched the first time),
/// checked against the model.
async fn tokenizer_for(
    config_json: &[u8],
    tokenizer_json: Option<&[u8]>,
    config: &ModelConfig,
    topic: Topic,
) -> Result<Tokenizer, String> {
    if let (None, Some(name)) = (tokenizer_json, config.default_tokenizer_name()) {
        builtins::ensure(name, topic).await?;
    }
    let files = HfFiles {
        config_json: config_json.to_vec(),
        tokenizer_json: tokenizer_json.map(<[u8]>::to_vec),
        ..HfFiles::default()
    };
    tokenizer_for_config(&files, config).map_err(|e| e.to_string())
}

fn tokenizer_name(beside: bool, config: &ModelConfig) -> String {
    if beside {
        "tokenizer.json beside the model".to_string()
    } else {
        format!("built-in {}", config.default_tokenizer_name().unwrap_or("none"))
    }
}

pub async fn load_files(slot: Slot, extra: JsValue) {
    publish(slot, load_picked(slot, extra).await);
}

/// Picked files: config and tokenizer read whole, the weights streamed from the file.
async fn load_picked(slot: Slot, extra: JsValue) -> Result<LoadedModel, String> {
    let topic = Topic::from(slot);
    let picked: Vec<web_sys::File> =
        Array::from(&extra).iter().filter_map(|f| f.dyn_into::<web_sys::File>().ok()).collect();
    let find = |pred: &dyn Fn(&str) -> bool| picked.iter().find(|f| pred(&f.name())).cloned();
    let config_file =
        find(&|n| n == "config.json").ok_or("pick config.json together with model.safetensors")?;
    // The weights: model.safetensors, or the shards a picked model.safetensors.index.json names.
    let index = match find(&|n| n == "model.safetensors.index.json") {
        Some(f) => Some(read_file(&f, INDEX_LIMIT, "a shard index").await?),
        None => None,
    };
    let weights: Vec<web_sys::File> = match &index {
        Some(bytes) => shard_files(bytes)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|shard| {
                find(&|n| n == shard).ok_or_else(|| {
                    format!(
                        "pick every shard model.safetensors.index.json names: {shard} is not among the files"
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        None => vec![find(&|n| n == "model.safetensors")
            .or_else(|| find(&|n| n.ends_with(".safetensors")))
            .ok_or("pick a .safetensors file together with config.json")?],
    };
    let config_json = read_file(&config_file, 1 << 20, "a config").await?;
    let config = precheck(&config_json, slot)?;
    let tokenizer_json = match find(&|n| n == "tokenizer.json") {
        Some(f) => Some(read_file(&f, 64 << 20, "a tokenizer").await?),
        None => None,
    };
    let tokenizer = tokenizer_for(&config_json, tokenizer_json.as_deref(), &config, topic).await?;
    let mut chat = ChatFiles::default();
    for (name, slot) in chat.slots() {
        if let Some(f) = find(&|n| n == name) {
            *slot = Some(read_file(&f, CHAT_FILE_LIMIT, "a chat template or generation config").await?);
        }
    }
    let chat = chat.parse(&config)?;
    let compute = state::compute(topic).ok_or("the compute device is still starting")?;
    let started = now_ms();
    let mut loading = Loading::new(&config_json, &compute, topic, index.is_some())?;
    for (i, file) in weights.iter().enumerate() {
        let name = file.name();
        if i > 0 {
            loading.end_shard().map_err(|f| f.message)?;
        }
        loading.start_file(&name, i, weights.len());
        read_body(
            &file.stream(),
            &name,
            &mut |chunk, _| loading.push(chunk, Origin::File).map_err(|f| f.message),
            &|| false,
        )
        .await
        .map_err(|e| format!("{}: {e}", bounded(&name)))?;
    }
    let (model, file_bytes) = loading.finish().map_err(|f| f.message)?;
    let stats = LoadStats {
        files: files_label(weights.len()),
        file_bytes,
        seconds: (now_ms() - started) / 1000.0,
        worker_memory: worker_memory(),
    };
    let source = "files from disk".to_string();
    Ok(assemble(
        model,
        tokenizer,
        &config,
        source,
        tokenizer_name(tokenizer_json.is_some(), &config),
        Some(stats),
        chat,
    ))
}

pub async fn use_trained(slot: Slot) {
    let topic = Topic::from(slot);
    let Some(run) = state::run() else {
        return emit_error(topic, "nothing has been trained yet: start a run in the Pretrain panel");
    };
    let result = async {
        // The run's export is in memory already (a model trained in the tab is small).
        let files = run.export().await?;
        let config = precheck(&files.config_json, slot)?;
        let compute = state::compute(topic).ok_or("the compute device is still starting")?;
        let model = load_model_as(
            &files.config_json,
            &files.model_safetensors,
            &compute.device,
            compute.info.weights(),
        )
        .map_err(|e| e.to_string())?;
        let tokenizer =
            tokenizer_for(&files.config_json, files.tokenizer_json.as_deref(), &config, topic).await?;
        let name = tokenizer_name(files.tokenizer_json.is_some(), &config);
        Ok::<_, String>(assemble(
            model,
            tokenizer,
            &config,
            format!("trained here (step {})", run.step()),
            name,
            None,
            // A fine-tuned instruct model chats with its source's template.
            chat_of(super::training::run_source_files(&*run.trainer.lock().await), &config)?,
        ))
    }
    .await;
    publish(slot, result);
}

fn assemble(
    model: AnyModel,
    tokenizer: Tokenizer,
    config: &ModelConfig,
    source: String,
    tokenizer_name: String,
    load: Option<LoadStats>,
    (chat, generation, source_files): Chat,
) -> LoadedModel {
    let mut info = describe(config, model.weight_dtype(), source, tokenizer_name, load);
    info.chat = chat.is_some();
    info.generation = describe_generation(&generation, source_files.generation_config.is_some());
    LoadedModel { model, tokenizer, info, chat, generation, source_files }
}

fn publish(slot: Slot, result: Result<LoadedModel, String>) {
    match result {
        Ok(loaded) => {
            emit(&Event::ModelLoaded { slot, info: loaded.info.clone() });
            state::set_model(slot, Rc::new(loaded));
        }
        Err(e) => emit_error(Topic::from(slot), e),
    }
}

fn describe(
    config: &ModelConfig,
    weights: WeightDtype,
    source: String,
    tokenizer: String,
    load: Option<LoadStats>,
) -> ModelInfo {
    let (arch, layers, hidden, vocab_size, context) = match config {
        ModelConfig::Gpt2(c) => (TrainArch::Gpt2, c.n_layer, c.n_embd, c.vocab_size, c.n_positions),
        ModelConfig::Bert(c) => {
            (TrainArch::Bert, c.num_hidden_layers, c.hidden_size, c.vocab_size, c.max_position_embeddings)
        }
        ModelConfig::Llama(c) => {
            (TrainArch::Llama, c.num_hidden_layers, c.hidden_size, c.vocab_size, c.max_position_embeddings)
        }
        ModelConfig::ModernBert(c) => (
            TrainArch::ModernBert,
            c.num_hidden_layers,
            c.hidden_size,
            c.vocab_size,
            c.max_position_embeddings,
        ),
    };
    ModelInfo {
        source,
        arch,
        architecture: config.architecture().into(),
        params: config.num_parameters(),
        layers,
        hidden,
        vocab_size,
        context,
        largest_tensor: saturating_bytes(config.largest_tensor_bytes(weights)),
        weights: weights.name().into(),
        tokenizer,
        load,
        chat: false,
        generation: None,
    }
}
