//! The fused CPU kernels (`hearth_lm::fused`) against the composite forms every other backend
//! runs — Burn's ops on the same Flex device — forward and backward, including the inputs the
//! models give them: strided views, masked (−∞) attention scores, large and tiny values.

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use hearth_lm::fused;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 tensor")
}

/// Largest |a − b|; NaN anywhere (or a length mismatch) gives infinity, so it fails any bound.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| if x.is_nan() || y.is_nan() { f32::INFINITY } else { (x - y).abs() })
        .fold(0.0, f32::max)
}

fn random(shape: [usize; 3], scale: f64, device: &Device) -> Tensor<3> {
    Tensor::random(shape, Distribution::Normal(0.0, scale), device)
}

/// The forward values and the input's gradient under a random upstream gradient, for `f`.
fn value_and_grad(
    f: impl Fn(Tensor<3>) -> Tensor<3>,
    x: &Tensor<3>,
    upstream: &Tensor<3>,
) -> (Vec<f32>, Vec<f32>) {
    let x = x.clone().require_grad();
    let y = f(x.clone());
    let grads = (y.clone() * upstream.clone()).sum().backward();
    let dx = x.grad(&grads).expect("the input has a gradient");
    (values(y), values(dx))
}

#[test]
fn gelu_new_matches_the_composite_form() {
    let device = Device::flex().autodiff();
    // Scale 4 reaches the tails, where σ saturates and the exponent is clamped.
    for scale in [0.5, 4.0, 40.0] {
        let x = random([3, 5, 37], scale, &device);
        let upstream = random([3, 5, 37], 1.0, &device);
        let (y, dx) = value_and_grad(fused::gelu_new, &x, &upstream);
        let (y_ref, dx_ref) = value_and_grad(hearth_lm::tensor::gelu_new, &x, &upstream);
        assert!(
            max_diff(&y, &y_ref) <= 1e-5 * scale as f32,
            "scale {scale}: forward {}",
            max_diff(&y, &y_ref)
        );
        assert!(max_diff(&dx, &dx_ref) <= 1e-5, "scale {scale}: backward {}", max_diff(&dx, &dx_ref));
    }
}

#[test]
fn softmax_matches_the_composite_form_with_masked_scores_and_views() {
    let device = Device::flex().autodiff();
    // A causal mask as the attention gives it (−∞ above the diagonal), on a strided view
    // (swap_dims), so the kernel's copy to row-major order is exercised too.
    let scores = random([2, 9, 9], 3.0, &device).swap_dims(1, 2);
    let mask =
        Tensor::<2, burn::tensor::Bool>::tril_mask([9, 9], 0, &device).reshape([1, 9, 9]).expand([2, 9, 9]);
    let scores = scores.mask_fill(mask, f32::NEG_INFINITY);
    let upstream = random([2, 9, 9], 1.0, &device);
    let (y, dx) = value_and_grad(fused::softmax_last, &scores, &upstream);
    let (y_ref, dx_ref) = value_and_grad(|s| softmax(s, 2), &scores, &upstream);
    assert!(max_diff(&y, &y_ref) <= 1e-6, "forward {}", max_diff(&y, &y_ref));
    assert!(max_diff(&dx, &dx_ref) <= 1e-6, "backward {}", max_diff(&dx, &dx_ref));
    // Masked keys get exactly nothing, and every row sums to 1.
    for (i, row) in y.chunks(9).enumerate() {
        let query = i % 9;
        assert!(row[query + 1..].iter().all(|&p| p == 0.0), "row {i}: {row:?}");
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}

#[test]
fn layer_norm_matches_burns_for_the_input_and_both_parameters() {
    let device = Device::flex().autodiff();
    let epsilon = 1e-5;
    let mut ln: LayerNorm = LayerNormConfig::new(48).with_epsilon(epsilon).init(&device);
    // Non-trivial γ and β, and an input whose mean is large against its spread.
    ln.gamma = Param::from_tensor(Tensor::random([48], Distribution::Normal(1.0, 0.5), &device));
    ln.beta = Some(Param::from_tensor(Tensor::random([48], Distribution::Normal(0.0, 0.5), &device)));
    let x = random([4, 6, 48], 2.0, &device) + 30.0;
    let upstream = random([4, 6, 48], 1.0, &device);

    let run = |fused_path: bool| {
        let x = x.clone().require_grad();
        let y = if fused_path { fused::layer_norm(&ln, x.clone(), epsilon) } else { ln.forward(x.clone()) };
        let grads = (y.clone() * upstream.clone()).sum().backward();
        let dx = x.grad(&grads).expect("input gradient");
        let dgamma = ln.gamma.grad(&grads).expect("γ gradient");
        let beta = ln.beta.as_ref().expect("β");
        let dbeta = beta.grad(&grads).expect("β gradient");
        (values(y), values(dx), values(dgamma), values(dbeta))
    };
    let (y, dx, dgamma, dbeta) = run(true);
    let (y_ref, dx_ref, dgamma_ref, dbeta_ref) = run(false);
    assert!(max_diff(&y, &y_ref) <= 1e-4, "forward {}", max_diff(&y, &y_ref));
    assert!(max_diff(&dx, &dx_ref) <= 1e-4, "input gradient {}", max_diff(&dx, &dx_ref));
    assert!(max_diff(&dgamma, &dgamma_ref) <= 1e-4, "γ gradient {}", max_diff(&dgamma, &dgamma_ref));
    assert!(max_diff(&dbeta, &dbeta_ref) <= 1e-4, "β gradient {}", max_diff(&dbeta, &dbeta_ref));
}

#[test]
fn without_autodiff_the_kernels_give_the_same_values() {
    let device = Device::flex();
    let x = Tensor::<3>::from_data(
        TensorData::new((0..60).map(|i| (i as f32 - 30.0) / 7.0).collect::<Vec<_>>(), [2, 3, 10]),
        &device,
    );
    assert!(
        max_diff(&values(fused::gelu_new(x.clone())), &values(hearth_lm::tensor::gelu_new(x.clone())))
            <= 1e-6
    );
    let expected = values(softmax(x.clone(), 2));
    // A shared input is copied; one nothing else holds is overwritten in place.
    assert!(max_diff(&values(fused::softmax_last(x.clone())), &expected) <= 1e-6);
    assert!(max_diff(&values(fused::softmax_last(x * 1.0)), &expected) <= 1e-6);
}

#[test]
fn nan_stays_nan() {
    let device = Device::flex();
    let x = Tensor::<3>::from_data(TensorData::new(vec![0.5, f32::NAN, -1.0, 2.0], [1, 2, 2]), &device);
    assert!(values(fused::gelu_new(x.clone()))[1].is_nan());
    let probs = values(fused::softmax_last(x));
    assert!(probs[0].is_nan() && probs[1].is_nan(), "a NaN score poisons its row: {probs:?}");
    assert!(!probs[2].is_nan() && !probs[3].is_nan(), "and only its row: {probs:?}");
}
