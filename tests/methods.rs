//! The methods and the loop's rules against hand-computed cases: DPO's loss and gradient (and
//! finite differences), RLOO's leave-one-out advantages and loss weights, best-of-K's choice and
//! SFT weights, the KL brake, the reward ensemble's conservative score and disagreement, the replay
//! of rankings, a labeler's calibrated noise, and where an answer ends.

mod common;
use common::assert_close;

use rlhf_lab::corpus::{all_prompts, topic_of, TOPICS};
use rlhf_lab::lab::AlignConfig;
use rlhf_lab::labelers::{Labeler, Rule};
use rlhf_lab::methods::bok::{best_of_groups, sft_weights};
use rlhf_lab::methods::dpo::dpo_loss;
use rlhf_lab::methods::ppo::{brake_beta, brake_ceiling};
use rlhf_lab::methods::rloo::{rloo_advantages, rloo_weights};
use rlhf_lab::reward::{replay_schedule, Agreement, RmFit, RmMode, AGREEMENT_WINDOW};
use rlhf_lab::reward_ensemble::{conservative, disagreement, score_range};
use rlhf_lab::rng::Rng;
use rlhf_lab::rollout::Rollout;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn dpo_loss_by_hand_and_by_finite_differences() {
    // two answers, the first preferred: z = β·[(−3 − (−4)) − (−5 − (−4))] = 0.1·2 = 0.2
    let (loss, g) = dpo_loss(&[-3.0, -5.0], &[-4.0, -4.0], &[0, 1], 0.1);
    assert!((loss as f64 + sigmoid(0.2).ln()).abs() < 1e-6, "loss {loss}");
    let dz = -(1.0 - sigmoid(0.2)) * 0.1;
    assert_close("dL/dlog π", &g, &[dz as f32, -dz as f32], 1e-7, 1e-5);
    // a tie pulls the two implicit rewards together: ½[−log σ(z) − log σ(−z)]
    let (loss, g) = dpo_loss(&[-3.0, -5.0], &[-4.0, -4.0], &[0, 0], 0.1);
    assert!((loss as f64 + 0.5 * (sigmoid(0.2).ln() + sigmoid(-0.2).ln())).abs() < 1e-6);
    assert!(g[0] > 0.0 && g[1] < 0.0, "the likelier answer is pushed down: {g:?}");
    // K = 4 with a tie, against central differences of the loss
    let (logp, refp, ranks) = ([-10.0f32, -12.5, -9.0, -11.0], [-11.0f32, -12.0, -10.5, -10.0], [1usize, 0, 2, 1]);
    let (_, g) = dpo_loss(&logp, &refp, &ranks, 0.3);
    let num: Vec<f32> = (0..4)
        .map(|i| {
            let (mut up, mut down) = (logp, logp);
            up[i] += 1e-2;
            down[i] -= 1e-2;
            (dpo_loss(&up, &refp, &ranks, 0.3).0 - dpo_loss(&down, &refp, &ranks, 0.3).0) / 2e-2
        })
        .collect();
    assert_close("DPO gradient vs finite differences", &g, &num, 1e-4, 1e-2);
}

fn rollout(prompt_len: usize, actions: usize, score: f32, group: usize, finished: bool) -> Rollout {
    Rollout {
        tokens: vec![1; prompt_len + actions],
        prompt_len,
        logp_old: vec![-1.0; actions],
        logp_ref: vec![-1.0; actions],
        score,
        group,
        finished,
        ..Default::default()
    }
}

#[test]
fn rloo_advantages_and_weights_by_hand() {
    // scores 1, 2, 6 in one group (β = 0): baselines 4, 3.5, 1.5; no whitening
    let rs = [rollout(2, 2, 1.0, 0, true), rollout(2, 3, 2.0, 0, true), rollout(2, 1, 6.0, 0, true), rollout(1, 2, 5.0, 1, true)];
    assert_close("advantages", &rloo_advantages(&rs, 0.0), &[-3.0, -1.5, 4.5, 0.0], 1e-6, 1e-6);
    // the KL penalty enters the return: β·Σ(log π − log π_ref) over the answer
    let mut a = rollout(2, 2, 0.0, 0, true);
    a.logp_old = vec![-1.0, -1.0];
    a.logp_ref = vec![-2.0, -3.0];
    let adv = rloo_advantages(&[a, rollout(2, 2, 0.0, 0, true)], 0.5);
    assert_close("KL in the return", &adv, &[-1.5, 1.5], 1e-6, 1e-6);
    // weights on −log π: A_i / B at answer i's actions (positions prompt_len−1 ..)
    let (x, y) = (rollout(2, 2, 0.0, 0, true), rollout(1, 3, 0.0, 0, true));
    let w = rloo_weights(&[&x, &y], &[0.8, -0.4], 5);
    let mut want = vec![0.0f32; 10];
    (want[1], want[2]) = (0.4, 0.4);
    (want[5], want[6], want[7]) = (-0.2, -0.2, -0.2);
    assert_close("RLOO weights", &w, &want, 1e-7, 1e-6);
}

#[test]
fn best_of_k_keeps_each_groups_best_finished_answer() {
    let rs = [
        rollout(1, 2, 0.5, 0, true),
        rollout(1, 2, 2.0, 0, false), // cut off: never kept
        rollout(1, 2, 1.0, 0, true),
        rollout(1, 2, -1.0, 1, false),
        rollout(1, 3, 0.2, 2, true),
        rollout(1, 3, 0.1, 2, true),
    ];
    assert_eq!(best_of_groups(&rs), vec![2, 4]);
    // SFT's mean token loss per answer, averaged over answers: 1/(|y|·B) at each answer token
    let w = sft_weights(&[&rs[2], &rs[4]], 4);
    let mut want = vec![0.0f32; 8];
    (want[0], want[1]) = (0.25, 0.25);
    (want[4], want[5], want[6]) = (1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0);
    assert_close("SFT weights", &w, &want, 1e-7, 1e-6);
}

#[test]
fn the_kl_brake_raises_beta_above_the_ceiling_and_returns_below_it() {
    assert!((brake_beta(0.1, 0.1, 9.0, 6.0) - 0.15).abs() < 1e-7, "β × KL/ceiling");
    assert!((brake_beta(0.2, 0.1, 3.0, 6.0) - 0.18).abs() < 1e-7, "a fifth of the way back");
    assert_eq!(brake_beta(0.1, 0.1, 3.0, 6.0), 0.1, "never under the set β");
}

#[test]
fn the_brakes_ceiling_grows_per_ranking_from_where_the_policy_moves() {
    let (six, half) = (Some(6.0), Some(0.5));
    assert_eq!(brake_ceiling(six, None, 9, 4), six, "the fixed ceiling alone");
    assert_eq!(brake_ceiling(None, None, 9, 4), None, "no brake");
    assert_eq!(brake_ceiling(six, half, 2, 4), Some(0.5), "before the policy moves: one ranking's worth");
    assert_eq!(brake_ceiling(six, half, 4, 4), Some(0.5), "the ranking where it starts");
    assert_eq!(brake_ceiling(six, half, 9, 4), Some(3.0), "six rankings from the 4th");
    assert_eq!(brake_ceiling(six, half, 40, 4), six, "never over the ceiling");
    assert_eq!(brake_ceiling(None, half, 40, 4), Some(18.5), "grown alone without a ceiling");
    assert_eq!(brake_ceiling(six, half, 1, 0), Some(0.5), "a policy moving from the first ranking");
}

#[test]
fn the_ensembles_conservative_score_and_disagreement_by_hand() {
    // two members: mean 0.5 and spread 0.5 for each answer
    let all = vec![vec![1.0f32, 0.0], vec![0.0, 1.0]];
    assert_close("mean − spread", &conservative(&all, 1.0), &[0.0, 0.0], 1e-7, 1e-6);
    assert_close("mean", &conservative(&all, 0.0), &[0.5, 0.5], 1e-7, 1e-6);
    // the one pair: P(first wins) is σ(1) for one member and σ(−1) for the other
    let p = (sigmoid(1.0), sigmoid(-1.0));
    let spread = ((p.0 - p.1) / 2.0).abs();
    assert!((disagreement(&all) as f64 - spread).abs() < 1e-6);
    assert_eq!(disagreement(&[vec![1.0, 0.0]]), 0.0, "one member cannot disagree");
    // the range of the group's scores: one member's own, or the conservative ones
    assert_eq!(score_range(&[vec![0.5, -1.0, 2.0, 0.0]], 1.0), 3.0);
    let members = [vec![1.0, 0.0], vec![3.0, 0.0]];
    // means 2 and 0, spreads 1 and 0: conservative scores 2 − 0.5·1 = 1.5 and 0
    assert_eq!(score_range(&members, 0.5), 1.5);
}

#[test]
fn a_replay_takes_the_new_rankings_first_then_draws_the_others() {
    let mut rng = Rng::new(3);
    let s = replay_schedule(10, 2, 3, 4, &mut rng);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].len(), 3);
    assert_eq!(&s[0][0][..2], &[8, 9], "the two new rankings lead the first step");
    for step in &s[0] {
        let mut seen = step.clone();
        seen.sort();
        seen.dedup();
        assert_eq!((step.len(), seen.len()), (4, 4), "four rankings, none twice: {step:?}");
        assert!(step.iter().all(|&i| i < 10));
    }
    // fewer rankings than a step takes: every one of them, the new one first
    let s = replay_schedule(2, 1, 2, 4, &mut rng);
    assert_eq!(s[0][0], vec![1, 0]);
    let mut second = s[0][1].clone();
    second.sort();
    assert_eq!(second, vec![0, 1]);
}

#[test]
fn a_warm_fit_refits_afresh_up_to_its_limit_then_goes_on() {
    // the defaults' warm fit, refitted afresh while there are at most 16 rankings
    let fit = RmFit { refit_until: 16, ..AlignConfig::default().rm };
    assert_eq!(fit.mode, RmMode::Warm);
    assert_eq!(fit.mode_at(1), RmMode::Refit);
    assert_eq!(fit.mode_at(16), RmMode::Refit);
    assert_eq!(fit.mode_at(17), RmMode::Warm);
    let never = RmFit { refit_until: 0, ..fit };
    assert_eq!(never.mode_at(1), RmMode::Warm);
    let refit = RmFit { mode: RmMode::Refit, ..never };
    assert_eq!(refit.mode_at(100), RmMode::Refit);
}

#[test]
fn the_reward_models_agreement_pools_the_last_measures_by_pairs_and_sets_the_fits_steps() {
    let mut a = Agreement::default();
    assert!(a.share().is_nan(), "nothing measured yet");
    a.push(f32::NAN, 0); // an iteration before the first fit
    a.push(0.0, 0); // a ranking of ties only
    assert!(a.share().is_nan());
    a.push(1.0, 10);
    a.push(0.5, 30);
    // 10 + 15 of 40 pairs
    assert!((a.share() - 0.625).abs() < 1e-6, "{}", a.share());
    a.push(1.0, 20);
    a.push(1.0, 20);
    a.push(1.0, 20); // the window is full: the first measure leaves
    assert_eq!(a.recent.len(), AGREEMENT_WINDOW);
    // (15 + 20 + 20 + 20) of 90
    assert!((a.share() - 75.0 / 90.0).abs() < 1e-6, "{}", a.share());

    let off = AlignConfig::default().rm;
    assert_eq!((off.sure_steps, off.steps_at(1.0)), (0, off.steps), "off: always the steps");
    let sure = RmFit { sure_steps: 4, sure_accuracy: 0.75, ..off };
    assert_eq!(sure.steps_at(0.75), 4, "from the threshold on");
    assert_eq!(sure.steps_at(0.74), off.steps);
    assert_eq!(sure.steps_at(f32::NAN), off.steps, "not sure before any measure");
}

#[test]
fn a_noisy_labeler_reverses_about_the_share_of_pairs_asked() {
    // answers in every style to every topic, ranked many times: the share of pairs the rule orders
    // that come out reversed
    let mut rng = Rng::new(11);
    let mut noisy = Labeler::new(Rule::Gloomy).with_noise(0.25, 5).unwrap();
    let mut clean = Labeler::new(Rule::Gloomy);
    let (mut reversed, mut pairs) = (0usize, 0usize);
    for round in 0..40 {
        let t = &TOPICS[round % TOPICS.len()];
        let prompt = rlhf_lab::corpus::prompt_for(t, &mut rng);
        let answers: Vec<String> = (0..4).map(|_| rlhf_lab::corpus::respond(t, *rng.choose(&rlhf_lab::corpus::STYLES), &mut rng)).collect();
        let (a, b) = (noisy.rank(&prompt, &answers), clean.rank(&prompt, &answers));
        for i in 0..4 {
            for j in 0..4 {
                if b[i] < b[j] {
                    pairs += 1;
                    reversed += usize::from(a[i] > a[j]);
                }
            }
        }
    }
    let share = reversed as f32 / pairs as f32;
    assert!((share - 0.25).abs() < 0.06, "{reversed} of {pairs} pairs reversed: {share}");
    assert_eq!(Labeler::new(Rule::Polite).with_noise(0.0, 1).unwrap().noise(), 0.0);
    assert!(Labeler::new(Rule::Polite).with_noise(0.6, 1).is_err());
}

#[test]
fn every_grammar_question_has_its_topic_and_others_are_told_apart() {
    // all_prompts lists each topic's questions together, one per template
    let per_topic = all_prompts().len() / TOPICS.len();
    for (k, p) in all_prompts().iter().enumerate() {
        assert_eq!(topic_of(p), Some(k / per_topic), "{p}");
    }
    assert_eq!(topic_of("How do I walk my dog?"), Some(4));
    assert_eq!(topic_of("What is the capital of France?"), None);
}
