//! Softmax cross-entropy over the vocabulary at a sampling temperature, fused (probabilities are never stored).
//! A target below zero marks a position that carries no loss (the prompt, during SFT).
//! Dividing the logits by the temperature here is what makes PPO's log-probabilities those of the sampler.

use super::expf::expf;

/// losses (N) = -log softmax(logits/T)[target] (0 where target < 0); lse (N) = logsumexp(logits/T);
/// entropy (N) = entropy of softmax(logits/T).
#[allow(clippy::too_many_arguments)]
pub fn crossentropy_forward(
    losses: &mut [f32],
    lse: &mut [f32],
    entropy: &mut [f32],
    logits: &[f32],
    targets: &[i32],
    temperature: f32,
    n: usize,
    v: usize,
) {
    let inv_t = 1.0 / temperature;
    for r in 0..n {
        let row = &logits[r * v..][..v];
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) * inv_t;
        let mut s = 0.0f32;
        let mut sx = 0.0f32; // Σ e^(x-m)·x, for the entropy
        for &x in row {
            let e = expf(x * inv_t - m);
            s += e;
            sx += e * x * inv_t;
        }
        lse[r] = m + s.ln();
        entropy[r] = lse[r] - sx / s;
        losses[r] = if targets[r] >= 0 { lse[r] - row[targets[r] as usize] * inv_t } else { 0.0 };
    }
}

/// dlogits (N,V) += w[r] · (softmax(logits/T) - onehot(target)) / T for every row with a target:
/// the gradient of Σ_r w[r]·losses[r].
#[allow(clippy::too_many_arguments)]
pub fn crossentropy_backward(
    dlogits: &mut [f32],
    logits: &[f32],
    lse: &[f32],
    targets: &[i32],
    weights: &[f32],
    temperature: f32,
    n: usize,
    v: usize,
) {
    let inv_t = 1.0 / temperature;
    for r in 0..n {
        if targets[r] < 0 || weights[r] == 0.0 {
            continue;
        }
        for j in 0..v {
            let p = expf(logits[r * v + j] * inv_t - lse[r]);
            let onehot = if j == targets[r] as usize { 1.0 } else { 0.0 };
            dlogits[r * v + j] += weights[r] * (p - onehot) * inv_t;
        }
    }
}
