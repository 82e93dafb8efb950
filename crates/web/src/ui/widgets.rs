//! Small pieces every panel uses: the error/notice line and the progress bar.

use leptos::prelude::*;

use super::state::AppState;
use crate::protocol::Topic;
use crate::units::human_bytes;

/// The panel's error (red), notice and progress bar.
#[component]
pub fn Status(topic: Topic, testid: &'static str) -> impl IntoView {
    let t = expect_context::<AppState>().topic(topic);
    view! {
        <div class="status">
            {move || {
                t.progress
                    .get()
                    .map(|(label, done, total)| {
                        let (value, text) = if total > 0 {
                            (
                                Some(done as f64 / total as f64),
                                format!("{label}: {} of {}", human_bytes(done), human_bytes(total)),
                            )
                        } else {
                            (None, format!("{label}…"))
                        };
                        view! {
                            <div class="progress" data-testid=format!("{testid}-progress")>
                                <progress max="1" value=value.map(|v| v.to_string())></progress>
                                <span>{text}</span>
                            </div>
                        }
                    })
            }}
            {move || t.notice.get().map(|n| view! { <p class="notice" data-testid=format!("{testid}-notice")>{n}</p> })}
            {move || t.error.get().map(|e| view! { <p class="error" data-testid=format!("{testid}-error") role="alert">{e}</p> })}
        </div>
    }
}
