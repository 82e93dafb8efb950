//! `hearth attention`, `hearth lens` and `hearth embed`: what happens inside the model.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::Args;
use hearth_lm::infer::embeddings::{nearest, token_id};
use hearth_lm::infer::inside::{attentions, logit_lens_of};
use serde_json::json;

use crate::{model_dir, print_json, CliResult};

#[derive(Args, Debug)]
pub struct AttentionArgs {
    /// Hugging Face directory of a GPT-2 or BERT model.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    text: String,
    /// `{"tokens": [...], "attentions": [layer][head][query][key]}` (post-softmax, as
    /// `transformers`' `output_attentions=True`).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct LensArgs {
    /// Hugging Face directory of a GPT-2 model.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    text: String,
    /// Tokens per cell.
    #[arg(long, default_value_t = 1)]
    top_k: usize,
    /// `{"tokens": [...], "lens": [layer][position][{"id", "token", "prob"}]}`.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Hugging Face directory of a GPT-2 or BERT model.
    #[arg(long)]
    model: PathBuf,
    /// A token as the tokenizer writes it (`Ġking`, `king`), or a word that is one token.
    #[arg(long)]
    token: String,
    /// Neighbours to list.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// `{"token", "id", "nearest": [{"id", "token", "cosine"}]}`.
    #[arg(long)]
    json: bool,
}

pub fn embed(args: EmbedArgs, device: &Device) -> CliResult {
    let (model, tokenizer) = model_dir::load(&args.model, device)?;
    let id = token_id(&tokenizer, &args.token).map_err(|e| e.to_string())?;
    let near = pollster::block_on(nearest(&model, id, args.top_k)).map_err(|e| e.to_string())?;
    let token = |id: u32| tokenizer.decode(&[id]).unwrap_or_default();
    if args.json {
        let list: Vec<serde_json::Value> =
            near.iter().map(|&(i, c)| json!({ "id": i, "token": token(i), "cosine": c })).collect();
        print_json(&json!({ "token": token(id), "id": id, "nearest": list }));
        return Ok(());
    }
    println!("nearest to {:?} (id {id}) by cosine of the input embeddings:", token(id));
    for (i, c) in near {
        println!("  {c:>7.4}  {:?} (id {i})", token(i));
    }
    Ok(())
}

pub fn attention(args: AttentionArgs, device: &Device) -> CliResult {
    let (model, tokenizer) = model_dir::load(&args.model, device)?;
    let encoded = tokenizer.encode(&args.text).map_err(|e| e.to_string())?;
    let a = pollster::block_on(attentions(&model, &encoded.ids)).map_err(|e| e.to_string())?;
    if args.json {
        print_json(&json!({ "tokens": encoded.tokens, "attentions": a }));
        return Ok(());
    }
    // Per layer, the mean over heads: where each token looks most.
    for (l, layer) in a.iter().enumerate() {
        println!("layer {l} (mean over {} heads): token → the token it attends to most", layer.len());
        for (q, token) in encoded.tokens.iter().enumerate() {
            let mean: Vec<f32> = (0..encoded.ids.len())
                .map(|k| layer.iter().map(|h| h[q][k]).sum::<f32>() / layer.len() as f32)
                .collect();
            let (k, w) = mean
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |best, (k, &w)| if w > best.1 { (k, w) } else { best });
            println!("  {token:>14} → {:<14} {:.3}", encoded.tokens[k], w);
        }
    }
    Ok(())
}

/// A probability as a percentage; small ones keep two significant digits.
pub fn percent(p: f64) -> String {
    if p >= 0.001 {
        format!("{:.1}%", 100.0 * p)
    } else {
        format!("{:.1e}%", 100.0 * p)
    }
}

pub fn lens(args: LensArgs, device: &Device) -> CliResult {
    let (model, tokenizer) = model_dir::load_decoder(&args.model, device, "the logit lens")?;
    let encoded = tokenizer.encode(&args.text).map_err(|e| e.to_string())?;
    let grid =
        pollster::block_on(logit_lens_of(&model, &encoded.ids, args.top_k)).map_err(|e| e.to_string())?;
    let token = |id: u32| tokenizer.decode(&[id]).unwrap_or_default();
    if args.json {
        let lens: Vec<Vec<Vec<serde_json::Value>>> = grid
            .iter()
            .map(|layer| {
                layer
                    .iter()
                    .map(|cell| {
                        cell.iter()
                            .map(|&(id, p)| json!({ "id": id, "token": token(id), "prob": p }))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        print_json(&json!({ "tokens": encoded.tokens, "lens": lens }));
        return Ok(());
    }
    println!("rows: layers; columns: positions; each cell the most likely next token after that layer, with its probability");
    let mut rows: Vec<Vec<String>> =
        vec![std::iter::once(String::new()).chain(encoded.tokens.iter().cloned()).collect()];
    for (l, layer) in grid.iter().enumerate() {
        let cells = layer.iter().map(|c| format!("{:?} {}", token(c[0].0), percent(c[0].1)));
        rows.push(std::iter::once(format!("layer {l}")).chain(cells).collect());
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(())
}
