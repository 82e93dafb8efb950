//! The Device panel's view of browser storage: the downloads kept and the runs' checkpoints,
//! with their sizes, and forgetting them.

use super::{emit, emit_error, runs, storage};
use crate::protocol::{Event, Topic};

pub async fn list() {
    let listed = async {
        let files = storage::downloads().await?;
        let runs = runs::storage_rows().await?;
        Ok::<_, String>((files, runs))
    }
    .await;
    match listed {
        Ok((files, runs)) => emit(&Event::Stored { files, runs }),
        Err(e) => emit_error(Topic::Device, format!("cannot list browser storage: {e}")),
    }
}

/// Deletes every kept download; the runs stay (the Device panel deletes them apart).
pub async fn clear() {
    let result = async {
        for (url, _) in storage::downloads().await? {
            storage::delete(&url).await?;
        }
        Ok::<_, String>(())
    }
    .await;
    if let Err(e) = result {
        emit_error(Topic::Device, format!("cannot clear browser storage: {e}"));
    }
    list().await;
}
