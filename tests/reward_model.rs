//! The ranking loss against its direct formula, and a reward model that learns a labeler's taste.

mod common;
use common::assert_close;

use pollster::block_on;
use rlhf_lab::config::preset;
use rlhf_lab::config::AdamSettings;
use rlhf_lab::corpus::{prompt_for, respond, Topic, STYLES, TOPICS};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::Engine;
use rlhf_lab::labelers::{Labeler, Rule};
use rlhf_lab::params::ParamLayout;
use rlhf_lab::relevance::{GateData, RelevanceGate};
use rlhf_lab::reward::{
    dialogue_ids, loss_with_others, mean_std, other_answers, pair_weights, ranking_loss, ranking_pairs, relevance_rankings, smoothed_ranking_loss,
    weighted_ranking_loss, PairWeight, Ranking, RewardModel, RewardRead, RmFit, StepOpt,
};
use rlhf_lab::reward_average::AveragedReward;
use rlhf_lab::rng::Rng;
use rlhf_lab::settings::AlignConfig;
use rlhf_lab::tokenizer::Tokenizer;

/// −1/C(K,2)·Σ over all pairs: log σ(r_i − r_j) for i ranked above j, ½[log σ(d) + log σ(−d)] for a
/// tie; written out in f64.
fn direct(r: &[f32], ranks: &[usize]) -> f64 {
    let log_sig = |d: f64| (1.0 / (1.0 + (-d).exp())).ln();
    let k = r.len();
    let mut sum = 0.0;
    for i in 0..k {
        for j in i + 1..k {
            let d = (r[i] - r[j]) as f64;
            sum += match ranks[i].cmp(&ranks[j]) {
                std::cmp::Ordering::Less => log_sig(d),
                std::cmp::Ordering::Greater => log_sig(-d),
                std::cmp::Ordering::Equal => 0.5 * (log_sig(d) + log_sig(-d)),
            };
        }
    }
    -sum / (k * (k - 1) / 2) as f64
}

#[test]
fn ranking_loss_and_gradient_match_the_direct_formula_for_k_2_to_9_with_ties() {
    let mut rng = Rng::new(1);
    for k in 2usize..=9 {
        for _ in 0..5 {
            let r: Vec<f32> = (0..k).map(|_| rng.normal() * 2.0).collect();
            // ranks with ties: k/2 distinct levels at most
            let ranks: Vec<usize> = (0..k).map(|_| rng.below(k.div_ceil(2) + 1)).collect();
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
    // a ranking that ties everything still counts: it says the differences do not matter
    let tied = Ranking { prompt: "p".into(), responses: vec!["a".into(), "b".into()], ranks: vec![0, 0] };
    assert!(tied.validate().is_ok());
    let bad = Ranking { prompt: "p".into(), responses: vec!["a".into(); 10], ranks: (0..10).collect() };
    assert!(bad.validate().is_err());
}

#[test]
fn ranking_loss_by_hand_with_ties() {
    // K = 2, r = (1, 0), ranked: −log σ(1) = 0.31326; tied: ½[−log σ(1) − log σ(−1)] = ½(0.31326 + 1.31326)
    let (l, g) = ranking_loss(&[1.0, 0.0], &[0, 1]);
    assert!((l - 0.313_262).abs() < 1e-5 && (g[0] + 0.268_941).abs() < 1e-5 && (g[1] - 0.268_941).abs() < 1e-5, "{l} {g:?}");
    let (l, g) = ranking_loss(&[1.0, 0.0], &[0, 0]);
    // d/dr0 = ½[−σ(−1) + σ(1)] = ½(0.73106 − 0.26894): a tie pulls the two rewards together
    assert!((l - 0.813_262).abs() < 1e-5 && (g[0] - 0.231_059).abs() < 1e-5 && (g[1] + 0.231_059).abs() < 1e-5, "{l} {g:?}");
    // K = 3, equal rewards: every pair, tied or not, costs log 2, and C(3,2) = 3 pairs average to log 2
    let (l, _) = ranking_loss(&[0.5, 0.5, 0.5], &[0, 0, 1]);
    assert!((l - std::f32::consts::LN_2).abs() < 1e-6);
    // the loss is normalized by C(K,2): K = 4 fully ordered with a margin of 2 between neighbours
    let r = [6.0f32, 4.0, 2.0, 0.0];
    let by_hand: f32 = [2.0f32, 4.0, 6.0, 2.0, 4.0, 2.0].iter().map(|d| (1.0 + (-d).exp()).ln()).sum::<f32>() / 6.0;
    assert!((ranking_loss(&r, &[0, 1, 2, 3]).0 - by_hand).abs() < 1e-6);
}

#[test]
fn smoothed_ranking_loss_by_hand() {
    // K = 2, r = (1, 0), ranked, ε = 0.1: −[0.9·log σ(1) + 0.1·log σ(−1)] = 0.9·0.31326 + 0.1·1.31326
    let (l, g) = smoothed_ranking_loss(&[1.0, 0.0], &[0, 1], 0.1);
    // d/dr0 = −0.9·σ(−1) + 0.1·σ(1) = −0.9·0.268941 + 0.1·0.731059
    assert!((l - 0.413_262).abs() < 1e-5 && (g[0] + 0.168_941).abs() < 1e-5 && (g[1] - 0.168_941).abs() < 1e-5, "{l} {g:?}");
    // its minimum: no pull at the margin log((1−ε)/ε) = log 9, a push back beyond it
    let d = 9.0f32.ln();
    let (_, g) = smoothed_ranking_loss(&[d, 0.0], &[0, 1], 0.1);
    assert!(g[0].abs() < 1e-6, "{g:?}");
    assert!(smoothed_ranking_loss(&[d + 1.0, 0.0], &[0, 1], 0.1).1[0] > 0.0);
    // ε = 0 is the plain loss, and a tie is smoothed already: ε leaves it alone
    let r = [0.3f32, -1.2, 2.0, 0.1];
    for ranks in [[0usize, 1, 2, 3], [1, 1, 0, 2]] {
        assert_eq!(smoothed_ranking_loss(&r, &ranks, 0.0), ranking_loss(&r, &ranks));
    }
    assert_eq!(smoothed_ranking_loss(&[1.0, 0.0], &[0, 0], 0.1), ranking_loss(&[1.0, 0.0], &[0, 0]));
}

#[test]
fn rank_distance_weights_by_hand() {
    // K = 3, strict: distances 1, 2, 1 (pairs 01, 02, 12), mean 4/3, so weights 3/4, 3/2, 3/4
    let w = pair_weights(&[0, 1, 2], PairWeight::RankDistance);
    assert!(w.iter().zip([0.75, 1.5, 0.75]).all(|(a, b)| (a - b).abs() < 1e-6), "{w:?}");
    // at equal rewards each pair costs log 2, so the weights (summing to the pairs) keep the loss;
    // the gradient: d/dr0 = −(3/4 + 3/2)·σ(0)·(1/3) = −0.375, d/dr1 = 0, d/dr2 = +0.375 (uniform: ∓1/3)
    let (l, g) = weighted_ranking_loss(&[0.0; 3], &[0, 1, 2], 0.0, PairWeight::RankDistance);
    assert!((l - 2f32.ln()).abs() < 1e-6 && (g[0] + 0.375).abs() < 1e-6 && g[1].abs() < 1e-6 && (g[2] - 0.375).abs() < 1e-6, "{l} {g:?}");
    // with ties: ranks (0, 1, 1, 3) give untied distances 1, 1, 3, 2, 2 (mean 9/5) and a tie counted 1
    let w = pair_weights(&[0, 1, 1, 3], PairWeight::RankDistance);
    let by_hand = [5.0 / 9.0, 5.0 / 9.0, 15.0 / 9.0, 1.0, 10.0 / 9.0, 10.0 / 9.0];
    assert!(w.iter().zip(by_hand).all(|(a, b)| (a - b).abs() < 1e-6), "{w:?}");
    // where every untied pair lies equally far apart (K = 2, or two tiers) it is the uniform loss
    let r = [0.3f32, -1.2, 2.0, 0.1];
    for ranks in [[0usize, 0, 2, 2], [1, 1, 1, 0]] {
        let (a, b) = (weighted_ranking_loss(&r, &ranks, 0.0, PairWeight::RankDistance), ranking_loss(&r, &ranks));
        assert!((a.0 - b.0).abs() < 1e-6 && a.1.iter().zip(&b.1).all(|(x, y)| (x - y).abs() < 1e-6), "{a:?} {b:?}");
    }
    // uniform is the smoothed loss exactly, and the weighted gradient matches finite differences
    assert_eq!(weighted_ranking_loss(&r, &[0, 1, 2, 3], 0.1, PairWeight::Uniform), smoothed_ranking_loss(&r, &[0, 1, 2, 3], 0.1));
    let ranks = [2usize, 0, 3, 1];
    let (_, g) = weighted_ranking_loss(&r, &ranks, 0.1, PairWeight::RankDistance);
    for i in 0..4 {
        let (mut up, mut down) = (r, r);
        up[i] += 1e-2;
        down[i] -= 1e-2;
        let fd = (weighted_ranking_loss(&up, &ranks, 0.1, PairWeight::RankDistance).0
            - weighted_ranking_loss(&down, &ranks, 0.1, PairWeight::RankDistance).0)
            / 2e-2;
        assert!((fd - g[i]).abs() < 1e-3, "{i}: {fd} {}", g[i]);
    }
}

/// A tokenizer trained on `n` dialogues of the grammar (random topics and styles).
fn grammar_tokenizer(n: usize, vocab_size: usize, rng: &mut Rng) -> Tokenizer {
    let text: Vec<String> = (0..n)
        .map(|_| {
            let t = &TOPICS[rng.below(TOPICS.len())];
            rlhf_lab::corpus::format_dialogue(&prompt_for(t, rng), &respond(t, *rng.choose(&STYLES), rng))
        })
        .collect();
    Tokenizer::train(&text, vocab_size).unwrap()
}

#[test]
fn the_reward_model_learns_a_labelers_ranking_and_generalizes() {
    let p = preset("tiny").unwrap();
    let mut rng = Rng::new(2);
    let tok = grammar_tokenizer(600, p.model.vocab_size, &mut rng);
    let mut labeler = Labeler::new(Rule::Polite);
    let mut make = |rng: &mut Rng| {
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
    let step = step_at(2e-3);
    for _ in 0..10 {
        for chunk in train.chunks(4) {
            block_on(rm.train_step(chunk, tok.end, &step)).unwrap();
        }
    }
    let after = block_on(rm.evaluate(&held, tok.end)).unwrap();
    assert!(
        after.accuracy > 0.8 && after.loss < before.loss,
        "held-out accuracy {} -> {}, loss {} -> {}",
        before.accuracy,
        after.accuracy,
        before.loss,
        after.loss
    );
    // normalization: the given sequences then score mean 0 and standard deviation 1, and the order of
    // any two answers is kept
    let demos: Vec<Vec<u32>> = train.iter().take(10).map(|(s, _)| s[0].clone()).collect();
    let others: Vec<Vec<u32>> = held.iter().map(|(s, _)| s[1].clone()).collect();
    let raw = block_on(rm.score(&others, tok.end)).unwrap();
    let raw_demos = block_on(rm.score(&demos, tok.end)).unwrap();
    let (mu, sd) = mean_std(&raw_demos);
    assert_eq!(block_on(rm.normalize(&demos, tok.end)).unwrap(), (mu, sd));
    let (mean, std) = mean_std(&block_on(rm.score(&demos, tok.end)).unwrap());
    assert!(mean.abs() < 1e-4 && (std - 1.0).abs() < 1e-4, "mean {mean} and std {std} after normalization");
    let after = block_on(rm.score(&others, tok.end)).unwrap();
    let by_hand: Vec<f32> = raw.iter().map(|r| (r - mu) / sd).collect();
    assert_close("normalized scores", &after, &by_hand, 1e-4, 1e-4);
}

/// AdamW without weight decay: every reward-model test's optimizer.
const ADAM: AdamSettings = AdamSettings { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0 };

/// A reward-model step at `lr`: every pair alike, the head at the trunk's rate, gradients clipped at 1.
fn step_at(lr: f32) -> StepOpt {
    StepOpt { lr, head_lr_scale: 1.0, label_smoothing: 0.0, pair_weight: PairWeight::Uniform, adam: ADAM, grad_clip: 1.0 }
}

/// Four answers to one prompt about topic `t`, in the first four styles, as dialogue tokens.
fn styled_answers(tok: &Tokenizer, t: &Topic, n_ctx: usize, rng: &mut Rng) -> Vec<Vec<u32>> {
    let prompt = prompt_for(t, rng);
    STYLES.iter().take(4).map(|&s| dialogue_ids(tok, &prompt, &respond(t, s, rng), n_ctx).unwrap()).collect()
}

#[test]
fn the_heads_step_is_the_trunks_learning_rate_times_its_scale() {
    // AdamW's first step moves each weight by lr·g/(|g| + eps): lr·sign(g) wherever the gradient is
    // not tiny, so the head's largest move is its learning rate, and the trunk's step is unchanged
    let p = preset("tiny").unwrap();
    let mut rng = Rng::new(5);
    let tok = grammar_tokenizer(200, p.model.vocab_size, &mut rng);
    let batch = vec![(styled_answers(&tok, &TOPICS[0], p.model.n_ctx, &mut rng), vec![0, 1, 2, 3])];
    let step = |scale: f32| {
        let engine = CpuGpt::new(p.model, ParamLayout::new(&p.model).init(3), 4, p.model.n_ctx).unwrap();
        let mut rm = RewardModel::new(engine, 4);
        let before = rm.head.w.clone();
        block_on(rm.train_step(&batch, tok.end, &StepOpt { head_lr_scale: scale, ..step_at(1e-3) })).unwrap();
        let moved = rm.head.w.iter().zip(&before).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        (moved, block_on(rm.engine.params()).unwrap())
    };
    let (one, trunk_one) = step(1.0);
    let (ten, trunk_ten) = step(10.0);
    assert!((one - 1e-3).abs() < 1e-5, "largest head move at scale 1: {one}");
    assert!((ten - 1e-2).abs() < 1e-4, "largest head move at scale 10: {ten}");
    assert_eq!(trunk_one, trunk_ten, "the head's scale must not change the trunk's step");
}

#[test]
fn the_averaged_reward_model_is_the_fits_weight_average_normalized() {
    let p = preset("tiny").unwrap();
    let mut rng = Rng::new(6);
    let tok = grammar_tokenizer(200, p.model.vocab_size, &mut rng);
    let mut group = || styled_answers(&tok, &TOPICS[1], p.model.n_ctx, &mut rng);
    let (batch, demos, others) = (vec![(group(), vec![0, 1, 2, 3])], group(), group());
    let sft = ParamLayout::new(&p.model).init(3);
    let engine = || CpuGpt::new(p.model, sft.clone(), 4, p.model.n_ctx).unwrap();
    let opt = step_at(1e-3);
    let mut fitted = RewardModel::new(engine(), 4);
    let mut avg = AveragedReward::new(RewardModel::new(engine(), 0), 0.5);
    // a fit: a step and the normalization, as the lab's
    let fit = |rm: &mut RewardModel<CpuGpt>| {
        block_on(rm.train_step(&batch, tok.end, &opt)).unwrap();
        block_on(rm.normalize(&demos, tok.end)).unwrap();
        (block_on(rm.engine.params()).unwrap(), rm.head.clone())
    };
    let (p1, h1) = fit(&mut fitted);
    assert!(!avg.ready(), "no fit taken: the fitted model scores in its place");
    block_on(avg.take(&mut fitted, &demos, tok.end)).unwrap();
    assert!(avg.ready());
    let first = block_on(avg.score(&others, tok.end)).unwrap();
    assert_close("the first fit is the average", &first, &block_on(fitted.score(&others, tok.end)).unwrap(), 1e-5, 1e-5);
    let (p2, h2) = fit(&mut fitted);
    block_on(avg.take(&mut fitted, &demos, tok.end)).unwrap();
    // by hand: half of each fit's trunk and head, normalized on the demonstrations
    let half = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| 0.5 * (x + y)).collect::<Vec<f32>>();
    let mut by_hand = RewardModel::new(CpuGpt::new(p.model, half(&p1, &p2), 4, p.model.n_ctx).unwrap(), 0);
    (by_hand.head.w, by_hand.head.bias) = (half(&h1.w, &h2.w), 0.5 * (h1.bias + h2.bias));
    block_on(by_hand.normalize(&demos, tok.end)).unwrap();
    let second = block_on(avg.score(&others, tok.end)).unwrap();
    assert_close("the average of two fits", &second, &block_on(by_hand.score(&others, tok.end)).unwrap(), 1e-4, 1e-4);
    assert!(second.iter().zip(&block_on(fitted.score(&others, tok.end)).unwrap()).any(|(a, b)| (a - b).abs() > 1e-3), "and not the last fit");
    let (m, s) = mean_std(&block_on(avg.score(&demos, tok.end)).unwrap());
    assert!(m.abs() < 1e-4 && (s - 1.0).abs() < 1e-3, "normalized on the demonstrations: mean {m}, spread {s}");
}

#[test]
fn an_answer_read_sums_the_head_over_the_answer_and_its_gradient_matches_finite_differences() {
    let p = preset("tiny").unwrap();
    let mut rng = Rng::new(7);
    let tok = grammar_tokenizer(200, p.model.vocab_size, &mut rng);
    let t = &TOPICS[1];
    let prompt = prompt_for(t, &mut rng);
    let seqs: Vec<Vec<u32>> = STYLES.iter().take(4).map(|&s| dialogue_ids(&tok, &prompt, &respond(t, s, &mut rng), p.model.n_ctx).unwrap()).collect();
    let ranks = vec![1, 0, 3, 2];
    let params = ParamLayout::new(&p.model).init(3);
    let make = |params: &[f32]| {
        RewardModel::new(CpuGpt::new(p.model, params.to_vec(), 4, p.model.n_ctx).unwrap(), 4).reading(RewardRead::Answer, tok.assistant)
    };
    let mut rm = make(&params);
    // the answer's tokens: from after the last marker to the end token; no marker, the last alone
    let s0 = &seqs[0];
    let from = s0.iter().rposition(|&x| x == tok.assistant).unwrap() + 1;
    assert!(from > 1 && from < s0.len() - 1);
    assert_eq!(rm.read_positions(s0), from..s0.len());
    assert_eq!(rm.read_positions(&[5, 6, 7]), 2..3);
    assert_eq!(rm.read_positions(&[5, tok.assistant]), 1..2);
    // the score is the head over the sum of those hidden states, the bias once
    rm.head.bias = 0.25;
    let c = p.model.n_embd;
    rm.engine.forward_rows(s0, 1, s0.len(), &[s0.len()]).unwrap();
    let h = block_on(rm.engine.hidden()).unwrap();
    let by_hand: f32 = (from..s0.len()).map(|i| rm.head.apply(&h[i * c..][..c]) - 0.25).sum::<f32>() + 0.25;
    assert_close("answer-read score", &block_on(rm.score(&seqs[..1], tok.end)).unwrap(), &[by_hand], 1e-5, 1e-5);
    // the gradients of one step (learning rate 0: nothing moves) against finite differences of the loss
    let step = StepOpt { grad_clip: 1e9, ..step_at(0.0) };
    let mut rm = make(&params);
    block_on(rm.train_step(&[(seqs.clone(), ranks.clone())], tok.end, &step)).unwrap();
    let trunk = block_on(rm.engine.grads()).unwrap();
    let head: Vec<f32> = rm.head.m.iter().map(|m| m / (1.0 - ADAM.beta1)).collect();
    let loss = |params: &[f32], w: &[f32]| {
        let mut rm = make(params);
        rm.head.w = w.to_vec();
        ranking_loss(&block_on(rm.score(&seqs, tok.end)).unwrap(), &ranks).0 as f64
    };
    let w0 = rm.head.w.clone();
    let eps = 1e-2f32;
    let mut top: Vec<usize> = (0..trunk.len()).collect();
    top.sort_by(|&a, &b| trunk[b].abs().total_cmp(&trunk[a].abs()));
    for &i in top.iter().take(6) {
        let (mut up, mut down) = (params.clone(), params.clone());
        up[i] += eps;
        down[i] -= eps;
        let fd = (loss(&up, &w0) - loss(&down, &w0)) / (2.0 * eps as f64);
        assert!((fd - trunk[i] as f64).abs() < 0.05 * fd.abs() + 1e-4, "trunk parameter {i}: backward {} against {fd}", trunk[i]);
    }
    for j in 0..4 {
        let (mut up, mut down) = (w0.clone(), w0.clone());
        up[j] += eps;
        down[j] -= eps;
        let fd = (loss(&params, &up) - loss(&params, &down)) / (2.0 * eps as f64);
        assert!((fd - head[j] as f64).abs() < 0.05 * fd.abs() + 1e-4, "head weight {j}: backward {} against {fd}", head[j]);
    }
}

#[test]
fn answers_to_other_questions_lose_to_the_favourite_by_hand() {
    // K = 2 and one other answer: −log σ(1) for the ranked pair (its weight 2/(K(K−1)) = 1) and
    // −log σ(1 − 0.5) for the favourite against the other answer, weighted as one ranked pair
    let (loss, grad) = loss_with_others(&[1.0, 0.0, 0.5], &[0, 1], 0.0, PairWeight::Uniform);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    assert_close("loss", &[loss], &[(-sig(1.0).ln() - sig(0.5).ln()) as f32], 1e-6, 1e-6);
    let g = [-sig(-1.0) - sig(-0.5), sig(-1.0), sig(-0.5)].map(|x| x as f32);
    assert_close("gradient", &grad, &g, 1e-6, 1e-6);
    // two tied favourites of K = 3 share the other pair's weight 1/3: at equal rewards the ranking
    // gives ln 2 (two untied pairs and a tie, each ln 2 over 3), the other answer 2·(1/6)·ln 2
    let (loss, grad) = loss_with_others(&[0.0; 4], &[0, 0, 1], 0.0, PairWeight::Uniform);
    let ln2 = std::f32::consts::LN_2;
    assert_close("tied favourites' loss", &[loss], &[ln2 * 4.0 / 3.0], 1e-6, 1e-6);
    assert_close("the other answer's gradient", &grad[3..], &[1.0 / 6.0], 1e-6, 1e-6);
    // no other answer: the ranking's own loss, to the bit
    let r = [0.3, -0.2, 0.9];
    assert_eq!(loss_with_others(&r, &[2, 0, 1], 0.1, PairWeight::RankDistance), weighted_ranking_loss(&r, &[2, 0, 1], 0.1, PairWeight::RankDistance));
}

#[test]
fn other_answers_are_the_nearest_other_questions_favourites_after_this_question() {
    // questions [1, 2] (twice) and [3]; each answer's favourite is the one ranked 0
    let data = vec![
        (vec![vec![1, 2, 10], vec![1, 2, 11, 11]], vec![1, 0]),
        (vec![vec![1, 2, 12], vec![1, 2, 13]], vec![0, 0]),
        (vec![vec![3, 14, 14], vec![3, 15]], vec![0, 1]),
    ];
    let lens = [2, 2, 1];
    let one = other_answers(&data, &lens, 1, 128);
    // the first looks back round to the newest, the second skips the first (the same question)
    assert_eq!(one, vec![vec![vec![1, 2, 14, 14]], vec![vec![1, 2, 14, 14]], vec![vec![3, 12]]]);
    let two = other_answers(&data, &lens, 2, 3);
    assert_eq!(two[2], vec![vec![3, 12], vec![3, 11, 11]], "the third, both others, in order of nearness");
    assert_eq!(two[0], vec![vec![1, 2, 14]], "cut to the context; only one other question there is");
    assert!(other_answers(&data[..2], &lens, 3, 128).iter().all(Vec::is_empty), "one question: no other answers");
}

#[test]
fn relevance_rankings_put_a_demonstration_above_three_answers_to_other_questions() {
    // marker 9; questions [1] (twice), [2] and [3]
    let demos = vec![vec![1, 9, 10, 11], vec![1, 9, 12], vec![2, 9, 13], vec![3, 9, 14, 15, 16]];
    let rs = relevance_rankings(&demos, 9, 4, 40, &mut Rng::new(1));
    assert_eq!(rs.len(), 40);
    for (seqs, ranks) in &rs {
        assert_eq!(ranks, &vec![0, 1, 1, 1]);
        assert!(demos.contains(&seqs[0]), "the first is a demonstration as it is");
        let q = &seqs[0][..2];
        for s in &seqs[1..] {
            assert_eq!(&s[..2], q, "the others follow the same question");
            let answer = &s[2..];
            let from = demos.iter().find(|d| d[2..].starts_with(answer) && !answer.is_empty()).expect("an answer of the demonstrations");
            assert_ne!(&from[..2], q, "from another question");
            assert!(s.len() <= 4, "cut to the context");
        }
    }
    assert!(rs.iter().any(|(s, _)| s[0][0] == 3), "every question is drawn");
    assert!(relevance_rankings(&demos[..2], 9, 128, 5, &mut Rng::new(1)).is_empty(), "one question: none");
    assert!(relevance_rankings(&[], 9, 128, 5, &mut Rng::new(1)).is_empty());
}

#[test]
fn the_relevance_gate_learns_which_answers_are_to_the_question_and_lowers_only_theirs() {
    // a toy language: question q (1..=8), marker 9, an answer whose first token is 20 + q among two
    // tokens of noise, end 0; an answer is to the question when its first token says so
    let p = preset("tiny").unwrap();
    let (marker, end) = (9, 0);
    let mut rng = Rng::new(11);
    let dialogue = |q: u32, a: u32, rng: &mut Rng| vec![q, marker, 20 + a, 40 + rng.below(8) as u32, 60 + rng.below(8) as u32, end];
    let demos: Vec<Vec<u32>> = (0..64).map(|i| dialogue(1 + i % 8, 1 + i % 8, &mut rng)).collect();
    let own: Vec<Vec<u32>> = (0..32).map(|i| dialogue(1 + i % 8, 1 + i % 8, &mut rng)).collect();
    let off: Vec<Vec<u32>> = (0..32).map(|i| dialogue(1 + i % 8, 1 + (i + 1 + i / 8) % 8, &mut rng)).collect();
    let engine = CpuGpt::new(p.model, ParamLayout::new(&p.model).init(3), 9, p.model.n_ctx).unwrap();
    let mut gate = RelevanceGate::new(engine, 800, AlignConfig::default().rm.gate_margin, 4);
    assert!(block_on(gate.penalties(&off, end)).unwrap().iter().all(|&x| x == 0.0), "no penalty before it is trained");
    let step = step_at(3e-3);
    let data = GateData { demos: &demos, marker, pad: end, n_ctx: p.model.n_ctx, batch: 4, step };
    block_on(gate.ensure_trained(&data)).unwrap();
    let (on, off_p) = (block_on(gate.penalties(&own, end)).unwrap(), block_on(gate.penalties(&off, end)).unwrap());
    let lowered = |xs: &[f32]| xs.iter().filter(|&&x| x < 0.0).count();
    assert!(on.iter().chain(&off_p).all(|&x| x <= 0.0), "the gate only lowers");
    assert!(lowered(&on) <= 2, "fresh answers to their own question lowered: {on:?}");
    assert!(lowered(&off_p) >= 24, "answers to another question lowered: {off_p:?}");
    // trained once: a second call changes nothing
    block_on(gate.ensure_trained(&data)).unwrap();
    assert_eq!(block_on(gate.penalties(&off, end)).unwrap(), off_p);
}

#[test]
fn a_fit_saved_before_the_gate_margin_was_an_option_reads_the_default_margin() {
    let mut saved = serde_json::to_value(AlignConfig::default().rm).unwrap();
    saved.as_object_mut().unwrap().insert("gate_margin".into(), serde_json::json!(3.5));
    assert_eq!(serde_json::from_value::<RmFit>(saved.clone()).unwrap().gate_margin, 3.5);
    saved.as_object_mut().unwrap().remove("gate_margin");
    assert_eq!(serde_json::from_value::<RmFit>(saved).unwrap().gate_margin, AlignConfig::default().rm.gate_margin);
}
