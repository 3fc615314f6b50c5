//! Softmax cross-entropy over the vocabulary, fused (the probabilities are never stored).
//! A target below zero marks a position that carries no loss (the prompt, during SFT).

/// losses (N) = logsumexp(logits) - logits[target]; lse (N) keeps the logsumexp for the backward pass.
pub fn crossentropy_forward(losses: &mut [f32], lse: &mut [f32], logits: &[f32], targets: &[i32], n: usize, v: usize) {
    for r in 0..n {
        let row = &logits[r * v..][..v];
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let s: f32 = row.iter().map(|x| (x - m).exp()).sum();
        lse[r] = m + s.ln();
        losses[r] = if targets[r] >= 0 { lse[r] - row[targets[r] as usize] } else { 0.0 };
    }
}

/// dlogits (N,V) += (softmax - onehot(target)) · dloss for every position with a target.
pub fn crossentropy_backward(dlogits: &mut [f32], logits: &[f32], lse: &[f32], targets: &[i32], dloss: f32, n: usize, v: usize) {
    for r in 0..n {
        if targets[r] < 0 {
            continue;
        }
        for j in 0..v {
            let p = (logits[r * v + j] - lse[r]).exp();
            let onehot = if j == targets[r] as usize { 1.0 } else { 0.0 };
            dlogits[r * v + j] += (p - onehot) * dloss;
        }
    }
}

/// The mean-loss gradient scale: one over the number of positions that carry loss.
pub fn mean_scale(targets: &[i32]) -> f32 {
    let count = targets.iter().filter(|&&t| t >= 0).count();
    if count == 0 { 0.0 } else { 1.0 / count as f32 }
}
