//! Messages between the page and the worker. Each crosses `postMessage` as a two-element array:
//! the JSON of a [`Request`] or [`Event`], and an optional JS value that JSON cannot carry
//! cheaply (picked `File`s going in, the bytes of a download coming out).

use hearth_lm::model::precision::WeightDtype;
use serde::{Deserialize, Serialize};

pub use crate::choices::{SizePreset, StartFrom, TrainArch, TrainDevice, TrainTokenizer};
pub use hearth_lm::train::{Packing, Probe};

/// Which panel a model is loaded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Slot {
    FillMask,
    Generate,
}

/// What a job of the activity line is: the page disables the control that would queue another
/// of the same kind while one waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobKind {
    Load,
    FillMask,
    Generate,
    NextToken,
    Distribution,
    Inside,
    Verify,
    StartTraining,
}

/// One request the worker has received and not finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub kind: JobKind,
    pub topic: Topic,
    pub label: String,
    /// On the device now; otherwise waiting for the jobs before it.
    pub running: bool,
    pub cancellable: bool,
}

/// Which panel an error or progress report belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Topic {
    Device,
    Tokenize,
    FillMask,
    Generate,
    Pretrain,
}

impl From<Slot> for Topic {
    fn from(slot: Slot) -> Self {
        match slot {
            Slot::FillMask => Topic::FillMask,
            Slot::Generate => Topic::Generate,
        }
    }
}

/// The sliders of the generate panel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// 0 means no top-k cut.
    pub top_k: usize,
    /// 1 means no nucleus cut.
    pub top_p: f32,
}

/// The pretrain panel's form. Fields added after the first release have serde defaults, so a
/// run saved by an older page still restores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Random weights of `arch`/`size`/`tokenizer`, or a pretrained model (whose architecture
    /// and tokenizer are then used).
    #[serde(default)]
    pub start_from: StartFrom,
    pub arch: TrainArch,
    pub size: SizePreset,
    pub tokenizer: TrainTokenizer,
    pub context: usize,
    pub batch_size: usize,
    pub steps: usize,
    /// Passes over the train rows; when above 0 it decides the steps.
    #[serde(default)]
    pub epochs: f64,
    pub lr: f64,
    /// Steps between evaluations (and checkpoints); 0 picks about twenty per run.
    pub eval_every: usize,
    pub seed: u64,
    #[serde(default)]
    pub packing: Packing,
    /// The JSONL field or CSV column that holds the text.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// The "Advanced" part of the form; `None` takes the recipe's default (pretraining or
    /// fine-tuning).
    #[serde(default)]
    pub advanced: Advanced,
    /// The sentence the training probe watches; empty = the start of the validation split.
    #[serde(default)]
    pub probe: String,
    /// Which backend trains (runs saved before the choice existed: automatic).
    #[serde(default)]
    pub device: TrainDevice,
}

/// Settings most runs leave alone; `None` = the recipe's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Advanced {
    pub warmup: Option<usize>,
    pub min_lr: Option<f64>,
    pub weight_decay: Option<f64>,
    pub dropout: Option<f64>,
    pub grad_clip: Option<f64>,
    /// Llama-style only: key/value heads (blank: half the query heads where they pair up).
    #[serde(default)]
    pub kv_heads: Option<usize>,
    /// Llama-style only: the rotary base (blank: 10,000).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Llama-style only: an output head of its own instead of the token embedding's transpose.
    #[serde(default)]
    pub untie_embeddings: bool,
}

fn default_text_field() -> String {
    hearth_lm::train::DEFAULT_TEXT_FIELD.to_string()
}

impl TrainSettings {
    /// Hugging Face `TrainingArguments`' learning rate for fine-tuning.
    pub const FINE_TUNE_LR: f64 = 5e-5;
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            start_from: StartFrom::Random,
            arch: TrainArch::Gpt2,
            size: SizePreset::Micro,
            tokenizer: TrainTokenizer::Chars,
            context: 64,
            batch_size: 8,
            steps: 300,
            epochs: 0.0,
            lr: 3e-3,
            eval_every: 0,
            seed: 1337,
            packing: Packing::Concat,
            text_field: default_text_field(),
            advanced: Advanced::default(),
            probe: String::new(),
            device: TrainDevice::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainAction {
    Pause,
    Resume,
    Stop,
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Start the device (WebGPU unless `force_cpu`), then restore a saved training run.
    Init {
        force_cpu: bool,
        /// Test hook (`?test-hooks=fail-tuned`): the tuned worker build reports that its WebGPU
        /// computed wrong results, so the page's fallback to the plain build can be tested.
        #[serde(default)]
        fail_tuned: bool,
        /// Test hook (`?test-hooks=crash-restore`): the worker traps while it restores the saved
        /// run, as a checkpoint that takes the tab's memory would, so safe mode can be tested.
        #[serde(default)]
        crash_restore: bool,
        /// This tab owned the runs before its worker was replaced (a crash, a lost device, the
        /// switch to the CPU): the new worker takes them back rather than queueing behind
        /// another tab.
        #[serde(default)]
        owner: bool,
    },
    /// This tab takes the runs over from the tab that owns them (`worker/owner.rs`).
    TakeOver,
    /// Safe mode: restore the saved run again.
    SavedRetry,
    /// Safe mode: the saved run's files as a zip, without loading them.
    SavedDownload,
    /// Safe mode: the saved run moves to the runs table unloaded; the panel starts empty.
    SavedSetAside,
    /// Deletes every kept run and whatever runs' storage nothing refers to (not the run in the
    /// panel).
    RunsClear,
    /// `tokenizer`: `gpt2`, `bert-base-uncased` or `trained`. `seq` orders live updates.
    Tokenize {
        seq: u64,
        tokenizer: String,
        text: String,
    },
    /// `ids` as typed: numbers separated by commas or spaces.
    Decode {
        tokenizer: String,
        ids: String,
    },
    /// A Hugging Face file URL (`…/model.safetensors`) or a directory URL; the worker fetches
    /// `config.json`, `model.safetensors` and, if present, `tokenizer.json` beside it.
    LoadUrl {
        slot: Slot,
        url: String,
    },
    /// Files picked from disk travel beside this message.
    LoadFiles {
        slot: Slot,
    },
    /// The model trained in the pretrain panel.
    UseTrained {
        slot: Slot,
    },
    FillMask {
        text: String,
        top_k: usize,
    },
    /// The next-token distribution of `prompt` before and after the sampling settings.
    Distribution {
        seq: u64,
        prompt: String,
        sampling: SamplingParams,
    },
    /// Appends the most likely next token to `prompt` (one step of the greedy walk).
    NextToken {
        prompt: String,
    },
    Generate {
        prompt: String,
        sampling: SamplingParams,
        seed: u64,
        max_new_tokens: usize,
    },
    StopGenerate,
    /// Chat mode: the conversation rendered with the Generate model's chat template, and the
    /// assistant's reply streamed (as `Event::Generated`) until an eos id or `max_new_tokens`.
    Chat {
        system: String,
        turns: Vec<hearth_lm::chat::Message>,
        sampling: SamplingParams,
        seed: u64,
        max_new_tokens: usize,
    },
    /// Cancels a job of the activity line: one waiting leaves the queue; a running generation
    /// stops at its next token.
    Cancel {
        job: u64,
    },
    /// Runs the slot's model on WebGPU and on the CPU backend and compares the logits.
    Verify {
        slot: Slot,
        text: String,
    },
    /// A view inside the slot's model for `text` (answered by `Event::Inside` with the same
    /// `seq`; an answer to an older `seq` is stale).
    Inside {
        seq: u64,
        slot: Slot,
        text: String,
        query: InsideQuery,
    },
    /// Every inside view of `text` computed on this device and on the CPU backend: the largest
    /// difference of each.
    VerifyInside {
        slot: Slot,
        text: String,
    },
    /// The corpus files (text, JSONL, CSV; one or several) travel beside this message.
    LoadCorpus {
        text_field: String,
    },
    /// The Shakespeare sample the app ships (`corpus/tiny_shakespeare_like.txt`).
    LoadSample,
    /// The runs kept in browser storage (answered by `Event::Runs`).
    RunsList,
    RunRename {
        id: u64,
        name: String,
    },
    /// Forgets a kept run and its checkpoint (not the current run).
    RunDelete {
        id: u64,
    },
    /// A kept run's checkpoint as a Hugging Face zip.
    RunDownload {
        id: u64,
    },
    /// A run handed to Hugging Face Trainer: `hearth handoff`'s directory as a zip.
    RunHandoff {
        id: u64,
    },
    /// "Open a run": a directory picked from disk (its files travel beside this message, in the
    /// order of `paths`, each path relative to the picked directory's parent). A hand-off that
    /// Trainer continued comes back into the panel; a plain Trainer checkpoint opens as a model.
    OpenRun {
        paths: Vec<String>,
    },
    TrainStart {
        settings: TrainSettings,
    },
    TrainControl {
        action: TrainAction,
    },
    /// Adds steps to a finished or stopped run and continues it.
    TrainExtend {
        steps: usize,
    },
    DownloadTrained,
    /// The downloads kept in browser storage (answered by `Event::Stored`).
    StoredList,
    /// Forgets every kept download (not the training run's checkpoint).
    StoredClear,
    /// Test hook (the page sends it only with `?test-hooks`): the worker traps, as a GPU driver
    /// crash or an out-of-memory abort would, so the recovery path can be tested.
    Crash,
    /// Test hook (`?test-hooks` only): the worker destroys its WebGPU device, which the browser
    /// reports through `GPUDevice.lost` exactly as it reports a driver reset or a removed GPU.
    LoseDevice,
}

/// What an inside-the-model view asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InsideQuery {
    /// Every head of one layer; BERT: with `pad` masked `[PAD]` tokens after the text, as in a
    /// padded batch.
    Attention { layer: usize, pad: usize },
    /// Where one token attends, in every layer and head.
    AttentionFrom { query: usize },
    /// GPT-2: each layer's prediction at each position.
    Lens { top_k: usize },
    /// GPT-2: every token's loss, probability, rank and the model's choices.
    Surprisal { top_k: usize },
    /// A token's nearest neighbours in the input embeddings.
    Nearest { token: String, top_k: usize },
    /// The most frequent tokens of the pretrain corpus (else of the text) on two principal
    /// components.
    Projection { count: usize },
}

/// The text a view was computed for, as the model sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InsideText {
    /// The text's tokens, then any `[PAD]`s the view added.
    pub tokens: Vec<String>,
    /// How many of `tokens` are padding.
    pub padding: usize,
    pub layers: usize,
    pub heads: usize,
    /// Key/value heads: fewer than `heads` under grouped-query attention, where each serves
    /// `heads / kv_heads` consecutive query heads (0 from an older worker: one per query head).
    #[serde(default)]
    pub kv_heads: usize,
    /// Per layer: `Some(half)` where the layer attends only within `half` positions of each
    /// token (ModernBERT's local layers), `None` where it sees every key (empty from an older
    /// worker: every layer global).
    #[serde(default)]
    pub windows: Vec<Option<usize>>,
}

/// One token's surprisal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenScore {
    pub token: String,
    #[serde(with = "hearth_lm::finite")]
    pub loss: f64,
    #[serde(with = "hearth_lm::finite")]
    pub prob: f64,
    pub rank: usize,
    pub top: Vec<Candidate>,
}

/// A token placed on the projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placed {
    pub token: String,
    pub count: usize,
    #[serde(with = "hearth_lm::finite::f32")]
    pub x: f32,
    #[serde(with = "hearth_lm::finite::f32")]
    pub y: f32,
}

/// The answer of one inside view. Weights are checked finite before they are sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InsideResult {
    /// `[head][query][key]`.
    Attention {
        layer: usize,
        heads: Vec<Vec<Vec<f32>>>,
    },
    /// `[layer][head][key]`.
    AttentionFrom {
        query: usize,
        layers: Vec<Vec<Vec<f32>>>,
    },
    /// `[layer][position]` → the top tokens.
    Lens {
        cells: Vec<Vec<Vec<Candidate>>>,
    },
    /// One entry per token after the first.
    Surprisal {
        tokens: Vec<TokenScore>,
        #[serde(with = "hearth_lm::finite")]
        loss: f64,
        #[serde(with = "hearth_lm::finite")]
        perplexity: f64,
    },
    Nearest {
        token: String,
        neighbours: Vec<Candidate>,
    },
    /// `source` says whose frequencies chose the tokens.
    Projection {
        points: Vec<Placed>,
        explained: [f32; 2],
        source: String,
    },
}

/// The adapter, as WebGPU reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// `webgpu` or `cpu`.
    pub backend: String,
    pub adapter: String,
    pub vendor: String,
    pub architecture: String,
    pub device_type: String,
    /// A software adapter (a CPU emulating a GPU), as `device_type` says in words.
    #[serde(default)]
    pub software: bool,
    /// Largest single storage binding, bytes.
    pub max_binding: u64,
    /// Largest buffer, bytes.
    pub max_buffer: u64,
    pub limits: Vec<(String, u64)>,
    /// Why the CPU backend is in use, when it is.
    pub fallback_reason: Option<String>,
    /// How loaded models store their matrices here: `f16` on an adapter with `shader-f16` whose
    /// f16 arithmetic checked out at start-up, else `f32` (hearth-lm's `WeightDtype` names).
    #[serde(default)]
    pub weights: String,
    /// The worker build answering: `plain` or `tuned` (`kernels::Kernels`).
    #[serde(default)]
    pub kernels: String,
}

impl DeviceInfo {
    /// The storage loaded models use on this device (f32 unless the worker said f16).
    pub fn weights(&self) -> WeightDtype {
        self.weights.parse().unwrap_or_default()
    }
}

/// A loaded model, as the panels describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub source: String,
    /// Wire names `gpt2` / `bert`.
    pub arch: TrainArch,
    /// The checkpoint's architecture as transformers names it (`Qwen3ForCausalLM`): the model
    /// line says which family the weights are, not only the trainable arch they map to.
    pub architecture: String,
    pub params: usize,
    pub layers: usize,
    pub hidden: usize,
    pub vocab_size: usize,
    pub context: usize,
    /// Bytes of the largest tensor as stored: what must fit one storage binding.
    pub largest_tensor: u64,
    /// How its matrices are stored (`f32` or `f16`).
    #[serde(default)]
    pub weights: String,
    pub tokenizer: String,
    /// How the weights were loaded, when they were streamed from a download or a file.
    #[serde(default)]
    pub load: Option<LoadStats>,
    /// The checkpoint has a chat template (its Chat mode is offered).
    #[serde(default)]
    pub chat: bool,
    /// What its `generation_config.json` says ("ends at ids 2; samples at temperature 0.7…").
    #[serde(default)]
    pub generation: Option<String>,
}

/// What loading a model's weights took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadStats {
    /// What the weights came as: "model.safetensors", or "2 shards".
    pub files: String,
    /// Bytes of those files.
    pub file_bytes: u64,
    pub seconds: f64,
    /// The worker's wasm memory after the load. It never shrinks, so this is its high-water mark
    /// so far: with weights streamed tensor by tensor it stays near the largest tensor on WebGPU.
    pub worker_memory: u64,
}

/// One ranked token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: u32,
    pub token: String,
    #[serde(with = "hearth_lm::finite::f32")]
    pub prob: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    Idle,
    Preparing,
    Running,
    Paused,
    Stopped,
    Done,
}

/// The pretrain panel's live numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainStatus {
    pub state: RunState,
    pub step: usize,
    pub total_steps: usize,
    pub tokens_seen: u64,
    #[serde(with = "hearth_lm::finite::option")]
    pub loss: Option<f64>,
    #[serde(with = "hearth_lm::finite::option")]
    pub val_loss: Option<f64>,
    #[serde(with = "hearth_lm::finite::option")]
    pub perplexity: Option<f64>,
    #[serde(with = "hearth_lm::finite")]
    pub tokens_per_s: f64,
    #[serde(with = "hearth_lm::finite::option")]
    pub eta_s: Option<f64>,
    pub params: usize,
    /// The run's own settings (the form takes them when a saved run is restored).
    pub settings: TrainSettings,
    /// The step of the checkpoint in browser storage.
    pub saved_step: Option<usize>,
    /// Passes over the train rows so far.
    #[serde(default)]
    pub epoch: f64,
}

/// A point on the loss curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    pub step: usize,
    pub tokens: u64,
    #[serde(with = "hearth_lm::finite")]
    pub loss: f64,
    /// The learning rate of the step (0 in runs saved before it was recorded).
    #[serde(default, with = "hearth_lm::finite")]
    pub lr: f64,
}

/// An evaluation: validation point and a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: usize,
    pub tokens: u64,
    #[serde(with = "hearth_lm::finite")]
    pub train_loss: f64,
    #[serde(with = "hearth_lm::finite::option")]
    pub val_loss: Option<f64>,
    #[serde(with = "hearth_lm::finite")]
    pub perplexity: f64,
    pub sample: String,
    #[serde(default)]
    pub epoch: f64,
    #[serde(default, with = "hearth_lm::finite")]
    pub lr: f64,
    /// What the model made of the probe sentence at this evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
}

/// A run in the runs table: its settings, curves and results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: u64,
    pub name: String,
    /// What it started from: "random", or the pretrained model's name.
    pub start: String,
    pub settings: TrainSettings,
    pub corpus_name: String,
    pub step: usize,
    pub total_steps: usize,
    pub params: usize,
    #[serde(with = "hearth_lm::finite::option")]
    pub train_loss: Option<f64>,
    #[serde(with = "hearth_lm::finite::option")]
    pub val_loss: Option<f64>,
    #[serde(with = "hearth_lm::finite")]
    pub tokens_per_s: f64,
    /// Seconds spent training.
    #[serde(with = "hearth_lm::finite")]
    pub seconds: f64,
    pub evals: Vec<EvalPoint>,
    /// Whether this is the run in the panel now (the others are kept checkpoints).
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    pub name: String,
    /// Documents (a text file is one; JSONL lines and CSV rows are one each).
    #[serde(default)]
    pub documents: usize,
    pub bytes: usize,
    pub chars: usize,
    pub lines: usize,
    pub words: usize,
    pub distinct_chars: usize,
    pub preview: String,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The worker's code has loaded and it listens; the page sends `Init` on this.
    Started,
    /// `GPUDevice.lost` fired: the worker can compute nothing more, so the page replaces it (the
    /// new worker restores the last checkpoint). The browser's reason and message.
    DeviceLost {
        message: String,
    },
    /// The downloads kept in browser storage: (URL, bytes); and the runs' checkpoints: (what,
    /// bytes).
    Stored {
        files: Vec<(String, u64)>,
        #[serde(default)]
        runs: Vec<(String, u64)>,
    },
    /// Whether this tab owns the runs (trains and saves) or another tab does.
    Owner {
        owner: bool,
    },
    /// This tab's worker has taken the runs: the saved run is restored (or there is none, or
    /// safe mode holds it) and the table listed. Until then Start and Open a run wait, or they
    /// would start a run without asking to replace the saved one, which is not in the panel yet.
    RunsTaken,
    /// The storage transaction in flight ("saving the checkpoint"), or none.
    Storage {
        busy: Option<String>,
    },
    /// What the worker is doing: the job running on the device and those queued behind it, in
    /// order (the activity line).
    Activity {
        jobs: Vec<Job>,
    },
    /// The prompt a chat reply is generated from, as the template rendered it, and its length.
    ChatPrompt {
        text: String,
        tokens: usize,
    },
    /// A job was cancelled before it finished: its panel stops waiting.
    Cancelled {
        topic: Topic,
        label: String,
    },
    /// The saved run crashed the worker while it was being restored, `attempts` times: it is not
    /// restored again until the user says so.
    SafeMode {
        name: String,
        step: usize,
        attempts: u32,
    },
    /// The runs table, newest first.
    Runs(Vec<RunSummary>),
    Ready(DeviceInfo),
    Tokenized {
        seq: u64,
        ids: Vec<u32>,
        tokens: Vec<String>,
        attention_mask: Vec<u32>,
        special: Vec<bool>,
    },
    Decoded {
        text: String,
    },
    /// `done` of `total` bytes (or steps); `total` 0 when unknown.
    Progress {
        topic: Topic,
        label: String,
        done: u64,
        total: u64,
    },
    ModelLoaded {
        slot: Slot,
        info: ModelInfo,
    },
    FillMasked {
        tokens: Vec<String>,
        masks: Vec<Vec<Candidate>>,
    },
    Distribution {
        seq: u64,
        before: Vec<Candidate>,
        after: Vec<Candidate>,
    },
    NextToken {
        prompt: String,
        chosen: Candidate,
        candidates: Vec<Candidate>,
    },
    /// The text generated so far (streamed).
    Generated {
        text: String,
        ids: Vec<u32>,
        done: bool,
        /// It ended at one of the checkpoint's eos ids (the last of `ids`).
        #[serde(default)]
        at_eos: bool,
        #[serde(with = "hearth_lm::finite")]
        tokens_per_s: f64,
    },
    Verified {
        slot: Slot,
        #[serde(with = "hearth_lm::finite::f32")]
        max_abs_diff: f32,
        logits: usize,
        backend: String,
    },
    Inside {
        seq: u64,
        slot: Slot,
        text: InsideText,
        result: InsideResult,
    },
    /// Per view, the largest difference between this device and the CPU backend.
    InsideVerified {
        slot: Slot,
        diffs: Vec<(String, f32)>,
        backend: String,
    },
    CorpusLoaded(CorpusInfo),
    TrainStatus(TrainStatus),
    TrainLoss(LossPoint),
    TrainEval(EvalPoint),
    /// Curves of a restored run, replacing what the page shows.
    TrainHistory {
        losses: Vec<LossPoint>,
        evals: Vec<EvalPoint>,
    },
    /// `name` is the file name to save; the bytes travel beside the message.
    Download {
        name: String,
    },
    Error {
        topic: Topic,
        message: String,
    },
    Notice {
        topic: Topic,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diverged evaluation must reach the page: serde_json would write NaN as `null` and the
    /// page could not read the event back.
    #[test]
    fn events_with_nan_and_infinity_round_trip() {
        let event = Event::TrainHistory {
            losses: vec![LossPoint { step: 1, tokens: 8, loss: f64::NAN, lr: 1e-3 }],
            evals: vec![EvalPoint {
                step: 1,
                tokens: 8,
                train_loss: f64::INFINITY,
                val_loss: Some(f64::NAN),
                perplexity: f64::INFINITY,
                sample: String::new(),
                epoch: 0.5,
                lr: 1e-3,
                probe: None,
            }],
        };
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(r#""loss":"NaN""#) && json.contains(r#""train_loss":"Infinity""#), "{json}");
        let Event::TrainHistory { losses, evals } = serde_json::from_str(&json).unwrap() else {
            unreachable!()
        };
        assert!(losses[0].loss.is_nan() && evals[0].val_loss.unwrap().is_nan());
        assert_eq!(evals[0].train_loss, f64::INFINITY);
    }

    /// A run saved before start-from, packing, epochs and the advanced settings existed still
    /// restores, as a pretraining run with the old defaults.
    #[test]
    fn settings_saved_by_an_older_page_still_read() {
        let old = r#"{"arch":"gpt2","size":"micro","tokenizer":"chars","context":64,"batch_size":8,"steps":300,"lr":0.003,"eval_every":0,"seed":1337}"#;
        let s: TrainSettings = serde_json::from_str(old).unwrap();
        assert_eq!(s, TrainSettings::default());
        let point: EvalPoint = serde_json::from_str(
            r#"{"step":1,"tokens":8,"train_loss":1.0,"val_loss":null,"perplexity":2.7,"sample":""}"#,
        )
        .unwrap();
        assert_eq!((point.epoch, point.lr), (0.0, 0.0));
    }

    /// The inside views' messages cross as JSON and come back equal (weights, cosines, the
    /// padding count).
    #[test]
    fn inside_requests_and_answers_round_trip() {
        let request = Request::Inside {
            seq: 3,
            slot: Slot::FillMask,
            text: "Life is like a [MASK].".into(),
            query: InsideQuery::Attention { layer: 1, pad: 2 },
        };
        let back: Request = serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();
        assert_eq!(back, request);
        let event = Event::Inside {
            seq: 3,
            slot: Slot::Generate,
            text: InsideText {
                tokens: vec!["a".into(), "[PAD]".into()],
                padding: 1,
                layers: 2,
                heads: 4,
                kv_heads: 2,
                windows: vec![None, Some(64)],
            },
            result: InsideResult::Projection {
                points: vec![Placed { token: "a".into(), count: 7, x: 0.25, y: -1.5 }],
                explained: [0.5, 0.25],
                source: "the text".into(),
            },
        };
        let back: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
    }
}
