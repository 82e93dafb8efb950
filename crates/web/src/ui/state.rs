//! The page's state: one signal per thing the worker reports, shared through context.

use leptos::prelude::*;

use crate::kernels::Choice;
use crate::protocol::{
    Candidate, CorpusInfo, DeviceInfo, EvalPoint, Event, InsideResult, InsideText, Job, JobKind, LossPoint,
    ModelInfo, Placed, RunSummary, SamplingParams, Slot, TokenScore, Topic, TrainStatus,
};

/// `[head][query][key]` or `[layer][head][key]`.
pub type Weights = Vec<Vec<Vec<f32>>>;
/// Projected tokens, the variance shares of the two components, and where the tokens came from.
pub type Projected = (Vec<Placed>, [f32; 2], String);
/// (view, max |Δ|) against the CPU backend, and this device's backend.
pub type InsideDiffs = (Vec<(String, f32)>, String);

/// What the inside-the-model views of one panel show: the last answer of each view, with the
/// text it was computed for.
#[derive(Clone, Copy)]
pub struct InsideSignals {
    /// The number of the latest request; each view keeps only answers newer than its last.
    pub seq: RwSignal<u64>,
    applied: RwSignal<[u64; 6]>,
    pub text: RwSignal<Option<InsideText>>,
    /// (layer, `[head][query][key]`).
    pub attention: RwSignal<Option<(usize, Weights)>>,
    /// (query, `[layer][head][key]`).
    pub from: RwSignal<Option<(usize, Weights)>>,
    pub lens: RwSignal<Option<Vec<Vec<Vec<Candidate>>>>>,
    /// (tokens, mean loss, perplexity).
    pub surprisal: RwSignal<Option<(Vec<TokenScore>, f64, f64)>>,
    /// (token, neighbours with their cosine in `prob`).
    pub nearest: RwSignal<Option<(String, Vec<Candidate>)>>,
    /// (points, explained variance shares, where the tokens came from).
    pub projection: RwSignal<Option<Projected>>,
    /// (view, max |Δ|) against the CPU backend, and this device's backend.
    pub verified: RwSignal<Option<InsideDiffs>>,
}

impl InsideSignals {
    fn new() -> Self {
        Self {
            seq: RwSignal::new(0),
            applied: RwSignal::new([0; 6]),
            text: RwSignal::new(None),
            attention: RwSignal::new(None),
            from: RwSignal::new(None),
            lens: RwSignal::new(None),
            surprisal: RwSignal::new(None),
            nearest: RwSignal::new(None),
            projection: RwSignal::new(None),
            verified: RwSignal::new(None),
        }
    }

    /// Forgets every view's answer: a new text is being looked at.
    pub fn clear(&self) {
        self.attention.set(None);
        self.from.set(None);
        self.lens.set(None);
        self.surprisal.set(None);
        self.nearest.set(None);
        self.projection.set(None);
        self.verified.set(None);
    }

    /// Folds an answer in unless the same view already shows a newer one.
    fn apply(&self, seq: u64, text: InsideText, result: InsideResult) {
        let kind = match &result {
            InsideResult::Attention { .. } => 0,
            InsideResult::AttentionFrom { .. } => 1,
            InsideResult::Lens { .. } => 2,
            InsideResult::Surprisal { .. } => 3,
            InsideResult::Nearest { .. } => 4,
            InsideResult::Projection { .. } => 5,
        };
        if self.applied.get_untracked()[kind] > seq {
            return;
        }
        self.applied.update(|a| a[kind] = seq);
        if self.text.get_untracked().as_ref() != Some(&text) {
            self.text.set(Some(text));
        }
        match result {
            InsideResult::Attention { layer, heads } => self.attention.set(Some((layer, heads))),
            InsideResult::AttentionFrom { query, layers } => self.from.set(Some((query, layers))),
            InsideResult::Lens { cells } => self.lens.set(Some(cells)),
            InsideResult::Surprisal { tokens, loss, perplexity } => {
                self.surprisal.set(Some((tokens, loss, perplexity)))
            }
            InsideResult::Nearest { token, neighbours } => self.nearest.set(Some((token, neighbours))),
            InsideResult::Projection { points, explained, source } => {
                self.projection.set(Some((points, explained, source)))
            }
        }
    }
}

/// Errors, notices and progress of one panel.
#[derive(Clone, Copy)]
pub struct TopicSignals {
    pub error: RwSignal<Option<String>>,
    pub notice: RwSignal<Option<String>>,
    /// (label, done, total); total 0 when unknown.
    pub progress: RwSignal<Option<(String, u64, u64)>>,
}

impl TopicSignals {
    fn new() -> Self {
        Self { error: RwSignal::new(None), notice: RwSignal::new(None), progress: RwSignal::new(None) }
    }

    /// A result arrived: the work is over and the last error no longer applies.
    fn settle(&self) {
        self.progress.set(None);
        self.error.set(None);
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    pub attention_mask: Vec<u32>,
    pub special: Vec<bool>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generated {
    pub text: String,
    pub ids: Vec<u32>,
    pub done: bool,
    /// Ended at an eos id rather than at the token limit or a Stop.
    pub at_eos: bool,
    pub tokens_per_s: f64,
}

/// Fill-mask results: the tokens of the sentence and, per `[MASK]`, its ranked candidates.
pub type FillResults = (Vec<String>, Vec<Vec<Candidate>>);

#[derive(Clone, Copy)]
pub struct AppState {
    pub started: RwSignal<bool>,
    pub device: RwSignal<Option<DeviceInfo>>,
    topics: [TopicSignals; 5],
    pub tokenize_seq: RwSignal<u64>,
    pub tokenized: RwSignal<Option<Tokenized>>,
    pub decoded: RwSignal<Option<String>>,
    pub fill_model: RwSignal<Option<ModelInfo>>,
    pub gen_model: RwSignal<Option<ModelInfo>>,
    pub fill_results: RwSignal<Option<FillResults>>,
    pub prompt: RwSignal<String>,
    pub sampling: RwSignal<SamplingParams>,
    pub dist_seq: RwSignal<u64>,
    pub distribution: RwSignal<Option<(Vec<Candidate>, Vec<Candidate>)>>,
    pub next: RwSignal<Option<(Candidate, Vec<Candidate>)>>,
    pub generated: RwSignal<Option<Generated>>,
    pub generating: RwSignal<bool>,
    pub verified: RwSignal<Option<(Slot, f32, usize, String)>>,
    pub corpus: RwSignal<Option<CorpusInfo>>,
    pub train: RwSignal<Option<TrainStatus>>,
    pub losses: RwSignal<Vec<LossPoint>>,
    pub evals: RwSignal<Vec<EvalPoint>>,
    /// The downloads kept in browser storage, once listed.
    pub stored: RwSignal<Option<Vec<(String, u64)>>>,
    /// The runs' storage (what, bytes), listed with the downloads.
    pub stored_runs: RwSignal<Vec<(String, u64)>>,
    /// Whether this tab owns the runs (`None` until the worker knows).
    pub owner: RwSignal<Option<bool>>,
    /// The worker has restored the saved run and listed the table since it took the runs
    /// (`Event::RunsTaken`): Start may replace the run in the panel.
    pub runs_taken: RwSignal<bool>,
    /// The storage transaction in flight ("saving the checkpoint"), if any.
    pub storage_busy: RwSignal<Option<String>>,
    /// The worker's jobs: the one on the device, then those waiting (the activity line).
    pub activity: RwSignal<Vec<Job>>,
    /// Chat mode: the prompt of the last reply as the template rendered it, and its tokens.
    pub chat_prompt: RwSignal<Option<(String, usize)>>,
    /// Safe mode: the saved run (name, step, crashed restores) that is not restored by itself.
    pub safe_mode: RwSignal<Option<(String, usize, u32)>>,
    /// Why the compute worker was restarted, while the page offers how to go on.
    pub recovered: RwSignal<Option<String>>,
    /// Which worker build the page started, and why (`kernels::choose`).
    pub kernels: RwSignal<Option<Choice>>,
    /// The runs table (the run in the panel first).
    pub runs: RwSignal<Vec<RunSummary>>,
    /// Runs whose curves are overlaid on the chart.
    pub overlay: RwSignal<Vec<u64>>,
    /// The inside views of the fill-mask and generate panels.
    inside: [InsideSignals; 2],
}

impl AppState {
    pub fn new() -> Self {
        Self {
            started: RwSignal::new(false),
            device: RwSignal::new(None),
            topics: std::array::from_fn(|_| TopicSignals::new()),
            tokenize_seq: RwSignal::new(0),
            tokenized: RwSignal::new(None),
            decoded: RwSignal::new(None),
            fill_model: RwSignal::new(None),
            gen_model: RwSignal::new(None),
            fill_results: RwSignal::new(None),
            recovered: RwSignal::new(None),
            kernels: RwSignal::new(None),
            stored: RwSignal::new(None),
            stored_runs: RwSignal::new(Vec::new()),
            owner: RwSignal::new(None),
            runs_taken: RwSignal::new(false),
            storage_busy: RwSignal::new(None),
            activity: RwSignal::new(Vec::new()),
            chat_prompt: RwSignal::new(None),
            safe_mode: RwSignal::new(None),
            prompt: RwSignal::new("Every effort moves you".into()),
            sampling: RwSignal::new(SamplingParams { temperature: 1.0, top_k: 50, top_p: 1.0 }),
            dist_seq: RwSignal::new(0),
            distribution: RwSignal::new(None),
            next: RwSignal::new(None),
            generated: RwSignal::new(None),
            generating: RwSignal::new(false),
            verified: RwSignal::new(None),
            corpus: RwSignal::new(None),
            train: RwSignal::new(None),
            losses: RwSignal::new(Vec::new()),
            evals: RwSignal::new(Vec::new()),
            runs: RwSignal::new(Vec::new()),
            overlay: RwSignal::new(Vec::new()),
            inside: [InsideSignals::new(), InsideSignals::new()],
        }
    }

    pub fn topic(&self, topic: Topic) -> TopicSignals {
        self.topics[match topic {
            Topic::Device => 0,
            Topic::Tokenize => 1,
            Topic::FillMask => 2,
            Topic::Generate => 3,
            Topic::Pretrain => 4,
        }]
    }

    pub fn inside(&self, slot: Slot) -> InsideSignals {
        self.inside[match slot {
            Slot::FillMask => 0,
            Slot::Generate => 1,
        }]
    }

    /// A job of `kind` for `topic`'s panel is running or waiting: its button would only queue a
    /// duplicate.
    pub fn job_pending(&self, kind: JobKind, topic: Topic) -> bool {
        self.activity.with(|jobs| jobs.iter().any(|j| j.kind == kind && j.topic == topic))
    }

    pub fn model(&self, slot: Slot) -> RwSignal<Option<ModelInfo>> {
        match slot {
            Slot::FillMask => self.fill_model,
            Slot::Generate => self.gen_model,
        }
    }

    /// Folds a worker event into the signals.
    pub fn apply(&self, event: Event) {
        match event {
            Event::Started => self.started.set(true),
            Event::Stored { files, runs } => {
                self.stored.set(Some(files));
                self.stored_runs.set(runs);
            }
            Event::Owner { owner } => {
                self.owner.set(Some(owner));
                // Granted or lost, the runs are (re)taken before Start may replace one.
                self.runs_taken.set(false);
            }
            Event::RunsTaken => self.runs_taken.set(true),
            Event::Storage { busy } => self.storage_busy.set(busy),
            Event::Activity { jobs } => self.activity.set(jobs),
            Event::ChatPrompt { text, tokens } => self.chat_prompt.set(Some((text, tokens))),
            Event::Cancelled { topic, label } => {
                let t = self.topic(topic);
                t.settle();
                t.notice.set(Some(format!("Cancelled: {label}.")));
                if topic == Topic::Generate {
                    self.generating.set(false);
                }
            }
            Event::SafeMode { name, step, attempts } => self.safe_mode.set(Some((name, step, attempts))),
            Event::Runs(runs) => {
                // A deleted run leaves the overlay too.
                self.overlay.update(|o| o.retain(|id| runs.iter().any(|r| r.id == *id)));
                self.runs.set(runs);
            }
            Event::Ready(info) => {
                self.topic(Topic::Device).settle();
                self.device.set(Some(info));
            }
            Event::Tokenized { seq, ids, tokens, attention_mask, special } => {
                // Only the latest keystroke's answer counts.
                if seq == self.tokenize_seq.get_untracked() {
                    // Also ends the first request's progress bar (the vocabulary's download).
                    self.topic(Topic::Tokenize).settle();
                    self.tokenized.set(Some(Tokenized { ids, tokens, attention_mask, special }));
                }
            }
            Event::Decoded { text } => {
                self.topic(Topic::Tokenize).settle();
                self.decoded.set(Some(text));
            }
            Event::Progress { topic, label, done, total } => {
                self.topic(topic).progress.set(Some((label, done, total)));
            }
            Event::ModelLoaded { slot, info } => {
                self.topic(slot.into()).settle();
                self.topic(slot.into()).notice.set(None);
                self.model(slot).set(Some(info));
                // What the previous model predicted, and how it looked inside, is not this one's.
                self.inside(slot).clear();
                self.inside(slot).text.set(None);
                if slot == Slot::Generate {
                    self.distribution.set(None);
                    self.next.set(None);
                } else {
                    self.fill_results.set(None);
                }
            }
            Event::FillMasked { tokens, masks } => {
                self.topic(Topic::FillMask).settle();
                self.fill_results.set(Some((tokens, masks)));
            }
            Event::Distribution { seq, before, after } => {
                if seq == self.dist_seq.get_untracked() {
                    self.distribution.set(Some((before, after)));
                }
            }
            Event::NextToken { prompt, chosen, candidates } => {
                self.topic(Topic::Generate).settle();
                self.prompt.set(prompt);
                self.next.set(Some((chosen, candidates)));
            }
            Event::Generated { text, ids, done, at_eos, tokens_per_s } => {
                self.topic(Topic::Generate).error.set(None);
                if done {
                    self.generating.set(false);
                }
                self.generated.set(Some(Generated { text, ids, done, at_eos, tokens_per_s }));
            }
            Event::Verified { slot, max_abs_diff, logits, backend } => {
                self.topic(slot.into()).settle();
                self.verified.set(Some((slot, max_abs_diff, logits, backend)));
            }
            Event::Inside { seq, slot, text, result } => {
                self.topic(slot.into()).settle();
                self.inside(slot).apply(seq, text, result);
            }
            Event::InsideVerified { slot, diffs, backend } => {
                self.topic(slot.into()).settle();
                self.inside(slot).verified.set(Some((diffs, backend)));
            }
            Event::CorpusLoaded(info) => {
                self.topic(Topic::Pretrain).settle();
                self.corpus.set(Some(info));
            }
            Event::TrainStatus(status) => {
                self.topic(Topic::Pretrain).progress.set(None);
                self.train.set(Some(status));
            }
            Event::TrainLoss(point) => self.losses.update(|l| l.push(point)),
            Event::TrainEval(point) => self.evals.update(|e| e.push(point)),
            Event::TrainHistory { losses, evals } => {
                self.losses.set(losses);
                self.evals.set(evals);
            }
            // The bridge acts on these (a file saved, the worker replaced).
            Event::Download { .. } | Event::DeviceLost { .. } => {}
            Event::Error { topic, message } => {
                let t = self.topic(topic);
                t.progress.set(None);
                t.error.set(Some(message));
                if topic == Topic::Generate {
                    self.generating.set(false);
                }
            }
            Event::Notice { topic, message } => self.topic(topic).notice.set(Some(message)),
        }
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}
