//! Timing a training step: the page's choice of engine and `rlhf bench` measure the same thing.

use crate::clock::now_ms;
use crate::config::AdamParams;
use crate::engine::Engine;
use crate::error::Result;
use crate::rng::Rng;
use crate::train::Batch;

/// The optimizer of timed steps: a tiny learning rate, so repeated steps keep the model (and the
/// work per step) as it was.
pub const TIMED_OPT: AdamParams = AdamParams { lr: 1e-6, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0, t: 1 };

/// Random tokens and targets (B,T) from a vocabulary of `vocab`.
pub fn random_batch(vocab: usize, b: usize, t: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let tokens = (0..b * t).map(|_| rng.below(vocab) as u32).collect();
    let targets = (0..b * t).map(|_| rng.below(vocab) as i32).collect();
    Batch { tokens, targets, b, t }
}

/// One training step (forward, backward, AdamW), waited for: it reads back its loss.
pub async fn lm_step<E: Engine>(engine: &mut E, x: &Batch) -> Result<()> {
    engine.lm_step(&x.tokens, &x.targets, x.b, x.t, &TIMED_OPT, 1.0).await.map(|_| ())
}

/// Milliseconds per training step of `x`, after one warm-up step (which compiles the GPU
/// pipelines), repeated until `min_ms` have passed (at least once).
pub async fn step_ms<E: Engine>(engine: &mut E, x: &Batch, min_ms: f64) -> Result<f64> {
    lm_step(engine, x).await?;
    let t0 = now_ms();
    let mut n = 0;
    while n == 0 || now_ms() - t0 < min_ms {
        lm_step(engine, x).await?;
        n += 1;
    }
    Ok((now_ms() - t0) / n as f64)
}
