//! The built-in tokenizers (GPT-2, bert-base-uncased), fetched from beside the page the first
//! time a request needs one. The worker is built without hearth-lm's `embedded-tokenizers`:
//! the two files would be 4.3 MB of its wasm (0.8 MB of the gzip download) that every visit
//! paid before the device was ready, though a run with `chars` never reads them.

use std::cell::RefCell;
use std::collections::HashMap;

use futures::future::{FutureExt, LocalBoxFuture, Shared};
use hearth_lm::io::builtin;

use super::fetch::fetch_with_progress;
use crate::protocol::Topic;

/// Where Trunk copies `crates/lm/assets/tokenizers/` (index.html), relative to the worker's
/// script, which sits beside the page.
const BASE: &str = "tokenizers/";

type Fetching = Shared<LocalBoxFuture<'static, Result<(), String>>>;

thread_local! {
    /// Fetches under way: the tokenize panel asks on every keystroke, and each ask waits on the
    /// one download rather than starting another.
    static FETCHING: RefCell<HashMap<&'static str, Fetching>> = RefCell::new(HashMap::new());
}

/// Makes `name`'s file available to `Tokenizer::builtin`, fetching it (with progress for
/// `topic`) if it is not yet. Names that are not built-in tokenizers need nothing: their own
/// error comes from the code that reads them.
pub async fn ensure(name: &str, topic: Topic) -> Result<(), String> {
    let Some(file) = builtin::builtin_file(name) else { return Ok(()) };
    if builtin::is_available(file.name) {
        return Ok(());
    }
    let fetching = FETCHING.with(|f| {
        f.borrow_mut().entry(file.name).or_insert_with(|| fetch(file, topic).boxed_local().shared()).clone()
    });
    let result = fetching.await;
    // Done either way: a failure is retried by the next request (the server may be back).
    FETCHING.with(|f| f.borrow_mut().remove(file.name));
    result
}

async fn fetch(file: &'static builtin::BuiltinFile, topic: Topic) -> Result<(), String> {
    let url = format!("{BASE}{}", file.path);
    // The exact length is known: a larger answer is not the file and is not read to its end.
    let bytes = fetch_with_progress(&url, file.path, topic, false, file.len as u64)
        .await
        .map_err(|e| format!("the built-in {} tokenizer could not be loaded: {e}", file.name))?
        .unwrap_or_default();
    builtin::supply(file.name, bytes).map_err(|e| format!("{url}: {e}"))
}
