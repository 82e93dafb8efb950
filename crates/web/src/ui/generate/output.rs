//! The prompt with its continuation, the speed, and the generated ids.

use leptos::prelude::*;

use crate::ui::state::AppState;

#[component]
pub fn GenerateOutput() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <div class="output" data-testid="generate-output">
            <span class="prompt-text">{move || state.prompt.get()}</span>
            <span class="generated-text">{move || state.generated.get().map(|g| g.text)}</span>
        </div>
        <p class="muted" data-testid="generate-status">
            {move || {
                state.generated.get().map(|g| {
                    format!(
                        "{} new tokens{}{}",
                        g.ids.len(),
                        if g.tokens_per_s > 0.0 { format!(" · {:.1} tokens/s", g.tokens_per_s) } else { String::new() },
                        match (g.done, g.at_eos, g.ids.last()) {
                            (_, true, Some(id)) => format!(" · ended at the checkpoint's end-of-text id {id}"),
                            (true, _, _) => " · done".into(),
                            _ => String::new(),
                        }
                    )
                })
            }}
        </p>
        <p class="ids" data-testid="generate-ids">
            {move || state.generated.get().map(|g| g.ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))}
        </p>
    }
}
