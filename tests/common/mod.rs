#![allow(dead_code)]

use rlhf_lab::gpu::{Gpu, MatmulKind};
use rlhf_lab::rng::Rng;

pub fn randn(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.normal() * scale).collect()
}

/// Largest |a - b| / (atol + rtol·|b|) must stay at or below 1.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0.0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let r = (g - w).abs() / (atol + rtol * w.abs());
        // a NaN is the worst of all
        if r > worst.0 || r.is_nan() {
            worst = (r, i);
        }
    }
    let i = worst.1;
    assert!(worst.0 <= 1.0, "{what}: element {i}: got {} want {} (ratio {:.3} over atol {atol} rtol {rtol})", got[i], want[i], worst.0);
}

pub fn gpu(kind: MatmulKind) -> Gpu {
    Gpu::new_blocking(Some(kind)).expect("a Vulkan adapter (install mesa-vulkan-drivers for lavapipe)")
}
