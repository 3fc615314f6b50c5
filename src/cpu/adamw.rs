//! AdamW with decoupled weight decay, after a global gradient-norm clip.

use crate::config::AdamParams;

/// L2 norm of all gradients, accumulated in f64.
pub fn global_norm(grads: &[f32]) -> f32 {
    grads.iter().map(|&g| g as f64 * g as f64).sum::<f64>().sqrt() as f32
}

/// The factor that brings the norm down to `max_norm` (1 when already below).
pub fn clip_scale(norm: f32, max_norm: f32) -> f32 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / norm
    } else {
        1.0
    }
}

/// One update of a tensor; `grad_scale` applies the clip, `decay` says whether weight decay applies.
pub fn adamw_update(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], p: &AdamParams, grad_scale: f32, decay: bool) {
    let b1c = 1.0 - p.beta1.powi(p.t as i32);
    let b2c = 1.0 - p.beta2.powi(p.t as i32);
    let wd = if decay { p.weight_decay } else { 0.0 };
    for i in 0..params.len() {
        let g = grads[i] * grad_scale;
        m[i] = p.beta1 * m[i] + (1.0 - p.beta1) * g;
        v[i] = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
        let mhat = m[i] / b1c;
        let vhat = v[i] / b2c;
        params[i] -= p.lr * (mhat / (vhat.sqrt() + p.eps) + wd * params[i]);
    }
}
