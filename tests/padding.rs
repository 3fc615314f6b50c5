//! A batch whose rows end in padding: `forward_rows` skips the padding and changes nothing else.
//! Against `forward` of the same padded batch, every kept position's hidden state, logit, loss and
//! entropy is the same bit for bit, and so are the gradients (through the losses and through the
//! hidden state), also when the batch spans more than one of the matrix library's blocks over its
//! positions; the padding reads 0; inputs at the padding are refused. The same on a sharded engine,
//! whose gradients agree within rounding: it splits the kept rows by their tokens and the padded
//! batch by count, so the shards' sums group the rows differently.

mod common;
use common::{assert_close, randn};
use pollster::block_on;

use rlhf_lab::config::preset;
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::Engine;
use rlhf_lab::error::ErrorKind;
use rlhf_lab::params::ParamLayout;
use rlhf_lab::rng::Rng;
use rlhf_lab::shard::{shard_rows, LocalShard, Sharded};

struct Batch {
    tokens: Vec<u32>,
    lens: Vec<usize>,
    targets: Vec<i32>,
    weights: Vec<f32>,
    dhidden: Vec<f32>,
}

/// Rows of random lengths (one full, one of a single token), padded with token 0; targets,
/// loss weights and hidden-state gradients only at kept positions.
fn batch(b: usize, t: usize, vocab: usize, c: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let mut lens: Vec<usize> = (0..b).map(|_| 1 + rng.below(t)).collect();
    (lens[0], lens[b - 1]) = (t, 1);
    let kept = |p: usize| p % t < lens[p / t];
    let tokens = (0..b * t).map(|p| if kept(p) { rng.below(vocab) as u32 } else { 0 }).collect();
    let targets = (0..b * t).map(|p| if kept(p) && p % 3 != 0 { rng.below(vocab) as i32 } else { -1 }).collect();
    let weights = randn(&mut rng, b * t, 1.0);
    let mut dhidden = randn(&mut rng, b * t * c, 0.1);
    for p in (0..b * t).filter(|&p| !kept(p)) {
        dhidden[p * c..][..c].fill(0.0);
    }
    Batch { tokens, lens, targets, weights, dhidden }
}

/// Hidden states, logits, losses, entropy and the gradients after a backward pass through both.
async fn run<E: Engine>(e: &mut E, x: &Batch, b: usize, t: usize, rows: bool) -> [Vec<f32>; 5] {
    if rows {
        e.forward_rows(&x.tokens, b, t, &x.lens).unwrap();
    } else {
        e.forward(&x.tokens, b, t).unwrap();
    }
    let hidden = e.hidden().await.unwrap();
    let logits = e.logits().await.unwrap();
    let tl = e.token_losses(&x.targets, 0.7).await.unwrap();
    e.zero_grad().unwrap();
    e.backward(Some(&x.weights), Some(&x.dhidden)).unwrap();
    [hidden, logits, tl.losses, tl.entropy, e.grads().await.unwrap()]
}

/// `rows` equals `full` at the kept positions bit for bit and is 0 at the padding (the gradients,
/// the last, are left to the caller).
fn assert_kept_same(what: &str, rows: &[Vec<f32>; 5], full: &[Vec<f32>; 5], lens: &[usize], t: usize) {
    for (k, name) in ["hidden states", "logits", "losses", "entropy"].iter().enumerate() {
        let w = full[k].len() / (lens.len() * t);
        for (p, (got, want)) in rows[k].chunks(w).zip(full[k].chunks(w)).enumerate() {
            let kept = p % t < lens[p / t];
            let want = if kept { want.to_vec() } else { vec![0.0; w] };
            assert!(
                got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{what}: {name} at row {} position {} (kept: {kept})",
                p / t,
                p % t
            );
        }
    }
}

/// As `assert_kept_same`, and the gradients equal whole, bit for bit.
fn assert_same(what: &str, rows: &[Vec<f32>; 5], full: &[Vec<f32>; 5], lens: &[usize], t: usize) {
    assert_kept_same(what, rows, full, lens, t);
    let differ = rows[4].iter().zip(&full[4]).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differ, 0, "{what}: {differ} gradients differ");
}

#[test]
fn skipping_the_padding_changes_no_kept_value_or_gradient() {
    let cfg = preset("tiny").unwrap().model;
    let params = ParamLayout::new(&cfg).init(5);
    // 3 × 40 positions fit one block over positions; 7 × 128 span four
    for (b, t, seed) in [(3, 40, 1), (7, 128, 2)] {
        let x = batch(b, t, cfg.vocab_size, cfg.n_embd, seed);
        let full = block_on(run(&mut CpuGpt::new(cfg, params.clone(), b, t).unwrap(), &x, b, t, false));
        let rows = block_on(run(&mut CpuGpt::new(cfg, params.clone(), b, t).unwrap(), &x, b, t, true));
        assert_same(&format!("one engine, batch ({b}, {t})"), &rows, &full, &x.lens, t);
        let sharded = || {
            Sharded::new(
                CpuGpt::new(cfg, params.clone(), shard_rows(b, 2), t).unwrap(),
                vec![LocalShard::new(CpuGpt::new(cfg, params.clone(), shard_rows(b, 2), t).unwrap())],
                b,
            )
        };
        let full = block_on(run(&mut sharded(), &x, b, t, false));
        let rows = block_on(run(&mut sharded(), &x, b, t, true));
        let what = format!("two shards, batch ({b}, {t})");
        assert_kept_same(&what, &rows, &full, &x.lens, t);
        // a gradient sums terms over every position, many cancelling: rounding is relative to the largest
        let scale = full[4].iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert_close(&format!("{what}: gradients"), &rows[4], &full[4], 1e-5 * scale, 1e-4);
    }
}

#[test]
fn inputs_at_the_padding_are_refused() {
    let cfg = preset("tiny").unwrap().model;
    let (b, t) = (3, 16);
    let x = batch(b, t, cfg.vocab_size, cfg.n_embd, 3);
    let mut e = CpuGpt::new(cfg, ParamLayout::new(&cfg).init(5), b, t).unwrap();
    for bad in [vec![t, 0, 1], vec![t, t + 1, 1], vec![t, 2]] {
        let err = e.forward_rows(&x.tokens, b, t, &bad).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadInput, "lens {bad:?}: {err}");
    }
    // the last row keeps one position: a target or a hidden-state gradient after it is refused
    e.forward_rows(&x.tokens, b, t, &x.lens).unwrap();
    let mut targets = x.targets.clone();
    targets[b * t - 1] = 1;
    let err = block_on(e.token_losses(&targets, 1.0)).unwrap_err();
    assert!(err.kind == ErrorKind::Internal && err.to_string().contains("padded"), "{err}");
    let mut dhidden = x.dhidden.clone();
    dhidden[b * t * cfg.n_embd - 1] = 1.0;
    let err = e.backward(None, Some(&dhidden)).unwrap_err();
    assert!(err.kind == ErrorKind::Internal && err.to_string().contains("padded"), "{err}");
    // the weights changed before the logits were read: they are not made from the new weights
    e.forward_rows(&x.tokens, b, t, &x.lens).unwrap();
    e.backward(None, Some(&x.dhidden)).unwrap();
    block_on(e.update(&rlhf_lab::config::AdamParams { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0, t: 1 }, 1.0)).unwrap();
    let err = block_on(e.logits()).unwrap_err();
    assert!(err.kind == ErrorKind::Internal && err.to_string().contains("weights changed"), "{err}");
}

#[test]
fn the_language_model_loss_stops_where_each_rows_targets_stop() {
    use rlhf_lab::engine::{lm_backward, lm_forward, loss_lens};
    assert_eq!(loss_lens(&[5, -1, 7, -1, -1, -1, 2, 3, 4], 3), vec![3, 1, 3], "a row with no target keeps one position");
    // rows whose targets stop early: the loss and the gradient are those of the whole padded
    // batch, computed without the positions after each row's last target (300 positions: two of
    // the matrix library's blocks)
    let cfg = preset("tiny").unwrap().model;
    let (b, t) = (3, 100);
    let params = ParamLayout::new(&cfg).init(3);
    let tokens: Vec<u32> = (0..b * t).map(|i| (i * 7 % cfg.vocab_size) as u32).collect();
    let mut targets: Vec<i32> = (0..b * t).map(|i| ((i * 5 + 1) % cfg.vocab_size) as i32).collect();
    targets[t + 40..2 * t].fill(-1);
    targets[2 * t + 70..].fill(-1);
    let run = |rows: bool| {
        let mut e = CpuGpt::new(cfg, params.clone(), b, t).unwrap();
        let loss = if rows {
            let loss = block_on(lm_forward(&mut e, &tokens, &targets, b, t)).unwrap();
            let h = block_on(e.hidden()).unwrap();
            let at = |row: usize, pos: usize| h[(row * t + pos) * cfg.n_embd..][..cfg.n_embd].iter().any(|&x| x != 0.0);
            assert!(at(1, 39) && !at(1, 40) && at(2, 69) && !at(2, 70) && at(0, 99), "the positions after the last target were computed");
            loss
        } else {
            e.forward(&tokens, b, t).unwrap();
            let tl = block_on(e.token_losses(&targets, 1.0)).unwrap();
            rlhf_lab::engine::mean_loss(&tl.losses, &targets)
        };
        e.zero_grad().unwrap();
        lm_backward(&mut e, &targets, 1.0).unwrap();
        (loss, block_on(e.grads()).unwrap())
    };
    let ((l1, g1), (l2, g2)) = (run(true), run(false));
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert!(g1.iter().zip(&g2).all(|(a, b)| a.to_bits() == b.to_bits()), "gradients differ");
}
