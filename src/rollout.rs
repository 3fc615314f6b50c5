//! Sampled answers and what every method computes about them: groups of K answers to one prompt,
//! each answer as a rollout (prompt + response tokens), its log-probabilities under an engine, its
//! KL to the reference, leave-one-out baselines within its group, and the metrics of a batch.
//! Keys: R rollouts, B rows of an engine batch, T positions.

use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;
use crate::reward::pad_batch;

/// K answers of the policy to one prompt: the unit a labeler ranks.
#[derive(Clone, Debug)]
pub struct Group {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    /// Each answer's token ids, without the end token.
    pub outs: Vec<Vec<u32>>,
}

/// One sampled response and everything the methods compute about it.
#[derive(Clone, Debug, Default)]
pub struct Rollout {
    /// prompt + response (+ end when the sampler stopped there).
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    /// Per action (response token): log-probs under the sampling policy and the reference, values.
    pub logp_old: Vec<f32>,
    pub logp_ref: Vec<f32>,
    pub values: Vec<f32>,
    /// The reward model's score of the whole response (a fixed penalty when it did not finish).
    pub score: f32,
    /// Whether the response ended with the end token (false: cut off at the length limit).
    pub finished: bool,
    /// Which prompt's group of K answers it belongs to (for the group baseline).
    pub group: usize,
    pub rewards: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
}

impl Rollout {
    pub fn actions(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }
}

/// Prompt + answer + end, cut to the context: a sequence for the reward model to score.
pub fn dialogue_of(prompt: &[u32], answer: &[u32], end: u32, n_ctx: usize) -> Vec<u32> {
    let mut s: Vec<u32> = prompt.iter().chain(answer).copied().collect();
    s.push(end);
    s.truncate(n_ctx);
    s
}

/// The groups' answers as rollouts: prompt + answer, closed by `end` unless the answer was cut off
/// at the length limit (which `finished` records).
pub fn rollouts_of(groups: &[Group], end: u32, max_new_tokens: usize, n_ctx: usize) -> Vec<Rollout> {
    let mut rollouts = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let limit = max_new_tokens.min(n_ctx - g.prompt_ids.len());
        for o in &g.outs {
            let finished = o.len() < limit;
            let mut tokens = g.prompt_ids.clone();
            tokens.extend(o);
            if finished {
                tokens.push(end);
            }
            rollouts.push(Rollout { tokens, prompt_len: g.prompt_ids.len(), finished, group: gi, ..Default::default() });
        }
    }
    rollouts
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

/// Rollouts right-padded into one (B,T) batch: tokens, T and each row's length.
pub fn rollout_batch<R: std::borrow::Borrow<Rollout>>(chunk: &[R], pad: u32) -> (Vec<u32>, usize, Vec<usize>) {
    let seqs: Vec<&[u32]> = chunk.iter().map(|r| r.borrow().tokens.as_slice()).collect();
    pad_batch(&seqs, pad)
}

/// Log-probs of each rollout's actions under an engine at a temperature (and the entropy there).
pub async fn action_logprobs<E: Engine>(engine: &mut E, rollouts: &[&Rollout], pad: u32, temperature: f32) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
    let (max_b, _) = engine.capacity();
    let (mut lps, mut ents) = (Vec::new(), Vec::new());
    for chunk in rollouts.chunks(max_b) {
        let (tokens, t, lens) = rollout_batch(chunk, pad);
        engine.forward_rows(&tokens, chunk.len(), t, &lens)?;
        let tl = engine.token_losses(&action_targets(chunk, t), temperature).await?;
        for (i, r) in chunk.iter().enumerate() {
            let rows = (r.prompt_len - 1 + i * t)..(r.tokens.len() - 1 + i * t);
            lps.push(tl.losses[rows.clone()].iter().map(|l| -l).collect());
            ents.push(tl.entropy[rows].to_vec());
        }
        crate::turns::pass().await;
    }
    Ok((lps, ents))
}

/// Per-token rewards: −β·(log π − log π_ref) at every action, plus the score at the last.
pub fn token_rewards(r: &Rollout, beta: f32) -> Vec<f32> {
    let mut rw: Vec<f32> = r.logp_old.iter().zip(&r.logp_ref).map(|(a, b)| -beta * (a - b)).collect();
    if let Some(last) = rw.last_mut() {
        *last += r.score;
    }
    rw
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

/// Each value minus the mean of the other values of its group (RLOO's leave-one-out baseline);
/// 0 for a value alone in its group.
pub fn leave_one_out(values: &[f32], groups: &[usize]) -> Vec<f32> {
    let n_groups = groups.iter().max().map_or(0, |g| g + 1);
    let (mut sum, mut n) = (vec![0.0f32; n_groups], vec![0usize; n_groups]);
    for (v, &g) in values.iter().zip(groups) {
        sum[g] += v;
        n[g] += 1;
    }
    values
        .iter()
        .zip(groups)
        .map(|(v, &g)| {
            let others = n[g] - 1;
            if others == 0 {
                0.0
            } else {
                v - (sum[g] - v) / others as f32
            }
        })
        .collect()
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

/// What a batch of scored rollouts says about the policy: the numbers the page plots beside the
/// method's own.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RolloutMetrics {
    pub reward: f32,
    /// KL(π‖π_ref) per sequence, k1 estimator: Σ_t (log π − log π_ref).
    pub kl_k1: f32,
    /// k3 estimator: Σ_t (ρ − 1 − log ρ), ρ = π_ref/π; never negative.
    pub kl_k3: f32,
    pub entropy: f32,
    pub response_len: f32,
    /// Fraction of rollouts cut off at the length limit (scored with the fixed penalty).
    pub truncated: f32,
    pub distinct_responses: f32,
}

/// Means over the rollouts: reward, KL, entropy, length, truncation, distinct answers.
pub fn rollout_metrics(rollouts: &[Rollout], entropy: &[Vec<f32>]) -> RolloutMetrics {
    let n = rollouts.len().max(1) as f32;
    let (k1, k3) = rollouts.iter().map(kl_estimates).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let n_tok: usize = entropy.iter().map(|e| e.len()).sum();
    let mut distinct: Vec<&[u32]> = rollouts.iter().map(|r| &r.tokens[r.prompt_len..]).collect();
    distinct.sort();
    distinct.dedup();
    RolloutMetrics {
        reward: rollouts.iter().map(|r| r.score).sum::<f32>() / n,
        kl_k1: k1 / n,
        kl_k3: k3 / n,
        entropy: entropy.iter().flatten().sum::<f32>() / n_tok.max(1) as f32,
        response_len: rollouts.iter().map(|r| r.actions() as f32).sum::<f32>() / n,
        truncated: rollouts.iter().filter(|r| !r.finished).count() as f32 / n,
        distinct_responses: distinct.len() as f32 / n,
    }
}
