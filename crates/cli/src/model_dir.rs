//! Reading a Hugging Face model directory from disk.

use std::path::Path;

use burn::tensor::Device;
use hearth_lm::io::hf::{load_model_files_as, load_tokenizer, shard_files, HfFiles};
use hearth_lm::model::memory::human_bytes;
use hearth_lm::{AnyModel, Tokenizer};

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

/// The shards `model.safetensors.index.json` lists, read after checking that together they fit
/// the memory available.
fn read_shards(dir: &Path, index: &Path) -> Result<Vec<Vec<u8>>, String> {
    let names = shard_files(&read_json(index)?).map_err(|e| format!("{}: {e}", dir.display()))?;
    let paths: Vec<_> = names.iter().map(|n| dir.join(n)).collect();
    let mut total = 0u128;
    for path in &paths {
        total += std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len()
            as u128;
    }
    let budget = crate::memory::budget(None)?;
    if total > budget as u128 {
        return Err(format!(
            "the {} shards in {} are {}, more than the memory available to load them ({})",
            paths.len(),
            dir.display(),
            human_bytes(total),
            human_bytes(budget as u128)
        ));
    }
    paths.iter().map(|p| read(p)).collect()
}

/// Reads `config.json`, the weights (`model.safetensors`, or the shards its index lists), and
/// the optional `tokenizer.json` and `generation_config.json` from `dir`.
pub fn read_dir(dir: &Path) -> Result<HfFiles, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{} is not a directory (expected a Hugging Face model directory)",
            dir.display()
        ));
    }
    let optional = |name: &str| -> Result<Option<Vec<u8>>, String> {
        let path = dir.join(name);
        if path.exists() {
            read_json(&path).map(Some)
        } else {
            Ok(None)
        }
    };
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let (model_safetensors, weight_shards) = if !single.exists() && index.exists() {
        (Vec::new(), read_shards(dir, &index)?)
    } else {
        (read_weights(&single)?, Vec::new())
    };
    Ok(HfFiles {
        config_json: read_json(&dir.join("config.json"))?,
        model_safetensors,
        tokenizer_json: optional("tokenizer.json")?,
        generation_config_json: optional("generation_config.json")?,
        weight_shards,
    })
}

/// The model and its tokenizer (the directory's, else the architecture's built-in one),
/// refused when the tokenizer's ids do not fit the model's vocabulary.
pub fn load(dir: &Path, device: &Device) -> Result<(AnyModel, Tokenizer), String> {
    let (model, files) = load_model_only(dir, device)?;
    let tokenizer = load_tokenizer(&files, &model).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok((model, tokenizer))
}

/// A decoder (GPT-2 or the Llama family) and its tokenizer; a BERT is refused with what
/// `command` needs. [`AnyModel::causal`] is `Some` on what this returns.
pub fn load_decoder(dir: &Path, device: &Device, command: &str) -> Result<(AnyModel, Tokenizer), String> {
    let (model, tokenizer) = load(dir, device)?;
    if model.causal().is_none() {
        return Err(format!(
            "{} is a BERT masked LM; {command} needs a causal LM (GPT-2, Llama, Qwen)",
            dir.display()
        ));
    }
    Ok((model, tokenizer))
}

/// The model alone, with the directory's files (for commands that need no tokenizer).
pub fn load_model_only(dir: &Path, device: &Device) -> Result<(AnyModel, HfFiles), String> {
    let files = read_dir(dir)?;
    let config = hearth_lm::ModelConfig::from_json(&files.config_json)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::device::check_model(&config).map_err(|e| format!("{}: {e}", dir.display()))?;
    let model =
        load_model_files_as(&files.config_json, &files.weight_files(), device, crate::device::weights())
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
