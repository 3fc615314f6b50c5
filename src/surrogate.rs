//! PPO's clipped surrogate at the actions of a policy minibatch, in the (B,T) layout the engines
//! train on. The CPU twin of shaders/surrogate.wgsl, which computes the same weights and sums on
//! the GPU so that a policy step needs no readback before its backward pass.

use crate::bail;
use crate::error::{ErrorKind, Result};

/// The clipped surrogate for one action: (loss, d loss / d logp_new, clipped?).
pub fn surrogate(logp_new: f32, logp_old: f32, adv: f32, clip: f32) -> (f32, f32, bool) {
    let ratio = (logp_new - logp_old).exp();
    let unclipped = -adv * ratio;
    let clipped = -adv * ratio.clamp(1.0 - clip, 1.0 + clip);
    if clipped > unclipped {
        // the clipped term is constant in logp_new: no gradient
        (clipped, 0.0, true)
    } else {
        (unclipped, -adv * ratio, false)
    }
}

/// A policy minibatch (B,T): the tokens, the actions as targets (−1 where a position predicts no
/// action), and at each action its log-probability when sampled and its advantage (0 elsewhere).
pub struct PolicyBatch<'a> {
    pub tokens: &'a [u32],
    pub targets: &'a [i32],
    pub logp_old: &'a [f32],
    pub advantages: &'a [f32],
    pub b: usize,
    pub t: usize,
    /// Each row's length before its padding, when it has some (see `Engine::forward_rows`).
    pub lens: Option<&'a [usize]>,
    /// The surrogate's clip ε.
    pub clip: f32,
    /// Log-probabilities are taken of softmax(logits / temperature), as when sampling.
    pub temperature: f32,
    /// Answers in the minibatch: each action's weight is divided by it, so the loss is summed
    /// over an answer's tokens and averaged over answers.
    pub answers: f32,
}

impl PolicyBatch<'_> {
    /// Every per-position slice holds B·T entries.
    pub fn check(&self) -> Result<()> {
        let n = self.b * self.t;
        let lens = [self.tokens.len(), self.targets.len(), self.logp_old.len(), self.advantages.len()];
        if lens.iter().any(|&l| l != n) {
            bail!(kind: ErrorKind::Internal, "a policy minibatch of ({}, {}) needs {n} entries in each per-position slice, not {lens:?}", self.b, self.t);
        }
        Ok(())
    }
}

/// The pretraining term of PPO-ptx: γ times the mean next-token loss of a batch (B,T).
pub struct PtxBatch<'a> {
    pub tokens: &'a [u32],
    pub targets: &'a [i32],
    pub b: usize,
    pub t: usize,
    pub gamma: f32,
}

/// Sums over a minibatch's actions, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SurrogateSums {
    pub loss: f32,
    pub clipped: f32,
    pub actions: f32,
    /// Σ (ρ − 1 − log ρ): KL(π_old ‖ π_new) by the k3 estimator, ρ = π_new / π_old.
    pub approx_kl: f32,
}

/// The loss weights (B,T) on −log π at each action (what the backward pass takes) and the sums.
/// `losses` are −log π(target) at each position.
pub fn surrogate_weights(x: &PolicyBatch, losses: &[f32]) -> (Vec<f32>, SurrogateSums) {
    let mut weights = vec![0.0f32; losses.len()];
    let mut sums = SurrogateSums::default();
    for (r, w) in weights.iter_mut().enumerate() {
        if x.targets[r] < 0 {
            continue;
        }
        let logp = -losses[r];
        let (loss, dlogp, clipped) = surrogate(logp, x.logp_old[r], x.advantages[r], x.clip);
        // backward works on −log p: d/d(−logp) = −d/dlogp
        *w = -dlogp / x.answers;
        let log_rho = logp - x.logp_old[r];
        sums.loss += loss;
        sums.clipped += clipped as u8 as f32;
        sums.actions += 1.0;
        sums.approx_kl += log_rho.exp() - 1.0 - log_rho;
    }
    (weights, sums)
}
