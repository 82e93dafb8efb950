//! Start, pause, resume or continue, stop and download, and where the run stands.

use leptos::prelude::*;

use crate::protocol::{JobKind, Request, RunState, Topic, TrainAction, TrainSettings};
use crate::ui::bridge::post;
use crate::ui::state::AppState;
use crate::units::{fixed, human_count, human_duration};

/// The run's buttons; Start sends the form's `settings` (and records them in `agreed`, the
/// settings the form last agreed with a run on, so the run's status may fill the form).
#[component]
pub fn RunControls(
    settings: RwSignal<TrainSettings>,
    agreed: StoredValue<Option<TrainSettings>>,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let status = state.train;
    let run_state = move || status.get().map(|s| s.state).unwrap_or(RunState::Idle);
    let running = move || matches!(run_state(), RunState::Running | RunState::Preparing);
    // Another tab trains and saves (banner at the top), or a save is in flight: Start would
    // only queue behind it, so it waits visibly instead.
    let not_owner = move || state.owner.get() == Some(false);
    // Until the worker has restored the saved run, Start would not know there is one to ask
    // about (a click right after a reload started a new run without the question).
    let not_taken = move || !state.runs_taken.get();
    let busy = move || state.storage_busy.get().is_some();
    // Pressed already: the Start waits on the activity line for the jobs before it.
    let starting = move || state.job_pending(JobKind::StartTraining, Topic::Pretrain);
    let start_now = move || {
        state.losses.set(Vec::new());
        state.evals.set(Vec::new());
        let sent = settings.get_untracked();
        agreed.set_value(Some(sent.clone()));
        post(&Request::TrainStart { settings: sent });
    };
    // A new run replaces the one kept in browser storage: ask first, and offer its download.
    let confirming = RwSignal::new(false);
    let saved_step = move || status.get().and_then(|s| s.saved_step.filter(|&step| step > 0));
    let start = move |_| match saved_step() {
        Some(_) => confirming.set(true),
        None => start_now(),
    };
    // More steps in the form than the run has: extend it; otherwise resume where it stands.
    let proceed = move |_| {
        let wanted = settings.get_untracked().steps;
        match status.get_untracked() {
            Some(s) if wanted > s.total_steps => post(&Request::TrainExtend { steps: wanted }),
            _ => post(&Request::TrainControl { action: TrainAction::Resume }),
        }
    };
    view! {
        <div class="row">
            <button class="primary" data-testid="train-start" prop:disabled=move || running() || not_owner() || not_taken() || busy() || starting()
                on:click=start>"Start"</button>
            <button data-testid="train-pause" prop:disabled=move || run_state() != RunState::Running
                on:click=move |_| post(&Request::TrainControl { action: TrainAction::Pause })>"Pause"</button>
            <button data-testid="train-resume"
                prop:disabled=move || not_owner() || !matches!(run_state(), RunState::Paused | RunState::Stopped | RunState::Done)
                on:click=proceed>"Resume / continue"</button>
            <button data-testid="train-stop" prop:disabled=move || !matches!(run_state(), RunState::Running | RunState::Paused)
                on:click=move |_| post(&Request::TrainControl { action: TrainAction::Stop })>"Stop"</button>
            <button data-testid="train-download" prop:disabled=move || status.get().is_none_or(|s| s.step == 0)
                on:click=move |_| post(&Request::DownloadTrained)>"Download (Hugging Face zip)"</button>
            {move || state.storage_busy.get().map(|what| view! {
                <span class="muted" data-testid="storage-busy">{format!("{what}…")}</span>
            })}
        </div>
        {move || confirming.get().then(|| view! {
            <div class="confirm" data-testid="train-replace-confirm">
                <p>{format!(
                    "A new run takes this panel. The run saved at step {} moves to the runs table below, where its \
                     last checkpoint stays in this browser until you delete it; download it to keep a copy elsewhere.",
                    saved_step().unwrap_or(0)
                )}</p>
                <div class="row">
                    <button data-testid="train-replace-download" on:click=move |_| post(&Request::DownloadTrained)>"Download it"</button>
                    <button class="primary" data-testid="train-replace-yes" on:click=move |_| {
                        confirming.set(false);
                        start_now();
                    }>"Start the new run"</button>
                    <button data-testid="train-replace-no" on:click=move |_| confirming.set(false)>"Keep training this one"</button>
                </div>
            </div>
        })}
    }
}

/// The progress bar and the run's numbers.
#[component]
pub fn RunProgress() -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        state.train.get().map(|s| {
            let fraction = s.step as f64 / s.total_steps.max(1) as f64;
            let eta = s.eta_s.map(human_duration).unwrap_or_else(|| "–".into());
            view! {
                <div class="train-progress">
                    <progress max="1" value=fraction.to_string()></progress>
                    <span>
                        {format!("{:?}", s.state).to_lowercase()} " · step "
                        <strong data-testid="train-step">{s.step.to_string()}</strong>
                        " / " <span data-testid="train-total">{s.total_steps.to_string()}</span>
                        {format!(" · epoch {:.2} · {} tokens seen · {:.0} tokens/s · ETA {eta}", s.epoch, human_count(s.tokens_seen as usize), s.tokens_per_s)}
                    </span>
                </div>
                <dl class="numbers">
                    <dt>"train loss"</dt>
                    <dd data-testid="train-loss">{s.loss.map(|l| fixed(l, 4)).unwrap_or_default()}</dd>
                    <dt>"val loss"</dt>
                    <dd data-testid="val-loss">{s.val_loss.map(|l| fixed(l, 4)).unwrap_or_default()}</dd>
                    <dt>"perplexity"</dt>
                    <dd data-testid="perplexity">{s.perplexity.map(|p| fixed(p, 2)).unwrap_or_default()}</dd>
                    <dt>"parameters"</dt>
                    <dd>{human_count(s.params)}</dd>
                    <dt>"saved"</dt>
                    <dd data-testid="train-saved">{s.saved_step.map(|st| format!("step {st}, in browser storage")).unwrap_or_else(|| "not yet".into())}</dd>
                    <dt>"tokens/s"</dt>
                    <dd data-testid="train-tps">{format!("{:.0}", s.tokens_per_s)}</dd>
                </dl>
            }
        })
    }
}
