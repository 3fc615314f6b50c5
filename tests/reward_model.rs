//! The ranking loss against its direct formula, and a reward model that learns a labeler's taste.

mod common;
use common::assert_close;

use pollster::block_on;
use rlhf_lab::config::preset;
use rlhf_lab::corpus::{prompt_for, respond, STYLES, TOPICS};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::labelers::Labeler;
use rlhf_lab::params::ParamLayout;
use rlhf_lab::reward::{dialogue_ids, ranking_loss, ranking_pairs, Ranking, RewardModel};
use rlhf_lab::rng::Rng;
use rlhf_lab::tokenizer::Tokenizer;

/// −1/P Σ_{i ranked above j} log σ(r_i − r_j), written out in f64.
fn direct(r: &[f32], ranks: &[usize]) -> f64 {
    let mut sum = 0.0;
    let mut pairs = 0;
    for i in 0..r.len() {
        for j in 0..r.len() {
            if ranks[i] < ranks[j] {
                let d = (r[i] - r[j]) as f64;
                sum += (1.0 / (1.0 + (-d).exp())).ln();
                pairs += 1;
            }
        }
    }
    -sum / pairs as f64
}

#[test]
fn ranking_loss_and_gradient_match_the_direct_formula_for_k_2_to_9_with_ties() {
    let mut rng = Rng::new(1);
    for k in 2usize..=9 {
        for _ in 0..5 {
            let r: Vec<f32> = (0..k).map(|_| rng.normal() * 2.0).collect();
            // ranks with ties: k/2 distinct levels at most
            let mut ranks: Vec<usize> = (0..k).map(|_| rng.below(k.div_ceil(2) + 1)).collect();
            if ranking_pairs(&ranks).is_empty() {
                ranks[0] = 0;
                ranks[1] = 1;
            }
            let untied = ranking_pairs(&ranks).len();
            let ties = (0..k).flat_map(|i| (i + 1..k).map(move |j| (i, j))).filter(|&(i, j)| ranks[i] == ranks[j]).count();
            assert_eq!(untied + ties, k * (k - 1) / 2, "every pair is either ordered or tied");
            let (loss, grad) = ranking_loss(&r, &ranks);
            assert!((loss as f64 - direct(&r, &ranks)).abs() < 1e-5, "K={k}: {loss} vs {}", direct(&r, &ranks));
            let num: Vec<f32> = (0..k)
                .map(|i| {
                    let (mut up, mut down) = (r.clone(), r.clone());
                    up[i] += 1e-3;
                    down[i] -= 1e-3;
                    ((direct(&up, &ranks) - direct(&down, &ranks)) / 2e-3) as f32
                })
                .collect();
            assert_close(&format!("K={k} gradient"), &grad, &num, 1e-4, 1e-3);
            // tied responses get equal treatment: swapping their rewards permutes the gradient
            assert!(grad.iter().sum::<f32>().abs() < 1e-5, "the loss only sees differences");
        }
    }
    let bad = Ranking { prompt: "p".into(), responses: vec!["a".into(), "b".into()], ranks: vec![0, 0] };
    assert!(bad.validate().is_err());
    let bad = Ranking { prompt: "p".into(), responses: vec!["a".into(); 10], ranks: (0..10).collect() };
    assert!(bad.validate().is_err());
}

#[test]
fn the_reward_model_learns_a_labelers_ranking_and_generalizes() {
    let p = preset("tiny").unwrap();
    let mut rng = Rng::new(2);
    let corpus_text: Vec<String> = (0..600)
        .map(|_| {
            let t = &TOPICS[rng.below(TOPICS.len())];
            rlhf_lab::corpus::format_dialogue(&prompt_for(t, &mut rng), &respond(t, *rng.choose(&STYLES), &mut rng))
        })
        .collect();
    let tok = Tokenizer::train(&corpus_text, p.model.vocab_size).unwrap();
    let labeler = Labeler::Polite;
    let make = |rng: &mut Rng| {
        let t = &TOPICS[rng.below(TOPICS.len())];
        let prompt = prompt_for(t, rng);
        let responses: Vec<String> = (0..4).map(|_| respond(t, *rng.choose(&STYLES), rng)).collect();
        let ranks = labeler.rank(&prompt, &responses);
        let seqs = responses.iter().map(|y| dialogue_ids(&tok, &prompt, y, p.model.n_ctx).unwrap()).collect();
        (seqs, ranks)
    };
    let train: Vec<_> = (0..120).map(|_| make(&mut rng)).collect();
    let held: Vec<_> = (0..40).map(|_| make(&mut rng)).collect();
    let engine = CpuGpt::new(p.model, ParamLayout::new(&p.model).init(3), 9, p.model.n_ctx).unwrap();
    let mut rm = RewardModel::new(engine, 4);
    let before = block_on(rm.evaluate(&held, tok.end)).unwrap();
    for _ in 0..10 {
        for chunk in train.chunks(4) {
            block_on(rm.train_step(chunk, tok.end, 2e-3, 1.0)).unwrap();
        }
    }
    let after = block_on(rm.evaluate(&held, tok.end)).unwrap();
    assert!(after.accuracy > 0.8 && after.loss < before.loss, "held-out accuracy {} -> {}, loss {} -> {}", before.accuracy, after.accuracy, before.loss, after.loss);
    // normalization: the given sequences then score mean 0
    let demos: Vec<Vec<u32>> = train.iter().take(10).map(|(s, _)| s[0].clone()).collect();
    block_on(rm.normalize(&demos, tok.end)).unwrap();
    let mean = block_on(rm.score(&demos, tok.end)).unwrap().iter().sum::<f32>() / 10.0;
    assert!(mean.abs() < 1e-4, "mean after normalization {mean}");
}
