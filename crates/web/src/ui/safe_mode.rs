//! Safe mode: the saved run took the worker down while it was being restored, more than once, so
//! it is no longer restored at every start (that left clearing site data by hand as the only way
//! out). The page offers to try again, to download it as it is stored, or to set it aside.

use leptos::prelude::*;

use super::bridge::post;
use super::state::AppState;
use crate::protocol::Request;

#[component]
pub fn SafeMode() -> impl IntoView {
    let state = expect_context::<AppState>();
    let act = move |request: Request| {
        move |_: leptos::ev::MouseEvent| {
            if request != Request::SavedDownload {
                state.safe_mode.set(None);
            }
            post(&request);
        }
    };
    move || {
        state.safe_mode.get().map(|(name, step, attempts)| {
            view! {
                <div class="confirm recovery" data-testid="safe-mode" role="alert">
                    <p>{format!(
                        "Safe mode: the saved run \u{201c}{name}\u{201d} (step {step}) stopped the compute worker {attempts} \
                         times while it was being restored, so it was not restored again. It is still in browser storage."
                    )}</p>
                    <div class="row">
                        <button data-testid="safe-mode-retry" on:click=act(Request::SavedRetry)>"Try to restore it again"</button>
                        <button data-testid="safe-mode-download" on:click=act(Request::SavedDownload)>"Download it as stored"</button>
                        <button class="primary" data-testid="safe-mode-aside" on:click=act(Request::SavedSetAside)>
                            "Set it aside (keep it in the runs table, start fresh)"
                        </button>
                    </div>
                </div>
            }
        })
    }
}
