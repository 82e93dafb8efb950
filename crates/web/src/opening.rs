//! "Open a run": which files of a picked directory the tab reads to take a run back from Hugging
//! Face Trainer (the page's side of `hearth train --resume DIR/checkpoint-M`), and the panel's
//! settings for a run that comes back. Pure: the worker reads the files this plan names.
//!
//! A directory picker gives every file under the picked directory with its path from there
//! (`webkitRelativePath`: `hand/checkpoint-50/optimizer.pt`). The plan finds the hand-off
//! (`handoff.json`) and its latest Trainer checkpoint, or — with no hand-off — the latest
//! checkpoint of a plain Trainer run, whose weights open as a model and whose optimizer state,
//! schedule and data order cannot be continued exactly (the page says so).

use hearth_lm::train::{Arch, TrainConfig};

use crate::choices::{SizePreset, StartFrom, TrainArch, TrainDevice, TrainTokenizer};
use crate::protocol::{Advanced, TrainSettings};

/// What a picked directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// A run Hearth handed off: `root` holds `handoff.json`, `hearth_state.json` and (once Trainer
    /// ran) `hf_losses.jsonl`; `checkpoint` is Trainer's latest whole checkpoint under it, at
    /// `step`.
    Handoff { root: String, checkpoint: String, step: usize },
    /// A Trainer checkpoint with no hand-off beside it (or a plain model directory): its weights.
    Plain { checkpoint: String, step: Option<usize> },
}

/// The files a Trainer checkpoint must have to be continued.
const WHOLE: [&str; 3] = ["model.safetensors", "optimizer.pt", "trainer_state.json"];

/// The directory part of a picked path ("" for a file at the top).
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// `a/b` + `c` → `a/b/c`; `` + `c` → `c`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// M of a directory named `checkpoint-M`.
fn checkpoint_step(dir: &str) -> Option<usize> {
    file_name(dir).strip_prefix("checkpoint-")?.parse().ok()
}

/// A file of a sharded (FSDP, DeepSpeed) checkpoint, which has no whole `model.safetensors`.
fn sharded(name: &str) -> bool {
    name.starts_with("pytorch_model_fsdp")
        || name.starts_with("optimizer_0")
        || name.starts_with("global_step")
}

/// Chooses what to open among the picked `paths` (relative to the picked directory's parent,
/// `/`-separated). An error says what is missing, quoting at most a few names.
pub fn plan(paths: &[String]) -> Result<Opening, String> {
    if paths.is_empty() {
        return Err(
            "no files were picked: pick the directory `hearth handoff` wrote (or a Trainer checkpoint)"
                .into(),
        );
    }
    let has = |dir: &str, name: &str| paths.iter().any(|p| *p == join(dir, name));
    // The hand-off: the shallowest handoff.json (a hand-off inside a hand-off is not ours to pick).
    let root = paths
        .iter()
        .filter(|p| file_name(p) == "handoff.json")
        .map(|p| parent(p))
        .min_by_key(|dir| (dir.matches('/').count(), dir.len()));
    // Directories holding a trainer_state.json: Trainer's checkpoints, newest (largest M) first.
    let mut checkpoints: Vec<&str> =
        paths.iter().filter(|p| file_name(p) == "trainer_state.json").map(|p| parent(p)).collect();
    checkpoints.sort_by_key(|dir| std::cmp::Reverse((checkpoint_step(dir), dir.len())));
    let refuse_sharded = |dir: &str| -> Result<(), String> {
        match paths.iter().find(|p| parent(p) == dir && sharded(file_name(p))) {
            Some(p) => Err(format!(
                "{dir} is a sharded checkpoint (`{}`, FSDP or DeepSpeed): Hearth reads a whole model.safetensors and optimizer.pt; save the run with a full state dict (FSDP's FULL_STATE_DICT) to open it here",
                hearth_lm::error::excerpt(file_name(p))
            )),
            None => Ok(()),
        }
    };
    if let Some(root) = root {
        let ours: Vec<&str> = checkpoints.iter().copied().filter(|d| parent(d) == root).collect();
        for &dir in &ours {
            refuse_sharded(dir)?;
        }
        let whole = ours.iter().find(|d| WHOLE.iter().all(|n| has(d, n)) && checkpoint_step(d).is_some());
        let Some(&checkpoint) = whole else {
            return Err(format!(
                "{} holds no Trainer checkpoint to continue: a checkpoint-M directory with {} beside handoff.json",
                if root.is_empty() { "the picked directory" } else { root },
                WHOLE.join(", ")
            ));
        };
        if !has(root, "hearth_state.json") {
            return Err("the hand-off has no hearth_state.json beside handoff.json: pick the whole directory `hearth handoff` wrote".into());
        }
        let step = checkpoint_step(checkpoint).unwrap_or(0);
        return Ok(Opening::Handoff { root: root.to_string(), checkpoint: checkpoint.to_string(), step });
    }
    // No hand-off: the newest directory with a model's files opens as a model.
    let model = |dir: &str| {
        has(dir, "config.json") && (has(dir, "model.safetensors") || has(dir, "model.safetensors.index.json"))
    };
    if let Some(&dir) = checkpoints.iter().find(|d| model(d)) {
        refuse_sharded(dir)?;
        return Ok(Opening::Plain { checkpoint: dir.to_string(), step: checkpoint_step(dir) });
    }
    if let Some(&dir) = checkpoints.first() {
        refuse_sharded(dir)?;
    }
    let shown: Vec<String> =
        paths.iter().take(4).map(|p| hearth_lm::error::excerpt(p).into_owned()).collect();
    Err(format!(
        "neither a hand-off (handoff.json) nor a Trainer checkpoint (trainer_state.json with config.json and model.safetensors) is among the {} file{} picked ({}{})",
        paths.len(),
        if paths.len() == 1 { "" } else { "s" },
        shown.join(", "),
        if paths.len() > shown.len() { ", …" } else { "" }
    ))
}

/// The panel's settings of a run that came back: what its row and a later Start show. The run
/// itself continues from its `TrainConfig`; these only describe it (its shape, context, batch,
/// steps, rate), and leave "Advanced" at the recipe's defaults.
pub fn settings_of(c: &TrainConfig) -> TrainSettings {
    let arch = match c.arch {
        Arch::Gpt2 => TrainArch::Gpt2,
        Arch::Llama => TrainArch::Llama,
        Arch::Bert => TrainArch::Bert,
        Arch::ModernBert => TrainArch::ModernBert,
    };
    let size = SizePreset::ALL
        .into_iter()
        .find(|s| hearth_lm::train::size_preset(s.as_str()).ok() == Some((c.n_layer, c.n_head, c.n_embd)))
        .unwrap_or(SizePreset::Nano);
    TrainSettings {
        start_from: StartFrom::Random,
        arch,
        size,
        tokenizer: c.tokenizer.to_string().parse().unwrap_or(TrainTokenizer::Gpt2),
        context: c.data.context,
        batch_size: c.batch_size,
        steps: c.steps,
        epochs: c.epochs.unwrap_or(0.0),
        lr: c.lr,
        eval_every: c.eval_every,
        seed: c.seed,
        packing: c.data.packing,
        text_field: hearth_lm::train::DEFAULT_TEXT_FIELD.to_string(),
        // The recipe's defaults, not the run's values: the form keeps these for the next Start,
        // where a fine-tune's defaults must not inherit a pretraining run's warmup or floor.
        advanced: Advanced::default(),
        probe: c.probe.clone(),
        device: TrainDevice::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picked(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    const HAND: [&str; 12] = [
        "hand/handoff.json",
        "hand/hearth_state.json",
        "hand/hf_losses.jsonl",
        "hand/train_hf.py",
        "hand/data/train.parquet",
        "hand/checkpoint-30/config.json",
        "hand/checkpoint-30/model.safetensors",
        "hand/checkpoint-30/optimizer.pt",
        "hand/checkpoint-30/trainer_state.json",
        "hand/checkpoint-40/model.safetensors",
        "hand/checkpoint-40/optimizer.pt",
        "hand/checkpoint-40/trainer_state.json",
    ];

    #[test]
    fn a_handoff_opens_at_its_latest_whole_checkpoint() {
        let mut paths = picked(&HAND);
        assert_eq!(
            plan(&paths),
            Ok(Opening::Handoff { root: "hand".into(), checkpoint: "hand/checkpoint-40".into(), step: 40 })
        );
        // checkpoint-100 sorts after checkpoint-40 by number, not by name; one without its
        // optimizer state is passed over.
        paths.extend(picked(&[
            "hand/checkpoint-100/model.safetensors",
            "hand/checkpoint-100/trainer_state.json",
            "hand/checkpoint-50/model.safetensors",
            "hand/checkpoint-50/optimizer.pt",
            "hand/checkpoint-50/trainer_state.json",
        ]));
        assert_eq!(
            plan(&paths),
            Ok(Opening::Handoff { root: "hand".into(), checkpoint: "hand/checkpoint-50".into(), step: 50 })
        );
        // Picked at the top (no directory part) as well.
        let top: Vec<String> = HAND.iter().map(|p| p.trim_start_matches("hand/").to_string()).collect();
        assert_eq!(
            plan(&top),
            Ok(Opening::Handoff { root: "".into(), checkpoint: "checkpoint-40".into(), step: 40 })
        );
    }

    #[test]
    fn what_a_handoff_lacks_is_named() {
        let without_state: Vec<String> =
            picked(&HAND).into_iter().filter(|p| !p.ends_with("hearth_state.json")).collect();
        assert!(plan(&without_state).unwrap_err().contains("hearth_state.json"));
        let without_checkpoints: Vec<String> =
            picked(&HAND).into_iter().filter(|p| !p.contains("checkpoint-")).collect();
        let e = plan(&without_checkpoints).unwrap_err();
        assert!(e.contains("hand holds no Trainer checkpoint") && e.contains("optimizer.pt"), "{e}");
        let mut fsdp = picked(&HAND);
        fsdp.push("hand/checkpoint-40/pytorch_model_fsdp_0/__0_0.distcp".into());
        fsdp.push("hand/checkpoint-40/pytorch_model_fsdp.bin".into());
        assert!(
            plan(&fsdp).unwrap_err().contains("sharded checkpoint (`pytorch_model_fsdp.bin`"),
            "{:?}",
            plan(&fsdp)
        );
    }

    #[test]
    fn a_plain_trainer_run_opens_its_latest_checkpoints_weights() {
        let paths = picked(&[
            "out/checkpoint-500/config.json",
            "out/checkpoint-500/model.safetensors",
            "out/checkpoint-500/optimizer.pt",
            "out/checkpoint-500/trainer_state.json",
            "out/checkpoint-1000/config.json",
            "out/checkpoint-1000/model.safetensors",
            "out/checkpoint-1000/trainer_state.json",
            "out/runs/events.out",
        ]);
        assert_eq!(
            plan(&paths),
            Ok(Opening::Plain { checkpoint: "out/checkpoint-1000".into(), step: Some(1000) })
        );
        let nothing = picked(&["notes.txt", "a/b.csv"]);
        let e = plan(&nothing).unwrap_err();
        assert!(e.contains("2 files picked (notes.txt, a/b.csv)"), "{e}");
        assert!(plan(&[]).unwrap_err().contains("no files were picked"));
    }

    #[test]
    fn a_runs_settings_follow_its_config() {
        let mut c = TrainConfig::nano(Arch::Llama);
        (c.n_layer, c.n_head, c.n_embd) = hearth_lm::train::size_preset("micro").unwrap();
        c.steps = 50;
        c.batch_size = 4;
        c.warmup = 3;
        let s = settings_of(&c);
        assert_eq!((s.arch, s.size, s.steps, s.batch_size), (TrainArch::Llama, SizePreset::Micro, 50, 4));
        assert_eq!(s.advanced, Advanced::default(), "the next Start keeps its recipe's defaults");
        assert_eq!(s.tokenizer.to_string(), c.tokenizer.to_string());
    }
}
