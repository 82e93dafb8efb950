//! Models for the fill-mask and generate panels: from a Hugging Face URL, from files picked on
//! disk, or from the run trained in the pretrain panel.

use std::rc::Rc;

use hearth_lm::io::hf::{load_model, load_tokenizer};
use hearth_lm::{HfFiles, ModelConfig};
use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};

use super::fetch::fetch_cached;
use super::state::{self, LoadedModel};
use super::{emit, emit_error, read_file};
use crate::hub::directory_url;
use crate::limits::{check_fits, MODEL_FILE_LIMIT};
use crate::protocol::{Event, ModelInfo, Slot, Topic, TrainArch};

pub async fn load_url(slot: Slot, url: &str) {
    let topic = Topic::from(slot);
    let base = match directory_url(url) {
        Ok(base) => base,
        Err(e) => return emit_error(topic, e),
    };
    let files = match fetch_files(&base, slot).await {
        Ok(files) => files,
        Err(e) => return emit_error(topic, e),
    };
    finish_load(slot, files, base).await;
}

async fn fetch_files(base: &str, slot: Slot) -> Result<HfFiles, String> {
    let topic = Topic::from(slot);
    let config_json = fetch_cached(&format!("{base}config.json"), topic, false, 1 << 20)
        .await?
        .ok_or("config.json is missing")?;
    // Refuse a model the device cannot hold before downloading hundreds of megabytes.
    precheck(&config_json, slot, 0)?;
    let model_safetensors = fetch_cached(&format!("{base}model.safetensors"), topic, false, MODEL_FILE_LIMIT)
        .await?
        .ok_or("model.safetensors is missing")?;
    let tokenizer_json = fetch_cached(&format!("{base}tokenizer.json"), topic, true, 64 << 20).await?;
    Ok(HfFiles { config_json, model_safetensors, tokenizer_json, generation_config_json: None })
}

/// The architecture matches the panel and the model fits the device (`file_bytes` 0 when the
/// weights are not downloaded yet).
fn precheck(config_json: &[u8], slot: Slot, file_bytes: u64) -> Result<ModelConfig, String> {
    let config = ModelConfig::from_json(config_json).map_err(|e| e.to_string())?;
    match (&config, slot) {
        (ModelConfig::Gpt2(_), Slot::Generate) | (ModelConfig::Bert(_), Slot::FillMask) => {}
        (ModelConfig::Gpt2(_), Slot::FillMask) => {
            return Err("this is a GPT-2 (causal) model; fill-mask needs a BERT masked LM".into())
        }
        (ModelConfig::Bert(_), Slot::Generate) => {
            return Err("this is a BERT masked LM; generation needs a GPT-2 causal LM".into())
        }
    }
    if let Some(compute) = state::compute(Topic::from(slot)) {
        check_fits(&compute.info, config.largest_tensor() as u64 * 4, file_bytes)?;
    }
    Ok(config)
}

pub async fn load_files(slot: Slot, extra: JsValue) {
    let topic = Topic::from(slot);
    match read_picked(extra).await {
        Ok(files) => finish_load(slot, files, "files from disk".into()).await,
        Err(e) => emit_error(topic, e),
    }
}

async fn read_picked(extra: JsValue) -> Result<HfFiles, String> {
    let picked: Vec<web_sys::File> =
        Array::from(&extra).iter().filter_map(|f| f.dyn_into::<web_sys::File>().ok()).collect();
    let find = |pred: &dyn Fn(&str) -> bool| picked.iter().find(|f| pred(&f.name())).cloned();
    let config = find(&|n| n == "config.json").ok_or("pick config.json together with model.safetensors")?;
    let weights = find(&|n| n == "model.safetensors")
        .or_else(|| find(&|n| n.ends_with(".safetensors")))
        .ok_or("pick a .safetensors file together with config.json")?;
    let config_json = read_file(&config, 1 << 20, "a config").await?;
    let model_safetensors = read_file(&weights, MODEL_FILE_LIMIT, "a model").await?;
    let tokenizer_json = match find(&|n| n == "tokenizer.json") {
        Some(f) => Some(read_file(&f, 64 << 20, "a tokenizer").await?),
        None => None,
    };
    Ok(HfFiles { config_json, model_safetensors, tokenizer_json, generation_config_json: None })
}

pub async fn use_trained(slot: Slot) {
    let topic = Topic::from(slot);
    let Some(run) = state::run() else {
        return emit_error(topic, "nothing has been trained yet: start a run in the Pretrain panel");
    };
    match run.export().await {
        Ok(files) => finish_load(slot, files, format!("trained here (step {})", run.step())).await,
        Err(e) => emit_error(topic, e),
    }
}

async fn finish_load(slot: Slot, files: HfFiles, source: String) {
    let topic = Topic::from(slot);
    let Some(compute) = state::compute(topic) else { return };
    let result = (|| {
        let config = precheck(&files.config_json, slot, files.model_safetensors.len() as u64)?;
        emit(&Event::Progress {
            topic,
            label: format!("loading weights onto {}", compute.info.backend),
            done: 0,
            total: 0,
        });
        let model = load_model(&files.config_json, &files.model_safetensors, &compute.device)
            .map_err(|e| e.to_string())?;
        let tokenizer = load_tokenizer(&files, &model).map_err(|e| e.to_string())?;
        let tokenizer_name = match &files.tokenizer_json {
            Some(_) => "tokenizer.json beside the model".to_string(),
            None => format!("built-in {}", model.default_tokenizer_name()),
        };
        let info = describe(&config, source, tokenizer_name);
        Ok::<_, String>(LoadedModel { model, tokenizer, info })
    })();
    match result {
        Ok(loaded) => {
            emit(&Event::ModelLoaded { slot, info: loaded.info.clone() });
            state::set_model(slot, Rc::new(loaded));
        }
        Err(e) => emit_error(topic, e),
    }
}

fn describe(config: &ModelConfig, source: String, tokenizer: String) -> ModelInfo {
    let (arch, layers, hidden, vocab_size, context) = match config {
        ModelConfig::Gpt2(c) => (TrainArch::Gpt2, c.n_layer, c.n_embd, c.vocab_size, c.n_positions),
        ModelConfig::Bert(c) => {
            (TrainArch::Bert, c.num_hidden_layers, c.hidden_size, c.vocab_size, c.max_position_embeddings)
        }
    };
    ModelInfo {
        source,
        arch,
        params: config.num_parameters(),
        layers,
        hidden,
        vocab_size,
        context,
        largest_tensor: config.largest_tensor() as u64 * 4,
        tokenizer,
    }
}
