//! The next-token distribution before and after the sampling settings, and the candidates of
//! the last greedy step with the appended token marked.

use leptos::prelude::*;

use crate::ui::charts::{bars, show_token};
use crate::ui::state::AppState;

#[component]
pub fn Distribution() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <div class="two-columns">
            <div>
                <h4>"Next token: model's distribution (T = 1)"</h4>
                {move || state.distribution.get().map(|(before, _)| bars(before, None, "dist-before"))}
            </div>
            <div>
                <h4>"After temperature / top-k / top-p"</h4>
                {move || state.distribution.get().map(|(_, after)| bars(after, None, "dist-after"))}
            </div>
        </div>
        {move || {
            state
                .next
                .get()
                .map(|(chosen, candidates)| {
                    view! {
                        <div class="next-token">
                            <h4>{format!("Appended {} ({:.1}%)", show_token(&chosen.token), 100.0 * chosen.prob)}</h4>
                            {bars(candidates, Some(chosen.id), "next-candidates")}
                        </div>
                    }
                })
        }}
    }
}
