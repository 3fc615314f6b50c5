//! PPO-ptx (InstructGPT): maximize E[r(x,y) − β·log(π/π_ref)] + γ·E_pretrain[log π(x)].
//! Per-token KL penalty against the frozen SFT policy, the reward at the last token, GAE with
//! γ = 1, whitened advantages, the clipped surrogate, a clipped value loss, log-probs on
//! temperature-scaled logits, and an optional adaptive KL controller.

use serde::Serialize;

use super::{EngineFactory, Method, MethodInfo, MethodState, Needs, Update, UpdateMetrics};
use crate::checkpoint::model_state;
use crate::config::AdamSettings;
use crate::engine::Engine;
use crate::error::Result;
use crate::reward::{ScalarHead, TokenizedRanking};
use crate::rng::Rng;
use crate::rollout::{action_targets, kl_estimates, leave_one_out, rollout_batch, token_rewards, whiten, Rollout};
use crate::surrogate::{surrogate_weights, PolicyBatch, PtxBatch};
use crate::train::Batch;

pub const INFO: MethodInfo = MethodInfo {
    name: "ppo",
    title: "PPO-ptx",
    summary: "InstructGPT's method: the policy samples answers, the reward model scores them, and the clipped surrogate moves the policy toward the better ones, held near SFT by a KL penalty and by γ times the pretraining log-likelihood.",
};

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
    /// What advantages are measured against.
    pub baseline: Baseline,
    /// GAE λ (the discount is 1).
    pub lam: f32,
    /// Sampling temperature; log-probs use logits / temperature.
    pub temperature: f32,
    pub lr: f32,
    pub value_lr: f32,
    pub epochs: usize,
    pub grad_clip: f32,
    /// Policy and value steps over which the learning rate rises linearly to `lr`.
    pub warmup_steps: u32,
    /// Adaptive KL controller: the target KL per sequence (None: β stays fixed).
    pub target_kl: Option<f32>,
    pub kl_horizon: f32,
    /// The KL brake: when the rollouts' KL to SFT (nats per answer) is above it, β rises for the
    /// next iteration in proportion, and it falls back toward the set β below it (None: no brake).
    pub kl_ceiling: Option<f32>,
    /// The brake's ceiling grows with the evidence: at most this many nats per ranking the policy
    /// has learned from (counted from the one where it starts moving), up to `kl_ceiling`. A reward
    /// model fitted to a few rankings is trusted only a little way from SFT (None: the fixed
    /// ceiling alone).
    #[serde(default)]
    pub kl_per_ranking: Option<f32>,
    /// The KL limit: a batch whose KL to SFT (nats per answer) is above it undoes the update that
    /// took the policy there, and is sampled again from the policy before it (None: no limit;
    /// PPO-ptx's alone: the other methods are compared as they were measured).
    #[serde(default)]
    pub kl_limit: Option<f32>,
    /// Rows of each step's γ term that are answers a ranking put first, learned like SFT (loss on
    /// the answer's tokens): the person's favourites pull the policy directly, past the reward
    /// model (0: the γ term is pretraining prose alone, InstructGPT's).
    #[serde(default)]
    pub favourites: usize,
    /// A ranking's first answer joins the γ term only where the reward model, scoring the ranking
    /// before it learned it, put one of the person's first answers among its own first this many
    /// of the group (0: always): a noisy ranking's first is one draw, where the reward model has
    /// averaged the other rankings' noise. Rankings before its first fit have no one to ask.
    #[serde(default)]
    pub favourite_within: usize,
    /// The check of `favourite_within` applies to a ranking only while the reward model's
    /// agreement with the person's newest rankings, measured before it learned them, is under
    /// this share (1: always): a person it predicts well ranks cleanly, and where its own first
    /// differs from theirs it is then more likely their second than their noise.
    #[serde(default = "always")]
    pub favourite_check_below: f32,
    /// A first answer `favourite_within` would doubt is doubted only where the reward model scores
    /// its own first more than this above it (`first_gap`, in the spreads of the SFT
    /// demonstrations' scores; 0: any gap): a close call is more likely the person's second-best
    /// than their noise.
    #[serde(default)]
    pub favourite_margin: f32,
    /// Rows of each step's γ term that are the reward model's favourite of K fresh answers of the
    /// frozen SFT model to one of the batch's questions (best-of-K distillation, loss on the
    /// answer): a target that stays where SFT writes, at most log K nats from it, while the
    /// reward model's picks there are sound (0: none).
    #[serde(default)]
    pub sft_best: usize,
    /// SFT answers per question the reward model picks its favourite of (`sft_best`), drawn in
    /// whole groups of K: more reach further from SFT, up to log n nats (0: K).
    #[serde(default)]
    pub sft_best_of: usize,
    /// Rankings up to which the SFT favourites join the γ term (0: always): past best-of-K of
    /// SFT's answers they would pull a policy that has gone further back toward SFT.
    #[serde(default)]
    pub sft_best_until: usize,
    /// Rows of each step's γ term that are the reward model's favourite finished answer of each
    /// of the iteration's groups of the policy's own rollouts (loss on the answer): a best-of-K
    /// target that moves with the policy, so it never pulls it back toward SFT (0: none).
    #[serde(default)]
    pub own_best: usize,
    /// How the own favourite is picked: by the reward model's score less this many β of the
    /// answer's KL to SFT (1: the per-answer objective PPO maximizes, r − β·KL), so that a target
    /// learned without the KL penalty does not lead the policy further from SFT than the objective
    /// would (0: by the score alone).
    #[serde(default)]
    pub own_best_kl: f32,
    /// Rankings up to which the own favourites join the γ term (0: always): they close the lag
    /// of a policy behind a reward model fitted to few rankings, and later only add pull toward
    /// what that reward model overrates.
    #[serde(default)]
    pub own_best_until: usize,
    /// Rows of pretraining prose in each step's γ term (64 tokens each). The term is a mean over
    /// its rows' tokens, so more rows weigh the prose more against the favourites.
    #[serde(default = "four_rows")]
    pub ptx_rows: usize,
}

fn four_rows() -> usize {
    PpoConfig::default().ptx_rows
}

fn always() -> f32 {
    1.0
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            beta: 0.02,
            gamma: 27.8,
            clip: 0.2,
            value_clip: 0.2,
            baseline: Baseline::Group,
            lam: 0.95,
            temperature: 0.7,
            lr: 1e-4,
            value_lr: 1e-4,
            epochs: 4,
            grad_clip: 1.0,
            warmup_steps: 8,
            target_kl: None,
            kl_ceiling: None,
            kl_limit: None,
            kl_per_ranking: None,
            favourites: 0,
            favourite_within: 0,
            favourite_check_below: always(),
            favourite_margin: 0.0,
            sft_best: 0,
            sft_best_of: 0,
            sft_best_until: 0,
            own_best: 0,
            own_best_kl: 0.0,
            own_best_until: 0,
            // 4×64 = 256 tokens, about as many as a policy minibatch's answers (8 × ~35), so
            // neither side of a step dominates its cost
            ptx_rows: 4,
            // responses over which β may move by ±20%; short, because runs here are short
            kl_horizon: 100.0,
        }
    }
}

/// Values of each rollout's states (the positions its actions are taken from).
pub async fn action_values<E: Engine>(engine: &mut E, head: &ScalarHead, rollouts: &[&Rollout], pad: u32) -> Result<Vec<Vec<f32>>> {
    let (max_b, _) = engine.capacity();
    let c = engine.config().n_embd;
    let mut out = Vec::new();
    for chunk in rollouts.chunks(max_b) {
        let (tokens, t, lens) = rollout_batch(chunk, pad);
        engine.forward_rows(&tokens, chunk.len(), t, &lens)?;
        let h = engine.hidden().await?;
        for (i, r) in chunk.iter().enumerate() {
            out.push((r.prompt_len - 1..r.tokens.len() - 1).map(|s| head.apply(&h[(i * t + s) * c..][..c])).collect());
        }
    }
    Ok(out)
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

pub use crate::surrogate::surrogate;

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

/// The adaptive KL controller of Ziegler et al.: moves β toward a target KL.
pub fn adapt_beta(beta: f32, kl: f32, target: f32, n_steps: f32, horizon: f32) -> f32 {
    let err = ((kl - target) / target).clamp(-0.2, 0.2);
    beta * (1.0 + err * n_steps / horizon)
}

/// The brake's ceiling with `rankings` rankings learned from, the policy moving from the
/// `min_rankings`-th: `per_ranking` nats for each ranking from that one on, never over `ceiling`
/// (None: no brake).
pub fn brake_ceiling(ceiling: Option<f32>, per_ranking: Option<f32>, rankings: usize, min_rankings: usize) -> Option<f32> {
    let grown = per_ranking.map(|c| c * (rankings + 1).saturating_sub(min_rankings.max(1)).max(1) as f32);
    match (ceiling, grown) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The KL brake (see `PpoConfig::kl_ceiling`): β times KL/ceiling above the ceiling, a fifth of
/// the way back toward `base` below it, never under `base`.
pub fn brake_beta(beta: f32, base: f32, kl: f32, ceiling: f32) -> f32 {
    if kl > ceiling {
        beta * kl / ceiling
    } else {
        (beta - 0.2 * (beta - base)).max(base)
    }
}

/// What an answer's return is measured against to make its advantage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// A value model (initialized from the reward model) and GAE: InstructGPT's PPO.
    Value,
    /// The mean return of the other answers to the same prompt (leave-one-out, as in RLOO; GRPO's
    /// group baseline): no value model to train.
    Group,
}

/// Group advantages: each answer's return (its score minus β·Σ log π/π_ref) minus the mean return
/// of the other answers in its group, the same at every one of its tokens; whitened over the batch.
/// An answer alone in its group gets advantage 0.
pub fn group_advantages(rollouts: &mut [Rollout], beta: f32) {
    let returns: Vec<f32> = rollouts
        .iter_mut()
        .map(|r| {
            r.rewards = token_rewards(r, beta);
            r.rewards.iter().sum()
        })
        .collect();
    let groups: Vec<usize> = rollouts.iter().map(|r| r.group).collect();
    let advantages = leave_one_out(&returns, &groups);
    for ((r, ret), adv) in rollouts.iter_mut().zip(&returns).zip(advantages) {
        r.advantages = vec![adv; r.actions()];
        r.returns = vec![*ret; r.actions()];
    }
    let mut advs: Vec<&mut Vec<f32>> = rollouts.iter_mut().map(|r| &mut r.advantages).collect();
    whiten(&mut advs);
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

/// The answers the rankings put first, as (ranking, answer) indices: every answer of rank 0 in a
/// ranking that prefers something (a ranking of ties states no favourite) and is not `doubted`
/// (one flag a ranking, `doubts_first`; missing flags doubt nothing).
pub fn favourite_answers(rankings: &[TokenizedRanking], doubted: &[bool]) -> Vec<Vec<(usize, usize)>> {
    rankings
        .iter()
        .enumerate()
        .filter(|&(i, (_, ranks))| ranks.iter().any(|&r| r > 0) && !doubted.get(i).copied().unwrap_or(false))
        .map(|(i, (_, ranks))| ranks.iter().enumerate().filter(|(_, &r)| r == 0).map(|(j, _)| (i, j)).collect())
        .collect()
}

/// Whether the reward model doubts a ranking's first answer (`PpoConfig::favourite_within`): its
/// `scores` of the group put none of the person's first answers (rank 0 in `ranks`) among its own
/// first `within` (a tie with the last of those counts as among them), and its own first is more
/// than `margin` above the best of them (`first_gap`). Never with `within` 0 or no scores (no
/// reward model yet).
pub fn doubts_first(ranks: &[usize], scores: &[f32], within: usize, margin: f32) -> bool {
    if within == 0 || scores.len() != ranks.len() {
        return false;
    }
    let places = crate::reward::ranks_of(scores);
    let among = ranks.iter().zip(&places).any(|(&r, &place)| r == 0 && place < within);
    !among && first_gap(ranks, scores) > margin
}

/// How far the reward model's own first of a group scores above the best of the person's first
/// answers (rank 0 in `ranks`): 0 where it agrees; NaN without scores.
pub fn first_gap(ranks: &[usize], scores: &[f32]) -> f32 {
    if scores.len() != ranks.len() {
        return f32::NAN;
    }
    let firsts = ranks.iter().zip(scores).filter(|(&r, _)| r == 0).map(|(_, &s)| s).fold(f32::NEG_INFINITY, f32::max);
    if !firsts.is_finite() {
        return f32::NAN;
    }
    scores.iter().copied().fold(f32::NEG_INFINITY, f32::max) - firsts
}

/// Whether the person's first answers are checked (`PpoConfig::favourite_check_below`) at the
/// reward model's `agreement` with their newest rankings: while it is under `below`, while it
/// has no measure (NaN), and always with `below` 1.
pub fn checks_firsts(agreement: f32, below: f32) -> bool {
    below >= 1.0 || agreement.is_nan() || agreement < below
}

/// `rows` favourite answers (`favourites` from `favourite_answers` of `rankings`), each drawn
/// from a ranking chosen uniformly, then one of its first-ranked answers, as (sequence, prompt
/// length).
pub fn pick_favourites<'a>(
    rows: usize,
    favourites: &[Vec<(usize, usize)>],
    rankings: &'a [TokenizedRanking],
    prompt_lens: &[usize],
    rng: &mut Rng,
) -> Vec<(&'a [u32], usize)> {
    if favourites.is_empty() {
        return Vec::new();
    }
    (0..rows)
        .map(|_| {
            let firsts = &favourites[rng.below(favourites.len())];
            let (i, j) = firsts[rng.below(firsts.len())];
            (&rankings[i].0[j][..], prompt_lens[i])
        })
        .collect()
}

/// A pretraining batch with answers added as rows, each a (prompt + answer + end, prompt length):
/// the loss on an answer's tokens only (and its end token), none on its prompt or the padding.
/// The batch widens to the longest row; the γ term stays a mean over the positions that carry loss.
pub fn add_answer_rows(ptx: Batch, seqs: &[(&[u32], usize)], pad: u32) -> Batch {
    if seqs.is_empty() {
        return ptx;
    }
    let rows = seqs.len();
    let t = seqs.iter().map(|(s, _)| s.len().saturating_sub(1)).max().unwrap_or(0).max(ptx.t);
    let mut out = Batch { tokens: Vec::with_capacity((ptx.b + rows) * t), targets: Vec::with_capacity((ptx.b + rows) * t), b: ptx.b + rows, t };
    let mut push = |tokens: &[u32], targets: &[i32]| {
        out.tokens.extend_from_slice(tokens);
        out.tokens.extend(std::iter::repeat_n(pad, t - tokens.len()));
        out.targets.extend_from_slice(targets);
        out.targets.extend(std::iter::repeat_n(-1, t - targets.len()));
    };
    for r in 0..ptx.b {
        push(&ptx.tokens[r * ptx.t..][..ptx.t], &ptx.targets[r * ptx.t..][..ptx.t]);
    }
    for &(seq, prompt_len) in seqs {
        let n = seq.len().saturating_sub(1);
        let targets: Vec<i32> = (0..n).map(|i| if i + 1 >= prompt_len { seq[i + 1] as i32 } else { -1 }).collect();
        push(&seq[..n], &targets);
    }
    out
}

/// An answer as a row of the γ term: (prompt + answer + end, prompt length).
pub type AnswerRow = (Vec<u32>, usize);

/// The γ term's answer rows of one step: `favourites` rows from the rankings' firsts, then for
/// each (rows, pool) of `pools` (the reward model's favourite SFT answers, its favourites of the
/// policy's own rollouts) that many drawn uniformly from the pool, none from an empty one.
pub fn gamma_answer_rows<'a>(
    favourites: usize,
    firsts: &[Vec<(usize, usize)>],
    rankings: &'a [TokenizedRanking],
    prompt_lens: &[usize],
    pools: &[(usize, &'a [AnswerRow])],
    rng: &mut Rng,
) -> Vec<(&'a [u32], usize)> {
    let mut seqs = pick_favourites(favourites, firsts, rankings, prompt_lens, rng);
    for &(rows, pool) in pools.iter().filter(|(_, pool)| !pool.is_empty()) {
        seqs.extend((0..rows).map(|_| {
            let (s, p) = &pool[rng.below(pool.len())];
            (&s[..], *p)
        }));
    }
    seqs
}

/// The favourite finished answer of each group of `rollouts` by its score less `kl_weight` times
/// its KL to SFT (k1, summed over the answer), as γ-term rows: the pool of `sft_best` (SFT's
/// answers, by score alone) and of `own_best` (the policy's rollouts).
pub fn group_favourites(rollouts: &[Rollout], kl_weight: f32) -> Vec<AnswerRow> {
    let value = |r: &Rollout| r.score - if kl_weight == 0.0 { 0.0 } else { kl_weight * kl_estimates(r).0 };
    best_finished_by(rollouts, value).into_iter().map(|i| (rollouts[i].tokens.clone(), rollouts[i].prompt_len)).collect()
}

/// Whether the SFT favourites join the γ term once `rankings` rankings are learned from.
pub fn sft_best_applies(cfg: &PpoConfig, rankings: usize) -> bool {
    rows_apply(cfg.sft_best, cfg.sft_best_until, rankings)
}

/// Whether the own favourites join the γ term once `rankings` rankings are learned from.
pub fn own_best_applies(cfg: &PpoConfig, rankings: usize) -> bool {
    rows_apply(cfg.own_best, cfg.own_best_until, rankings)
}

/// `rows` asked for, and `rankings` within `until` (0: always).
fn rows_apply(rows: usize, until: usize, rankings: usize) -> bool {
    rows > 0 && (until == 0 || rankings <= until)
}

/// Per group of rollouts, the index of its finished answer of the highest `value` (the first of
/// equals kept; none for a group whose answers were all cut off), in the order the groups first
/// appear.
pub fn best_finished_by(rollouts: &[Rollout], value: impl Fn(&Rollout) -> f32) -> Vec<usize> {
    let mut best: Vec<(usize, usize, f32)> = Vec::new(); // (group, index, value)
    for (i, r) in rollouts.iter().enumerate().filter(|(_, r)| r.finished) {
        let v = value(r);
        match best.iter_mut().find(|(g, _, _)| *g == r.group) {
            Some((_, b, bv)) if *bv < v => (*b, *bv) = (i, v),
            Some(_) => {}
            None => best.push((r.group, i, v)),
        }
    }
    best.into_iter().map(|(_, i, _)| i).collect()
}

/// Running sums over the last epoch of an update, for the metrics.
#[derive(Default)]
struct Tally {
    policy_loss: f32,
    value_loss: f32,
    clipped: usize,
    tokens: usize,
    responses: usize,
    approx_kl: f32,
}

/// The learning rate of policy step `step` (1-based): a linear warm-up, so the first steps, whose
/// Adam moments know least, are the smallest.
pub fn warmup_lr(lr: f32, step: u32, warmup: u32) -> f32 {
    if warmup == 0 {
        lr
    } else {
        lr * (step as f32 / warmup as f32).min(1.0)
    }
}

/// The PPO-ptx update: `epochs` passes over the rollouts, reshuffled each pass, in minibatches of
/// the policy's capacity; the value model (trunk and head) learns the returns alongside when there is
/// one. Returns the policy's step count after the update.
///
/// Normalization, which decides what γ means: the PPO term is summed over each response's tokens
/// and averaged over responses (the objective E[r − β·KL] is per response), the pretraining term is
/// γ times the mean per-token log-likelihood of a pretraining batch. With responses of about 30
/// tokens, γ = 27.8 then weighs one pretraining token about as much as one response token.
#[allow(clippy::too_many_arguments)]
pub async fn ppo_update<P: Engine, V: Engine>(
    policy: &mut P,
    mut value: Option<(&mut V, &mut ScalarHead)>,
    rollouts: &[Rollout],
    opt: &Optimizers<'_>,
    step0: u32,
    mut ptx_batch: impl FnMut() -> Result<Batch>,
    rng: &mut Rng,
    m: &mut UpdateMetrics,
) -> Result<u32> {
    let (max_b, _) = policy.capacity();
    let mut step = step0;
    let mut tally = Tally::default();
    let mut order: Vec<usize> = (0..rollouts.len()).collect();
    for epoch in 0..opt.ppo.epochs {
        let last = epoch + 1 == opt.ppo.epochs;
        rng.shuffle(&mut order);
        for idx in order.chunks(max_b) {
            let chunk: Vec<&Rollout> = idx.iter().map(|&i| &rollouts[i]).collect();
            if chunk.iter().all(|r| r.actions() == 0) {
                continue;
            }
            step += 1;
            if !policy_step(policy, &chunk, opt, step, &mut ptx_batch, last.then_some(&mut tally)).await? {
                m.skipped_steps += 1;
            }
            if let Some((v, head)) = &mut value {
                if !value_step(*v, head, &chunk, opt, step, last.then_some(&mut tally)).await? {
                    m.skipped_steps += 1;
                }
            }
            crate::turns::pass().await;
        }
    }
    m.policy_loss = tally.policy_loss / tally.responses.max(1) as f32;
    m.value_loss = tally.value_loss / tally.tokens.max(1) as f32;
    m.clip_frac = tally.clipped as f32 / tally.tokens.max(1) as f32;
    m.approx_kl = tally.approx_kl / tally.tokens.max(1) as f32;
    Ok(step)
}

/// What an update's steps share: the PPO settings, AdamW's, and the pad token.
pub struct Optimizers<'a> {
    pub ppo: &'a PpoConfig,
    pub adam: &'a AdamSettings,
    pub pad: u32,
}

/// One policy step on a minibatch: the clipped surrogate, summed over each response and averaged
/// over responses, plus γ·(mean pretraining NLL). False when the step was skipped.
async fn policy_step<P: Engine>(
    policy: &mut P,
    chunk: &[&Rollout],
    opt: &Optimizers<'_>,
    step: u32,
    ptx_batch: &mut impl FnMut() -> Result<Batch>,
    tally: Option<&mut Tally>,
) -> Result<bool> {
    let cfg = opt.ppo;
    let (tokens, t, lens) = rollout_batch(chunk, opt.pad);
    let targets = action_targets(chunk, t);
    let (logp_old, advantages) = per_position(chunk, t);
    let x = PolicyBatch {
        tokens: &tokens,
        targets: &targets,
        logp_old: &logp_old,
        advantages: &advantages,
        b: chunk.len(),
        t,
        lens: Some(&lens),
        clip: cfg.clip,
        temperature: cfg.temperature,
        answers: chunk.len() as f32,
    };
    let ptx = if cfg.gamma > 0.0 { Some(ptx_batch()?) } else { None };
    let ptx = ptx.as_ref().map(|p| PtxBatch { tokens: &p.tokens, targets: &p.targets, b: p.b, t: p.t, gamma: cfg.gamma });
    let lr = warmup_lr(cfg.lr, step, cfg.warmup_steps);
    let report = policy.policy_step(&x, ptx.as_ref(), &opt.adam.at(lr, step), cfg.grad_clip).await?;
    if let Some(t) = tally {
        t.policy_loss += report.sums.loss;
        t.clipped += report.sums.clipped as usize;
        t.tokens += report.sums.actions as usize;
        t.responses += chunk.len();
        t.approx_kl += report.sums.approx_kl;
    }
    Ok(report.step.applied)
}

/// Each action's old log-probability and advantage at its position in the (B,T) batch, 0 elsewhere.
fn per_position(chunk: &[&Rollout], t: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut logp_old, mut advantages) = (vec![0.0f32; chunk.len() * t], vec![0.0f32; chunk.len() * t]);
    for (i, r) in chunk.iter().enumerate() {
        for (j, s) in (r.prompt_len - 1..r.tokens.len() - 1).enumerate() {
            logp_old[i * t + s] = r.logp_old[j];
            advantages[i * t + s] = r.advantages[j];
        }
    }
    (logp_old, advantages)
}

/// The loss weights of one policy minibatch, (B,T): at each action the derivative of the clipped
/// surrogate with respect to −log π, summed over the response's tokens and averaged over the
/// minibatch's responses; zero elsewhere. `losses` are −log π(action) at each position.
pub fn policy_loss_weights(chunk: &[&Rollout], losses: &[f32], t: usize, clip: f32) -> Vec<f32> {
    let targets = action_targets(chunk, t);
    let (logp_old, advantages) = per_position(chunk, t);
    let x = PolicyBatch {
        tokens: &[],
        targets: &targets,
        logp_old: &logp_old,
        advantages: &advantages,
        b: chunk.len(),
        t,
        lens: None,
        clip,
        temperature: 1.0,
        answers: chunk.len() as f32,
    };
    surrogate_weights(&x, losses).0
}

/// One value step on a minibatch: clipped regression to the returns, through the value model's
/// trunk and head, averaged over tokens. False when the step was skipped.
async fn value_step<V: Engine>(
    value: &mut V,
    head: &mut ScalarHead,
    chunk: &[&Rollout],
    opt: &Optimizers<'_>,
    step: u32,
    tally: Option<&mut Tally>,
) -> Result<bool> {
    let cfg = opt.ppo;
    let c = value.config().n_embd;
    let (tokens, t, lens) = rollout_batch(chunk, opt.pad);
    let n_act: usize = chunk.iter().map(|r| r.actions()).sum();
    value.forward_rows(&tokens, chunk.len(), t, &lens)?;
    let h = value.hidden().await?;
    let mut dh = vec![0.0f32; chunk.len() * t * c];
    let mut loss_sum = 0.0;
    for (i, r) in chunk.iter().enumerate() {
        for (j, s) in (r.prompt_len - 1..r.tokens.len() - 1).enumerate() {
            let hs = &h[(i * t + s) * c..][..c];
            let (loss, dv) = value_loss(head.apply(hs), r.values[j], r.returns[j], cfg.value_clip);
            let dv = dv / n_act as f32;
            loss_sum += loss;
            for k in 0..c {
                dh[(i * t + s) * c + k] = dv * head.w[k];
                head.grad[k] += dv * hs[k];
            }
        }
    }
    if let Some(t) = tally {
        t.value_loss += loss_sum;
    }
    if !dh.iter().all(|x| x.is_finite()) {
        head.grad.fill(0.0);
        return Ok(false);
    }
    value.zero_grad()?;
    value.backward(None, Some(&dh))?;
    let lr = warmup_lr(cfg.value_lr, step, cfg.warmup_steps);
    if value.update(&opt.adam.at(lr, step), cfg.grad_clip).await?.applied {
        head.step(opt.adam, lr);
        Ok(true)
    } else {
        head.grad.fill(0.0);
        Ok(false)
    }
}

/// PPO-ptx as a method: advantages against the group's other answers (or a value model and GAE),
/// then `ppo_update` with the pretraining term.
pub struct PpoPtx<E: Engine> {
    steps: u32,
    /// The value model, trunk and head, with `Baseline::Value`: a copy of the first fitted reward model.
    value: Option<(E, ScalarHead)>,
}

impl<E: Engine> Default for PpoPtx<E> {
    fn default() -> Self {
        PpoPtx { steps: 0, value: None }
    }
}

impl<E: Engine> PpoPtx<E> {
    async fn ensure_value_model(&mut self, u: &mut Update<'_, E>) -> Result<()> {
        if self.value.is_none() && u.cfg.ppo.baseline == Baseline::Value {
            let first = u.reward.first_mut();
            let trunk = (u.make)(first.engine.params().await?, u.policy.capacity().0, u.policy.config().n_ctx)?;
            self.value = Some((trunk, first.head.clone()));
        }
        Ok(())
    }
}

impl<E: Engine> Method<E> for PpoPtx<E> {
    fn needs(&self) -> Needs {
        Needs { reward_model: true }
    }

    async fn update(&mut self, u: &mut Update<'_, E>) -> Result<UpdateMetrics> {
        self.ensure_value_model(u).await?;
        let ppo = &u.cfg.ppo;
        match (ppo.baseline, self.value.as_mut()) {
            (Baseline::Value, Some((value, head))) => {
                let refs: Vec<&Rollout> = u.rollouts.iter().collect();
                let values = action_values(value, head, &refs, u.pad).await?;
                for (r, v) in u.rollouts.iter_mut().zip(values) {
                    r.values = v;
                }
                compute_advantages(u.rollouts, u.beta, ppo.lam);
            }
            _ => {
                for r in u.rollouts.iter_mut() {
                    r.values = vec![0.0; r.actions()];
                }
                group_advantages(u.rollouts, u.beta);
            }
        }
        let mut m = UpdateMetrics::default();
        let opt = Optimizers { ppo, adam: u.adam, pad: u.pad };
        let (pretraining, rankings, prompt_lens, pad) = (&mut u.pretraining, u.rankings, u.prompt_lens, u.pad);
        // the same for every step of the update: the rankings do not change within it
        let firsts = if ppo.favourites > 0 { favourite_answers(rankings, u.doubted) } else { Vec::new() };
        let own_rows = if own_best_applies(ppo, rankings.len()) { ppo.own_best } else { 0 };
        let own = if own_rows > 0 { group_favourites(u.rollouts, ppo.own_best_kl * u.beta) } else { Vec::new() };
        let pools = [(ppo.sft_best, u.sft_favourites), (own_rows, &own[..])];
        let ptx = || {
            let prose = pretraining.batch(ppo.ptx_rows);
            let rows = gamma_answer_rows(ppo.favourites, &firsts, rankings, prompt_lens, &pools, &mut pretraining.rng);
            Ok(add_answer_rows(prose, &rows, pad))
        };
        let value = self.value.as_mut().map(|(v, h)| (v, h));
        self.steps = ppo_update(u.policy, value, u.rollouts, &opt, self.steps, ptx, u.rng, &mut m).await?;
        Ok(m)
    }

    async fn state(&mut self) -> Result<MethodState> {
        let value = match self.value.as_mut() {
            Some((v, h)) => Some((model_state(v).await?, h.state())),
            None => None,
        };
        Ok(MethodState { steps: self.steps, value })
    }

    fn restore(&mut self, s: MethodState, make: &EngineFactory<'_, E>, capacity: (usize, usize)) -> Result<()> {
        let value = match s.value {
            Some((v, h)) => {
                let mut e = make(v.params, capacity.0, capacity.1)?;
                e.set_optimizer_state(&v.m, &v.v)?;
                Some((e, ScalarHead::from_state(h)))
            }
            None => None,
        };
        (self.steps, self.value) = (s.steps, value);
        Ok(())
    }
}
