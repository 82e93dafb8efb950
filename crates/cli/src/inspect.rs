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
    let (model, tokenizer) = model_dir::load(&args.model, device)?;
    let (tree, params, config) = match &model {
        AnyModel::Gpt2(m) => (m.to_string(), m.num_params(), m.config().to_json()),
        AnyModel::Bert(m) => (m.to_string(), m.num_params(), m.config().to_json()),
    };
    println!("{tree}");
    println!("config: {config}");
    println!("tokenizer: {} tokens", tokenizer.vocab_size());
    println!("parameters: {params} ({:.1}M; tied output embedding counted once)", params as f64 / 1e6);
    Ok(())
}
