//! `hearth inspect`: the module tree, shapes and parameter counts.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::Device;
use clap::Args;
use hearth_lm::AnyModel;

use crate::{model_dir, CliResult};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Hugging Face model directory.
    #[arg(long)]
    model: PathBuf,
}

pub fn run(args: InspectArgs, device: &Device) -> CliResult {
    // Inspecting needs no tokenizer: a mismatched one is reported, not fatal.
    let (model, files) = model_dir::load_model_only(&args.model, device)?;
    let tokenizer = hearth_lm::io::hf::load_tokenizer(&files, &model)
        .map(|t| format!("{} tokens", t.vocab_size()))
        .unwrap_or_else(|e| format!("unusable with this model ({e})"));
    let (tree, params, config) = match &model {
        AnyModel::Gpt2(m) => (m.to_string(), m.num_params(), m.config().to_json()),
        AnyModel::Bert(m) => (m.to_string(), m.num_params(), m.config().to_json()),
        AnyModel::Llama(m) => (m.to_string(), m.num_params(), m.config().to_json()),
        AnyModel::ModernBert(m) => (m.to_string(), m.num_params(), m.config().to_json()),
    };
    println!("{tree}");
    println!("config: {config}");
    println!("tokenizer: {tokenizer}");
    println!("parameters: {params} ({:.1}M; tied output embedding counted once)", params as f64 / 1e6);
    Ok(())
}
