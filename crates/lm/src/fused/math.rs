//! The scalar arithmetic of the fused kernels, shared by their forward and backward passes and
//! checked against the composite forms in the tests.

/// 2·√(2/π): `gelu_new`'s 0.5·x·(1 + tanh(√(2/π)·u)) is x·σ(2√(2/π)·u).
const TWO_SQRT_2_OVER_PI: f32 =
    (2.0 * core::f64::consts::FRAC_2_SQRT_PI * core::f64::consts::FRAC_1_SQRT_2) as f32;
const CUBIC: f32 = 0.044_715;

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// eˣ without a call into libm, so the loops around it vectorise: libm's `expf` is a call per
/// element, and was a seventh of a small model's training step. Cephes' `expf` (range reduction
/// to r ∈ [−ln2/2, ln2/2], degree-6 polynomial, 2ⁿ built in the exponent bits): within 2 ulp
/// of libm over the range the kernels meet. Below −87.3 (where eˣ is subnormal) it gives 0, as
/// for a masked score's −∞; above 88.3 it saturates at 2.4e38 (a sigmoid of it is 0 either way);
/// NaN stays NaN. Every branch is a select, so it compiles to blends.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// 1.5·2²³: adding and subtracting it rounds to the nearest integer in any SIMD width.
    const ROUND: f32 = 12_582_912.0;
    let clamped = if x > 88.3 { 88.3 } else { x };
    let shifted = clamped * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // n ∈ [−126, 127] here, so 2ⁿ is a normal float. n is read from `shifted`'s low mantissa
    // bits, not by `n as i32`, whose saturating conversion does not vectorise.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let two_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < -87.3 {
        0.0
    } else {
        y * two_n
    }
}

/// `gelu_new(x)` = x·σ(z), z = 2√(2/π)·x·(1 + 0.044715·x²).
pub fn gelu_new(x: f32) -> f32 {
    x * sigmoid(TWO_SQRT_2_OVER_PI * x * (1.0 + CUBIC * x * x))
}

/// d gelu_new / dx = σ(z) + x·σ(z)(1 − σ(z))·dz/dx, dz/dx = 2√(2/π)·(1 + 3·0.044715·x²).
pub fn gelu_new_grad(x: f32) -> f32 {
    let x2 = x * x;
    let s = sigmoid(TWO_SQRT_2_OVER_PI * x * (1.0 + CUBIC * x2));
    s + x * s * (1.0 - s) * TWO_SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * x2)
}

/// Softmax of one row, in place. A masked score is `-inf` (its `exp` is 0); every row keeps at
/// least one finite score (see `model::attention`).
pub fn softmax_in_place(row: &mut [f32]) {
    let max = max(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// A row's mean and 1/√(variance + ε), the population variance as LayerNorm takes it; two
/// passes, as Burn's composite LayerNorm does (a one-pass variance loses digits when the mean is
/// large against the spread).
pub fn moments(row: &[f32], epsilon: f64) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let var = sum_squared_deviations(row, mean) / n;
    (mean, 1.0 / (var + epsilon as f32).sqrt())
}

/// Σ of a row.
pub fn sum(row: &[f32]) -> f32 {
    lanes(row, 0.0, |a, b| a + b, |v| v)
}

/// Σ (v − c)² over a row.
pub fn sum_squared_deviations(row: &[f32], c: f32) -> f32 {
    lanes(row, 0.0, |a, b| a + b, |v| (v - c) * (v - c))
}

/// The largest element (NaNs are skipped here; a caller's `exp(x − max)` still turns them into
/// NaN).
pub fn max(row: &[f32]) -> f32 {
    lanes(row, f32::NEG_INFINITY, f32::max, |v| v)
}

/// Σ aᵢbᵢ, in eight lanes as [`lanes`].
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(a, b)| a * b).sum();
    let mut acc = [0.0f32; 8];
    for (a, b) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Folds `map(v)` over a row with `op` in eight interleaved lanes, so the work vectorises: one
/// running accumulator is a chain the compiler may not reorder. `init` must leave `op`
/// unchanged (0 for a sum, −∞ for a max).
fn lanes(row: &[f32], init: f32, op: impl Fn(f32, f32) -> f32, map: impl Fn(f32) -> f32) -> f32 {
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    let mut acc = [init; 8];
    for chunk in chunks {
        for i in 0..8 {
            acc[i] = op(acc[i], map(chunk[i]));
        }
    }
    let folded = acc.into_iter().fold(init, &op);
    tail.iter().fold(folded, |a, &v| op(a, map(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm_where_the_kernels_use_it() {
        let mut worst = 0.0f32;
        for i in -873_000..=883_000 {
            let x = i as f32 / 10_000.0;
            let (got, want) = (exp(x), x.exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst <= 2.0 * f32::EPSILON, "worst relative error {worst}");
    }

    #[test]
    fn exp_at_its_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0, "a masked score");
        assert_eq!(exp(-100.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        let big = exp(1.0e30);
        assert!(big.is_finite() && big > 1.0e38, "saturates: {big}");
        assert!(sigmoid(-1.0e30) < 1.0e-38, "as good as 0 for a GELU of it");
        assert_eq!(sigmoid(1.0e30), 1.0);
    }

    #[test]
    fn sum_in_lanes_adds_every_element() {
        for n in [0usize, 1, 7, 8, 9, 64, 67] {
            let row: Vec<f32> = (0..n).map(|i| i as f32).collect();
            assert_eq!(sum(&row), (n * n.saturating_sub(1) / 2) as f32, "n = {n}");
        }
    }

    #[test]
    fn gelu_new_grad_is_the_derivative() {
        for i in -60..=60 {
            let x = i as f64 / 10.0;
            let h = 1e-3;
            let numeric = (gelu_new((x + h) as f32) as f64 - gelu_new((x - h) as f32) as f64) / (2.0 * h);
            assert!((gelu_new_grad(x as f32) as f64 - numeric).abs() < 2e-3, "x = {x}");
        }
    }
}
