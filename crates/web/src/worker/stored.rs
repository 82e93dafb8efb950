//! The Device panel's view of browser storage: which downloads are kept, and forgetting them.

use super::{emit, emit_error, storage};
use crate::protocol::{Event, Topic};

pub async fn list() {
    match storage::downloads().await {
        Ok(files) => emit(&Event::Stored { files }),
        Err(e) => emit_error(Topic::Device, format!("cannot list browser storage: {e}")),
    }
}

/// Deletes every kept download; the training run's checkpoint stays.
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
