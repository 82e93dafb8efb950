//! "Check against CPU": the panel's model on WebGPU and on the CPU backend, the largest logit
//! difference between them.

use leptos::prelude::*;

use super::bridge::post;
use super::state::AppState;
use crate::protocol::{JobKind, Request, Slot};

/// Runs the panel's model on WebGPU and on the CPU backend and shows the largest difference.
#[component]
pub fn Verify(panel: Slot, text: Signal<String>) -> impl IntoView {
    // `slot` is a reserved attribute name in Leptos' view macro.
    let slot = panel;
    let state = expect_context::<AppState>();
    let prefix = match slot {
        Slot::FillMask => "fillmask",
        Slot::Generate => "generate",
    };
    view! {
        <div class="row verify">
            <button
                data-testid=format!("{prefix}-verify")
                title="compare this device's logits with the CPU backend's"
                prop:disabled=move || state.job_pending(JobKind::Verify, slot.into())
                on:click=move |_| post(&Request::Verify { slot, text: text.get_untracked() })
            >
                "Check against CPU"
            </button>
            <span data-testid=format!("{prefix}-verify-result")>
                {move || {
                    state.verified.get().filter(|v| v.0 == slot).map(|(_, diff, n, backend)| {
                        format!("{backend} vs cpu: max |Δlogit| = {diff:.2e} over {n} logits")
                    })
                }}
            </span>
            <span class="hidden" data-testid=format!("{prefix}-verify-diff")>
                {move || state.verified.get().filter(|v| v.0 == slot).map(|v| v.1.to_string())}
            </span>
        </div>
    }
}
