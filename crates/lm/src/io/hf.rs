//! Hugging Face model directories as bytes: `config.json` + `model.safetensors` (+ optional
//! `tokenizer.json`) in, the same files out. The caller does the file or network IO.

use burn::tensor::Device;

use super::tokenizer::Tokenizer;
use super::weights::{load_module, module_safetensors, Layout, SafetensorsFile};
use crate::error::{invalid, Error, Result};
use crate::model::bert::BertForMaskedLM;
use crate::model::config::{BertConfig, Gpt2Config, ModelConfig};
use crate::model::gpt2::Gpt2LMHeadModel;
use crate::model::llama::config::LlamaConfig;
use crate::model::llama::LlamaForCausalLM;
use crate::model::modernbert::config::ModernBertConfig;
use crate::model::modernbert::ModernBertForMaskedLM;
use crate::model::precision::WeightDtype;
use crate::model::AnyModel;

/// The files of a Hugging Face model directory.
#[derive(Debug, Clone, Default)]
pub struct HfFiles {
    pub config_json: Vec<u8>,
    pub model_safetensors: Vec<u8>,
    pub tokenizer_json: Option<Vec<u8>>,
    /// What `transformers`' `save_pretrained` writes beside the config (decoders).
    pub generation_config_json: Option<Vec<u8>>,
    /// A sharded checkpoint's files, in `model.safetensors.index.json`'s order (then
    /// `model_safetensors` is empty).
    pub weight_shards: Vec<Vec<u8>>,
}

impl HfFiles {
    /// The weights: the one file, or every shard.
    pub fn weight_files(&self) -> Vec<&[u8]> {
        if self.weight_shards.is_empty() {
            vec![self.model_safetensors.as_slice()]
        } else {
            self.weight_shards.iter().map(Vec::as_slice).collect()
        }
    }
}

/// The shard file names `model.safetensors.index.json` lists (its `weight_map`'s values), each
/// once, in order of first appearance. Only plain file names ending in `.safetensors` are
/// accepted: an index must not send the reader elsewhere on the disk.
pub fn shard_files(index_json: &[u8]) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let index: Index =
        serde_json::from_slice(index_json).map_err(|e| invalid!("model.safetensors.index.json: {e}"))?;
    let mut files: Vec<String> = Vec::new();
    for file in index.weight_map.values() {
        let plain = !file.is_empty()
            && file.ends_with(".safetensors")
            && !file.contains(['/', '\\'])
            && !file.starts_with('.');
        if !plain {
            let shown: String = file.chars().take(80).collect();
            return Err(invalid!("model.safetensors.index.json names `{shown}`, not a shard file beside it"));
        }
        if !files.contains(file) {
            files.push(file.clone());
        }
    }
    if files.is_empty() {
        return Err(invalid!("model.safetensors.index.json lists no weights"));
    }
    Ok(files)
}

/// GPT-2 weights onto `config`'s architecture, in f32.
pub fn load_gpt2(config: &Gpt2Config, safetensors: &[u8], device: &Device) -> Result<Gpt2LMHeadModel> {
    load_gpt2_as(config, safetensors, device, WeightDtype::F32)
}

/// GPT-2 weights onto `config`'s architecture, its matrices stored as `weights`.
pub fn load_gpt2_as(
    config: &Gpt2Config,
    safetensors: &[u8],
    device: &Device,
    weights: WeightDtype,
) -> Result<Gpt2LMHeadModel> {
    config.validate()?;
    let file = SafetensorsFile::parse(safetensors)?;
    check_file_holds(&ModelConfig::Gpt2(config.clone()), file.total_elements())?;
    load_module(config.init(device), &file, Layout::Gpt2, device, weights)
}

/// BERT masked-LM weights onto `config`'s architecture, in f32.
pub fn load_bert(config: &BertConfig, safetensors: &[u8], device: &Device) -> Result<BertForMaskedLM> {
    load_bert_as(config, safetensors, device, WeightDtype::F32)
}

/// BERT masked-LM weights onto `config`'s architecture, its matrices stored as `weights`.
pub fn load_bert_as(
    config: &BertConfig,
    safetensors: &[u8],
    device: &Device,
    weights: WeightDtype,
) -> Result<BertForMaskedLM> {
    config.validate()?;
    let file = SafetensorsFile::parse(safetensors)?;
    check_file_holds(&ModelConfig::Bert(config.clone()), file.total_elements())?;
    load_module(config.init(device), &file, Layout::Bert, device, weights)
}

/// Llama-family weights (Llama, Qwen2, Qwen3) onto `config`'s architecture, its matrices stored
/// as `weights`. bf16 and f16 checkpoints are converted as they are read.
pub fn load_llama_as(
    config: &LlamaConfig,
    safetensors: &[u8],
    device: &Device,
    weights: WeightDtype,
) -> Result<LlamaForCausalLM> {
    load_llama_from(config, &SafetensorsFile::parse(safetensors)?, device, weights)
}

fn load_llama_from(
    config: &LlamaConfig,
    file: &SafetensorsFile,
    device: &Device,
    weights: WeightDtype,
) -> Result<LlamaForCausalLM> {
    config.validate()?;
    check_file_holds(&ModelConfig::Llama(Box::new(config.clone())), file.total_elements())?;
    load_module(config.init(device)?, file, Layout::Llama, device, weights)
}

/// ModernBERT masked-LM weights onto `config`'s architecture, its matrices stored as `weights`.
pub fn load_modernbert_as(
    config: &ModernBertConfig,
    safetensors: &[u8],
    device: &Device,
    weights: WeightDtype,
) -> Result<ModernBertForMaskedLM> {
    config.validate()?;
    let file = SafetensorsFile::parse(safetensors)?;
    check_file_holds(&ModelConfig::ModernBert(Box::new(config.clone())), file.total_elements())?;
    load_module(config.init(device)?, &file, Layout::ModernBert, device, weights)
}

/// Refuses, before the model is allocated, a config that describes more parameters than the
/// weights file holds values: such a config (say `"n_layer": 1000000000`) does not belong to
/// these weights, and initialising it first would exhaust memory long before the first missing
/// tensor is noticed. Extra values (buffers, a pooler) are fine; tied weights are stored once
/// and counted once. A small shortfall (a missing bias) passes here on purpose: loading then
/// names the missing tensor, which says more; what is refused here is a config at least twice
/// (plus a megabyte) the size of its weights, which no missing tensor explains.
pub(crate) fn check_file_holds(config: &ModelConfig, have: u128) -> Result<()> {
    let need = config.parameter_count();
    if need > have.saturating_mul(2).saturating_add(1 << 20) {
        return Err(Error::Config(format!(
            "config.json describes {need} parameters but model.safetensors holds only {have} values: \
             the config does not belong to these weights"
        )));
    }
    Ok(())
}

/// Refuses a tokenizer that can produce ids the model cannot embed (its vocabulary, special
/// tokens included, is larger than the model's `vocab_size`): every text would risk an
/// out-of-range lookup. A smaller tokenizer is fine (checkpoints often pad the vocabulary).
pub fn check_vocabularies(tokenizer: &Tokenizer, model_vocab: usize) -> Result<()> {
    let tokens = tokenizer.id_bound();
    if tokens > model_vocab {
        return Err(invalid!(
            "the tokenizer has {tokens} tokens but the model's vocabulary has {model_vocab}: \
             they do not belong together (give the model's own tokenizer.json)"
        ));
    }
    Ok(())
}

/// Whichever architecture `config.json` names, in f32 (what training needs).
pub fn load_model(config_json: &[u8], safetensors: &[u8], device: &Device) -> Result<AnyModel> {
    load_model_as(config_json, safetensors, device, WeightDtype::F32)
}

/// Whichever architecture `config.json` names, its matrices stored as `weights`, which the
/// device must support ([`WeightDtype::supported_on`]); for inference.
pub fn load_model_as(
    config_json: &[u8],
    safetensors: &[u8],
    device: &Device,
    weights: WeightDtype,
) -> Result<AnyModel> {
    if !weights.supported_on(device) {
        return Err(invalid!("this device cannot store weights as {}; use f32", weights.name()));
    }
    match ModelConfig::from_json(config_json)? {
        ModelConfig::Gpt2(c) => Ok(AnyModel::Gpt2(Box::new(load_gpt2_as(&c, safetensors, device, weights)?))),
        ModelConfig::Bert(c) => Ok(AnyModel::Bert(Box::new(load_bert_as(&c, safetensors, device, weights)?))),
        ModelConfig::Llama(c) => {
            Ok(AnyModel::Llama(Box::new(load_llama_as(&c, safetensors, device, weights)?)))
        }
        ModelConfig::ModernBert(c) => {
            Ok(AnyModel::ModernBert(Box::new(load_modernbert_as(&c, safetensors, device, weights)?)))
        }
    }
}

/// [`load_model_as`] from a checkpoint's weight files: one, or every shard of a sharded one
/// (only the Llama family is published sharded).
pub fn load_model_files_as(
    config_json: &[u8],
    files: &[&[u8]],
    device: &Device,
    weights: WeightDtype,
) -> Result<AnyModel> {
    if let [one] = files {
        return load_model_as(config_json, one, device, weights);
    }
    if !weights.supported_on(device) {
        return Err(invalid!("this device cannot store weights as {}; use f32", weights.name()));
    }
    let file = SafetensorsFile::parse_shards(files)?;
    match ModelConfig::from_json(config_json)? {
        ModelConfig::Llama(c) => Ok(AnyModel::Llama(Box::new(load_llama_from(&c, &file, device, weights)?))),
        other => Err(invalid!(
            "a sharded checkpoint of a {} model is not supported (one model.safetensors is)",
            other.architecture()
        )),
    }
}

/// The directory's tokenizer, or the architecture's built-in one, checked against the model's
/// vocabulary ([`check_vocabularies`]).
pub fn load_tokenizer(files: &HfFiles, model: &AnyModel) -> Result<Tokenizer> {
    tokenizer_for_config(files, &model.config())
}

/// [`load_tokenizer`] before the model exists: checked against its `config.json`.
pub fn tokenizer_for_config(files: &HfFiles, config: &ModelConfig) -> Result<Tokenizer> {
    let tokenizer = match &files.tokenizer_json {
        Some(bytes) => Tokenizer::from_bytes(bytes)?,
        None => match config.default_tokenizer_name() {
            Some(name) => Tokenizer::builtin(name)?,
            None => {
                return Err(invalid!(
                    "the model has no tokenizer.json beside it, and no built-in tokenizer belongs to a \
                     {} model: give the checkpoint's own tokenizer.json",
                    config.architecture()
                ))
            }
        },
    };
    check_vocabularies(&tokenizer, config.vocab_size())?;
    Ok(tokenizer)
}

/// `generation_config.json` as `save_pretrained` writes it for a decoder: its bos and eos ids.
fn generation_config(bos: &impl serde::Serialize, eos: &impl serde::Serialize) -> Vec<u8> {
    let generation = serde_json::json!({ "bos_token_id": bos, "eos_token_id": eos });
    serde_json::to_vec_pretty(&generation).expect("json value")
}

/// A GPT-2 as a directory `GPT2LMHeadModel.from_pretrained` opens (tied `lm_head` not stored,
/// keys with the `transformer.` prefix, as `save_pretrained` writes them).
pub async fn export_gpt2(model: &Gpt2LMHeadModel, tokenizer: Option<&Tokenizer>) -> Result<HfFiles> {
    let weights = module_safetensors(model, Layout::Gpt2).await?;
    let c = model.config();
    Ok(HfFiles {
        config_json: c.to_json().into_bytes(),
        model_safetensors: weights,
        tokenizer_json: tokenizer.map(|t| t.to_json()).transpose()?.map(String::into_bytes),
        generation_config_json: Some(generation_config(&c.bos_token_id, &c.eos_token_id)),
        weight_shards: Vec::new(),
    })
}

/// A BERT masked LM as a directory `BertForMaskedLM.from_pretrained` opens.
pub async fn export_bert(model: &BertForMaskedLM, tokenizer: Option<&Tokenizer>) -> Result<HfFiles> {
    Ok(HfFiles {
        config_json: model.config().to_json().into_bytes(),
        model_safetensors: module_safetensors(model, Layout::Bert).await?,
        tokenizer_json: tokenizer.map(|t| t.to_json()).transpose()?.map(String::into_bytes),
        generation_config_json: None,
        weight_shards: Vec::new(),
    })
}

/// A Llama-family decoder as a directory `AutoModelForCausalLM.from_pretrained` opens (f32
/// weights, the tied head not stored).
pub async fn export_llama(model: &LlamaForCausalLM, tokenizer: Option<&Tokenizer>) -> Result<HfFiles> {
    let c = model.config();
    Ok(HfFiles {
        config_json: c.to_json().into_bytes(),
        model_safetensors: module_safetensors(model, Layout::Llama).await?,
        tokenizer_json: tokenizer.map(|t| t.to_json()).transpose()?.map(String::into_bytes),
        generation_config_json: Some(generation_config(&c.bos_token_id, &c.eos_token_id)),
        weight_shards: Vec::new(),
    })
}

/// A ModernBERT masked LM as a directory `ModernBertForMaskedLM.from_pretrained` opens (the tied
/// decoder weight not stored).
pub async fn export_modernbert(
    model: &ModernBertForMaskedLM,
    tokenizer: Option<&Tokenizer>,
) -> Result<HfFiles> {
    Ok(HfFiles {
        config_json: model.config().to_json().into_bytes(),
        model_safetensors: module_safetensors(model, Layout::ModernBert).await?,
        tokenizer_json: tokenizer.map(|t| t.to_json()).transpose()?.map(String::into_bytes),
        generation_config_json: None,
        weight_shards: Vec::new(),
    })
}

/// Any architecture as the directory `from_pretrained` opens.
pub async fn export_model(model: &AnyModel, tokenizer: Option<&Tokenizer>) -> Result<HfFiles> {
    match model {
        AnyModel::Gpt2(m) => export_gpt2(m, tokenizer).await,
        AnyModel::Bert(m) => export_bert(m, tokenizer).await,
        AnyModel::Llama(m) => export_llama(m, tokenizer).await,
        AnyModel::ModernBert(m) => export_modernbert(m, tokenizer).await,
    }
}
