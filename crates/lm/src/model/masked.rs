//! What fill-mask, the masked-LM loss and the attention view need of an encoder, whatever its
//! architecture: BERT and ModernBERT implement it, so `infer::fill_mask` and the masked-LM
//! training step are written once.

use burn::tensor::{Device, Int, Tensor};

use super::bert::BertForMaskedLM;
use super::check_ids;
use super::modernbert::ModernBertForMaskedLM;
use crate::error::{invalid, Result};
use crate::tensor::{cross_entropy, int_tensor};

pub trait MaskedLm {
    /// Rows of the decoder: every id must be below this.
    fn vocab_size(&self) -> usize;
    /// The longest sequence the model reads (its position table, or the context it was trained
    /// for under rotary positions).
    fn context(&self) -> usize;
    fn device(&self) -> Device;
    /// The id a padded batch fills short rows with (`pad_token_id`; 0, BERT's `[PAD]`, when
    /// the config names none). Masked, so any id would do; this one is what a tokenizer pads with.
    fn pad_id(&self) -> u32;
    /// The encoder's output, `[b, t, d]`, for ids `[b, t]` and `keep` `[b, t]` (1 = token,
    /// 0 = padding); one segment (BERT's token types all 0).
    fn hidden(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Tensor<3>;
    /// The MLM head on chosen hidden states, `[b, t, d]` → `[b, t, vocab]`.
    fn mlm_head(&self, hidden: Tensor<3>) -> Tensor<3>;
    /// Every layer's attention weights, `[b, heads, t, t]`.
    fn attentions(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Vec<Tensor<4>>;
}

impl MaskedLm for BertForMaskedLM {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }
    fn context(&self) -> usize {
        self.config().max_position_embeddings
    }
    fn device(&self) -> Device {
        BertForMaskedLM::device(self)
    }
    fn pad_id(&self) -> u32 {
        self.config().pad_token_id.unwrap_or(0)
    }
    fn hidden(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Tensor<3> {
        let types = Tensor::<2, Int>::zeros(ids.dims(), &ids.device());
        self.forward_hidden(ids, types, keep)
    }
    fn mlm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        BertForMaskedLM::mlm_head(self, hidden)
    }
    fn attentions(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Vec<Tensor<4>> {
        let types = Tensor::<2, Int>::zeros(ids.dims(), &ids.device());
        BertForMaskedLM::attentions(self, ids, types, keep)
    }
}

impl MaskedLm for ModernBertForMaskedLM {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }
    fn context(&self) -> usize {
        self.config().max_position_embeddings
    }
    fn device(&self) -> Device {
        ModernBertForMaskedLM::device(self)
    }
    fn pad_id(&self) -> u32 {
        self.config().pad_token_id.unwrap_or(0)
    }
    fn hidden(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Tensor<3> {
        self.forward_hidden(ids, keep)
    }
    fn mlm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        ModernBertForMaskedLM::mlm_head(self, hidden)
    }
    fn attentions(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Vec<Tensor<4>> {
        ModernBertForMaskedLM::attentions(self, ids, keep)
    }
}

/// A boxed encoder (as [`super::AnyModel`] holds them) is one too.
impl<T: MaskedLm + ?Sized> MaskedLm for Box<T> {
    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }
    fn context(&self) -> usize {
        (**self).context()
    }
    fn device(&self) -> Device {
        (**self).device()
    }
    fn pad_id(&self) -> u32 {
        (**self).pad_id()
    }
    fn hidden(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Tensor<3> {
        (**self).hidden(ids, keep)
    }
    fn mlm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        (**self).mlm_head(hidden)
    }
    fn attentions(&self, ids: Tensor<2, Int>, keep: Tensor<2, Int>) -> Vec<Tensor<4>> {
        (**self).attentions(ids, keep)
    }
}

/// Masked-LM loss of corrupted `inputs` against `labels`: cross-entropy at the positions that
/// have a label, the only rows sent through the vocabulary projection.
///
/// # Shapes
/// - inputs, labels: `[b * t]` row-major for `shape = [b, t]` → `[1]`
pub fn masked_lm_loss(
    model: &dyn MaskedLm,
    inputs: &[u32],
    labels: &[Option<u32>],
    shape: [usize; 2],
) -> Result<Tensor<1>> {
    let [b, t] = shape;
    if inputs.len() != b * t || labels.len() != b * t {
        return Err(invalid!(
            "masked-LM batch of {} ids and {} labels is not {b} × {t}",
            inputs.len(),
            labels.len()
        ));
    }
    let vocab = model.vocab_size();
    check_ids(inputs, vocab)?;
    let targets: Vec<u32> = labels.iter().flatten().copied().collect();
    check_ids(&targets, vocab)?;
    if targets.is_empty() {
        return Err(invalid!("no position of the batch is masked, so there is nothing to predict"));
    }
    let device = model.device();
    let rows: Vec<u32> =
        labels.iter().enumerate().filter(|(_, l)| l.is_some()).map(|(i, _)| i as u32).collect();
    let n = rows.len();
    let ones = Tensor::<2, Int>::ones([b, t], &device);
    let hidden = model.hidden(int_tensor(inputs, [b, t], &device), ones); // [b, t, d]
    let d = hidden.dims()[2];
    let chosen = hidden.reshape([b * t, d]).select(0, int_tensor(&rows, [n], &device)); // [n, d]
    let logits = model.mlm_head(chosen.reshape([1, n, d])).reshape([n, vocab]);
    Ok(cross_entropy(logits, int_tensor(&targets, [n], &device)))
}
