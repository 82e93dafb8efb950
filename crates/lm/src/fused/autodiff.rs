//! The fused ops under autodiff: each records one node whose backward is one fused pass, where
//! Burn's composite forms record a node (and a backward pass) per basic op.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, NodeGuard, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};

use super::{FusedBackward, FusedOps};

/// The two one-input kernels: each backward pass reads one kept tensor.
#[derive(Debug, Clone, Copy)]
enum Unary {
    /// Keeps the input.
    GeluNew,
    /// Keeps the output.
    SoftmaxLast,
}

impl<B: Backend + FusedBackward> Backward<B, 1> for Unary {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let kept = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| match self {
            Unary::GeluNew => B::fused_gelu_new_backward(kept, grad),
            Unary::SoftmaxLast => B::fused_softmax_last_backward(kept, grad),
        });
    }
}

/// Records a [`Unary`] node for `output`, keeping `kept` for its backward pass when tracked.
fn record<B: Backend + FusedBackward, C: CheckpointStrategy>(
    op: Unary,
    node: NodeGuard,
    kept: FloatTensor<B>,
    output: FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    match op.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(kept, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

#[derive(Debug)]
struct LayerNorm;

impl<B: Backend + FusedBackward> Backward<B, 3> for LayerNorm {
    /// The input, γ and ε: the backward pass recomputes each row's mean and spread, which is
    /// cheaper than keeping them.
    type State = (FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, epsilon) = ops.state;
        let (dx, dgamma, dbeta) = B::fused_layer_norm_backward(x, gamma, grad, epsilon);
        for (node, grad) in [(x_node, dx), (gamma_node, dgamma), (beta_node, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

// The ops are compute-bound for the checkpointer's purposes: their inputs are kept (as the
// composite forms keep them), never recomputed.
impl<B: Backend + FusedOps + FusedBackward, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_gelu_new(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        let y = B::fused_gelu_new(x.clone());
        record::<B, C>(Unary::GeluNew, node, x, y)
    }

    fn fused_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        let y = B::fused_softmax_last(x);
        record::<B, C>(Unary::SoftmaxLast, node, y.clone(), y)
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let ((x, x_node), (gamma, gamma_node), (beta, beta_node)) =
            (x.into_parts(), gamma.into_parts(), beta.into_parts());
        let y = B::fused_layer_norm(x.clone(), gamma.clone(), beta, epsilon);
        match LayerNorm.prepare::<C>([x_node, gamma_node, beta_node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x, gamma, epsilon), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}
