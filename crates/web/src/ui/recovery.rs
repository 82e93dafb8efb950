//! What the page says after the compute worker crashed and was restarted (see
//! `bridge::restart_after_crash`): what happened, and a choice of how to go on — training again
//! on WebGPU, or on the CPU backend if the GPU is what failed.

use leptos::prelude::*;

use super::bridge::{post, restart};
use super::state::AppState;
use crate::protocol::{Request, RunState, TrainAction};

#[component]
pub fn Recovery() -> impl IntoView {
    let state = expect_context::<AppState>();
    let restored = move || state.train.get().is_some_and(|t| t.step > 0 && t.state != RunState::Running);
    move || {
        state.recovered.get().map(|message| {
            view! {
                <div class="confirm recovery" data-testid="recovery" role="alert">
                    <p>{message}</p>
                    <div class="row">
                        <button class="primary" data-testid="recovery-continue" prop:disabled=move || !restored()
                            on:click=move |_| {
                                state.recovered.set(None);
                                post(&Request::TrainControl { action: TrainAction::Resume });
                            }>"Continue training on this device"</button>
                        <button data-testid="recovery-cpu" on:click=move |_| {
                            state.recovered.set(Some(
                                "Restarted on the CPU backend; the last checkpoint is restored. Continue from the Pretrain tab.".into(),
                            ));
                            restart(state, true);
                        }>"Switch to the CPU"</button>
                        <button data-testid="recovery-dismiss" on:click=move |_| state.recovered.set(None)>"Dismiss"</button>
                    </div>
                </div>
            }
        })
    }
}

/// `?test-hooks`: buttons that make the worker trap or lose its GPU device, for the browser tests
/// of recovery.
#[component]
pub fn TestHooks(enabled: bool) -> impl IntoView {
    enabled.then(|| {
        view! {
            <button class="test-hook" data-testid="test-crash" on:click=move |_| post(&Request::Crash)>"crash the worker (test)"</button>
            <button class="test-hook" data-testid="test-lose-device" on:click=move |_| post(&Request::LoseDevice)>"lose the GPU device (test)"</button>
        }
    })
}
