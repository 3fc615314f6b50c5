//! RLOO (Ahmadian et al. 2024): REINFORCE with a leave-one-out baseline over each prompt's K
//! answers. Each answer's return is its score less the KL penalty, R_i = r_i − β·Σ_t log(π/π_ref),
//! its advantage A_i = R_i − mean_{j≠i} R_j over the other answers to the same prompt, and
//!
//!   L = −1/B · Σ_i A_i · Σ_t log π(y_i,t)
//!
//! over a minibatch of B answers: one pass over the batch, no clipping, no value model, no
//! pretraining term.

use super::{steps_only, weighted_step, EngineFactory, Method, MethodInfo, MethodState, Needs, Update, UpdateMetrics};
use crate::engine::Engine;
use crate::error::Result;
use crate::rollout::{action_targets, leave_one_out, token_rewards, Rollout};

pub const INFO: MethodInfo = MethodInfo {
    name: "rloo",
    title: "RLOO",
    summary: "REINFORCE with a leave-one-out baseline: each answer's reward, less the KL penalty, is compared with the other answers to the same question; one plain policy-gradient pass, no clipping, no value model.",
};

pub struct Rloo<E: Engine> {
    steps: u32,
    _engine: std::marker::PhantomData<E>,
}

impl<E: Engine> Default for Rloo<E> {
    fn default() -> Self {
        Rloo { steps: 0, _engine: std::marker::PhantomData }
    }
}

/// Each answer's leave-one-out advantage: its return less the mean return of its group's others.
pub fn rloo_advantages(rollouts: &[Rollout], beta: f32) -> Vec<f32> {
    let returns: Vec<f32> = rollouts.iter().map(|r| token_rewards(r, beta).iter().sum()).collect();
    let groups: Vec<usize> = rollouts.iter().map(|r| r.group).collect();
    leave_one_out(&returns, &groups)
}

/// The loss weights (B,T) on −log π of a minibatch: A_i / B at each of answer i's actions.
pub fn rloo_weights(chunk: &[&Rollout], advantages: &[f32], t: usize) -> Vec<f32> {
    let targets = action_targets(chunk, t);
    let b = chunk.len() as f32;
    (0..chunk.len() * t).map(|p| if targets[p] >= 0 { advantages[p / t] / b } else { 0.0 }).collect()
}

impl<E: Engine> Method<E> for Rloo<E> {
    fn needs(&self) -> Needs {
        Needs { reward_model: true }
    }

    async fn update(&mut self, u: &mut Update<'_, E>) -> Result<UpdateMetrics> {
        let adv = rloo_advantages(u.rollouts, u.beta);
        let (max_b, _) = u.policy.capacity();
        let mut order: Vec<usize> = (0..u.rollouts.len()).collect();
        u.rng.shuffle(&mut order);
        let mut m = UpdateMetrics::default();
        let (mut loss, mut answers) = (0.0, 0);
        for idx in order.chunks(max_b.min(u.cfg.batch.max(1))) {
            let a: Vec<f32> = idx.iter().map(|&i| adv[i]).collect();
            self.steps += 1;
            let (l, applied) = weighted_step(u, idx, |chunk, t| rloo_weights(chunk, &a, t), u.cfg.ppo.lr, self.steps).await?;
            loss += l * idx.len() as f32;
            answers += idx.len();
            m.skipped_steps += usize::from(!applied);
        }
        m.policy_loss = loss / answers.max(1) as f32;
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
