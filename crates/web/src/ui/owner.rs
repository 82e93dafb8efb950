//! The banner of a tab that does not own the runs: another tab of Hearth trains and saves
//! (`worker/owner.rs`), this one computes everything else; "Use this tab" takes the runs over.

use leptos::prelude::*;

use super::bridge::post;
use super::state::AppState;
use crate::protocol::Request;

#[component]
pub fn OwnerBanner() -> impl IntoView {
    let state = expect_context::<AppState>();
    move || {
        (state.owner.get() == Some(false)).then(|| {
            view! {
                <div class="confirm owner-banner" data-testid="owner-banner" role="status">
                    <p>
                        "Hearth is open in another tab: training and saving happen there. This tab tokenizes, \
                         generates and looks inside models as usual; its Pretrain tab shows the runs but does \
                         not change them."
                    </p>
                    <div class="row">
                        <button class="primary" data-testid="owner-take-over" on:click=move |_| post(&Request::TakeOver)>
                            "Use this tab for training (the other tab stops training)"
                        </button>
                    </div>
                </div>
            }
        })
    }
}
