//! The fused kernels on the Flex backend's tensors: plain loops over contiguous `f32` rows,
//! one pass forward and one backward, each writing one fresh buffer (the softmax writes over
//! its scores when nothing else holds them).

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::Flex;
use burn::tensor::{Bytes, DType, Shape};

use super::math;

fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("fused kernels take contiguous f32 tensors")
}

fn tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape), DType::F32)
}

fn last_dim(shape: &Shape) -> usize {
    *shape.last().expect("a fused kernel's tensor has at least one dimension")
}

impl super::FusedOps for Flex {
    fn fused_gelu_new(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let out = values(&x).iter().map(|&v| math::gelu_new(v)).collect();
        tensor(out, x.layout().shape().clone())
    }

    fn fused_softmax_last(x: FlexTensor) -> FlexTensor {
        // Owned: a copy of the handle (`to_contiguous` of a borrow) would make the buffer look shared.
        let mut x = if x.is_contiguous() { x } else { x.to_contiguous() };
        let shape = x.layout().shape().clone();
        let d = last_dim(&shape);
        // The scores are usually this op's alone (nothing else keeps them): then in place.
        if x.is_unique() && x.layout().start_offset() == 0 {
            if let Some(scores) = x.try_storage_mut::<f32>() {
                let n = shape.num_elements();
                scores[..n].chunks_exact_mut(d).for_each(math::softmax_in_place);
                return x;
            }
        }
        let mut out = values(&x).to_vec();
        out.chunks_exact_mut(d).for_each(math::softmax_in_place);
        tensor(out, shape)
    }

    fn fused_layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> FlexTensor {
        let (x, gamma, beta) = (x.to_contiguous(), gamma.to_contiguous(), beta.to_contiguous());
        let shape = x.layout().shape().clone();
        let d = last_dim(&shape);
        let (gamma, beta) = (values(&gamma), values(&beta));
        let mut out = vec![0.0; shape.num_elements()];
        for (row, y) in values(&x).chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let (mean, rstd) = math::moments(row, epsilon);
            for i in 0..d {
                y[i] = (row[i] - mean) * rstd * gamma[i] + beta[i];
            }
        }
        tensor(out, shape)
    }
}

impl super::FusedBackward for Flex {
    fn fused_gelu_new_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let out = values(&x).iter().zip(values(&grad)).map(|(&v, &g)| g * math::gelu_new_grad(v)).collect();
        tensor(out, x.layout().shape().clone())
    }

    fn fused_softmax_last_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let (y, grad) = (y.to_contiguous(), grad.to_contiguous());
        let shape = y.layout().shape().clone();
        let d = last_dim(&shape);
        let mut out = values(&grad).to_vec();
        for (g, y) in out.chunks_exact_mut(d).zip(values(&y).chunks_exact(d)) {
            let dot = math::dot(g, y);
            for (g, y) in g.iter_mut().zip(y) {
                *g = y * (*g - dot);
            }
        }
        tensor(out, shape)
    }

    fn fused_layer_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        grad: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, gamma, grad) = (x.to_contiguous(), gamma.to_contiguous(), grad.to_contiguous());
        let shape = x.layout().shape().clone();
        let d = last_dim(&shape);
        let gamma = &values(&gamma)[..d];
        let mut dx = vec![0.0; shape.num_elements()];
        let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
        let (mut xhat, mut gy) = (vec![0.0f32; d], vec![0.0f32; d]);
        let rows = values(&x).chunks_exact(d).zip(values(&grad).chunks_exact(d));
        for ((row, g), dx) in rows.zip(dx.chunks_exact_mut(d)) {
            let (mean, rstd) = math::moments(row, epsilon);
            // Element-wise first (vectorises), then the row's two sums in lanes.
            for i in 0..d {
                xhat[i] = (row[i] - mean) * rstd;
                gy[i] = g[i] * gamma[i];
                dgamma[i] += g[i] * xhat[i];
                dbeta[i] += g[i];
            }
            let mean_gy = math::sum(&gy) / d as f32;
            let mean_gy_xhat = math::dot(&gy, &xhat) / d as f32;
            for i in 0..d {
                dx[i] = rstd * (gy[i] - mean_gy - xhat[i] * mean_gy_xhat);
            }
        }
        let params = Shape::new([d]);
        (tensor(dx, shape), tensor(dgamma, params.clone()), tensor(dbeta, params))
    }
}
