//! The pretrain panel: upload texts (or take the sample), start from random weights or fine-tune
//! a loaded model, train with live curves and samples, pause/resume/stop, download the result as
//! a Hugging Face directory, and compare runs. One file per part: the corpus, the form, the run's
//! controls and progress, the curves and samples, the runs table.

mod controls;
mod corpus;
mod curves;
mod form;
mod probe;
mod runs;

use leptos::prelude::*;

use self::controls::{RunControls, RunProgress};
use self::corpus::{CorpusDrop, CorpusStats};
use self::curves::{LossCurves, Samples};
use self::form::PretrainForm;
use self::probe::ProbeReplay;
use self::runs::RunsTable;
use crate::protocol::{Topic, TrainSettings};
use crate::ui::state::AppState;
use crate::ui::widgets::Status;

#[component]
pub fn PretrainPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let settings = RwSignal::new(TrainSettings::default());
    // A run the worker reports (a restored one, after a reload or a take-over; a started one,
    // with "automatic" resolved to its backend) puts its settings in the form, once, unless the
    // user has changed the form since it last agreed with a run or was sent with Start: a
    // restore that lands while they pick "Start from" must not swap their choices for the old
    // run's just before they press Start.
    let shown_run = StoredValue::new(None::<TrainSettings>);
    Effect::new(move |_| {
        // Steps as the run now stands (Continue may have raised them).
        if let Some(run) = state.train.get().map(|s| TrainSettings { steps: s.total_steps, ..s.settings }) {
            let last = shown_run.get_value();
            if last.as_ref() != Some(&run) {
                let untouched = settings.with_untracked(|form| *form == last.unwrap_or_default());
                shown_run.set_value(Some(run.clone()));
                if untouched {
                    settings.set(run);
                }
            }
        }
    });
    view! {
        <section class="panel" data-testid="pretrain-panel">
            <h2>"Pretrain"</h2>
            <CorpusDrop settings=settings />
            <CorpusStats />
            <PretrainForm settings=settings />
            <RunControls settings=settings agreed=shown_run />
            <RunProgress />
            <LossCurves />
            <Samples />
            <ProbeReplay />
            <RunsTable />
            <Status topic=Topic::Pretrain testid="pretrain" />
        </section>
    }
}
