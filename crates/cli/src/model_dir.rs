//! Reading a Hugging Face model directory from disk.

use std::path::Path;

use burn::tensor::Device;
use hearth_lm::io::hf::{load_model_as, load_tokenizer, HfFiles};
use hearth_lm::model::memory::human_bytes;
use hearth_lm::{AnyModel, Gpt2LMHeadModel, Tokenizer};

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The largest JSON file of a model or checkpoint directory that is read (configs, trainer
/// state, tokenizers: the largest `tokenizer.json` in use is ~11 MB).
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// Reads `path` whole after checking its size: a file over `limit` (what `limit_is` names) is
/// refused with both sizes before a byte of it is read.
pub fn read_at_most(path: &Path, limit: u64, limit_is: &str) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
    if len > limit {
        return Err(format!(
            "{} is {}, more than {limit_is} ({})",
            path.display(),
            human_bytes(len as u128),
            human_bytes(limit as u128)
        ));
    }
    read(path)
}

/// A JSON file of a model directory, within [`MAX_JSON_BYTES`].
pub fn read_json(path: &Path) -> Result<Vec<u8>, String> {
    read_at_most(path, MAX_JSON_BYTES, "a JSON file of a model directory may be")
}

/// A weights file, within the memory the machine has available (or `--max-memory`).
pub fn read_weights(path: &Path) -> Result<Vec<u8>, String> {
    let budget = crate::memory::budget(None)?;
    read_at_most(path, budget, "the memory available to load it")
}

/// Reads `config.json`, `model.safetensors` and an optional `tokenizer.json` from `dir`.
pub fn read_dir(dir: &Path) -> Result<HfFiles, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{} is not a directory (expected a Hugging Face model directory)",
            dir.display()
        ));
    }
    let tokenizer = dir.join("tokenizer.json");
    Ok(HfFiles {
        config_json: read_json(&dir.join("config.json"))?,
        model_safetensors: read_weights(&dir.join("model.safetensors"))?,
        tokenizer_json: if tokenizer.exists() { Some(read_json(&tokenizer)?) } else { None },
        generation_config_json: None,
    })
}

/// The model and its tokenizer (the directory's, else the architecture's built-in one),
/// refused when the tokenizer's ids do not fit the model's vocabulary.
pub fn load(dir: &Path, device: &Device) -> Result<(AnyModel, Tokenizer), String> {
    let (model, files) = load_model_only(dir, device)?;
    let tokenizer = load_tokenizer(&files, &model).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok((model, tokenizer))
}

/// A GPT-2 and its tokenizer; a BERT is refused with what `command` needs.
pub fn load_gpt2(dir: &Path, device: &Device, command: &str) -> Result<(Gpt2LMHeadModel, Tokenizer), String> {
    match load(dir, device)? {
        (AnyModel::Gpt2(model), tokenizer) => Ok((*model, tokenizer)),
        (AnyModel::Bert(_), _) => {
            Err(format!("{} is a BERT masked LM; {command} needs a GPT-2 causal LM", dir.display()))
        }
    }
}

/// The model alone, with the directory's files (for commands that need no tokenizer).
pub fn load_model_only(dir: &Path, device: &Device) -> Result<(AnyModel, HfFiles), String> {
    let files = read_dir(dir)?;
    let config = hearth_lm::ModelConfig::from_json(&files.config_json)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::device::check_model(&config).map_err(|e| format!("{}: {e}", dir.display()))?;
    let model = load_model_as(&files.config_json, &files.model_safetensors, device, crate::device::weights())
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok((model, files))
}

/// A tokenizer by built-in name, `tokenizer.json` path, or model directory.
pub fn tokenizer(spec: &str) -> Result<Tokenizer, String> {
    if hearth_lm::io::tokenizer::BUILTIN_TOKENIZERS.contains(&spec) {
        return Tokenizer::builtin(spec).map_err(|e| e.to_string());
    }
    let path = Path::new(spec);
    let file = if path.is_dir() { path.join("tokenizer.json") } else { path.to_path_buf() };
    if !file.exists() {
        return Err(format!(
            "unknown tokenizer `{spec}`: not a built-in ({}) nor an existing tokenizer.json or model directory",
            hearth_lm::io::tokenizer::BUILTIN_TOKENIZERS.join(", ")
        ));
    }
    Tokenizer::from_bytes(&read_json(&file)?).map_err(|e| format!("{}: {e}", file.display()))
}
