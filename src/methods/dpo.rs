//! DPO (Rafailov et al. 2023) on every pair of each ranking, with the SFT model as reference:
//!
//!   L = −1/C(K,2) · Σ_pairs log σ(β_d·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))])
//!
//! where log π(y) sums the answer's tokens (its end token included) at the sampling temperature,
//! and a tied pair counts as half a win each way, as in the reward model's loss. No reward model,
//! no rollouts: the policy learns from the rankings directly. Each iteration takes `steps` steps
//! over minibatches of rankings, the new ones first and the rest drawn from all so far.

use serde::{Deserialize, Serialize};

use super::{steps_only, EngineFactory, Method, MethodInfo, MethodState, Needs, Update, UpdateMetrics};
use crate::engine::Engine;
use crate::error::Result;
use crate::methods::ppo::warmup_lr;
use crate::reward::{pad_batch, ranking_loss, replay_schedule};
use crate::rollout::{action_targets, Rollout};

pub const INFO: MethodInfo = MethodInfo {
    name: "dpo",
    title: "DPO",
    summary: "Direct preference optimization: no reward model and no rollouts; the policy raises its likelihood of each ranking's preferred answers relative to SFT's, on every pair of every ranking.",
};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpoConfig {
    /// β of DPO's implicit reward β·log(π/π_ref) (the paper: 0.1).
    pub beta: f32,
    pub lr: f32,
    /// Steps per iteration, and rankings per step.
    pub steps: usize,
    pub batch: usize,
}

impl Default for DpoConfig {
    fn default() -> Self {
        DpoConfig { beta: 0.1, lr: 1e-4, steps: 4, batch: 4 }
    }
}

pub struct Dpo<E: Engine> {
    steps: u32,
    /// Each ranking's answers' log-probabilities under the reference, computed once.
    reference: Vec<Vec<f32>>,
    _engine: std::marker::PhantomData<E>,
}

impl<E: Engine> Default for Dpo<E> {
    fn default() -> Self {
        Dpo { steps: 0, reference: Vec::new(), _engine: std::marker::PhantomData }
    }
}

/// A ranking's K sequences as a batch: tokens (K,T), targets at the answers' tokens, T and each
/// row's length.
fn ranking_batch(seqs: &[Vec<u32>], prompt_len: usize, pad: u32) -> (Vec<u32>, Vec<i32>, usize, Vec<usize>) {
    let (tokens, t, lens) = pad_batch(seqs, pad);
    let rollouts: Vec<Rollout> = seqs.iter().map(|s| Rollout { tokens: s.clone(), prompt_len, ..Default::default() }).collect();
    let refs: Vec<&Rollout> = rollouts.iter().collect();
    (tokens, action_targets(&refs, t), t, lens)
}

/// Each row's summed log-probability of its targets from per-position losses (−log p).
fn row_sums(losses: &[f32], targets: &[i32], t: usize) -> Vec<f32> {
    losses.chunks(t).zip(targets.chunks(t)).map(|(l, tg)| l.iter().zip(tg).filter(|(_, &g)| g >= 0).map(|(x, _)| -x).sum()).collect()
}

/// DPO's loss on one ranking, and its derivative with respect to each answer's log π: the
/// ranking loss of the implicit rewards β_d·(log π − log π_ref).
pub fn dpo_loss(logp: &[f32], logp_ref: &[f32], ranks: &[usize], beta: f32) -> (f32, Vec<f32>) {
    let rewards: Vec<f32> = logp.iter().zip(logp_ref).map(|(a, b)| beta * (a - b)).collect();
    let (loss, dr) = ranking_loss(&rewards, ranks);
    (loss, dr.iter().map(|d| d * beta).collect())
}

impl<E: Engine> Dpo<E> {
    /// Reference log-probabilities of the rankings not seen before.
    async fn cache_reference(&mut self, u: &mut Update<'_, E>) -> Result<()> {
        let temp = u.cfg.ppo.temperature;
        for i in self.reference.len()..u.rankings.len() {
            let (tokens, targets, t, lens) = ranking_batch(&u.rankings[i].0, u.prompt_lens[i], u.pad);
            u.reference.forward_rows(&tokens, u.rankings[i].0.len(), t, &lens)?;
            let tl = u.reference.token_losses(&targets, temp).await?;
            self.reference.push(row_sums(&tl.losses, &targets, t));
        }
        Ok(())
    }

    /// One AdamW step on a minibatch of rankings; returns the mean loss, or None when skipped.
    async fn step(&mut self, u: &mut Update<'_, E>, chosen: &[usize]) -> Result<Option<f32>> {
        let (cfg, temp) = (u.cfg.dpo, u.cfg.ppo.temperature);
        u.policy.zero_grad()?;
        let mut total = 0.0;
        for &i in chosen {
            let (seqs, ranks) = &u.rankings[i];
            let (tokens, targets, t, lens) = ranking_batch(seqs, u.prompt_lens[i], u.pad);
            u.policy.forward_rows(&tokens, seqs.len(), t, &lens)?;
            let tl = u.policy.token_losses(&targets, temp).await?;
            let (loss, dlogp) = dpo_loss(&row_sums(&tl.losses, &targets, t), &self.reference[i], ranks, cfg.beta);
            total += loss / chosen.len() as f32;
            // the backward pass takes weights on −log p: −dL/dlog π at each of a row's answer tokens
            let weights: Vec<f32> = (0..seqs.len() * t).map(|p| if targets[p] >= 0 { -dlogp[p / t] / chosen.len() as f32 } else { 0.0 }).collect();
            u.policy.backward(Some(&weights), None)?;
        }
        if !total.is_finite() {
            return Ok(None);
        }
        self.steps += 1;
        let lr = warmup_lr(cfg.lr, self.steps, u.cfg.ppo.warmup_steps);
        let report = u.policy.update(&u.adam.at(lr, self.steps), u.cfg.ppo.grad_clip).await?;
        Ok(report.applied.then_some(total))
    }
}

impl<E: Engine> Method<E> for Dpo<E> {
    fn needs(&self) -> Needs {
        Needs { reward_model: false }
    }

    async fn update(&mut self, u: &mut Update<'_, E>) -> Result<UpdateMetrics> {
        self.cache_reference(u).await?;
        let schedule = replay_schedule(u.rankings.len(), u.fresh, u.cfg.dpo.steps, u.cfg.dpo.batch.max(1), u.rng);
        let mut m = UpdateMetrics::default();
        let (mut loss, mut done) = (0.0, 0);
        for chosen in &schedule[0] {
            match self.step(u, chosen).await? {
                Some(l) => (loss, done) = (loss + l, done + 1),
                None => m.skipped_steps += 1,
            }
            crate::turns::pass().await;
        }
        m.policy_loss = if done > 0 { loss / done as f32 } else { f32::NAN };
        Ok(m)
    }

    async fn state(&mut self) -> Result<MethodState> {
        Ok(MethodState { steps: self.steps, value: None })
    }

    fn restore(&mut self, s: MethodState, _make: &EngineFactory<'_, E>, _capacity: (usize, usize)) -> Result<()> {
        self.steps = steps_only(&s)?;
        self.reference.clear();
        Ok(())
    }
}
