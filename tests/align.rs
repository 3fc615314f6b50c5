//! The whole loop on `tiny` with the defaults a visitor gets: a labeler's rankings, the reward
//! model and PPO-ptx raise that labeler's win-rate against SFT on held-out prompts; K = 9 works end
//! to end; the lab's saved state round-trips and a bad one is refused whole.

use pollster::block_on;
use rlhf_lab::align::{win_rate, AlignConfig, Aligner};
use rlhf_lab::checkpoint::{Checkpoint, LabState, LAB_STATE_VERSION};
use rlhf_lab::config::ModelConfig;
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::Engine;
use rlhf_lab::error::{ErrorKind, Result};
use rlhf_lab::labelers::Labeler;
use rlhf_lab::options::Options;
use rlhf_lab::tokenizer::Tokenizer;

fn tiny() -> Checkpoint {
    Checkpoint::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/assets/tiny")).unwrap()
}

fn aligner(ck: &Checkpoint, cfg: AlignConfig) -> Aligner<CpuGpt> {
    let model = ck.cfg;
    let make = move |p: Vec<f32>, b: usize, t: usize| -> Result<CpuGpt> { CpuGpt::new(model, p, b, t) };
    Aligner::new(ck.params.clone(), ck.cfg, Tokenizer::from_json(&ck.tokenizer_json).unwrap(), cfg, &make).unwrap()
}

fn make_for(model: ModelConfig) -> impl Fn(Vec<f32>, usize, usize) -> Result<CpuGpt> {
    move |p, b, t| CpuGpt::new(model, p, b, t)
}

#[test]
fn the_defaults_raise_a_labelers_win_rate_on_tiny_and_the_same_seed_gives_the_same_run() {
    let ck = tiny();
    let make = make_for(ck.cfg);
    let labeler = Labeler::Concise;
    let metrics = |al: &mut Aligner<CpuGpt>, n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let (mut m, _) = block_on(al.iterate(Some(labeler), &make)).unwrap();
                (m.seconds_labeling, m.seconds_reward_model, m.seconds_generation, m.seconds_scoring, m.seconds_update) = (0.0, 0.0, 0.0, 0.0, 0.0);
                serde_json::to_string(&m).unwrap()
            })
            .collect()
    };
    let first = metrics(&mut aligner(&ck, AlignConfig::default()), 1);
    let again = metrics(&mut aligner(&ck, AlignConfig::default()), 1);
    assert_eq!(first, again, "the same seed must give the same metrics");

    let mut al = aligner(&ck, AlignConfig::default());
    let ms = metrics(&mut al, 16);
    assert_eq!(al.rankings.len(), 16, "one ranking per iteration");
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
    let prompts = al.eval_prompts.clone();
    let sc = al.sample_cfg();
    let win = block_on(win_rate(&mut al.policy, &mut al.reference, &al.tok, labeler, &prompts, 4, &sc, 99)).unwrap();
    assert!(win > 0.6, "win-rate of the aligned policy against SFT after 16 rankings: {win}");
    assert!(al.last_kl < 10.0, "KL to SFT {}", al.last_kl);
    // the held-out prompts were never used for rankings
    assert!(al.rankings.iter().all(|r| !prompts.contains(&r.prompt)));
}

#[test]
fn k_9_trains_end_to_end_and_the_lab_state_round_trips() {
    let ck = tiny();
    let make = make_for(ck.cfg);
    let mut cfg = AlignConfig::default();
    Options { k: Some(9), rollouts: Some(18), ..Default::default() }.apply(&mut cfg, &ck.cfg).unwrap();
    let mut al = aligner(&ck, cfg);
    for _ in 0..2 {
        let (m, new) = block_on(al.iterate(Some(Labeler::Cheerful), &make)).unwrap();
        assert!(new.iter().all(|r| r.responses.len() == 9), "rankings of nine answers");
        assert!(m.ppo.reward.is_finite() && m.rm_loss.is_finite());
    }
    // a person's ranking of nine, all tied, counts too
    let tied = al.rankings[0].clone();
    al.add_ranking(rlhf_lab::reward::Ranking { ranks: vec![0; 9], ..tied }).unwrap();

    let history = vec![serde_json::json!({ "iteration": 0 })];
    let state = block_on(al.snapshot(history.clone())).unwrap();
    let bytes = state.to_bytes().unwrap();
    let back = LabState::from_bytes(&bytes, &ck.cfg).unwrap();
    assert_eq!(back, state);
    let mut fresh = aligner(&ck, cfg);
    fresh.restore(back, &make).unwrap();
    assert_eq!(block_on(fresh.policy.params()).unwrap(), state.policy.params);
    assert_eq!(block_on(fresh.reward.engine.optimizer_state()).unwrap(), (state.reward.m.clone(), state.reward.v.clone()));
    assert_eq!((fresh.iteration, fresh.policy_steps, fresh.fitted_on), (2, state.policy_steps, 2));
    fresh.rankings = al.rankings.clone();
    block_on(fresh.iterate(None, &make)).unwrap();
}

#[test]
fn a_bad_lab_state_is_refused_whole_with_a_clear_message() {
    let ck = tiny();
    let make = make_for(ck.cfg);
    let mut al = aligner(&ck, AlignConfig::default());
    block_on(al.iterate(Some(Labeler::Polite), &make)).unwrap();
    let good = block_on(al.snapshot(Vec::new())).unwrap();
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
    let cut = good.to_bytes().unwrap()[..1000].to_vec();
    assert!(refused(&good, Some(cut)).contains("corrupted"));
    assert!(refused(&good, Some(b"not a state".to_vec())).contains("corrupted"));
    // the lab that refused a state keeps its own models
    let before = block_on(al.policy.params()).unwrap();
    let mut wrong = good.clone();
    wrong.model.n_layer = 3;
    assert!(al.restore(wrong, &make).is_err());
    assert_eq!(block_on(al.policy.params()).unwrap(), before);
}

/// Where the little-endian bytes of `vals` start in `bytes`.
fn find(bytes: &[u8], vals: &[f32]) -> usize {
    let needle: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    find_bytes(bytes, &needle)
}

fn find_bytes(bytes: &[u8], needle: &[u8]) -> usize {
    bytes.windows(needle.len()).position(|w| w == needle).expect("bytes present")
}
