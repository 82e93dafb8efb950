//! `hearth tokenize` and `hearth decode`.

use clap::Args;
use serde_json::json;

use crate::{model_dir, print_json, CliResult};

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// `gpt2`, `bert-base-uncased`, a tokenizer.json path or a model directory.
    #[arg(long)]
    tokenizer: String,
    /// Print `{"ids", "tokens", "attention_mask"}` as JSON.
    #[arg(long)]
    json: bool,
    text: String,
}

#[derive(Args, Debug)]
pub struct DecodeArgs {
    #[arg(long)]
    tokenizer: String,
    /// Comma-separated token ids, e.g. `7967` or `15496,11,314`.
    #[arg(long)]
    ids: String,
}

pub fn tokenize(args: TokenizeArgs) -> CliResult {
    let tokenizer = model_dir::tokenizer(&args.tokenizer)?;
    let enc = tokenizer.encode(&args.text).map_err(|e| e.to_string())?;
    if args.json {
        print_json(&json!({ "ids": enc.ids, "tokens": enc.tokens, "attention_mask": enc.attention_mask }));
    } else {
        println!("{:>6}  {:<8} {:>4}  token", "index", "id", "mask");
        for (i, ((id, token), mask)) in enc.ids.iter().zip(&enc.tokens).zip(&enc.attention_mask).enumerate() {
            let special = if enc.special_tokens_mask[i] == 1 { "  (special)" } else { "" };
            println!("{i:>6}  {id:<8} {mask:>4}  {token:?}{special}");
        }
    }
    Ok(())
}

pub fn parse_ids(text: &str) -> Result<Vec<u32>, String> {
    let ids: Result<Vec<u32>, String> = text
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().map_err(|_| format!("`{s}` is not a token id (a non-negative integer)")))
        .collect();
    let ids = ids?;
    if ids.is_empty() {
        return Err("no token ids given".into());
    }
    Ok(ids)
}

pub fn decode(args: DecodeArgs) -> CliResult {
    let tokenizer = model_dir::tokenizer(&args.tokenizer)?;
    let ids = parse_ids(&args.ids)?;
    println!("{}", tokenizer.decode(&ids).map_err(|e| e.to_string())?);
    Ok(())
}
