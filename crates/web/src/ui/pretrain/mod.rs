//! The pretrain panel: upload a text, choose a model, train with live curves and samples,
//! pause/resume/stop, and download the result as a Hugging Face directory. One file per part:
//! the corpus, the form, the run's controls and progress, the curves and samples.

mod controls;
mod corpus;
mod curves;
mod form;

use leptos::prelude::*;

use self::controls::{RunControls, RunProgress};
use self::corpus::{CorpusDrop, CorpusStats};
use self::curves::{LossCurves, Samples};
use self::form::PretrainForm;
use crate::protocol::{Topic, TrainSettings};
use crate::ui::state::AppState;
use crate::ui::widgets::Status;

#[component]
pub fn PretrainPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let settings = RwSignal::new(TrainSettings::default());
    // A run the worker reports (a restored one, after a reload) puts its settings in the form,
    // once: later edits to the form stay the user's.
    let shown_run = StoredValue::new(None::<TrainSettings>);
    Effect::new(move |_| {
        // Steps as the run now stands (Continue may have raised them).
        if let Some(run) = state.train.get().map(|s| TrainSettings { steps: s.total_steps, ..s.settings }) {
            if shown_run.get_value().as_ref() != Some(&run) {
                shown_run.set_value(Some(run.clone()));
                settings.set(run);
            }
        }
    });
    view! {
        <section class="panel" data-testid="pretrain-panel">
            <h2>"Pretrain"</h2>
            <CorpusDrop />
            <CorpusStats />
            <PretrainForm settings=settings />
            <RunControls settings=settings />
            <RunProgress />
            <LossCurves />
            <Samples />
            <Status topic=Topic::Pretrain testid="pretrain" />
        </section>
    }
}
