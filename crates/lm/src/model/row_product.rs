//! A product of one row with a weight matrix — what decoding one token does with every weight
//! — split into column blocks that the Flex backend runs in parallel.
//!
//! Why: for a single row the `gemm` crate takes its matrix–vector path, which ignores the
//! parallelism Flex asks for, so decoding ran every projection and the output head on one
//! core. Flex runs the items of a batched product in parallel (rayon) once there are at least
//! four and enough work, so the weight is viewed — not copied — as `p` blocks of columns and
//! multiplied as a batch of `p` products of the same row: the same dot products, equal to the
//! single product's up to rounding (the kernel may group a sum's terms differently).
//! Measured on 2 cores (`hearth bench --llama`, DEVELOPERS.md): the tied output head of
//! Qwen2.5-0.5B (151,936 × 896) 63 → 33 ms a token, a 896 × 4,864 MLP matrix 0.96 → 0.79 ms,
//! while a 896 × 896 one was slower split (0.17 → 0.22 ms: waking the threads costs more than
//! it saves), hence [`MIN_ELEMENTS`].
//!
//! Only the Flex backend takes this path; the GPU and the browser's ndarray fallback run the
//! plain product, and so does any product of more than one row (`gemm` parallelises those).

use burn::tensor::{DType, Tensor};

/// Weights smaller than this (in elements) are multiplied whole: below it the split was slower.
const MIN_ELEMENTS: usize = 1 << 22;

/// Blocks to split into: Flex parallelises a batch of at least four; more than the cores only
/// balances the load. Asked once: `available_parallelism` reads the cgroup's CPU quota from
/// files, which a decode loop must not do for every projection.
fn blocks() -> usize {
    static BLOCKS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BLOCKS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        cores.clamp(4, 16).next_power_of_two()
    })
}

/// Whether `x · W` for a `[rows, k]` row and an f32 weight of `elements` takes the split path.
fn applies(x: &Tensor<2>, weight: &Tensor<2>) -> bool {
    let [rows, _] = x.dims();
    let [a, b] = weight.dims();
    rows == 1
        && a.saturating_mul(b) >= MIN_ELEMENTS
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && crate::tensor::is_flex(&x.device())
}

/// `x · W` for one row `x: [1, k]` and `W: [k, n]`, or `None` where the plain product is the
/// one to run (not Flex, not f32, more than one row, a small weight, or `n` not a multiple of a
/// block count, which would need a copy of the weight).
pub fn times(x: &Tensor<2>, weight: &Tensor<2>) -> Option<Tensor<2>> {
    if !applies(x, weight) {
        return None;
    }
    let [k, n] = weight.dims();
    let p = blocks();
    let p = [p, p / 2, p / 4].into_iter().find(|&p| p >= 4 && n % p == 0)?;
    // [k, n] → [k, p, n/p] → [p, k, n/p]: block j is the columns j·n/p.. of W, as a strided view.
    let blocks = weight.clone().reshape([k, p, n / p]).swap_dims(0, 1);
    // [1, 1, k] · [p, k, n/p] → [p, 1, n/p], whose memory is the [1, n] row in order.
    Some(x.clone().unsqueeze::<3>().matmul(blocks).reshape([1, n]))
}

/// `x · Wᵀ` for one row `x: [1, k]` and `W: [n, k]` (an embedding used as the output head), or
/// `None` where the plain product is the one to run. `n` need not divide: the rows past the last
/// whole block are multiplied on their own.
pub fn times_transposed(x: &Tensor<2>, weight: &Tensor<2>) -> Option<Tensor<2>> {
    if !applies(x, weight) {
        return None;
    }
    let [n, k] = weight.dims();
    let p = blocks();
    let whole = n - n % p;
    // The first `whole` rows are contiguous: [p, whole/p, k] is a view, and its transpose
    // [p, k, whole/p] gives block j's logits.
    let blocks = weight.clone().narrow(0, 0, whole).reshape([p, whole / p, k]).swap_dims(1, 2);
    let head = x.clone().unsqueeze::<3>().matmul(blocks).reshape([1, whole]);
    if whole == n {
        return Some(head);
    }
    let rest = x.clone().matmul(weight.clone().narrow(0, whole, n - whole).transpose());
    Some(Tensor::cat(vec![head, rest], 1))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;

    fn random(shape: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    /// The largest difference relative to the plain product's largest value (NaN if any is).
    fn relative_difference(split: Tensor<2>, plain: Tensor<2>) -> f32 {
        let a = split.into_data().try_to_vec::<f32>().unwrap();
        let b = plain.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter().zip(&b).map(|(x, y)| (x - y).abs() / scale).fold(0.0, |m, d| {
            if d.is_nan() {
                f32::NAN
            } else {
                m.max(d)
            }
        })
    }

    /// The split products equal the plain ones to rounding, with whole blocks and with rows past
    /// the last block (GPT-2's 50,257 rows are not a multiple of any block count).
    #[test]
    fn split_products_equal_the_plain_ones() {
        let device = Device::flex();
        let x = random([1, 512], &device);
        let w = random([512, 8192], &device);
        let split = times(&x, &w).expect("a 512 × 8192 weight takes the split path on Flex");
        let d = relative_difference(split, x.clone().matmul(w.clone()));
        assert!(d < 1e-6, "{d}");
        for rows in [8192, 8195] {
            let e = random([rows, 512], &device);
            let split = times_transposed(&x, &e).expect("an 8192-row head takes the split path");
            assert_eq!(split.dims(), [1, rows]);
            let d = relative_difference(split, x.clone().matmul(e.clone().transpose()));
            assert!(d < 1e-6, "{rows} rows: {d}");
        }
    }

    /// Where the split does not apply the plain product runs: more than one row, a small weight,
    /// another backend, or a width that is not a multiple of a block count.
    #[test]
    fn the_plain_product_runs_elsewhere() {
        let flex = Device::flex();
        let w = random([512, 8192], &flex);
        assert!(times(&random([2, 512], &flex), &w).is_none());
        assert!(times(&random([1, 64], &flex), &random([64, 64], &flex)).is_none());
        assert!(times(&random([1, 4099], &flex), &random([4099, 1027], &flex)).is_none());
        #[allow(deprecated)] // NdArray: the browser's CPU fallback
        let ndarray = Device::ndarray();
        assert!(times(&random([1, 512], &ndarray), &random([512, 8192], &ndarray)).is_none());
    }
}
