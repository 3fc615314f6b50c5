//! Best-of-K fine-tuning (rejection sampling; RAFT, Dong et al. 2023): of each prompt's K answers
//! the reward model scores highest, keep the best (when it finished), and fine-tune the policy on
//! those answers with the SFT loss:
//!
//!   L = −1/N · Σ_{answers} Σ_t log π(y*_t | x, y*_<t) / |y*|
//!
//! (each kept answer's mean token log-likelihood, averaged over answers), `epochs` passes.

use serde::{Deserialize, Serialize};

use super::{steps_only, weighted_step, EngineFactory, Method, MethodInfo, MethodState, Needs, Update, UpdateMetrics};
use crate::engine::Engine;
use crate::error::Result;
use crate::rollout::{action_targets, Rollout};

pub const INFO: MethodInfo = MethodInfo {
    name: "bok",
    title: "Best-of-K",
    summary: "Rejection sampling: the reward model picks the best of each question's K answers, and the policy is fine-tuned on those answers like SFT; one model in memory besides the reward model.",
};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BokConfig {
    pub lr: f32,
    /// Passes over an iteration's best answers.
    pub epochs: usize,
}

impl Default for BokConfig {
    fn default() -> Self {
        BokConfig { lr: 1e-4, epochs: 2 }
    }
}

pub struct BestOfK<E: Engine> {
    steps: u32,
    _engine: std::marker::PhantomData<E>,
}

impl<E: Engine> Default for BestOfK<E> {
    fn default() -> Self {
        BestOfK { steps: 0, _engine: std::marker::PhantomData }
    }
}

/// Per group, the index of its highest-scoring finished answer (groups whose answers were all cut
/// off keep none).
pub fn best_of_groups(rollouts: &[Rollout]) -> Vec<usize> {
    let groups = rollouts.iter().map(|r| r.group).max().map_or(0, |g| g + 1);
    let mut best: Vec<Option<usize>> = vec![None; groups];
    for (i, r) in rollouts.iter().enumerate() {
        if r.finished && best[r.group].is_none_or(|b| r.score > rollouts[b].score) {
            best[r.group] = Some(i);
        }
    }
    best.into_iter().flatten().collect()
}

/// The SFT loss's weights (B,T) on −log π: 1/(|y|·B) at each of answer y's tokens.
pub fn sft_weights(chunk: &[&Rollout], t: usize) -> Vec<f32> {
    let targets = action_targets(chunk, t);
    let b = chunk.len() as f32;
    (0..chunk.len() * t).map(|p| if targets[p] >= 0 { 1.0 / (chunk[p / t].actions() as f32 * b) } else { 0.0 }).collect()
}

impl<E: Engine> Method<E> for BestOfK<E> {
    fn needs(&self) -> Needs {
        Needs { reward_model: true }
    }

    async fn update(&mut self, u: &mut Update<'_, E>) -> Result<UpdateMetrics> {
        let mut chosen = best_of_groups(u.rollouts);
        let (max_b, _) = u.policy.capacity();
        let mut m = UpdateMetrics::default();
        let (mut loss, mut n) = (0.0, 0);
        for epoch in 0..u.cfg.bok.epochs {
            u.rng.shuffle(&mut chosen);
            for idx in chosen.chunks(max_b.min(u.cfg.batch.max(1))) {
                self.steps += 1;
                let (l, applied) = weighted_step(u, idx, sft_weights, u.cfg.bok.lr, self.steps).await?;
                if epoch + 1 == u.cfg.bok.epochs {
                    (loss, n) = (loss + l * idx.len() as f32, n + idx.len());
                }
                m.skipped_steps += usize::from(!applied);
            }
        }
        m.policy_loss = loss / n.max(1) as f32;
        Ok(m)
    }

    async fn state(&mut self) -> Result<MethodState> {
        Ok(MethodState { steps: self.steps, value: None })
    }

    fn restore(&mut self, s: MethodState, _make: &EngineFactory<'_, E>, _capacity: (usize, usize)) -> Result<()> {
        self.steps = steps_only(&s)?;
        Ok(())
    }
}
