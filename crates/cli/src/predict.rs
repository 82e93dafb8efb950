//! `hearth fill-mask` and `hearth score`.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::Args;
use hearth_lm::infer::surprisal::surprisal;
use serde_json::json;

use crate::inside::percent;
use crate::{model_dir, print_json, CliResult};

#[derive(Args, Debug)]
pub struct FillMaskArgs {
    /// Hugging Face directory of a masked LM (BERT, ModernBERT).
    #[arg(long)]
    model: PathBuf,
    /// Predictions per mask token.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    top_k: usize,
    #[arg(long)]
    json: bool,
    /// A sentence with one or more mask tokens (the tokenizer's own: [MASK] or <mask>).
    text: String,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Hugging Face directory of a GPT-2 causal LM.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    text: String,
    /// Also every token's surprisal: its loss, probability, rank and the model's top choices.
    #[arg(long)]
    per_token: bool,
    /// Alternatives listed per token with --per-token.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    #[arg(long)]
    json: bool,
}

pub fn fill_mask(args: FillMaskArgs, device: &Device) -> CliResult {
    let (model, tokenizer) = model_dir::load(&args.model, device)?;
    let Some(encoder) = model.masked() else {
        return Err(format!(
            "{} is a causal LM ({}); fill-mask needs a masked LM (BERT, ModernBERT)",
            args.model.display(),
            model.config().architecture()
        ));
    };
    let masks = pollster::block_on(hearth_lm::fill_mask(encoder, &tokenizer, &args.text, args.top_k))
        .map_err(|e| e.to_string())?;
    let mask = tokenizer.mask_token().map_or_else(|| "[MASK]".to_string(), |(token, _)| token);
    if args.json {
        print_json(&json!({ "masks": masks }));
    } else {
        for m in &masks {
            println!("{mask} at position {}:", m.position);
            for p in &m.predictions {
                println!("  {:>7.3}%  {:<16} (id {})", p.prob * 100.0, p.token, p.id);
            }
        }
    }
    Ok(())
}

pub fn score(args: ScoreArgs, device: &Device) -> CliResult {
    let (model, tokenizer) = model_dir::load_decoder(&args.model, device, "score")?;
    let model = model.causal().expect("load_decoder returns a decoder");
    let ids = tokenizer.encode_ids(&args.text).map_err(|e| e.to_string())?;
    let s = pollster::block_on(hearth_lm::score(model, &ids)).map_err(|e| e.to_string())?;
    let per_token = if args.per_token {
        pollster::block_on(surprisal(model, &ids, args.top_k)).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let token = |id: u32| tokenizer.decode(&[id]).unwrap_or_default();
    if args.json {
        let mut out = json!({ "ids": ids, "loss": s.loss, "perplexity": s.perplexity });
        if args.per_token {
            let tokens: Vec<serde_json::Value> = per_token
                .iter()
                .map(|t| {
                    let top: Vec<serde_json::Value> =
                        t.top.iter().map(|&(id, p)| json!({ "id": id, "token": token(id), "prob": p })).collect();
                    json!({ "id": t.id, "token": token(t.id), "loss": t.loss, "prob": t.prob, "rank": t.rank, "top": top })
                })
                .collect();
            out["tokens"] = json!(tokens);
        }
        print_json(&out);
    } else {
        println!("tokens: {}  loss: {:.4}  perplexity: {:.2}", ids.len(), s.loss, s.perplexity);
        for t in &per_token {
            let top: Vec<String> =
                t.top.iter().map(|&(id, p)| format!("{:?} {}", token(id), percent(p))).collect();
            println!(
                "  {:<16} loss {:>6.3}  p {:>8}  rank {:>6}  expected: {}",
                format!("{:?}", token(t.id)),
                t.loss,
                percent(t.prob),
                t.rank,
                top.join(", ")
            );
        }
    }
    Ok(())
}
