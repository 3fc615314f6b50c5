//! PPO's pieces against hand-computed cases, one PPO-ptx update on both engines, and the whole
//! align loop on `tiny` raising a labeler's win-rate.

mod common;
use common::{assert_close, gpu};
use pollster::block_on;

use rlhf_lab::config::{preset, AdamSettings};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::Engine;
use rlhf_lab::gpu::gpt::GpuGpt;
use rlhf_lab::gpu::MatmulKind;
use rlhf_lab::methods::ppo::*;
use rlhf_lab::methods::UpdateMetrics;
use rlhf_lab::params::ParamLayout;
use rlhf_lab::reward::ScalarHead;
use rlhf_lab::rng::Rng;
use rlhf_lab::rollout::*;
use rlhf_lab::surrogate::surrogate;
use rlhf_lab::train::Batch;

#[test]
fn gae_matches_a_hand_computed_case() {
    // rewards [0, 0, 1], values [0.5, 0.2, 0.4], λ = 0.5, discount 1:
    // δ2 = 1 + 0 − 0.4 = 0.6;  A2 = 0.6
    // δ1 = 0 + 0.4 − 0.2 = 0.2; A1 = 0.2 + 0.5·0.6 = 0.5
    // δ0 = 0 + 0.2 − 0.5 = −0.3; A0 = −0.3 + 0.5·0.5 = −0.05
    let (adv, ret) = gae(&[0.0, 0.0, 1.0], &[0.5, 0.2, 0.4], 0.5);
    assert_close("advantages", &adv, &[-0.05, 0.5, 0.6], 1e-6, 1e-6);
    assert_close("returns", &ret, &[0.45, 0.7, 1.0], 1e-6, 1e-6);
    // λ = 1: the advantage is the return minus the value, and the return is the sum of rewards to go
    let (adv, ret) = gae(&[0.1, -0.2, 1.0], &[0.3, 0.3, 0.3], 1.0);
    assert_close("returns λ=1", &ret, &[0.9, 0.8, 1.0], 1e-6, 1e-6);
    assert_close("advantages λ=1", &adv, &[0.6, 0.5, 0.7], 1e-6, 1e-6);
}

#[test]
fn rewards_kl_surrogate_and_value_clip_follow_their_definitions() {
    let r = Rollout { logp_old: vec![-1.0, -2.0, -0.5], logp_ref: vec![-1.5, -1.0, -0.5], score: 2.0, ..Default::default() };
    // −β(log π − log π_ref) per token, the score added at the last
    assert_close("token rewards", &token_rewards(&r, 0.1), &[-0.05, 0.1, 2.0], 1e-6, 1e-6);
    let (k1, k3) = kl_estimates(&r);
    assert!((k1 - (0.5 - 1.0 + 0.0)).abs() < 1e-6);
    let k3_want = ((-0.5f32).exp() - 1.0 + 0.5) + (1.0f32.exp() - 1.0 - 1.0);
    assert!((k3 - k3_want).abs() < 1e-5 && k3 >= 0.0);
    // surrogate: inside the clip range the gradient is −A·ratio; outside (in the direction A favours) zero
    let (l, g, c) = surrogate(-1.0, -1.0, 2.0, 0.2);
    assert!((l + 2.0).abs() < 1e-6 && (g + 2.0).abs() < 1e-6 && !c);
    let (l, g, c) = surrogate(-1.0 + 0.5, -1.0, 2.0, 0.2);
    assert!((l + 2.0 * 1.2).abs() < 1e-5 && g == 0.0 && c);
    let (_, g, c) = surrogate(-1.0 + 0.5, -1.0, -2.0, 0.2);
    assert!(!c && (g - 2.0 * 0.5f32.exp()).abs() < 1e-5, "a bad action that became likelier is always pushed back");
    // value clip: max of the plain and the clipped squared error; a value that moved past the clip
    // range toward (and beyond) the return gets no gradient when the clipped error is the larger
    let (l, g) = value_loss(0.6, 0.0, 0.5, 0.2);
    assert!((l - 0.5 * 0.09).abs() < 1e-6 && g == 0.0);
    let (l, g) = value_loss(1.0, 0.0, 0.5, 0.2);
    assert!((l - 0.5 * 0.25).abs() < 1e-6 && (g - 0.5).abs() < 1e-6);
    let (l, g) = value_loss(0.1, 0.0, 0.5, 0.2);
    assert!((l - 0.5 * 0.16).abs() < 1e-6 && (g + 0.4).abs() < 1e-6);
    // whitening
    let (mut a, mut b) = (vec![1.0, 2.0], vec![3.0, 4.0]);
    whiten(&mut [&mut a, &mut b]);
    let all: Vec<f32> = a.iter().chain(&b).copied().collect();
    assert!(all.iter().sum::<f32>().abs() < 1e-5);
    assert!((all.iter().map(|x| x * x).sum::<f32>() / 4.0 - 1.0).abs() < 1e-4);
    // the adaptive controller raises β when KL is over target and lowers it under
    assert!(adapt_beta(0.1, 20.0, 6.0, 100.0, 1000.0) > 0.1);
    assert!(adapt_beta(0.1, 1.0, 6.0, 100.0, 1000.0) < 0.1);
}

fn fixed_rollouts(v: usize, rng: &mut Rng) -> Vec<Rollout> {
    (0..5)
        .map(|i| {
            let p = 3 + i % 2;
            let n = 4 + i;
            let tokens: Vec<u32> = (0..p + n).map(|_| rng.below(v) as u32).collect();
            let mut r = Rollout {
                tokens,
                prompt_len: p,
                logp_old: (0..n).map(|_| -1.0 - rng.uniform() * 5.0).collect(),
                logp_ref: (0..n).map(|_| -1.0 - rng.uniform() * 5.0).collect(),
                values: (0..n).map(|_| rng.normal() * 0.1).collect(),
                score: rng.normal(),
                ..Default::default()
            };
            r.rewards = token_rewards(&r, 0.02);
            r
        })
        .collect()
}

#[test]
fn a_ppo_ptx_update_on_the_gpu_equals_the_cpu_reference() {
    let p = preset("tiny").unwrap();
    let cfg = p.model;
    let mut rng = Rng::new(5);
    let params = ParamLayout::new(&cfg).init(6);
    let vparams = ParamLayout::new(&cfg).init(7);
    let mut rollouts = fixed_rollouts(cfg.vocab_size, &mut rng);
    compute_advantages(&mut rollouts, 0.02, 0.95);
    let ptx_tokens: Vec<u32> = (0..4 * 16).map(|_| rng.below(cfg.vocab_size) as u32).collect();
    let ptx_targets: Vec<i32> = (0..4 * 16).map(|_| rng.below(cfg.vocab_size) as i32).collect();
    // a larger AdamW epsilon keeps near-zero gradients (where the engines' rounding differs in sign)
    // from turning into full-size steps, so the two engines stay comparable
    let ppo = PpoConfig { epochs: 2, lr: 1e-3, value_lr: 1e-3, gamma: 2.0, baseline: Baseline::Value, ..Default::default() };
    let head = ScalarHead::new(cfg.n_embd, 8);
    async fn run<E: Engine>(
        policy: &mut E,
        value: &mut E,
        head: &ScalarHead,
        rollouts: &[Rollout],
        ppo: &PpoConfig,
        ptx: &(Vec<u32>, Vec<i32>),
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>, UpdateMetrics) {
        let mut h = head.clone();
        let mut m = UpdateMetrics::default();
        let batch = || Ok(Batch { tokens: ptx.0.clone(), targets: ptx.1.clone(), b: 4, t: 16 });
        let adam = AdamSettings { beta1: 0.9, beta2: 0.95, eps: 1e-4, weight_decay: 0.0 };
        let opt = Optimizers { ppo, adam: &adam, pad: 0 };
        ppo_update(policy, Some((value, &mut h)), rollouts, &opt, 0, batch, &mut Rng::new(3), &mut m).await.unwrap();
        (policy.params().await.unwrap(), value.params().await.unwrap(), h.w, m)
    }
    let ptx = (ptx_tokens, ptx_targets);
    let (cp, cv, ch, cm) = block_on(run(
        &mut CpuGpt::new(cfg, params.clone(), 4, 16).unwrap(),
        &mut CpuGpt::new(cfg, vparams.clone(), 4, 16).unwrap(),
        &head,
        &rollouts,
        &ppo,
        &ptx,
    ));
    let g = gpu(MatmulKind::Blocked);
    let (gp, gv, gh, gm) = block_on(run(
        &mut GpuGpt::new(g.clone(), cfg, &params, 4, 16).unwrap(),
        &mut GpuGpt::new(g, cfg, &vparams, 4, 16).unwrap(),
        &head,
        &rollouts,
        &ppo,
        &ptx,
    ));
    assert_ne!(cp, params, "the update moved the policy");
    assert_close("policy after PPO", &gp, &cp, 1e-5, 1e-3);
    assert_close("value trunk after PPO", &gv, &cv, 1e-5, 1e-3);
    assert_close("value head after PPO", &gh, &ch, 1e-5, 1e-3);
    assert!((gm.policy_loss - cm.policy_loss).abs() < 1e-4 && (gm.value_loss - cm.value_loss).abs() < 1e-4);
    assert!((gm.clip_frac - cm.clip_frac).abs() < 1e-6 && (gm.approx_kl - cm.approx_kl).abs() < 1e-5);
}

#[test]
fn a_non_finite_advantage_skips_the_step_and_leaves_the_weights() {
    let p = preset("tiny").unwrap();
    let cfg = p.model;
    let mut rng = Rng::new(9);
    let params = ParamLayout::new(&cfg).init(6);
    let mut rollouts = fixed_rollouts(cfg.vocab_size, &mut rng);
    compute_advantages(&mut rollouts, 0.02, 0.95);
    for r in rollouts.iter_mut() {
        r.advantages[0] = f32::NAN;
        r.returns[0] = f32::INFINITY;
    }
    let mut policy = CpuGpt::new(cfg, params.clone(), 8, 16).unwrap();
    let mut value = CpuGpt::new(cfg, params.clone(), 8, 16).unwrap();
    let mut head = ScalarHead::new(cfg.n_embd, 1);
    let head_before = head.w.clone();
    let mut m = UpdateMetrics::default();
    let ppo = PpoConfig { epochs: 1, gamma: 0.0, ..Default::default() };
    let adam = AdamSettings { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0 };
    let opt = Optimizers { ppo: &ppo, adam: &adam, pad: 0 };
    block_on(ppo_update(&mut policy, Some((&mut value, &mut head)), &rollouts, &opt, 0, || unreachable!("gamma is 0"), &mut Rng::new(1), &mut m))
        .unwrap();
    assert_eq!(m.skipped_steps, 2, "one policy and one value step, both skipped");
    assert_eq!(block_on(policy.params()).unwrap(), params);
    assert_eq!(block_on(value.params()).unwrap(), params);
    assert_eq!(head.w, head_before);
}

#[test]
fn the_ppo_loss_is_summed_over_each_answer_and_averaged_over_answers() {
    // two answers of 2 and 3 actions, π_new = π_old (ratio 1, nothing clipped): the derivative of the
    // surrogate −A·ρ with respect to −log π is A at each action; summed over an answer's tokens and
    // averaged over the 2 answers, each action's weight is A/2 whatever the answer's length
    // (a per-token mean over the 5 actions would give A/5)
    let mk = |p: usize, adv: Vec<f32>| Rollout {
        tokens: vec![1; p + adv.len()],
        prompt_len: p,
        logp_old: vec![-1.0; adv.len()],
        advantages: adv,
        ..Default::default()
    };
    let (a, b) = (mk(2, vec![0.4, -1.0]), mk(3, vec![2.0, 0.5, -0.2]));
    let t = 6;
    // −log π at every position: 1.0, so ρ = 1
    let losses = vec![1.0f32; 2 * t];
    let w = policy_loss_weights(&[&a, &b], &losses, t, 0.2);
    let mut want = vec![0.0f32; 2 * t];
    // answer a's actions are predicted at positions 1, 2; answer b's at 2, 3, 4 of its row
    want[1] = 0.4 / 2.0;
    want[2] = -1.0 / 2.0;
    want[t + 2] = 2.0 / 2.0;
    want[t + 3] = 0.5 / 2.0;
    want[t + 4] = -0.2 / 2.0;
    assert_close("surrogate weights", &w, &want, 1e-7, 1e-6);
}

#[test]
fn the_first_policy_steps_warm_up() {
    assert_eq!(warmup_lr(1e-4, 1, 8), 1e-4 / 8.0);
    assert_eq!(warmup_lr(1e-4, 8, 8), 1e-4);
    assert_eq!(warmup_lr(1e-4, 100, 8), 1e-4);
    assert_eq!(warmup_lr(1e-4, 1, 0), 1e-4);
}

#[test]
fn approx_kl_is_the_kl_from_the_rollout_policy_to_the_updated_one() {
    // with log π_old = log π + 1 at every action (π is the model before the step, which is what the
    // one epoch measures), ρ = π/π_old = e^−1 and KL(π_old ‖ π) per token is e^−1 − 1 + 1 = 0.368;
    // the other direction would give e − 2 = 0.718
    let cfg = preset("tiny").unwrap().model;
    let mut rng = Rng::new(11);
    let params = ParamLayout::new(&cfg).init(12);
    let mut policy = CpuGpt::new(cfg, params.clone(), 8, 16).unwrap();
    let mut value = CpuGpt::new(cfg, params, 8, 16).unwrap();
    let mut rollouts = fixed_rollouts(cfg.vocab_size, &mut rng);
    let ppo = PpoConfig { epochs: 1, gamma: 0.0, ..Default::default() };
    let refs: Vec<&Rollout> = rollouts.iter().collect();
    let (lp, _) = block_on(action_logprobs(&mut policy, &refs, 0, ppo.temperature)).unwrap();
    for (r, lp) in rollouts.iter_mut().zip(lp) {
        r.logp_old = lp.iter().map(|x| x + 1.0).collect();
    }
    compute_advantages(&mut rollouts, 0.02, 0.95);
    let adam = AdamSettings { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0 };
    let opt = Optimizers { ppo: &ppo, adam: &adam, pad: 0 };
    let mut m = UpdateMetrics::default();
    let mut head = ScalarHead::new(cfg.n_embd, 1);
    block_on(ppo_update(&mut policy, Some((&mut value, &mut head)), &rollouts, &opt, 0, || unreachable!("gamma is 0"), &mut Rng::new(1), &mut m))
        .unwrap();
    let want = (-1.0f32).exp();
    assert!((m.approx_kl - want).abs() < 1e-4, "approx_kl {} want {want}", m.approx_kl);
}

#[test]
fn group_advantages_by_hand() {
    // three answers to one prompt with scores 1, 2, 6 (β = 0, one action each): leave-one-out
    // baselines 4, 3.5, 1.5 give advantages −3, −1.5, 4.5, then whitening over the batch: mean 0,
    // spread √10.5. A fourth answer alone in its group gets 0 before whitening.
    let mk = |score: f32, group: usize| Rollout {
        tokens: vec![1, 2],
        prompt_len: 1,
        logp_old: vec![-1.0],
        logp_ref: vec![-1.0],
        score,
        group,
        ..Default::default()
    };
    let mut rs = vec![mk(1.0, 0), mk(2.0, 0), mk(6.0, 0)];
    group_advantages(&mut rs, 0.0);
    let s = 10.5f32.sqrt();
    let got: Vec<f32> = rs.iter().map(|r| r.advantages[0]).collect();
    assert_close("group advantages", &got, &[-3.0 / s, -1.5 / s, 4.5 / s], 1e-5, 1e-5);
    let mut rs = vec![mk(1.0, 0), mk(3.0, 0), mk(5.0, 1)];
    group_advantages(&mut rs, 0.0);
    // before whitening: −2, 2, 0
    let s = (8.0f32 / 3.0).sqrt();
    let got: Vec<f32> = rs.iter().map(|r| r.advantages[0]).collect();
    assert_close("a lone answer", &got, &[-2.0 / s, 2.0 / s, 0.0], 1e-5, 1e-5);
    // the KL penalty enters each answer's return: β·(log π − log π_ref) summed over its tokens
    let mut a = mk(0.0, 0);
    a.logp_old = vec![-1.0];
    a.logp_ref = vec![-3.0];
    let mut rs = vec![a, mk(0.0, 0)];
    group_advantages(&mut rs, 0.5);
    assert!(rs[0].advantages[0] < 0.0 && rs[1].advantages[0] > 0.0, "the answer that moved away from SFT pays for it");
}

#[test]
fn favourites_are_the_first_ranked_answers_of_rankings_that_prefer_something() {
    let seqs = |n: u32| (0..3).map(|j| vec![n, n + 1, 10 + j]).collect::<Vec<_>>();
    // one clear winner, two tied first, all tied (no favourite)
    let rankings = vec![(seqs(1), vec![1, 0, 2]), (seqs(2), vec![0, 1, 0]), (seqs(3), vec![0, 0, 0])];
    assert_eq!(favourite_answers(&rankings, &[]), vec![vec![(0, 1)], vec![(1, 0), (1, 2)]]);
    // a doubted ranking states none; flags missing for the last rankings doubt nothing
    assert_eq!(favourite_answers(&rankings, &[true, false, false]), vec![vec![(1, 0), (1, 2)]]);
    assert_eq!(favourite_answers(&rankings, &[false]), vec![vec![(0, 1)], vec![(1, 0), (1, 2)]]);
}

#[test]
fn the_reward_model_doubts_a_first_answer_it_puts_below_its_own_first_places() {
    // the person put answer 2 first; the reward model's places are 3, 0, 2, 1
    let (ranks, scores) = ([1, 2, 0, 3], [0.1, 0.9, 0.3, 0.5]);
    assert!(doubts_first(&ranks, &scores, 1, 0.0) && doubts_first(&ranks, &scores, 2, 0.0));
    assert!(!doubts_first(&ranks, &scores, 3, 0.0), "third of four is within three");
    // off, or no reward model yet: never doubted
    assert!(!doubts_first(&ranks, &scores, 0, 0.0) && !doubts_first(&ranks, &[], 2, 0.0));
    // two first answers: one within is enough; a tie with the last place within counts as within
    assert!(!doubts_first(&[0, 1, 0, 2], &[0.1, 0.9, 0.5, 0.3], 2, 0.0));
    assert!(doubts_first(&[0, 1, 0, 2], &[0.1, 0.9, 0.2, 0.5], 2, 0.0));
    assert!(!doubts_first(&[1, 0, 2, 3], &[0.9, 0.5, 0.5, 0.1], 2, 0.0));
}

#[test]
fn a_first_answer_is_doubted_only_where_the_reward_model_first_is_more_than_the_margin_above_it() {
    // the person put answer 2 first (0.25); the reward model's first is answer 1 (0.75): a gap of 0.5
    let (ranks, scores) = ([1, 2, 0, 3], [0.0, 0.75, 0.25, 0.5]);
    assert_eq!(first_gap(&ranks, &scores), 0.5);
    assert!(doubts_first(&ranks, &scores, 1, 0.0) && doubts_first(&ranks, &scores, 1, 0.375), "0.5 is more than 0.375");
    assert!(!doubts_first(&ranks, &scores, 1, 0.5) && !doubts_first(&ranks, &scores, 1, 0.625), "not more than 0.5");
    // the places still decide first: within two of four, however large the gap
    assert!(!doubts_first(&[1, 3, 2, 0], &[0.1, 5.0, 0.3, 0.5], 2, 0.0));
    // two first answers: the gap is to the better of them; agreement is a gap of 0
    assert!((first_gap(&[0, 1, 0, 2], &[0.1, 0.9, 0.2, 0.5]) - 0.7).abs() < 1e-6);
    assert_eq!(first_gap(&[1, 0, 2], &[0.2, 0.8, 0.8]), 0.0);
    // no scores (no reward model yet): no gap
    assert!(first_gap(&ranks, &[]).is_nan());
}

#[test]
fn the_first_answers_are_checked_while_the_reward_model_predicts_the_person_poorly() {
    assert!(checks_firsts(0.6, 0.7) && !checks_firsts(0.7, 0.7) && !checks_firsts(0.9, 0.7));
    assert!(checks_firsts(f32::NAN, 0.7), "no measure yet: checked");
    // 1, the default: always, an agreement of all the pairs included
    assert!(checks_firsts(0.99, 1.0) && checks_firsts(1.0, 1.0));
}

#[test]
fn favourite_rows_carry_loss_on_the_answer_only_and_widen_the_prose() {
    // prose: one row of t = 2; one ranking, prompt of 2 tokens [7, 8], answers of 2 and 3 tokens
    let prose = Batch { tokens: vec![1, 2], targets: vec![2, 3], b: 1, t: 2 };
    let rankings = vec![(vec![vec![7, 8, 20, 21], vec![7, 8, 30, 31, 32]], vec![1, 0])];
    let rows = pick_favourites(1, &favourite_answers(&rankings, &[]), &rankings, &[2], &mut Rng::new(1));
    let b = add_answer_rows(prose, &rows, 99);
    // the favourite [7 8 30 31 32] predicts 30, 31, 32 from positions 1..3; the prose row pads to t = 4
    assert_eq!((b.b, b.t), (2, 4));
    assert_eq!(b.tokens, vec![1, 2, 99, 99, 7, 8, 30, 31]);
    assert_eq!(b.targets, vec![2, 3, -1, -1, -1, 30, 31, 32]);
    // no rows asked, or no ranking with a favourite: the prose as it was
    let prose = Batch { tokens: vec![1, 2], targets: vec![2, 3], b: 1, t: 2 };
    let ties = vec![(vec![vec![7, 8, 20], vec![7, 8, 30]], vec![0, 0])];
    let rows = pick_favourites(2, &favourite_answers(&ties, &[]), &ties, &[2], &mut Rng::new(1));
    let same = add_answer_rows(prose, &rows, 99);
    assert_eq!((same.tokens, same.targets, same.b, same.t), (vec![1, 2], vec![2, 3], 1, 2));
}

#[test]
fn the_best_finished_answer_of_each_group_by_hand() {
    let mk =
        |group: usize, score: f32, finished: bool| Rollout { tokens: vec![1, 2, 3], prompt_len: 1, score, finished, group, ..Default::default() };
    // group 0: the cut-off answer scores highest and is passed over; group 1: all cut off; group 2:
    // a tie keeps the first
    let rs = vec![mk(0, 0.5, true), mk(0, 2.0, false), mk(0, 0.9, true), mk(1, 3.0, false), mk(2, 1.0, true), mk(2, 1.0, true)];
    assert_eq!(best_finished_by(&rs, |r| r.score), vec![2, 4]);
    assert!(best_finished_by(&[], |r| r.score).is_empty());
}

#[test]
fn sft_and_own_favourite_rows_follow_the_rankings_favourites() {
    let rankings = vec![(vec![vec![7, 8, 20, 21], vec![7, 8, 30, 31, 32]], vec![1, 0])];
    let firsts = favourite_answers(&rankings, &[]);
    let sft = vec![(vec![5u32, 40, 41], 1usize), (vec![5u32, 50, 51, 52], 1usize)];
    let own = vec![(vec![6u32, 60], 1usize)];
    let rows = gamma_answer_rows(1, &firsts, &rankings, &[2], &[(3, &sft), (2, &own)], &mut Rng::new(3));
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0], (&[7u32, 8, 30, 31, 32][..], 2));
    assert!(rows[1..4].iter().all(|r| sft.iter().any(|(s, p)| r.0 == &s[..] && r.1 == *p)));
    assert!(rows[4..].iter().all(|r| *r == (&[6u32, 60][..], 1)));
    // none drawn from an empty pool or without rows asked
    assert_eq!(gamma_answer_rows(1, &firsts, &rankings, &[2], &[(3, &[]), (2, &own)], &mut Rng::new(3)).len(), 3);
    assert_eq!(gamma_answer_rows(0, &firsts, &rankings, &[2], &[(0, &sft), (0, &own)], &mut Rng::new(3)).len(), 0);
}

#[test]
fn group_favourites_are_each_groups_best_finished_rollout() {
    let mk =
        |tokens: Vec<u32>, group: usize, score: f32, finished: bool| Rollout { tokens, prompt_len: 2, score, finished, group, ..Default::default() };
    // group 0: the second answer scores higher; group 1: its only finished answer, though lower
    // than its cut-off one
    let rs =
        vec![mk(vec![1, 2, 3], 0, 0.1, true), mk(vec![1, 2, 4], 0, 0.7, true), mk(vec![5, 6, 7], 1, 2.0, false), mk(vec![5, 6, 8], 1, -1.0, true)];
    assert_eq!(group_favourites(&rs, 0.0), vec![(vec![1, 2, 4], 2), (vec![5, 6, 8], 2)]);
    // by score less 0.5 × KL: group 0's second answer is 1.0 nats from SFT (0.7 − 0.5 = 0.2), its
    // first 0.2 (0.1 − 0.1 = 0.0): still the second; at 1.0 × KL the first (0.1 − 0.2 > 0.7 − 1.0)
    let mut rs = rs;
    (rs[0].logp_old, rs[0].logp_ref) = (vec![-1.0], vec![-1.2]);
    (rs[1].logp_old, rs[1].logp_ref) = (vec![-0.5, -0.5], vec![-1.0, -1.0]);
    assert_eq!(group_favourites(&rs, 0.5)[0], (vec![1, 2, 4], 2));
    assert_eq!(group_favourites(&rs, 1.0)[0], (vec![1, 2, 3], 2));
}

#[test]
fn sft_favourites_apply_until_the_ranking_asked() {
    let cfg = |sft_best, sft_best_until| PpoConfig { sft_best, sft_best_until, ..PpoConfig::default() };
    assert!(!sft_best_applies(&cfg(0, 0), 1), "none asked");
    assert!(sft_best_applies(&cfg(1, 0), 1000), "0: always");
    assert!(sft_best_applies(&cfg(1, 16), 16));
    assert!(!sft_best_applies(&cfg(1, 16), 17));
}

#[test]
fn own_favourites_apply_until_the_ranking_asked() {
    let cfg = |own_best, own_best_until| PpoConfig { own_best, own_best_until, ..PpoConfig::default() };
    assert!(!own_best_applies(&cfg(0, 0), 1), "none asked");
    assert!(!own_best_applies(&cfg(0, 16), 1), "none asked, whatever the limit");
    assert!(own_best_applies(&cfg(2, 0), 1000), "0: always");
    assert!(own_best_applies(&cfg(2, 16), 16));
    assert!(!own_best_applies(&cfg(2, 16), 17));
}
