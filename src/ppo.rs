//! PPO-ptx (InstructGPT): maximize E[r(x,y) − β·log(π/π_ref)] + γ·E_pretrain[log π(x)].
//! Per-token KL penalty against the frozen SFT policy, the reward at the last token, GAE with
//! γ = 1, whitened advantages, the clipped surrogate, a clipped value loss, log-probs on
//! temperature-scaled logits, and an optional adaptive KL controller.

use serde::Serialize;

use crate::cpu::adamw::AdamParams;
use crate::engine::{lm_backward, lm_forward, Engine};
use crate::error::Result;
use crate::reward::{pad_batch, ScalarHead};

#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
pub struct PpoConfig {
    /// KL penalty coefficient β (the paper: 0.02).
    pub beta: f32,
    /// Pretraining-mix coefficient γ (the paper: 27.8; 0 is plain PPO).
    pub gamma: f32,
    /// Surrogate clip ε (0.2).
    pub clip: f32,
    /// Value clip around the rollout's values.
    pub value_clip: f32,
    /// GAE λ (the discount is 1).
    pub lam: f32,
    /// Sampling temperature; log-probs use logits / temperature.
    pub temperature: f32,
    pub lr: f32,
    pub value_lr: f32,
    pub epochs: usize,
    pub grad_clip: f32,
    /// AdamW's epsilon for the policy and value updates.
    pub adam_eps: f32,
    /// Adaptive KL controller: the target KL per sequence (None: β stays fixed).
    pub target_kl: Option<f32>,
    pub kl_horizon: f32,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            beta: 0.02,
            gamma: 27.8,
            clip: 0.2,
            value_clip: 0.2,
            lam: 0.95,
            temperature: 1.0,
            lr: 1e-4,
            value_lr: 1e-4,
            epochs: 4,
            grad_clip: 1.0,
            adam_eps: 1e-8,
            target_kl: None,
            // responses over which β may move by ±20%; short, because runs here are short
            kl_horizon: 100.0,
        }
    }
}

/// One sampled response and everything PPO computes about it.
#[derive(Clone, Debug, Default)]
pub struct Rollout {
    /// prompt + response (+ end when the sampler stopped there).
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    /// Per action (response token): log-probs under the sampling policy and the reference, values.
    pub logp_old: Vec<f32>,
    pub logp_ref: Vec<f32>,
    pub values: Vec<f32>,
    /// The reward model's score of the whole response.
    pub score: f32,
    pub rewards: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
}

impl Rollout {
    pub fn actions(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }
}

/// Targets that pick out the actions: position s predicts token s+1, so the actions of a rollout
/// sit at positions prompt_len−1 .. len−2. Everything else is −1.
pub fn action_targets(rollouts: &[&Rollout], t: usize) -> Vec<i32> {
    let mut tg = vec![-1i32; rollouts.len() * t];
    for (i, r) in rollouts.iter().enumerate() {
        for s in r.prompt_len..r.tokens.len() {
            tg[i * t + s - 1] = r.tokens[s] as i32;
        }
    }
    tg
}

/// Rollouts right-padded into one (B,T) batch.
fn rollout_batch<R: std::borrow::Borrow<Rollout>>(chunk: &[R], pad: u32) -> (Vec<u32>, usize) {
    let seqs: Vec<&[u32]> = chunk.iter().map(|r| r.borrow().tokens.as_slice()).collect();
    let (tokens, t, _) = pad_batch(&seqs, pad);
    (tokens, t)
}

/// Log-probs of each rollout's actions under an engine at a temperature (and the entropy there).
pub async fn action_logprobs<E: Engine>(engine: &mut E, rollouts: &[&Rollout], pad: u32, temperature: f32) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
    let (max_b, _) = engine.capacity();
    let (mut lps, mut ents) = (Vec::new(), Vec::new());
    for chunk in rollouts.chunks(max_b) {
        let (tokens, t) = rollout_batch(chunk, pad);
        engine.forward(&tokens, chunk.len(), t)?;
        let tl = engine.token_losses(&action_targets(chunk, t), temperature).await?;
        for (i, r) in chunk.iter().enumerate() {
            let rows = (r.prompt_len - 1 + i * t)..(r.tokens.len() - 1 + i * t);
            lps.push(tl.losses[rows.clone()].iter().map(|l| -l).collect());
            ents.push(tl.entropy[rows].to_vec());
        }
    }
    Ok((lps, ents))
}

/// Values of each rollout's states (the positions its actions are taken from).
pub async fn action_values<E: Engine>(engine: &mut E, head: &ScalarHead, rollouts: &[&Rollout], pad: u32) -> Result<Vec<Vec<f32>>> {
    let (max_b, _) = engine.capacity();
    let c = engine.config().n_embd;
    let mut out = Vec::new();
    for chunk in rollouts.chunks(max_b) {
        let (tokens, t) = rollout_batch(chunk, pad);
        engine.forward(&tokens, chunk.len(), t)?;
        let h = engine.hidden().await?;
        for (i, r) in chunk.iter().enumerate() {
            out.push((r.prompt_len - 1..r.tokens.len() - 1).map(|s| head.apply(&h[(i * t + s) * c..][..c])).collect());
        }
    }
    Ok(out)
}

/// Per-token rewards: −β·(log π − log π_ref) at every action, plus the score at the last.
pub fn token_rewards(r: &Rollout, beta: f32) -> Vec<f32> {
    let mut rw: Vec<f32> = r.logp_old.iter().zip(&r.logp_ref).map(|(a, b)| -beta * (a - b)).collect();
    if let Some(last) = rw.last_mut() {
        *last += r.score;
    }
    rw
}

/// Generalized advantage estimation with discount 1: returns (advantages, returns).
pub fn gae(rewards: &[f32], values: &[f32], lam: f32) -> (Vec<f32>, Vec<f32>) {
    let n = rewards.len();
    let mut adv = vec![0.0; n];
    let mut next_adv = 0.0;
    for t in (0..n).rev() {
        let next_v = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + next_v - values[t];
        next_adv = delta + lam * next_adv;
        adv[t] = next_adv;
    }
    let ret = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, ret)
}

/// Shifts and scales values to mean 0, standard deviation 1 (over every action of the batch).
pub fn whiten(xs: &mut [&mut Vec<f32>]) {
    let n: usize = xs.iter().map(|x| x.len()).sum();
    if n < 2 {
        return;
    }
    let mean = xs.iter().flat_map(|x| x.iter()).sum::<f32>() / n as f32;
    let var = xs.iter().flat_map(|x| x.iter()).map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
    let inv = 1.0 / (var.sqrt() + 1e-8);
    for x in xs.iter_mut() {
        for v in x.iter_mut() {
            *v = (*v - mean) * inv;
        }
    }
}

/// The clipped surrogate for one action: (loss, d loss / d logp_new, clipped?).
pub fn surrogate(logp_new: f32, logp_old: f32, adv: f32, clip: f32) -> (f32, f32, bool) {
    let ratio = (logp_new - logp_old).exp();
    let unclipped = -adv * ratio;
    let clipped = -adv * ratio.clamp(1.0 - clip, 1.0 + clip);
    if clipped > unclipped {
        // the clipped term is constant in logp_new: no gradient
        (clipped, 0.0, true)
    } else {
        (unclipped, -adv * ratio, false)
    }
}

/// The clipped value loss for one state: (loss, d loss / d value).
pub fn value_loss(v: f32, v_old: f32, ret: f32, clip: f32) -> (f32, f32) {
    let v_clipped = v_old + (v - v_old).clamp(-clip, clip);
    let (l1, l2) = ((v - ret).powi(2), (v_clipped - ret).powi(2));
    if l2 > l1 {
        // gradient flows through the clipped value only inside the clip range
        let inside = (v - v_old).abs() < clip;
        (0.5 * l2, if inside { v_clipped - ret } else { 0.0 })
    } else {
        (0.5 * l1, v - ret)
    }
}

/// Metrics of one PPO iteration: the numbers the page plots.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PpoMetrics {
    pub reward: f32,
    /// KL(π‖π_ref) per sequence, k1 estimator: Σ_t (log π − log π_ref).
    pub kl_k1: f32,
    /// k3 estimator: Σ_t (ρ − 1 − log ρ), ρ = π_ref/π; never negative.
    pub kl_k3: f32,
    /// Mean per-token log-likelihood of a fixed held-out pretraining batch.
    pub ptx_loglik: f32,
    pub policy_loss: f32,
    pub value_loss: f32,
    pub entropy: f32,
    pub clip_frac: f32,
    /// Mean (ρ − 1 − log ρ) between the rollout policy and the updated one, over the last epoch.
    pub approx_kl: f32,
    /// E[r − β·KL] + γ·ptx log-likelihood.
    pub objective: f32,
    pub beta: f32,
    pub response_len: f32,
    pub distinct_responses: f32,
    pub skipped_steps: usize,
}

/// KL estimators of one rollout: (k1, k3), summed over its actions.
pub fn kl_estimates(r: &Rollout) -> (f32, f32) {
    let mut k1 = 0.0;
    let mut k3 = 0.0;
    for (a, b) in r.logp_old.iter().zip(&r.logp_ref) {
        let log_ratio = b - a; // log(π_ref/π)
        k1 -= log_ratio;
        k3 += log_ratio.exp() - 1.0 - log_ratio;
    }
    (k1, k3)
}

/// The adaptive KL controller of Ziegler et al.: moves β toward a target KL.
pub fn adapt_beta(beta: f32, kl: f32, target: f32, n_steps: f32, horizon: f32) -> f32 {
    let err = ((kl - target) / target).clamp(-0.2, 0.2);
    beta * (1.0 + err * n_steps / horizon)
}

/// Fills rewards, advantages (whitened) and returns of a batch of rollouts.
pub fn compute_advantages(rollouts: &mut [Rollout], beta: f32, lam: f32) {
    for r in rollouts.iter_mut() {
        r.rewards = token_rewards(r, beta);
        let (a, ret) = gae(&r.rewards, &r.values, lam);
        r.advantages = a;
        r.returns = ret;
    }
    let mut advs: Vec<&mut Vec<f32>> = rollouts.iter_mut().map(|r| &mut r.advantages).collect();
    whiten(&mut advs);
}

/// The PPO-ptx update: `epochs` passes over the rollouts in minibatches of the policy's capacity.
/// Each policy step adds γ·(mean log-likelihood of a pretraining batch) to the objective.
#[allow(clippy::too_many_arguments)]
pub async fn ppo_update<P: Engine, V: Engine>(
    policy: &mut P,
    value: &mut V,
    value_head: &mut ScalarHead,
    rollouts: &[Rollout],
    cfg: &PpoConfig,
    pad: u32,
    step0: u32,
    mut ptx_batch: impl FnMut() -> Result<(Vec<u32>, Vec<i32>, usize, usize)>,
    m: &mut PpoMetrics,
) -> Result<u32> {
    let (max_b, _) = policy.capacity();
    let c = value.config().n_embd;
    let mut step = step0;
    let (mut pl_sum, mut vl_sum, mut clip_n, mut tok_n) = (0.0, 0.0, 0usize, 0usize);
    for epoch in 0..cfg.epochs {
        let (mut akl, mut akl_n) = (0.0, 0usize);
        for chunk in rollouts.chunks(max_b) {
            let refs: Vec<&Rollout> = chunk.iter().collect();
            let (tokens, t) = rollout_batch(chunk, pad);
            let targets = action_targets(&refs, t);
            let n_act: usize = chunk.iter().map(|r| r.actions()).sum();
            if n_act == 0 {
                continue;
            }
            // policy: clipped surrogate on this minibatch
            policy.forward(&tokens, chunk.len(), t)?;
            let tl = policy.token_losses(&targets, cfg.temperature).await?;
            let mut weights = vec![0.0f32; chunk.len() * t];
            for (i, r) in chunk.iter().enumerate() {
                for (j, s) in (r.prompt_len - 1..r.tokens.len() - 1).enumerate() {
                    let logp = -tl.losses[i * t + s];
                    let (loss, dlogp, clipped) = surrogate(logp, r.logp_old[j], r.advantages[j], cfg.clip);
                    // backward works on −log p: d/d(−logp) = −d/dlogp, averaged over actions
                    weights[i * t + s] = -dlogp / n_act as f32;
                    if epoch + 1 == cfg.epochs {
                        pl_sum += loss;
                        clip_n += clipped as usize;
                        tok_n += 1;
                        let lr = r.logp_old[j] - logp;
                        akl += lr.exp() - 1.0 - lr;
                        akl_n += 1;
                    }
                }
            }
            if weights.iter().all(|w| w.is_finite()) {
                policy.zero_grad()?;
                policy.backward(Some(&weights), None)?;
                if cfg.gamma > 0.0 {
                    let (pt, ptg, pb, ptt) = ptx_batch()?;
                    lm_forward(policy, &pt, &ptg, pb, ptt).await?;
                    lm_backward(policy, &ptg, cfg.gamma)?;
                }
                step += 1;
                let opt = AdamParams { lr: cfg.lr, beta1: 0.9, beta2: 0.95, eps: cfg.adam_eps, weight_decay: 0.0, t: step };
                if !policy.update(&opt, cfg.grad_clip).await?.applied {
                    m.skipped_steps += 1;
                }
            } else {
                // a non-finite advantage or log-prob: skip this step rather than poison the weights
                m.skipped_steps += 1;
            }

            // value: clipped regression to the returns, through the value model's trunk and head
            value.forward(&tokens, chunk.len(), t)?;
            let h = value.hidden().await?;
            let mut dh = vec![0.0f32; chunk.len() * t * c];
            for (i, r) in chunk.iter().enumerate() {
                for (j, s) in (r.prompt_len - 1..r.tokens.len() - 1).enumerate() {
                    let hs = &h[(i * t + s) * c..][..c];
                    let v = value_head.apply(hs);
                    let (loss, dv) = value_loss(v, r.values[j], r.returns[j], cfg.value_clip);
                    let dv = dv / n_act as f32;
                    if epoch + 1 == cfg.epochs {
                        vl_sum += loss;
                    }
                    for k in 0..c {
                        dh[(i * t + s) * c + k] = dv * value_head.w[k];
                        value_head.grad[k] += dv * hs[k];
                    }
                }
            }
            if dh.iter().all(|x| x.is_finite()) {
                value.zero_grad()?;
                value.backward(None, Some(&dh))?;
                let vopt = AdamParams { lr: cfg.value_lr, beta1: 0.9, beta2: 0.95, eps: cfg.adam_eps, weight_decay: 0.0, t: step.max(1) };
                if value.update(&vopt, cfg.grad_clip).await?.applied {
                    value_head.step(cfg.value_lr);
                } else {
                    value_head.grad.fill(0.0);
                    m.skipped_steps += 1;
                }
            } else {
                value_head.grad.fill(0.0);
                m.skipped_steps += 1;
            }
        }
        if epoch + 1 == cfg.epochs {
            m.approx_kl = akl / akl_n.max(1) as f32;
        }
    }
    m.policy_loss = pl_sum / tok_n.max(1) as f32;
    m.value_loss = vl_sum / tok_n.max(1) as f32;
    m.clip_frac = clip_n as f32 / tok_n.max(1) as f32;
    Ok(step)
}
