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

/// A PPO-ptx policy minibatch for timing: the second half of each row of `x` as actions, with
/// fixed old log-probabilities and advantages of either sign, and a pretraining batch of up to 4×64
/// from the start of `x`.
pub struct TimedPolicy {
    x: Batch,
    targets: Vec<i32>,
    logp_old: Vec<f32>,
    advantages: Vec<f32>,
}

impl TimedPolicy {
    pub fn new(x: Batch) -> Self {
        let (n, t) = (x.b * x.t, x.t);
        let targets = (0..n).map(|i| if i % t < t / 2 { -1 } else { x.targets[i] }).collect();
        let (logp_old, advantages) = (0..n).map(|i| (-8.0, if i % 2 == 0 { 0.5 } else { -0.5 })).unzip();
        TimedPolicy { x, targets, logp_old, advantages }
    }

    pub fn policy(&self) -> crate::surrogate::PolicyBatch<'_> {
        let x = &self.x;
        crate::surrogate::PolicyBatch {
            tokens: &x.tokens,
            targets: &self.targets,
            logp_old: &self.logp_old,
            advantages: &self.advantages,
            b: x.b,
            t: x.t,
            lens: None,
            clip: 0.2,
            temperature: 0.7,
            answers: x.b as f32,
        }
    }

    pub fn ptx(&self) -> crate::surrogate::PtxBatch<'_> {
        let (b, t) = (4.min(self.x.b), 64.min(self.x.t));
        crate::surrogate::PtxBatch { tokens: &self.x.tokens[..b * t], targets: &self.x.targets[..b * t], b, t, gamma: 27.8 }
    }
}

/// Milliseconds per PPO-ptx policy step on a random (b, t) minibatch (see `TimedPolicy`), after
/// `warmup` untimed steps; the median of `n` steps.
pub async fn policy_step_ms<E: Engine>(engine: &mut E, b: usize, t: usize, warmup: usize, n: usize) -> Result<f64> {
    let p = TimedPolicy::new(random_batch(engine.config().vocab_size, b, t, 3));
    let (pol, ptx) = (p.policy(), p.ptx());
    for _ in 0..warmup.max(1) {
        engine.policy_step(&pol, Some(&ptx), &TIMED_OPT, 1.0).await?;
    }
    let mut ms = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        let t0 = now_ms();
        engine.policy_step(&pol, Some(&ptx), &TIMED_OPT, 1.0).await?;
        ms.push(now_ms() - t0);
    }
    // the median: one step slowed by a collection or another task does not move it
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}
