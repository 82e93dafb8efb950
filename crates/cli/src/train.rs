//! `hearth train` and `hearth eval`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use clap::Args;
use hearth_lm::train::{corpus_of_files, size_preset, Arch, EvalReport, TrainConfig, Trainer};
use hearth_lm::train::{Corpus, Decay, Packing, SourceFiles, TokenizerChoice};
use hearth_lm::ModelConfig;
use serde_json::json;

use crate::checkpoint_dir::{load_checkpoint, occupied, save_checkpoint, STATE_FILE};
use crate::{print_json, CliResult};

/// Corpora larger than this are refused before reading (the whole file is held in memory).
const MAX_CORPUS_BYTES: u64 = 1 << 30;

/// The settings of a run. Every setting is optional so that `--resume` can tell which ones
/// were given: a new run takes the defaults shown, a resumed run keeps its saved settings and
/// refuses any given flag that would change them (except the ones it can apply safely).
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// What to train on; repeat for several files. A `.txt` file is one document, a `.jsonl`
    /// file one per line (see --text-field), a `.csv` file one per row.
    #[arg(long, required = true)]
    corpus: Vec<PathBuf>,
    /// The JSONL field or CSV column that holds the text [default: text]
    #[arg(long)]
    text_field: Option<String>,
    /// `concat` (documents joined by the end-of-text token, cut into windows) or `per-doc`
    /// (each document cut into context-sized chunks, the remainder dropped) [default: concat]
    #[arg(long)]
    packing: Option<String>,
    /// Fine-tune this Hugging Face model directory instead of starting from random weights; its
    /// architecture and tokenizer are used, and the defaults become Hugging Face Trainer's
    /// (lr 5e-5 decaying linearly to 0, no warmup, beta2 0.999, no weight decay, batch 8,
    /// context 128, 500 steps, the model's dropout).
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// Train for this many passes over the train rows instead of --steps.
    #[arg(long, conflicts_with = "steps")]
    epochs: Option<f64>,
    /// `cosine` or `linear` decay after warmup [default: cosine; linear with --init-from]
    #[arg(long)]
    schedule: Option<String>,
    /// `gpt2` (causal LM), `llama` (causal LM: RoPE, RMSNorm, SwiGLU, GQA) or `bert` (masked
    /// LM) [default: gpt2]
    #[arg(long)]
    arch: Option<String>,
    /// --arch llama: key/value heads, dividing --n-head (grouped-query attention) [default: --n-head]
    #[arg(long)]
    n_kv_head: Option<usize>,
    /// --arch llama: the rotary base [default: 10000]
    #[arg(long)]
    rope_theta: Option<f64>,
    /// --arch llama: give lm_head its own matrix instead of the token embedding's
    #[arg(long)]
    untie_embeddings: bool,
    /// chars | bytes | gpt2 | bert-base-uncased | bpe:N [default: chars]
    #[arg(long)]
    tokenizer: Option<String>,
    /// nano (4/4/128), baby (6/6/384), gpt2, gpt2-medium, ...; overridden by --n-layer etc.
    #[arg(long)]
    preset: Option<String>,
    #[arg(long)]
    n_layer: Option<usize>,
    #[arg(long)]
    n_head: Option<usize>,
    #[arg(long)]
    n_embd: Option<usize>,
    /// [default: 64]
    #[arg(long)]
    context: Option<usize>,
    /// Distance between window starts (default: the context, no overlap).
    #[arg(long)]
    stride: Option<usize>,
    /// [default: 12]
    #[arg(long)]
    batch_size: Option<usize>,
    /// Steps of the whole run; with --resume, a larger value extends it [default: 2000]
    #[arg(long)]
    steps: Option<usize>,
    /// [default: 1e-3]
    #[arg(long)]
    lr: Option<f64>,
    /// [default: 1e-4]
    #[arg(long)]
    min_lr: Option<f64>,
    /// [default: 100]
    #[arg(long)]
    warmup: Option<usize>,
    /// [default: 0.9]
    #[arg(long)]
    beta1: Option<f64>,
    /// [default: 0.99]
    #[arg(long)]
    beta2: Option<f64>,
    /// [default: 1e-8]
    #[arg(long)]
    eps: Option<f64>,
    /// [default: 0.1]
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Global gradient-norm bound, 0 disables [default: 1.0]
    #[arg(long)]
    grad_clip: Option<f64>,
    /// [default: 0.0]
    #[arg(long)]
    dropout: Option<f64>,
    /// [default: 0.1]
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Evaluate and checkpoint every N steps; with --resume it may change [default: 250]
    #[arg(long)]
    eval_every: Option<usize>,
    /// [default: 20]
    #[arg(long)]
    eval_batches: Option<usize>,
    /// [default: 1337]
    #[arg(long)]
    seed: Option<u64>,
    /// Text the evaluation samples start from (default: the corpus's first tokens).
    #[arg(long)]
    sample_prompt: Option<String>,
    /// [default: 100]
    #[arg(long)]
    sample_tokens: Option<usize>,
    /// The sentence whose attention and logit lens every evaluation records in
    /// trainer_state.json (default: the start of the validation split).
    #[arg(long)]
    probe: Option<String>,
    /// Checkpoint directory (written at every evaluation and at the end).
    #[arg(long)]
    out: PathBuf,
    /// Replace what --out holds (another run's checkpoint, or other files).
    #[arg(long)]
    overwrite: bool,
    /// Continue the run saved in this checkpoint directory (same corpus); --steps may extend it.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Memory the run may use, e.g. 6G (default: what the machine has available).
    #[arg(long)]
    max_memory: Option<String>,
    /// Threads each step's batch is split across, each running the forward and backward
    /// of its rows (default: one per core; 1 keeps a step on one thread). Each thread past the
    /// first holds another set of gradients, so fewer run when the memory budget has no room;
    /// runs with dropout always step on one thread.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    batch_threads: Option<u16>,
    /// One JSON object per line instead of a progress bar.
    #[arg(long)]
    json: bool,
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_CORPUS_BYTES {
        return Err(format!(
            "{} is {} MiB; the limit is {} MiB",
            path.display(),
            meta.len() >> 20,
            MAX_CORPUS_BYTES >> 20
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// One text file as a one-document corpus.
pub fn read_corpus(path: &Path) -> Result<Corpus, String> {
    Corpus::from_bytes(&read_file(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every document of every file (see [`hearth_lm::train::documents`]), within one size limit.
pub fn read_corpora(paths: &[PathBuf], field: Option<&str>) -> Result<Corpus, String> {
    let mut files = Vec::with_capacity(paths.len());
    let mut total = 0u64;
    for path in paths {
        let bytes = read_file(path)?;
        total += bytes.len() as u64;
        if total > MAX_CORPUS_BYTES {
            return Err(format!("the corpus files add up to more than {} MiB", MAX_CORPUS_BYTES >> 20));
        }
        files.push((path.display().to_string(), bytes));
    }
    corpus_of_files(&files, field).map_err(|e| e.to_string())
}

fn parse<T: std::str::FromStr<Err = hearth_lm::Error>>(value: &str) -> Result<T, String> {
    value.parse().map_err(|e: hearth_lm::Error| e.to_string())
}

/// A new run from random weights: the defaults, then the flags given.
fn config_from(args: &TrainArgs) -> Result<TrainConfig, String> {
    let arch: Arch = parse(args.arch.as_deref().unwrap_or("gpt2"))?;
    let mut c = TrainConfig::nano(arch);
    c.tokenizer = parse::<TokenizerChoice>(args.tokenizer.as_deref().unwrap_or("chars"))?;
    let (l, h, d) = size_preset(args.preset.as_deref().unwrap_or("nano")).map_err(|e| e.to_string())?;
    (c.n_layer, c.n_head, c.n_embd) =
        (args.n_layer.unwrap_or(l), args.n_head.unwrap_or(h), args.n_embd.unwrap_or(d));
    let llama_flags = args.n_kv_head.is_some() || args.rope_theta.is_some() || args.untie_embeddings;
    if llama_flags && arch != Arch::Llama {
        return Err("--n-kv-head, --rope-theta and --untie-embeddings are --arch llama's".into());
    }
    c.llama.n_kv_head = args.n_kv_head;
    c.llama.rope_theta = args.rope_theta.unwrap_or(c.llama.rope_theta);
    c.llama.tie_embeddings = !args.untie_embeddings;
    apply_recipe(args, c)
}

/// A fine-tuning run of the model in `dir`: its shape and tokenizer, Hugging Face's defaults,
/// then the flags given. Shape and tokenizer flags are refused: they come from the model.
fn fine_tune_config(args: &TrainArgs, dir: &Path, model: ModelConfig) -> Result<TrainConfig, String> {
    let shaped = [
        ("--arch", args.arch.is_some()),
        ("--tokenizer", args.tokenizer.is_some()),
        ("--preset", args.preset.is_some()),
        ("--n-layer", args.n_layer.is_some()),
        ("--n-head", args.n_head.is_some()),
        ("--n-embd", args.n_embd.is_some()),
        ("--n-kv-head", args.n_kv_head.is_some()),
        ("--rope-theta", args.rope_theta.is_some()),
        ("--untie-embeddings", args.untie_embeddings),
    ];
    let given: Vec<&str> = shaped.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    if !given.is_empty() {
        return Err(format!(
            "{} cannot be used with --init-from: the architecture, size and tokenizer come from {}",
            given.join(", "),
            dir.display()
        ));
    }
    apply_recipe(args, TrainConfig::fine_tune(model, dir.display().to_string()))
}

/// The files of `dir` that a fine-tune passes on (see [`SourceFiles`]), each within the JSON limit.
fn source_files(dir: &Path) -> Result<SourceFiles, String> {
    let read = |name: &str| -> Result<Option<Vec<u8>>, String> {
        let path = dir.join(name);
        path.is_file().then(|| crate::model_dir::read_json(&path)).transpose()
    };
    let files = SourceFiles::from_bytes(
        read("tokenizer_config.json")?.as_deref(),
        read("chat_template.jinja")?.as_deref(),
        read("generation_config.json")?.as_deref(),
    )
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    // A template that does not parse is refused now, not when the result is chatted with.
    files.chat_template().map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(files)
}

/// The training settings given as flags, over `c`'s defaults.
fn apply_recipe(args: &TrainArgs, mut c: TrainConfig) -> Result<TrainConfig, String> {
    c.data.context = args.context.unwrap_or(c.data.context);
    c.data.stride = args.stride.unwrap_or(c.data.context);
    c.data.val_fraction = args.val_fraction.unwrap_or(c.data.val_fraction);
    if let Some(packing) = &args.packing {
        c.data.packing = parse::<Packing>(packing)?;
    }
    if let Some(schedule) = &args.schedule {
        c.decay = parse::<Decay>(schedule)?;
    }
    c.batch_size = args.batch_size.unwrap_or(c.batch_size);
    c.steps = args.steps.unwrap_or(c.steps);
    c.epochs = args.epochs;
    c.lr = args.lr.unwrap_or(c.lr);
    c.min_lr = args.min_lr.unwrap_or(c.min_lr.min(c.lr));
    c.warmup = args.warmup.unwrap_or(c.warmup);
    c.adamw.beta1 = args.beta1.unwrap_or(c.adamw.beta1);
    c.adamw.beta2 = args.beta2.unwrap_or(c.adamw.beta2);
    c.adamw.eps = args.eps.unwrap_or(c.adamw.eps);
    c.adamw.weight_decay = args.weight_decay.unwrap_or(c.adamw.weight_decay);
    c.grad_clip = args.grad_clip.unwrap_or(c.grad_clip);
    c.dropout = args.dropout.unwrap_or(c.dropout);
    c.eval_every = args.eval_every.unwrap_or(c.eval_every);
    c.eval_batches = args.eval_batches.unwrap_or(c.eval_batches);
    c.seed = args.seed.unwrap_or(c.seed);
    c.sample_prompt = args.sample_prompt.clone().unwrap_or_default();
    c.sample_tokens = args.sample_tokens.unwrap_or(c.sample_tokens);
    c.probe = args.probe.clone().unwrap_or_default();
    if let Some(epochs) = c.epochs {
        // Checked now for the message; the steps are derived once the data is known.
        TrainConfig::steps_for_epochs(epochs, 1, 1).map_err(|e| e.to_string())?;
    }
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// The flags given with `--resume` that disagree with the saved run, as `--flag X (saved Y)`.
/// `--steps` (extend) and `--eval-every` are applied instead; `--out`, `--json`,
/// `--max-memory` and `--overwrite` are not settings of the run.
fn resume_conflicts(args: &TrainArgs, saved: &TrainConfig) -> Vec<String> {
    let mut conflicts = Vec::new();
    let check = |flag: &str, given: Option<String>, saved: String| {
        given.filter(|g| *g != saved).map(|given| format!("--{flag} {given} (saved {saved})"))
    };
    let text = |v: &dyn ToString| v.to_string();
    let arch = saved.arch.name();
    conflicts.extend(check(
        "arch",
        args.arch.as_ref().map(|a| if a == "gpt" { "gpt2".into() } else { a.clone() }),
        arch.into(),
    ));
    conflicts.extend(check("tokenizer", args.tokenizer.clone(), saved.tokenizer.to_string()));
    conflicts.extend(check(
        "n-kv-head",
        args.n_kv_head.map(|k| text(&k)),
        text(&saved.llama.n_kv_head.unwrap_or(saved.n_head)),
    ));
    conflicts.extend(check("rope-theta", args.rope_theta.map(|t| text(&t)), text(&saved.llama.rope_theta)));
    if args.untie_embeddings && saved.llama.tie_embeddings {
        conflicts.push("--untie-embeddings (saved: tied)".into());
    }
    if let Some(preset) = &args.preset {
        if let Ok((l, h, d)) = size_preset(preset) {
            if (l, h, d) != (saved.n_layer, saved.n_head, saved.n_embd) {
                conflicts.push(format!(
                    "--preset {preset} (saved {} layers, {} heads, {} dims)",
                    saved.n_layer, saved.n_head, saved.n_embd
                ));
            }
        } else {
            conflicts.push(format!("--preset {preset} (unknown)"));
        }
    }
    conflicts.extend(check("n-layer", args.n_layer.map(|v| text(&v)), text(&saved.n_layer)));
    conflicts.extend(check("n-head", args.n_head.map(|v| text(&v)), text(&saved.n_head)));
    conflicts.extend(check("n-embd", args.n_embd.map(|v| text(&v)), text(&saved.n_embd)));
    conflicts.extend(check("context", args.context.map(|v| text(&v)), text(&saved.data.context)));
    conflicts.extend(check("stride", args.stride.map(|v| text(&v)), text(&saved.data.stride)));
    conflicts.extend(check("packing", args.packing.clone(), saved.data.packing.to_string()));
    conflicts.extend(check("schedule", args.schedule.clone(), saved.decay.to_string()));
    if let Some(dir) = &args.init_from {
        conflicts
            .push(format!("--init-from {} (a resumed run continues from its own weights)", dir.display()));
    }
    if let Some(epochs) = args.epochs {
        conflicts.push(format!("--epochs {epochs} (extend a resumed run with --steps)"));
    }
    conflicts.extend(check(
        "val-fraction",
        args.val_fraction.map(|v| text(&v)),
        text(&saved.data.val_fraction),
    ));
    conflicts.extend(check("batch-size", args.batch_size.map(|v| text(&v)), text(&saved.batch_size)));
    conflicts.extend(check("lr", args.lr.map(|v| text(&v)), text(&saved.lr)));
    conflicts.extend(check("min-lr", args.min_lr.map(|v| text(&v)), text(&saved.min_lr)));
    conflicts.extend(check("warmup", args.warmup.map(|v| text(&v)), text(&saved.warmup)));
    conflicts.extend(check("beta1", args.beta1.map(|v| text(&v)), text(&saved.adamw.beta1)));
    conflicts.extend(check("beta2", args.beta2.map(|v| text(&v)), text(&saved.adamw.beta2)));
    conflicts.extend(check("eps", args.eps.map(|v| text(&v)), text(&saved.adamw.eps)));
    conflicts.extend(check(
        "weight-decay",
        args.weight_decay.map(|v| text(&v)),
        text(&saved.adamw.weight_decay),
    ));
    conflicts.extend(check("grad-clip", args.grad_clip.map(|v| text(&v)), text(&saved.grad_clip)));
    conflicts.extend(check("dropout", args.dropout.map(|v| text(&v)), text(&saved.dropout)));
    conflicts.extend(check("eval-batches", args.eval_batches.map(|v| text(&v)), text(&saved.eval_batches)));
    conflicts.extend(check("seed", args.seed.map(|v| text(&v)), text(&saved.seed)));
    conflicts.extend(check("sample-prompt", args.sample_prompt.clone(), saved.sample_prompt.clone()));
    conflicts.extend(check("probe", args.probe.clone(), saved.probe.clone()));
    conflicts.extend(check(
        "sample-tokens",
        args.sample_tokens.map(|v| text(&v)),
        text(&saved.sample_tokens),
    ));
    if let Some(steps) = args.steps.filter(|&s| s < saved.steps) {
        conflicts.push(format!(
            "--steps {steps} (the run is planned for {}; it can only be extended)",
            saved.steps
        ));
    }
    conflicts
}

/// A new run (or a resumed one writing elsewhere) must not silently replace what `--out` holds.
fn check_out(args: &TrainArgs) -> Result<(), String> {
    if let Some(resume) = args.resume.as_ref().filter(|r| crate::handoff::is_trainer_checkpoint(r)) {
        if same_dir(resume, &args.out) {
            return Err(format!(
                "{} is Trainer's checkpoint; continue it in Hearth with another --out",
                resume.display()
            ));
        }
    }
    let same_run = args.resume.as_ref().is_some_and(|r| same_dir(r, &args.out));
    if args.overwrite || same_run || !occupied(&args.out) {
        return Ok(());
    }
    let what = if args.out.join(STATE_FILE).is_file() { "another run's checkpoint" } else { "other files" };
    Err(format!(
        "{} already holds {what}; continue it with --resume {}, choose another --out, or pass --overwrite to replace it",
        args.out.display(),
        args.out.display()
    ))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn progress_bar(
    step: usize,
    total: usize,
    epoch: f64,
    loss: f64,
    tokens_per_s: f64,
    elapsed_s: f64,
    done_in_run: usize,
) -> String {
    let width = 30;
    let filled = width * step / total.max(1);
    let eta = if done_in_run > 0 { elapsed_s / done_in_run as f64 * (total - step) as f64 } else { 0.0 };
    format!(
        "\r[{}{}] {step}/{total}  epoch {epoch:.2}  loss {loss:.4}  {tokens_per_s:.0} tok/s  ETA {}m{:02}s ",
        "#".repeat(filled),
        ".".repeat(width - filled),
        (eta as u64) / 60,
        (eta as u64) % 60
    )
}

fn print_eval(report: &EvalReport, tokens_per_s: f64, json: bool) {
    if json {
        // The report's own serialisation spells NaN/∞ out (hearth_lm::finite).
        let mut line = serde_json::to_value(report).expect("an eval report serialises");
        line["event"] = json!("eval");
        line["tokens_per_s"] = hearth_lm::finite::to_json(tokens_per_s);
        print_json(&line);
    } else {
        let val = report.val_loss.map_or("-".to_string(), |v| format!("{v:.4}"));
        eprintln!(
            "\rstep {:>6}  epoch {:.2}  tokens {:>10}  train {:.4}  val {val}  ppl {:.2}  lr {:.2e}  {tokens_per_s:.0} tok/s",
            report.step, report.epoch, report.tokens_seen, report.train_loss, report.perplexity, report.lr
        );
        eprintln!("  sample: {:?}", report.sample);
    }
}

/// A fine-tune of the Hugging Face directory `dir` (`--init-from`, or a plain Trainer
/// checkpoint being continued) on `corpus`.
fn fine_tune_from(
    args: &TrainArgs,
    dir: &Path,
    corpus: &hearth_lm::train::Corpus,
    device: &Device,
    budget: hearth_lm::model::memory::Budget,
) -> Result<Trainer, String> {
    let files = crate::model_dir::read_dir(dir)?;
    let model = ModelConfig::from_json(&files.config_json).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::device::check_model(&model).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The model's own tokenizer (or its architecture's built-in one), checked
    // against its vocabulary before any weight is read.
    let tokenizer = hearth_lm::io::hf::tokenizer_for_config(&files, &model)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut config = fine_tune_config(args, dir, model)?;
    // An instruct model's chat template and generation config go with the run.
    if let Some(init) = config.init_from.as_mut() {
        init.files = source_files(dir)?;
    }
    Trainer::fine_tune_within(config, &files.model_safetensors, tokenizer, corpus, device, budget)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

pub fn train(args: TrainArgs, device: &Device) -> CliResult {
    check_out(&args)?;
    // On a GPU every tensor of a step must also fit one buffer a kernel can bind.
    let budget = crate::device::budget(crate::memory::budget(args.max_memory.as_deref())?);
    let corpus = read_corpora(&args.corpus, args.text_field.as_deref())?;
    let mut trainer = match &args.resume {
        // A checkpoint of a Trainer run Hearth did not hand off: a fine-tune of its weights that
        // takes over its step and AdamW state.
        Some(dir) if crate::handoff::is_plain_trainer_checkpoint(dir) => {
            if args.init_from.is_some() {
                return Err(format!(
                    "--resume {} starts from its own weights: drop --init-from",
                    dir.display()
                ));
            }
            let trainer = fine_tune_from(&args, dir, &corpus, device, budget)?;
            crate::handoff::continue_plain(trainer, dir, args.json)?
        }
        Some(dir) => {
            // A Trainer checkpoint of a handed-off run comes back as Hearth's.
            let checkpoint = if crate::handoff::is_trainer_checkpoint(dir) {
                crate::handoff::load_trainer_checkpoint(dir)?
            } else {
                load_checkpoint(dir)?
            };
            let mut t = Trainer::resume_within(&checkpoint, &corpus, device, budget)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            let conflicts = resume_conflicts(&args, t.config());
            if !conflicts.is_empty() {
                return Err(format!(
                    "these flags disagree with the run saved in {}: {}; drop them to continue it, or start a new run",
                    dir.display(),
                    conflicts.join(", ")
                ));
            }
            if let Some(steps) = args.steps {
                t.extend_steps(steps);
            }
            if let Some(every) = args.eval_every {
                t.set_eval_every(every).map_err(|e| e.to_string())?;
            }
            t
        }
        None => match &args.init_from {
            Some(dir) => fine_tune_from(&args, dir, &corpus, device, budget)?,
            None => Trainer::new_within(config_from(&args)?, &corpus, device, budget)
                .map_err(|e| e.to_string())?,
        },
    };
    if let Some(threads) = args.batch_threads {
        trainer.set_threads(threads.into());
    }
    let stats = trainer.stats();
    if args.json {
        print_json(
            &json!({ "event": "stats", "parameters": trainer.num_params(), "stats": stats, "config": trainer.config() }),
        );
    } else {
        eprintln!(
            "corpus: {} documents, {} chars, {} tokens (vocabulary {}); train {} documents / {} tokens / {} rows, \
             val {} documents / {} tokens / {} rows; {} tokens in no row ({} packing)",
            stats.documents,
            stats.chars,
            stats.tokens,
            stats.vocab_size,
            stats.train_documents,
            stats.train_tokens,
            stats.train_windows,
            stats.val_documents,
            stats.val_tokens,
            stats.val_windows,
            stats.dropped_tokens,
            trainer.config().data.packing
        );
        if let Some(init) = &trainer.config().init_from {
            eprintln!("fine-tuning {} ({} parameters)", init.source, trainer.num_params());
        }
        eprintln!(
            "model: {} parameters; starting at step {} of {}",
            trainer.num_params(),
            trainer.step_count(),
            trainer.config().steps
        );
    }

    // A fine-tune's curve starts at the pretrained model's loss on this text.
    if trainer.config().init_from.is_some() && trainer.history().is_empty() {
        let eval = pollster::block_on(trainer.evaluate()).map_err(|e| e.to_string())?;
        print_eval(&eval, 0.0, args.json);
    }
    let start = Instant::now();
    let first_step = trainer.step_count();
    let mut tokens_since_eval = 0usize;
    let mut eval_clock = Instant::now();
    let mut threads = 1;
    while !trainer.is_done() {
        let step_clock = Instant::now();
        let report = pollster::block_on(trainer.step());
        trainer.add_train_seconds(step_clock.elapsed().as_secs_f64());
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                if args.json {
                    print_json(&json!({ "event": "error", "message": e.to_string() }));
                }
                return Err(format!("{e} (checkpoint: {})", args.out.display()));
            }
        };
        tokens_since_eval += report.tokens;
        threads = report.threads;
        if report.step == first_step + 1 && !args.json && threads > 1 {
            eprintln!("each step's batch is split across {threads} threads (--batch-threads)");
        }
        let tokens_per_s = tokens_since_eval as f64 / eval_clock.elapsed().as_secs_f64().max(1e-9);
        if args.json {
            // Every step's loss, learning rate and gradient norm: what a hand-off's train_hf.py
            // logs too, so the two runs compare line by line.
            let mut line = serde_json::to_value(report).expect("a step report serialises");
            line["event"] = json!("step");
            print_json(&line);
        } else {
            let line = progress_bar(
                report.step,
                trainer.config().steps,
                report.epoch,
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
        print_json(&json!({
            "event": "done",
            "step": trainer.step_count(),
            "seconds": elapsed,
            "train_seconds": trainer.train_seconds(),
            "tokens_per_s": trainer.tokens_seen() as f64 / trainer.train_seconds().max(1e-9),
            "threads": threads,
            "checkpoint": args.out,
        }));
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
        hearth_lm::AnyModel::Gpt2(_) | hearth_lm::AnyModel::Llama(_) => {
            let m = model.causal().expect("a decoder");
            pollster::block_on(hearth_lm::infer::score::score_windows(m, &ids, args.context))
                .map_err(|e| e.to_string())?
        }
        hearth_lm::AnyModel::Bert(_) | hearth_lm::AnyModel::ModernBert(_) => {
            let m = model.masked().expect("an encoder");
            pollster::block_on(hearth_lm::train::eval::score_masked(m, &tokenizer, &ids, args.context))
                .map_err(|e| e.to_string())?
        }
    };
    if args.json {
        print_json(&json!({
            "loss": hearth_lm::finite::to_json(score.loss),
            "perplexity": hearth_lm::finite::to_json(score.perplexity),
            "tokens": score.predicted,
        }));
    } else {
        println!("tokens: {}  loss: {:.4}  perplexity: {:.2}", score.predicted, score.loss, score.perplexity);
    }
    Ok(())
}
