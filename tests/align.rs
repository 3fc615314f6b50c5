//! The whole loop on `tiny` with the defaults a visitor gets: a labeler's rankings, the reward
//! model and PPO-ptx raise that labeler's win-rate against SFT on held-out prompts; K = 9 works end
//! to end; the lab's saved state round-trips and a bad one is refused whole.

use pollster::block_on;
use rlhf_lab::checkpoint::{Checkpoint, LabState, LAB_STATE_VERSION};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::error::ErrorKind;
use rlhf_lab::lab::{answers_to, best_of_n_win_rate, win_rate, AlignConfig, Lab, FULL};
use rlhf_lab::labelers::{Labeler, Rule};
use rlhf_lab::options::Options;
use rlhf_lab::reward::{Ranking, RewardModel};
use rlhf_lab::tokenizer::Tokenizer;

fn tiny() -> Checkpoint {
    Checkpoint::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/assets/tiny")).unwrap()
}

fn lab(ck: &Checkpoint, cfg: AlignConfig) -> Lab<CpuGpt> {
    let model = ck.cfg;
    let make = move |p: Vec<f32>, b: usize, t: usize| CpuGpt::new(model, p, b, t);
    let lab = Lab::new(ck.params.clone(), ck.cfg, Tokenizer::from_json(&ck.tokenizer_json).unwrap(), cfg, Box::new(make)).unwrap();
    block_on(lab.start()).unwrap();
    lab
}

/// `n` iterations, the labeler ranking the group each offers; the metrics without their timings.
fn run(lab: &Lab<CpuGpt>, labeler: &mut Labeler, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            lab.rank_offered(labeler).unwrap().expect("a group is offered");
            let mut m = block_on(lab.iterate()).unwrap().metrics;
            (m.seconds_reward_model, m.seconds_generation, m.seconds_scoring, m.seconds_update) = (0.0, 0.0, 0.0, 0.0);
            serde_json::to_string(&m).unwrap()
        })
        .collect()
}

#[test]
fn the_defaults_raise_a_labelers_win_rate_on_tiny_and_the_same_seed_gives_the_same_run() {
    let ck = tiny();
    let mut labeler = Labeler::new(Rule::Concise);
    let first = run(&lab(&ck, AlignConfig::default()), &mut labeler, 1);
    let again = run(&lab(&ck, AlignConfig::default()), &mut labeler, 1);
    assert_eq!(first, again, "the same seed must give the same metrics");

    let al = lab(&ck, AlignConfig::default());
    let ms = run(&al, &mut labeler, 16);
    assert_eq!(al.rankings().len(), 16, "one ranking per iteration");
    let last: serde_json::Value = serde_json::from_str(ms.last().unwrap()).unwrap();
    for key in [
        "reward",
        "kl_k1",
        "kl_k3",
        "ptx_loglik",
        "policy_loss",
        "value_loss",
        "entropy",
        "clip_frac",
        "approx_kl",
        "objective",
        "beta",
        "rm_accuracy",
        "truncated",
    ] {
        assert!(last[key].as_f64().is_some_and(f64::is_finite), "metric {key} missing or not finite: {last}");
    }
    let point = block_on(al.evaluate(&labeler, FULL)).unwrap();
    let win = point.win_rate_vs_sft;
    assert!(win > 0.6, "win-rate of the aligned policy against SFT after 16 rankings: {win}");
    // the prose the γ term read and the held-out prose, measured with the point
    assert!(point.ptx_loglik_seen.is_finite() && point.ptx_loglik_seen < 0.0, "seen prose {}", point.ptx_loglik_seen);
    assert_ne!(point.ptx_loglik_seen, point.ptx_loglik, "two batches of prose, two measures");
    let kl = al.progress().unwrap().kl;
    assert!(kl < 10.0, "KL to SFT {kl}");
    // the held-out prompts were never used for rankings
    let held = al.eval_prompts();
    assert!(al.rankings().iter().all(|r| !held.contains(&r.prompt)));
}

#[test]
fn k_9_trains_end_to_end_and_the_lab_state_round_trips() {
    let ck = tiny();
    let mut cfg = AlignConfig::default();
    Options { k: Some(9), rollouts: Some(18), ..Default::default() }.apply(&mut cfg, &ck.cfg).unwrap();
    // the policy moves from the first ranking here, so two iterations train K = 9 end to end
    cfg.min_rankings = 0;
    let al = lab(&ck, cfg);
    let ms = run(&al, &mut Labeler::new(Rule::Cheerful), 2);
    assert!(al.rankings().iter().all(|r| r.responses.len() == 9), "rankings of nine answers");
    for m in &ms {
        let m: serde_json::Value = serde_json::from_str(m).unwrap();
        assert!(m["reward"].as_f64().is_some_and(f64::is_finite) && m["rm_loss"].as_f64().is_some_and(f64::is_finite), "{m}");
    }
    // a person's ranking of nine, all tied, counts too
    let tied = al.rankings()[0].clone();
    al.submit(Ranking { ranks: vec![0; 9], ..tied }, None).unwrap();

    let state = block_on(al.snapshot()).unwrap();
    assert_eq!(state.rm_agreement.len(), 1, "the second iteration measured the reward model on its new ranking");
    let bytes = state.to_bytes().unwrap();
    let back = LabState::from_bytes(&bytes, &ck.cfg).unwrap();
    assert_eq!(back, state);
    let fresh = lab(&ck, cfg);
    fresh.restore(back, al.rankings()).unwrap();
    let again = block_on(fresh.snapshot()).unwrap();
    assert_eq!(again, state, "everything saved came back");
    let p = fresh.progress().unwrap();
    assert_eq!((p.iterations, p.rankings_taken), (2, 2), "the tied ranking waits for the next iteration");
    assert!(fresh.ready());
    block_on(fresh.start()).unwrap();
    block_on(fresh.iterate()).unwrap();
    assert_eq!(fresh.progress().unwrap().rankings_taken, 3);
}

#[test]
fn a_reward_model_that_agrees_with_the_newest_rankings_takes_the_fewer_steps() {
    let ck = tiny();
    let steps = |cfg: AlignConfig| -> Vec<u64> {
        let ms = run(&lab(&ck, cfg), &mut Labeler::new(Rule::Cheerful), 3);
        ms.iter().map(|m| serde_json::from_str::<serde_json::Value>(m).unwrap()["rm_fit_steps"].as_u64().unwrap()).collect()
    };
    let d = AlignConfig::default();
    assert_eq!(steps(d), vec![8, 8, 8], "the defaults: always --rm-steps");
    // any measured agreement is enough here: the first fit has nothing measured, the next do
    let sure = AlignConfig { rm: rlhf_lab::reward::RmFit { sure_steps: 3, sure_accuracy: 0.0, ..d.rm }, ..d };
    assert_eq!(steps(sure), vec![8, 3, 3]);
}

#[test]
fn a_relevance_gate_trained_ahead_in_turns_or_from_a_later_ranking_acts_as_trained_at_once() {
    let ck = tiny();
    let d = AlignConfig::default();
    let gate = |from: usize| AlignConfig { rm: rlhf_lab::reward::RmFit { gate: 400, gate_from: from, ..d.rm }, ..d };
    // the policy first moves at the 4th ranking (`min_rankings`); 400 gate steps lower one of
    // tiny's answers there. `ahead`: the gate trained in the lab's spare turns before any ranking
    let metrics = |cfg: AlignConfig, ahead: bool| {
        let l = lab(&ck, cfg);
        if ahead {
            let turns = 1 + std::iter::repeat_with(|| block_on(l.prepare()).unwrap()).take_while(|&left| left).count();
            assert_eq!(turns, if cfg.rm.gate > 0 { 400 / 10 } else { 1 }, "10 steps a turn; without a gate, nothing to do");
        }
        run(&l, &mut Labeler::new(Rule::Concise), 4)
    };
    let none = metrics(d, true);
    let at_once = metrics(gate(1), false);
    assert_ne!(at_once, none, "a gate from the first ranking lowers some of tiny's answers");
    assert_eq!(metrics(gate(1), true), at_once, "in turns or at once, the same gate");
    assert_eq!(metrics(gate(5), true), none, "trained ahead, the gate changes nothing before its first ranking");
    assert_eq!(metrics(gate(5), false), none);
}

#[test]
fn a_weight_averaged_reward_model_changes_only_the_rewards_the_policy_optimizes() {
    let ck = tiny();
    let d = AlignConfig::default();
    let avg = |a: f32, members: usize| AlignConfig { rm: rlhf_lab::reward::RmFit { average: a, members, ..d.rm }, ..d };
    let none = run(&lab(&ck, d), &mut Labeler::new(Rule::Concise), 4);
    let half = run(&lab(&ck, avg(0.5, 1)), &mut Labeler::new(Rule::Concise), 4);
    // the policy first moves at the 4th ranking (`min_rankings`): until it has, the runs are one
    assert_eq!(half[..3], none[..3], "nothing scores for the policy before the 4th ranking");
    let field = |m: &str, k: &str| serde_json::from_str::<serde_json::Value>(m).unwrap()[k].clone();
    assert_eq!(field(&half[3], "rm_loss"), field(&none[3], "rm_loss"), "the fitted reward model learns as before");
    assert_ne!(field(&half[3], "reward"), field(&none[3], "reward"), "the policy's rewards are the average's");
    let model = ck.cfg;
    let make = move |p: Vec<f32>, b: usize, t: usize| CpuGpt::new(model, p, b, t);
    let tok = Tokenizer::from_json(&ck.tokenizer_json).unwrap();
    let e = Lab::new(ck.params.clone(), ck.cfg, tok, avg(0.5, 3), Box::new(make)).err().expect("an ensemble has no one model to average");
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("--rm-average"), "{e}");
}

#[test]
fn a_bad_lab_state_is_refused_whole_with_a_clear_message() {
    let ck = tiny();
    let al = lab(&ck, AlignConfig::default());
    run(&al, &mut Labeler::new(Rule::Polite), 1);
    let good = block_on(al.snapshot()).unwrap();
    let refused = |s: &LabState, bytes: Option<Vec<u8>>| {
        let bytes = bytes.unwrap_or_else(|| s.to_bytes().unwrap());
        let e = LabState::from_bytes(&bytes, &ck.cfg).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadState, "{e}");
        e.message
    };
    // a NaN weight is neither saved nor loaded
    let mut nan = good.clone();
    nan.policy.params[7] = f32::NAN;
    assert!(nan.to_bytes().unwrap_err().message.contains("policy holds NaN"));
    let mut bytes = good.to_bytes().unwrap();
    let at = find(&bytes, &good.policy.params[..4]);
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(refused(&good, Some(bytes)).contains("the saved policy holds NaN or infinity"));
    // another model, another version, a cut file, a missing model
    let mut other = good.clone();
    other.model.n_embd = 64;
    assert!(refused(&other, None).contains("not this model"));
    let mut old = good.to_bytes().unwrap();
    let at = find_bytes(&old, format!("\\\"version\\\":{LAB_STATE_VERSION}").as_bytes());
    let digit = at + "\\\"version\\\":".len();
    old[digit] = b'1'; // the same length keeps the file whole: only the version differs
    assert!(refused(&good, Some(old)).contains("version 1"));
    // an agreement share outside [0, 1]; a state saved before the agreement was kept reads none
    let mut odd = good.clone();
    odd.rm_agreement = vec![(1.5, 10)];
    assert!(refused(&odd, None).contains("agreement"));
    let mut measured = good.clone();
    measured.rm_agreement = vec![(0.5, 12)];
    let mut older = measured.to_bytes().unwrap();
    let at = find_bytes(&older, b"\\\"rm_agreement\\\":[[0.5,12]]");
    older[at + 2] = b'x'; // the same length: a key this lab does not read
    assert_eq!(LabState::from_bytes(&older, &ck.cfg).unwrap().rm_agreement, vec![]);
    let cut = good.to_bytes().unwrap()[..1000].to_vec();
    assert!(refused(&good, Some(cut)).contains("corrupted"));
    assert!(refused(&good, Some(b"not a state".to_vec())).contains("corrupted"));
    // the lab that refused a state keeps its own models
    let before = block_on(al.snapshot()).unwrap();
    let mut wrong = good.clone();
    wrong.model.n_layer = 3;
    assert!(al.restore(wrong, al.rankings()).is_err());
    let mut other_method = good.clone();
    other_method.method = "dpo".into();
    assert!(al.restore(other_method, al.rankings()).unwrap_err().message.contains("trained with dpo"));
    assert_eq!(block_on(al.snapshot()).unwrap(), before);
}

/// Where the little-endian bytes of `vals` start in `bytes`.
fn find(bytes: &[u8], vals: &[f32]) -> usize {
    let needle: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    find_bytes(bytes, &needle)
}

fn find_bytes(bytes: &[u8], needle: &[u8]) -> usize {
    bytes.windows(needle.len()).position(|w| w == needle).expect("bytes present")
}

#[test]
fn best_of_n_by_the_labeler_never_loses_to_fewer_draws() {
    // each draw count's answers include the fewer draws' (the same seeds), so the labeler's
    // favourite of more scores at least as high, answer by answer
    let ck = tiny();
    let tok = Tokenizer::from_json(&ck.tokenizer_json).unwrap();
    let (mut a, mut b) =
        (CpuGpt::new(ck.cfg, ck.params.clone(), 4, ck.cfg.n_ctx).unwrap(), CpuGpt::new(ck.cfg, ck.params.clone(), 4, ck.cfg.n_ctx).unwrap());
    let prompts: Vec<String> = rlhf_lab::corpus::prompt_split().1.into_iter().take(6).collect();
    let (labeler, sc) = (Labeler::new(Rule::Cheerful), AlignConfig::default().sample());
    let win = |n: usize, a: &mut CpuGpt, b: &mut CpuGpt| {
        block_on(best_of_n_win_rate(a, b, &tok, &labeler, None::<&mut RewardModel<CpuGpt>>, &prompts, 2, n, &sc, 9)).unwrap()
    };
    let one = block_on(win_rate(&mut a, &mut b, &tok, &labeler, &prompts, 2, &sc, 9)).unwrap();
    assert_eq!(win(1, &mut a, &mut b), one, "one draw is the plain win-rate");
    let (three, eight) = (win(3, &mut a, &mut b), win(8, &mut a, &mut b));
    assert!(one <= three && three <= eight, "{one} {three} {eight}");
    assert!(eight > one, "eight draws won no pair more than one: the check above could not fail ({one})");
    assert!(
        block_on(best_of_n_win_rate(&mut a, &mut b, &tok, &labeler, None::<&mut RewardModel<CpuGpt>>, &prompts, 2, 0, &sc, 9)).is_err(),
        "zero draws is refused"
    );
}

#[test]
fn a_win_rates_answers_drawn_as_one_batch_of_groups_are_each_prompts_own() {
    // the curve draws every prompt's answers at once (on shards, the groups decoding in step);
    // each prompt's must be the ones a draw of that prompt alone with its seed gives
    let ck = tiny();
    let tok = Tokenizer::from_json(&ck.tokenizer_json).unwrap();
    let prompts: Vec<String> = rlhf_lab::corpus::prompt_split().1.into_iter().take(5).collect();
    let sc = AlignConfig::default().sample();
    let mut one = CpuGpt::new(ck.cfg, ck.params.clone(), 4, ck.cfg.n_ctx).unwrap();
    let alone: Vec<Vec<String>> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| block_on(rlhf_lab::sample::answers(&mut one, &tok, &tok.prompt_ids(p, ck.cfg.n_ctx).unwrap(), 3, &sc, 40 + i as u64)).unwrap())
        .collect();
    assert_eq!(block_on(answers_to(&mut one, &tok, &prompts, 3, &sc, 40)).unwrap(), alone, "one engine");
    let rows = rlhf_lab::shard::shard_rows(4, 2);
    let mut two = rlhf_lab::shard::Sharded::new(
        CpuGpt::new(ck.cfg, ck.params.clone(), rows, ck.cfg.n_ctx).unwrap(),
        vec![rlhf_lab::shard::LocalShard::new(CpuGpt::new(ck.cfg, ck.params.clone(), rows, ck.cfg.n_ctx).unwrap())],
        4,
    );
    assert_eq!(block_on(answers_to(&mut two, &tok, &prompts, 3, &sc, 40)).unwrap(), alone, "two shards");
    let distinct: std::collections::HashSet<&String> = alone.iter().flatten().collect();
    assert!(distinct.len() > 5, "the prompts' answers are not all alike, so a swap would show: {alone:?}");
}

#[test]
fn the_learning_curves_sft_answers_are_drawn_once_and_are_those_a_fresh_draw_gives() {
    // the lab keeps the reference's answers between points; each point must equal the win-rate
    // drawn afresh from the policy it had then and the reference
    let ck = tiny();
    let tok = Tokenizer::from_json(&ck.tokenizer_json).unwrap();
    let cfg = AlignConfig::default();
    let lab = lab(&ck, cfg);
    let mut labeler = Labeler::new(Rule::Cheerful);
    let protocol = rlhf_lab::lab::QUICK;
    let prompts: Vec<String> = rlhf_lab::corpus::prompt_split().1.into_iter().take(protocol.prompts).collect();
    let fresh = |policy: Vec<f32>, labeler: &Labeler| {
        let (mut a, mut b) =
            (CpuGpt::new(ck.cfg, policy, 4, ck.cfg.n_ctx).unwrap(), CpuGpt::new(ck.cfg, ck.params.clone(), 4, ck.cfg.n_ctx).unwrap());
        block_on(win_rate(&mut a, &mut b, &tok, labeler, &prompts, protocol.samples, &cfg.sample(), cfg.seed ^ rlhf_lab::settings::SALT_EVAL))
            .unwrap()
    };
    let first = block_on(lab.evaluate(&labeler, protocol)).unwrap();
    assert_eq!(first.win_rate_vs_sft, fresh(ck.params.clone(), &labeler), "the first point, SFT against itself");
    run(&lab, &mut labeler, cfg.min_rankings + 1);
    let moved = block_on(lab.snapshot()).unwrap().policy.params;
    assert_ne!(moved, ck.params, "the policy moved, so the second point is not the first again");
    let second = block_on(lab.evaluate(&labeler, protocol)).unwrap();
    assert_eq!(second.win_rate_vs_sft, fresh(moved, &labeler), "a later point, the reference's answers kept");
}
