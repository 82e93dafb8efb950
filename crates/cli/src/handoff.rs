//! `hearth handoff`: a run's directory for Hugging Face Trainer ([`hearth_lm::io::handoff`]):
//! Trainer's checkpoint of the run, its data in the order still to come, and `train_hf.py`.

use std::fs;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use hearth_lm::model::memory::human_bytes;
use hearth_lm::train::Trainer;
use serde_json::json;

use hearth_lm::io::checkpoint::Checkpoint;
use hearth_lm::io::handoff::{checkpoint_from_trainer, TrainerCheckpoint, HANDED_FILES, HEARTH_STATE};

use crate::checkpoint_dir::{load_checkpoint, read_files};
use crate::model_dir::read_json;
use crate::train::read_corpora;
use crate::{print_json, CliResult};

#[derive(clap::Args, Debug)]
pub struct HandoffArgs {
    /// The run's checkpoint directory (what `hearth train --out` wrote).
    #[arg(long)]
    run: PathBuf,
    /// The run's corpus, the same files as for `hearth train` (tokenized again and checked
    /// against the run's fingerprint). May be repeated.
    #[arg(long, required = true)]
    corpus: Vec<PathBuf>,
    /// The field or column holding the text in .jsonl and .csv corpora [default: text]
    #[arg(long)]
    text_field: Option<String>,
    /// The directory to write (new, or empty, or an earlier hand-off with --overwrite).
    #[arg(long)]
    out: PathBuf,
    /// Steps of the continued run in all [default: the run's own]; more extends its schedule,
    /// as `hearth train --resume --steps` does.
    #[arg(long)]
    steps: Option<usize>,
    /// Replace an earlier hand-off in --out.
    #[arg(long)]
    overwrite: bool,
    /// Memory the hand-off may use, e.g. 6G (default: what the machine has available).
    #[arg(long)]
    max_memory: Option<String>,
    /// One JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

/// `--out` must be new or empty, or an earlier hand-off (`handoff.json`) that --overwrite
/// replaces: nothing else is ever deleted.
fn check_out(out: &Path, overwrite: bool) -> Result<(), String> {
    let Ok(mut entries) = fs::read_dir(out) else {
        return if out.exists() { Err(format!("{} is not a directory", out.display())) } else { Ok(()) };
    };
    if entries.next().is_none() {
        return Ok(());
    }
    if !out.join("handoff.json").is_file() {
        return Err(format!("{} holds other files; choose a new or empty directory", out.display()));
    }
    if !overwrite {
        return Err(format!("{} holds an earlier hand-off; pass --overwrite to replace it", out.display()));
    }
    Ok(())
}

pub fn run(args: HandoffArgs, device: &Device) -> CliResult {
    check_out(&args.out, args.overwrite)?;
    let budget = crate::memory::budget(args.max_memory.as_deref())?;
    let checkpoint = load_checkpoint(&args.run)?;
    let corpus = read_corpora(&args.corpus, args.text_field.as_deref())?;
    let trainer = Trainer::resume_within(&checkpoint, &corpus, device, budget)
        .map_err(|e| format!("{}: {e}", args.run.display()))?;
    // Beside the run as resumed: its moments read out, their PyTorch copies and the files.
    let need = trainer.num_params() as u128 * 4 * 6;
    if need > budget as u128 {
        return Err(format!(
            "the hand-off needs ~{} for the weights and AdamW moments as PyTorch files but ~{} is available",
            human_bytes(need),
            human_bytes(budget as u128)
        ));
    }
    let steps = args.steps.unwrap_or(trainer.config().steps);
    let files = pollster::block_on(trainer.handoff(steps)).map_err(|e| e.to_string())?;

    // Written beside --out and renamed into place: a failed hand-off leaves no half directory.
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let name =
        args.out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "handoff".into());
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    let written = files.iter().try_for_each(|(file, bytes)| {
        let path = partial.join(file);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    });
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    if args.out.exists() {
        fs::remove_dir_all(&args.out).map_err(|e| format!("cannot replace {}: {e}", args.out.display()))?;
    }
    fs::rename(&partial, &args.out).map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;

    let step = trainer.step_count();
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    if args.json {
        print_json(&json!({
            "event": "handoff",
            "out": args.out,
            "checkpoint": args.out.join(format!("checkpoint-{step}")),
            "step": step,
            "steps": steps,
            "files": files.iter().map(|(f, _)| f).collect::<Vec<_>>(),
            "bytes": bytes,
        }));
    } else {
        eprintln!(
            "handed off at step {step} of {steps}: {} ({}); continue with\n  python {}/train_hf.py {}",
            args.out.join(format!("checkpoint-{step}")).display(),
            human_bytes(bytes as u128),
            args.out.display(),
            args.out.display()
        );
    }
    Ok(())
}

/// Whether `dir` is a Trainer checkpoint (`optimizer.pt`) rather than Hearth's.
pub fn is_trainer_checkpoint(dir: &Path) -> bool {
    dir.join("optimizer.pt").is_file() && !dir.join("optimizer.safetensors").is_file()
}

/// A Trainer checkpoint of a run Hearth did not hand off: no `handoff.json` in the directory
/// above it.
pub fn is_plain_trainer_checkpoint(dir: &Path) -> bool {
    let root = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    is_trainer_checkpoint(dir) && !root.join("handoff.json").is_file()
}

/// A plain Trainer checkpoint continued in Hearth: its weights start a fine-tune (as `--init-from`
/// would), which then takes over its step and AdamW state; what the checkpoint does not hold
/// (the schedule's formula, the data order, PyTorch's random state) is printed, not guessed.
pub fn continue_plain(mut trainer: Trainer, dir: &Path, json: bool) -> Result<Trainer, String> {
    let files = read_files(dir, &[("optimizer.pt", true), ("trainer_state.json", false)])?;
    let optimizer = files.get("optimizer.pt").ok_or_else(|| format!("{}: no optimizer.pt", dir.display()))?;
    let state =
        files.get("trainer_state.json").ok_or_else(|| format!("{}: no trainer_state.json", dir.display()))?;
    let adopted =
        trainer.adopt_trainer_checkpoint(optimizer, state).map_err(|e| format!("{}: {e}", dir.display()))?;
    if json {
        crate::print_json(&json!({
            "event": "plain_trainer_checkpoint",
            "step": adopted.step,
            "parameters": adopted.parameters,
            "lacking": adopted.lacking,
        }));
    } else {
        eprintln!(
            "{} is a checkpoint of a Trainer run Hearth did not hand off: continuing from step {} with its weights and the AdamW state of its {} parameters. Not in the checkpoint:",
            dir.display(),
            adopted.step,
            adopted.parameters
        );
        for line in &adopted.lacking {
            eprintln!("  - {line}");
        }
    }
    Ok(trainer)
}

/// Hearth's checkpoint of a Trainer checkpoint of a handed-off run (`DIR/checkpoint-M`, with
/// `DIR/handoff.json` beside it): `hearth train --resume DIR/checkpoint-M` continues it. A
/// sharded (FSDP, DeepSpeed) checkpoint, or one of a run Hearth did not hand off, is refused with
/// what it lacks.
pub fn load_trainer_checkpoint(dir: &Path) -> Result<Checkpoint, String> {
    let shown = dir.display();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("pytorch_model_fsdp")
                || name.starts_with("optimizer_0")
                || name.starts_with("global_step")
            {
                return Err(format!(
                    "{shown} is a sharded checkpoint (`{}`, FSDP or DeepSpeed): Hearth reads a whole model.safetensors and optimizer.pt; save the run with a full state dict (FSDP's FULL_STATE_DICT) to continue it here",
                    hearth_lm::error::excerpt(&name)
                ));
            }
        }
    }
    let root = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !root.join("handoff.json").is_file() {
        // `train` continues a plain Trainer checkpoint itself ([`continue_plain`]).
        return Err(format!("{shown} has no handoff.json beside it: it is not a run Hearth handed off"));
    }
    let handoff_json = read_json(&root.join("handoff.json"))?;
    let hearth_state = read_json(&root.join(HEARTH_STATE))?;
    let losses = root.join("hf_losses.jsonl");
    let losses = if losses.is_file() { Some(read_json(&losses)?) } else { None };
    let meta: serde_json::Value = serde_json::from_slice(&handoff_json)
        .map_err(|e| format!("{}: {e}", root.join("handoff.json").display()))?;
    let handed = root.join(meta["checkpoint"].as_str().unwrap_or("checkpoint-0"));
    let handed_files: Vec<(&str, bool)> = HANDED_FILES.iter().map(|&n| (n, false)).collect();
    let mut wanted = vec![
        ("config.json", false),
        ("model.safetensors", true),
        ("optimizer.pt", true),
        ("trainer_state.json", false),
    ];
    wanted.extend(&handed_files[1..]);
    let checkpoint = read_files(dir, &wanted)?;
    let handed_off = read_files(&handed, &handed_files)?;
    checkpoint_from_trainer(TrainerCheckpoint {
        handoff_json: &handoff_json,
        hearth_state: &hearth_state,
        losses: losses.as_deref(),
        checkpoint: &checkpoint,
        handed_off: &handed_off,
    })
    .map_err(|e| format!("{shown}: {e}"))
}
