//! The whole loop on `tiny`: a base model built from scratch, then rankings by a scripted labeler,
//! the reward model and PPO-ptx raise that labeler's win-rate against SFT on held-out prompts.

use pollster::block_on;
use rlhf_lab::align::{win_rate, AlignConfig, Aligner};
use rlhf_lab::config::preset;
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::error::Result;
use rlhf_lab::labelers::Labeler;
use rlhf_lab::ppo::PpoConfig;
use rlhf_lab::sample::SampleConfig;
use rlhf_lab::train::build_base_model;

fn cpu(p: Vec<f32>, b: usize, t: usize) -> Result<CpuGpt> {
    let cfg = preset("tiny").unwrap().model;
    CpuGpt::new(cfg, p, b, t)
}

fn config(iterations: usize) -> AlignConfig {
    AlignConfig {
        iterations,
        rankings_per_iteration: 16,
        rollouts: 32,
        rm_lr: 2e-3,
        rm_epochs: 4,
        seed: 1,
        ppo: PpoConfig { gamma: 0.1, lr: 3e-4, value_lr: 3e-4, ..Default::default() },
        ..Default::default()
    }
}

#[test]
fn align_on_tiny_raises_the_labelers_win_rate_and_is_deterministic() {
    let p = preset("tiny").unwrap();
    let base = block_on(build_base_model(&p, p.train.seed, p.train.pretrain_steps, p.train.sft_steps, &cpu, |_, _| {})).unwrap();
    let tok_json = base.tokenizer.to_json().unwrap();
    let tok = || rlhf_lab::tokenizer::Tokenizer::from_json(&tok_json).unwrap();

    // the same seed gives the same run
    let run = |iters: usize| {
        let mut al = Aligner::new(base.params.clone(), p.model, tok(), Labeler::Polite, config(iters), &cpu).unwrap();
        let metrics: Vec<String> = (0..iters)
            .map(|_| {
                let mut m = block_on(al.iterate(&cpu)).unwrap();
                (m.seconds_labeling, m.seconds_reward_model, m.seconds_generation, m.seconds_scoring, m.seconds_update) = (0.0, 0.0, 0.0, 0.0, 0.0);
                serde_json::to_string(&m).unwrap()
            })
            .collect();
        (al, metrics)
    };
    let (_, first) = run(1);
    let (_, again) = run(1);
    assert_eq!(first, again, "the same seed must give the same metrics");

    let (mut al, metrics) = run(10);
    let last: serde_json::Value = serde_json::from_str(metrics.last().unwrap()).unwrap();
    for key in ["reward", "kl_k1", "kl_k3", "ptx_loglik", "policy_loss", "value_loss", "entropy", "clip_frac", "approx_kl", "objective", "beta", "rm_accuracy"] {
        assert!(last[key].as_f64().is_some_and(f64::is_finite), "metric {key} missing or not finite: {last}");
    }
    let sc = SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 48 };
    let prompts = al.eval_prompts.clone();
    let win = block_on(win_rate(&mut al.policy, &mut al.reference, &al.tok, Labeler::Polite, &prompts, 4, &sc, 99)).unwrap();
    assert!(win > 0.6, "win-rate of the aligned policy against SFT: {win}");
    assert!(al.last_kl < 15.0, "KL to SFT {}", al.last_kl);
    // the held-out prompts were never used for rankings or rollouts
    assert!(al.rankings.iter().chain(&al.heldout).all(|r| !prompts.contains(&r.prompt)));
}
