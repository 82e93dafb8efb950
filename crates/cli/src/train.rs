//! `hearth train` and `hearth eval`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use clap::Args;
use hearth_lm::io::checkpoint::Checkpoint;
use hearth_lm::train::{size_preset, Arch, EvalReport, TrainConfig, Trainer};
use hearth_lm::train::{Corpus, TokenizerChoice};
use serde_json::json;

use crate::{print_json, CliResult};

/// Corpora larger than this are refused before reading (the whole file is held in memory).
const MAX_CORPUS_BYTES: u64 = 1 << 30;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// UTF-8 text file to train on.
    #[arg(long)]
    corpus: PathBuf,
    /// `gpt2` (causal LM) or `bert` (masked LM).
    #[arg(long, default_value = "gpt2")]
    arch: String,
    /// chars | bytes | gpt2 | bert-base-uncased | bpe:N
    #[arg(long, default_value = "chars")]
    tokenizer: String,
    /// nano (4/4/128), baby (6/6/384), gpt2, gpt2-medium, ...; overridden by --n-layer etc.
    #[arg(long)]
    preset: Option<String>,
    #[arg(long)]
    n_layer: Option<usize>,
    #[arg(long)]
    n_head: Option<usize>,
    #[arg(long)]
    n_embd: Option<usize>,
    #[arg(long, default_value_t = 64)]
    context: usize,
    /// Distance between window starts (default: the context, no overlap).
    #[arg(long)]
    stride: Option<usize>,
    #[arg(long, default_value_t = 12)]
    batch_size: usize,
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    min_lr: f64,
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    #[arg(long, default_value_t = 0.9)]
    beta1: f64,
    #[arg(long, default_value_t = 0.99)]
    beta2: f64,
    #[arg(long, default_value_t = 1e-8)]
    eps: f64,
    #[arg(long, default_value_t = 0.1)]
    weight_decay: f64,
    /// Global gradient-norm bound (0 disables).
    #[arg(long, default_value_t = 1.0)]
    grad_clip: f64,
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f64,
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    #[arg(long, default_value_t = 20)]
    eval_batches: usize,
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Text the evaluation samples start from (default: the corpus's first tokens).
    #[arg(long, default_value = "")]
    sample_prompt: String,
    #[arg(long, default_value_t = 100)]
    sample_tokens: usize,
    /// Checkpoint directory (written at every evaluation and at the end).
    #[arg(long)]
    out: PathBuf,
    /// Continue the run saved in this checkpoint directory (same corpus); --steps may extend it.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// One JSON object per line instead of a progress bar.
    #[arg(long)]
    json: bool,
}

pub fn read_corpus(path: &Path) -> Result<Corpus, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_CORPUS_BYTES {
        return Err(format!(
            "{} is {} MiB; the limit is {} MiB",
            path.display(),
            meta.len() >> 20,
            MAX_CORPUS_BYTES >> 20
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Corpus::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn config_from(args: &TrainArgs) -> Result<TrainConfig, String> {
    let arch: Arch = args.arch.parse().map_err(|e: hearth_lm::Error| e.to_string())?;
    let tokenizer: TokenizerChoice = args.tokenizer.parse().map_err(|e: hearth_lm::Error| e.to_string())?;
    let (mut l, mut h, mut d) = match &args.preset {
        Some(p) => size_preset(p).map_err(|e| e.to_string())?,
        None => size_preset("nano").expect("nano exists"),
    };
    l = args.n_layer.unwrap_or(l);
    h = args.n_head.unwrap_or(h);
    d = args.n_embd.unwrap_or(d);
    let mut c = TrainConfig::nano(arch);
    c.tokenizer = tokenizer;
    (c.n_layer, c.n_head, c.n_embd) = (l, h, d);
    c.data.context = args.context;
    c.data.stride = args.stride.unwrap_or(args.context);
    c.data.val_fraction = args.val_fraction;
    c.batch_size = args.batch_size;
    c.steps = args.steps;
    (c.lr, c.min_lr, c.warmup) = (args.lr, args.min_lr, args.warmup);
    c.adamw.beta1 = args.beta1;
    c.adamw.beta2 = args.beta2;
    c.adamw.eps = args.eps;
    c.adamw.weight_decay = args.weight_decay;
    c.grad_clip = args.grad_clip;
    c.dropout = args.dropout;
    c.eval_every = args.eval_every;
    c.eval_batches = args.eval_batches;
    c.seed = args.seed;
    c.sample_prompt = args.sample_prompt.clone();
    c.sample_tokens = args.sample_tokens;
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// Writes a checkpoint so that a crash mid-write never leaves a half-written one: files go
/// to a sibling directory that replaces the old one at the end.
pub fn save_checkpoint(dir: &Path, checkpoint: &Checkpoint) -> Result<(), String> {
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    for (name, bytes) in &checkpoint.files {
        std::fs::write(tmp.join(name), bytes)
            .map_err(|e| format!("cannot write {}: {e}", tmp.join(name).display()))?;
    }
    let old = dir.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read checkpoint {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path())
                .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
            files.push((entry.file_name().to_string_lossy().into_owned(), bytes));
        }
    }
    Ok(Checkpoint { files })
}

fn progress_bar(
    step: usize,
    total: usize,
    loss: f64,
    tokens_per_s: f64,
    elapsed_s: f64,
    done_in_run: usize,
) -> String {
    let width = 30;
    let filled = width * step / total.max(1);
    let eta = if done_in_run > 0 { elapsed_s / done_in_run as f64 * (total - step) as f64 } else { 0.0 };
    format!(
        "\r[{}{}] {step}/{total}  loss {loss:.4}  {tokens_per_s:.0} tok/s  ETA {}m{:02}s ",
        "#".repeat(filled),
        ".".repeat(width - filled),
        (eta as u64) / 60,
        (eta as u64) % 60
    )
}

fn print_eval(report: &EvalReport, tokens_per_s: f64, json: bool) {
    if json {
        print_json(&json!({
            "event": "eval",
            "step": report.step,
            "tokens_seen": report.tokens_seen,
            "train_loss": report.train_loss,
            "val_loss": report.val_loss,
            "perplexity": report.perplexity,
            "lr": report.lr,
            "tokens_per_s": tokens_per_s,
            "sample": report.sample,
        }));
    } else {
        let val = report.val_loss.map_or("-".to_string(), |v| format!("{v:.4}"));
        eprintln!(
            "\rstep {:>6}  tokens {:>10}  train {:.4}  val {val}  ppl {:.2}  lr {:.2e}  {tokens_per_s:.0} tok/s",
            report.step, report.tokens_seen, report.train_loss, report.perplexity, report.lr
        );
        eprintln!("  sample: {:?}", report.sample);
    }
}

pub fn train(args: TrainArgs, device: &Device) -> CliResult {
    let corpus = read_corpus(&args.corpus)?;
    let mut trainer = match &args.resume {
        Some(dir) => {
            let checkpoint = load_checkpoint(dir)?;
            let mut t = Trainer::resume(&checkpoint, &corpus, device)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            if args.steps > t.config().steps {
                t.extend_steps(args.steps);
            }
            t
        }
        None => Trainer::new(config_from(&args)?, &corpus, device).map_err(|e| e.to_string())?,
    };
    let stats = trainer.stats();
    if args.json {
        print_json(
            &json!({ "event": "stats", "parameters": trainer.num_params(), "stats": stats, "config": trainer.config() }),
        );
    } else {
        eprintln!(
            "corpus: {} chars, {} tokens (vocabulary {}); train {} tokens / {} windows, val {} tokens / {} windows",
            stats.chars, stats.tokens, stats.vocab_size, stats.train_tokens, stats.train_windows, stats.val_tokens, stats.val_windows
        );
        eprintln!(
            "model: {} parameters; starting at step {} of {}",
            trainer.num_params(),
            trainer.step_count(),
            trainer.config().steps
        );
    }

    let start = Instant::now();
    let first_step = trainer.step_count();
    let mut tokens_since_eval = 0usize;
    let mut eval_clock = Instant::now();
    while !trainer.is_done() {
        let report = match pollster::block_on(trainer.step()) {
            Ok(r) => r,
            Err(e) => {
                if args.json {
                    print_json(&json!({ "event": "error", "message": e.to_string() }));
                }
                return Err(format!("{e} (checkpoint: {})", args.out.display()));
            }
        };
        tokens_since_eval += report.tokens;
        let tokens_per_s = tokens_since_eval as f64 / eval_clock.elapsed().as_secs_f64().max(1e-9);
        if !args.json {
            let line = progress_bar(
                report.step,
                trainer.config().steps,
                report.loss,
                tokens_per_s,
                start.elapsed().as_secs_f64(),
                report.step - first_step,
            );
            eprint!("{line}");
            let _ = std::io::stderr().flush();
        }
        if trainer.eval_due() {
            let eval = pollster::block_on(trainer.evaluate()).map_err(|e| e.to_string())?;
            print_eval(&eval, tokens_per_s, args.json);
            let checkpoint = pollster::block_on(trainer.checkpoint()).map_err(|e| e.to_string())?;
            save_checkpoint(&args.out, &checkpoint)?;
            tokens_since_eval = 0;
            eval_clock = Instant::now();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if args.json {
        print_json(
            &json!({ "event": "done", "step": trainer.step_count(), "seconds": elapsed, "checkpoint": args.out }),
        );
    } else {
        eprintln!(
            "\ndone: {} steps in {elapsed:.1} s; model in {}",
            trainer.step_count(),
            args.out.display()
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Hugging Face directory of a model (GPT-2 or BERT).
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    corpus: PathBuf,
    /// Window length (default: the model's context).
    #[arg(long)]
    context: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs, device: &Device) -> CliResult {
    let (model, tokenizer) = crate::model_dir::load(&args.model, device)?;
    let corpus = read_corpus(&args.corpus)?;
    let ids = hearth_lm::train::encode_corpus(&tokenizer, &corpus).map_err(|e| e.to_string())?;
    let score = match &model {
        hearth_lm::AnyModel::Gpt2(m) => {
            pollster::block_on(hearth_lm::infer::score::score_windows(m, &ids, args.context))
                .map_err(|e| e.to_string())?
        }
        hearth_lm::AnyModel::Bert(m) => {
            pollster::block_on(hearth_lm::train::eval::score_masked(m, &tokenizer, &ids, args.context))
                .map_err(|e| e.to_string())?
        }
    };
    if args.json {
        print_json(&json!({ "loss": score.loss, "perplexity": score.perplexity, "tokens": score.predicted }));
    } else {
        println!("tokens: {}  loss: {:.4}  perplexity: {:.2}", score.predicted, score.loss, score.perplexity);
    }
    Ok(())
}
