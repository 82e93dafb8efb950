//! Multi-head scaled dot-product attention shared by GPT-2 (causal, with a KV cache) and BERT
//! (bidirectional, with a padding mask).

use burn::nn::Dropout;
use burn::tensor::{Bool, Tensor};

/// Score for masked keys on a GPU: `exp` of it underflows to exactly 0, and a shader need not
/// honour infinities (WGSL lets an implementation assume there are none).
const MASKED: f32 = -1.0e30;

/// The masked score on the CPU: `-inf`, whose `exp` libm returns as 0 at once, where a finite
/// underflow takes its slow error path (a tenth of the baby GPT's training step). Every row of
/// our masks keeps at least one key (the diagonal; `[CLS]`), so no row becomes NaN.
fn masked_score(device: &burn::tensor::Device) -> f32 {
    if crate::tensor::is_cpu(device) {
        f32::NEG_INFINITY
    } else {
        MASKED
    }
}

/// `[b, t, d]` → `[b, n_head, t, d / n_head]`.
pub fn split_heads(x: Tensor<3>, n_head: usize) -> Tensor<4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, n_head, d / n_head]).swap_dims(1, 2)
}

/// `[b, n_head, t, hd]` → `[b, t, n_head * hd]`.
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, nh, t, hd] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, nh * hd])
}

/// softmax(q kᵀ / √hd + mask) v.
///
/// # Shapes
/// - q: `[b, nh, t, hd]`, k and v: `[b, nh, s, hd]`
/// - mask: `[b, nh, t, s]`, true where a query must not see a key
/// - output: `[b, nh, t, hd]`
pub fn attend(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<Tensor<4, Bool>>,
    dropout: &Dropout,
) -> Tensor<4> {
    dropout.forward(attention_probs(q, k, mask)).matmul(v)
}

/// softmax(q kᵀ / √hd + mask): the attention weights `transformers` returns with
/// `output_attentions=True` (before dropout).
///
/// # Shapes
/// - q: `[b, nh, t, hd]`, k: `[b, nh, s, hd]`, mask: `[b, nh, t, s]` → `[b, nh, t, s]`
pub fn attention_probs(q: Tensor<4>, k: Tensor<4>, mask: Option<Tensor<4, Bool>>) -> Tensor<4> {
    let hd = q.dims()[3];
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (hd as f64).sqrt());
    let scores = match mask {
        Some(mask) => {
            let value = masked_score(&scores.device());
            scores.mask_fill(mask, value)
        }
        None => scores,
    };
    crate::fused::softmax_last(scores)
}

/// Causal mask for `t` new queries at absolute positions `past..past + t` over `past + t`
/// keys: true above the diagonal (key after query).
///
/// # Shapes
/// - output: `[b, nh, t, past + t]`
pub fn causal_mask(
    b: usize,
    nh: usize,
    t: usize,
    past: usize,
    device: &burn::tensor::Device,
) -> Tensor<4, Bool> {
    let s = past + t;
    Tensor::<2, Bool>::tril_mask([t, s], past as i64, device).reshape([1, 1, t, s]).expand([b, nh, t, s])
}

/// Key padding mask from an attention mask of 1s (token) and 0s (padding).
///
/// # Shapes
/// - keep: `[b, s]` (1 = attend)
/// - output: `[b, nh, t, s]`, true on padding keys
pub fn padding_mask(keep: Tensor<2, burn::tensor::Int>, nh: usize, t: usize) -> Tensor<4, Bool> {
    let [b, s] = keep.dims();
    keep.equal_elem(0).reshape([b, 1, 1, s]).expand([b, nh, t, s])
}
