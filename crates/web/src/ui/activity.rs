//! The activity line under the header: what the worker computes now and what waits behind it,
//! each with Cancel where it can stop (`worker/activity.rs`). A request shows here the moment
//! the worker has it, so a press never seems to do nothing.

use leptos::prelude::*;

use super::bridge::post;
use super::state::AppState;
use crate::protocol::{Job, Request, RunState};

#[component]
pub fn ActivityLine() -> impl IntoView {
    let state = expect_context::<AppState>();
    // A run trains between the jobs (it gives the device back after each step): named too, so
    // the line says why a job may take longer than alone.
    let training = move || {
        state.train.get().filter(|s| s.state == RunState::Running).map(|s| {
            view! {
                <span class="activity-item" data-testid="activity-training">
                    {format!("training in the background (step {} of {})", s.step, s.total_steps)}
                </span>
            }
        })
    };
    let item = move |job: Job| {
        let id = job.id;
        view! {
            <span class="activity-item" class:waiting=!job.running data-testid="activity-job">
                <span data-testid="activity-label">{job.label.clone()}</span>
                {job.cancellable.then(|| view! {
                    <button class="link" data-testid="activity-cancel" on:click=move |_| post(&Request::Cancel { job: id })>
                        "cancel"
                    </button>
                })}
            </span>
        }
    };
    move || {
        let jobs = state.activity.get();
        let (running, waiting): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.running);
        let busy = !running.is_empty() || !waiting.is_empty() || training().is_some();
        busy.then(|| {
            view! {
                <div class="activity" data-testid="activity" role="status">
                    <span class="muted">"Working: "</span>
                    {running.into_iter().map(item).collect_view()}
                    {training()}
                    {(!waiting.is_empty()).then(|| view! {
                        <span class="muted" data-testid="activity-waiting">
                            {format!(" · waiting ({}): ", waiting.len())}
                        </span>
                    })}
                    {waiting.into_iter().map(item).collect_view()}
                </div>
            }
        })
    }
}
