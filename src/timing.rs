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

/// Milliseconds per PPO-ptx policy step on a (b, t) minibatch whose second half of each row are
/// actions, with a 4×64 pretraining batch, after one warm-up step; the mean of `n` steps.
pub async fn policy_step_ms<E: Engine>(engine: &mut E, b: usize, t: usize, n: usize) -> Result<f64> {
    let cfg = engine.config();
    let x = random_batch(cfg.vocab_size, b, t, 3);
    let targets: Vec<i32> = x.targets.iter().enumerate().map(|(i, &v)| if i % t < t / 2 { -1 } else { v }).collect();
    let logp_old = vec![-8.0f32; b * t];
    let advantages: Vec<f32> = (0..b * t).map(|i| if i % 2 == 0 { 0.5 } else { -0.5 }).collect();
    let pol = crate::surrogate::PolicyBatch {
        tokens: &x.tokens,
        targets: &targets,
        logp_old: &logp_old,
        advantages: &advantages,
        b,
        t,
        clip: 0.2,
        temperature: 0.7,
        answers: b as f32,
    };
    let ptx = random_batch(cfg.vocab_size, 4, 64.min(t), 4);
    let ptx = crate::surrogate::PtxBatch { tokens: &ptx.tokens, targets: &ptx.targets, b: ptx.b, t: ptx.t, gamma: 27.8 };
    engine.policy_step(&pol, Some(&ptx), &TIMED_OPT, 1.0).await?;
    let t0 = now_ms();
    for _ in 0..n.max(1) {
        engine.policy_step(&pol, Some(&ptx), &TIMED_OPT, 1.0).await?;
    }
    Ok((now_ms() - t0) / n.max(1) as f64)
}
