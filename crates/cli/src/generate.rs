//! `hearth generate`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use clap::Args;
use hearth_lm::{Generator, Sampling};
use serde_json::json;

use crate::{model_dir, print_json, CliResult};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Hugging Face directory of a GPT-2 causal LM.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 50)]
    max_new_tokens: usize,
    /// 0 is greedy; higher flattens the distribution.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    temperature: f32,
    /// Sample only among the k most likely tokens.
    #[arg(long, allow_negative_numbers = true)]
    top_k: Option<i64>,
    /// Sample only among the most likely tokens whose probability reaches p.
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f32>,
    /// The same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep generating past the checkpoint's end-of-text ids (by default generation stops at
    /// one, as transformers' `generate` does).
    #[arg(long)]
    ignore_eos: bool,
    #[arg(long)]
    json: bool,
}

/// At most this many new tokens: beyond it a typo (an extra zero) is likelier than intent.
const MAX_NEW_TOKENS: usize = 100_000;

pub fn run(args: GenerateArgs, device: &Device) -> CliResult {
    let top_k = match args.top_k {
        Some(k) if k < 1 => return Err(format!("top-k must be at least 1, got {k}")),
        Some(k) => Some(k as usize),
        None => None,
    };
    let sampling = Sampling::new(args.temperature, top_k, args.top_p).map_err(|e| e.to_string())?;
    if args.max_new_tokens == 0 || args.max_new_tokens > MAX_NEW_TOKENS {
        return Err(format!(
            "max-new-tokens must be between 1 and {MAX_NEW_TOKENS}, got {}",
            args.max_new_tokens
        ));
    }
    let (model, tokenizer) = model_dir::load_decoder(&args.model, device, "generate")?;
    let eos =
        if args.ignore_eos { Vec::new() } else { crate::chat::generation_config(&args.model)?.eos_token_ids };
    let causal = model.causal().expect("load_decoder returns a decoder");
    let prompt = tokenizer.encode_ids(&args.prompt).map_err(|e| e.to_string())?;
    let mut generator = Generator::new(causal, &prompt, sampling, args.seed).map_err(|e| e.to_string())?;

    if !args.json {
        print!("{}", args.prompt);
    }
    let start = Instant::now();
    let mut prefill_s = 0.0;
    let mut printed = String::new();
    let mut stopped_at_eos = false;
    for i in 0..args.max_new_tokens {
        pollster::block_on(generator.step()).map_err(|e| e.to_string())?;
        stopped_at_eos = generator.new_tokens().last().is_some_and(|id| eos.contains(id));
        if i == 0 {
            prefill_s = start.elapsed().as_secs_f64();
        }
        if !args.json {
            // Decode the whole continuation so multi-token characters print once complete.
            let text = tokenizer.decode(generator.new_tokens()).map_err(|e| e.to_string())?;
            if let Some(fresh) = text.strip_prefix(printed.as_str()) {
                print!("{fresh}");
                let _ = std::io::stdout().flush();
                printed = text;
            }
        }
        if stopped_at_eos {
            break;
        }
    }
    let total_s = start.elapsed().as_secs_f64();
    let new_ids = generator.new_tokens().to_vec();
    let tokens_per_s = if new_ids.len() > 1 {
        (new_ids.len() - 1) as f64 / (total_s - prefill_s).max(1e-9)
    } else {
        new_ids.len() as f64 / total_s.max(1e-9)
    };
    let text = tokenizer.decode(generator.tokens()).map_err(|e| e.to_string())?;
    if args.json {
        print_json(&json!({
            "prompt_ids": prompt,
            "new_ids": new_ids,
            "text": text,
            "stop": if stopped_at_eos { "eos" } else { "max_new_tokens" },
            "eos_token_ids": eos,
            "timing": { "prefill_ms": prefill_s * 1000.0, "new_tokens_per_s": tokens_per_s },
        }));
    } else {
        println!();
        eprintln!(
            "{} prompt tokens, {} new{}; prefill {:.1} ms, {:.1} tokens/s",
            prompt.len(),
            new_ids.len(),
            if stopped_at_eos { " (stopped at eos; --ignore-eos goes on)" } else { "" },
            prefill_s * 1000.0,
            tokens_per_s
        );
    }
    Ok(())
}
