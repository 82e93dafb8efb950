//! Seeded shuffled batches of train windows that a resumed run replays exactly, and the fixed
//! evaluation batches.

use serde::{Deserialize, Serialize};

use super::windows::{Dataset, Split};
use crate::rng::Rng;

/// A batch of `batch_size` windows of `context` tokens, row-major (`[batch_size, context]`
/// flattened).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub inputs: Vec<u32>,
    /// `inputs` shifted left by one: the next token at each position (causal LM).
    pub targets: Vec<u32>,
    pub batch_size: usize,
    pub context: usize,
}

impl Batch {
    /// Rows as a batch. Causal LM: inputs are each row but its last token, targets each row but
    /// its first. Masked LM: inputs are the whole row (the targets are drawn by the masking).
    fn from_windows<'a>(windows: impl ExactSizeIterator<Item = &'a [u32]>, causal: bool) -> Self {
        let batch_size = windows.len();
        let mut inputs = Vec::new();
        let mut targets = Vec::new();
        let mut context = 0;
        for window in windows {
            if causal {
                context = window.len() - 1;
                inputs.extend_from_slice(&window[..context]);
                targets.extend_from_slice(&window[1..]);
            } else {
                context = window.len();
                inputs.extend_from_slice(window);
            }
        }
        Self { inputs, targets, batch_size, context }
    }
}

/// Seeded shuffling over the train windows, epoch after epoch: a new permutation each epoch
/// (Fisher–Yates with [`Rng`]). Its state is plain serialisable values (seed, epoch, position in
/// the epoch) so a resumed run continues with exactly the batches an uninterrupted run would have
/// seen; the permutation is recomputed from `(seed, epoch)` rather than stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batcher {
    seed: u64,
    /// Completed epochs: the epoch the next window comes from.
    epoch: usize,
    /// Windows of this epoch already handed out.
    position: usize,
    #[serde(skip)]
    order: OrderCache,
}

impl Batcher {
    pub fn new(seed: u64) -> Self {
        Self { seed, epoch: 0, position: 0, order: OrderCache::default() }
    }

    /// The next `batch_size` train rows as a batch ([`Batch::from_windows`]). A batch may span
    /// the end of an epoch.
    pub fn next_batch(&mut self, data: &Dataset, batch_size: usize, causal: bool) -> Batch {
        let windows = data.windows(Split::Train);
        let indices: Vec<usize> = (0..batch_size).map(|_| self.next_index(windows)).collect();
        let rows = indices.iter().map(|&i| data.window(Split::Train, i));
        Batch::from_windows(rows, causal)
    }

    /// The state after `draws` windows drawn from `windows` in all (epochs are whole
    /// permutations, so the position follows from the count): where a run continued elsewhere
    /// on the handed-off order stands.
    pub(crate) fn after(seed: u64, draws: u64, windows: usize) -> Self {
        let windows = windows.max(1) as u64;
        Self {
            seed,
            epoch: (draws / windows) as usize,
            position: (draws % windows) as usize,
            order: OrderCache::default(),
        }
    }

    /// Epochs done, with the fraction of the current one: 1.5 is half-way through the second.
    pub fn progress(&self, windows: usize) -> f64 {
        self.epoch as f64 + self.position as f64 / windows.max(1) as f64
    }

    /// Completed epochs (0 during the first pass over the train windows).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Windows of the current epoch already handed out.
    pub fn position(&self) -> usize {
        self.position
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next train window index, moving to a new epoch when this one is used up.
    pub(crate) fn next_index(&mut self, windows: usize) -> usize {
        if self.position >= windows {
            // Only reached when the data changed size since the state was saved.
            self.epoch += 1;
            self.position = 0;
        }
        let index = self.order.get(self.seed, self.epoch, windows)[self.position];
        self.position += 1;
        if self.position == windows {
            self.epoch += 1;
            self.position = 0;
        }
        index
    }
}

/// The current epoch's permutation, kept between batches because recomputing it costs one draw
/// per window. Not part of the state: equal `(seed, epoch, windows)` give the same permutation.
#[derive(Clone, Default)]
struct OrderCache {
    key: Option<(u64, usize, usize)>,
    order: Vec<usize>,
}

impl OrderCache {
    fn get(&mut self, seed: u64, epoch: usize, windows: usize) -> &[usize] {
        if self.key != Some((seed, epoch, windows)) {
            self.order = epoch_order(seed, epoch, windows);
            self.key = Some((seed, epoch, windows));
        }
        &self.order
    }
}

impl PartialEq for OrderCache {
    /// A cache never makes two batchers differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for OrderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrderCache")
    }
}

/// The order of the windows in `epoch`: a Fisher–Yates shuffle of `0..windows`.
fn epoch_order(seed: u64, epoch: usize, windows: usize) -> Vec<usize> {
    let mut rng = epoch_rng(seed, epoch);
    let mut order: Vec<usize> = (0..windows).collect();
    for i in (1..windows).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// A generator per `(seed, epoch)`. The pair is hashed (one SplitMix output) rather than added:
/// SplitMix streams of seeds `s` and `s + k·γ` are the same stream shifted by `k` draws, so
/// `seed + epoch` would make consecutive epochs' shuffles overlap.
fn epoch_rng(seed: u64, epoch: usize) -> Rng {
    let mut mix = Rng::new(seed ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    Rng::new(mix.next_u64())
}

/// The windows [`eval_batches`] takes, in order: `batches * batch_size` of `windows` at evenly
/// spaced indices, or all of them if there are fewer.
pub fn eval_indices(windows: usize, batch_size: usize, batches: usize) -> Vec<usize> {
    let wanted = batch_size.saturating_mul(batches).min(windows);
    // u64 so that `j * windows` cannot overflow a 32-bit usize (wasm32).
    (0..wanted as u64).map(|j| (j * windows as u64 / wanted as u64) as usize).collect()
}

/// Evaluation batches: `batches * batch_size` windows of `split` at evenly spaced indices
/// (deterministic, the same at every evaluation, so loss curves are comparable), cut into batches
/// of `batch_size`. Fewer if the split has fewer windows: then every window, the last batch
/// possibly smaller. Empty when the split has no windows or either count is 0.
pub fn eval_batches(
    data: &Dataset,
    split: Split,
    batch_size: usize,
    batches: usize,
    causal: bool,
) -> Vec<Batch> {
    if batch_size == 0 {
        return Vec::new();
    }
    eval_indices(data.windows(split), batch_size, batches)
        .chunks(batch_size)
        .map(|chunk| {
            let rows = chunk.iter().map(|&i| data.window(split, i));
            Batch::from_windows(rows, causal)
        })
        .collect()
}
