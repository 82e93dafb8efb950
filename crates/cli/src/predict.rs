//! `hearth fill-mask` and `hearth score`.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::Args;
use hearth_lm::AnyModel;
use serde_json::json;

use crate::{model_dir, print_json, CliResult};

#[derive(Args, Debug)]
pub struct FillMaskArgs {
    /// Hugging Face directory of a BERT masked LM.
    #[arg(long)]
    model: PathBuf,
    /// Predictions per [MASK].
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    top_k: usize,
    #[arg(long)]
    json: bool,
    /// A sentence with one or more [MASK] tokens.
    text: String,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Hugging Face directory of a GPT-2 causal LM.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    text: String,
    #[arg(long)]
    json: bool,
}

pub fn fill_mask(args: FillMaskArgs, device: &Device) -> CliResult {
    let (model, tokenizer) = model_dir::load(&args.model, device)?;
    let AnyModel::Bert(model) = model else {
        return Err(format!(
            "{} is a GPT-2 causal LM; fill-mask needs a BERT masked LM",
            args.model.display()
        ));
    };
    let masks = pollster::block_on(hearth_lm::fill_mask(&model, &tokenizer, &args.text, args.top_k))
        .map_err(|e| e.to_string())?;
    if args.json {
        print_json(&json!({ "masks": masks }));
    } else {
        for m in &masks {
            println!("[MASK] at position {}:", m.position);
            for p in &m.predictions {
                println!("  {:>7.3}%  {:<16} (id {})", p.prob * 100.0, p.token, p.id);
            }
        }
    }
    Ok(())
}

pub fn score(args: ScoreArgs, device: &Device) -> CliResult {
    let (model, tokenizer) = model_dir::load_gpt2(&args.model, device, "score")?;
    let ids = tokenizer.encode_ids(&args.text).map_err(|e| e.to_string())?;
    let s = pollster::block_on(hearth_lm::score(&model, &ids)).map_err(|e| e.to_string())?;
    if args.json {
        print_json(&json!({ "ids": ids, "loss": s.loss, "perplexity": s.perplexity }));
    } else {
        println!("tokens: {}  loss: {:.4}  perplexity: {:.2}", ids.len(), s.loss, s.perplexity);
    }
    Ok(())
}
