//! Training `tiny` on the corpus lowers the loss on both engines, and the same seed gives the same weights.

mod common;
use common::gpu;
use pollster::block_on;

use rlhf_lab::config::{preset, Preset};
use rlhf_lab::corpus::Corpus;
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::Engine;
use rlhf_lab::gpu::gpt::GpuGpt;
use rlhf_lab::gpu::MatmulKind;
use rlhf_lab::params::ParamLayout;
use rlhf_lab::rng::Rng;
use rlhf_lab::tokenizer::Tokenizer;
use rlhf_lab::train::{docs_batch, lm_batch, pretrain_stream, sft_batch, train_loop};

fn setup() -> (Preset, Corpus, Tokenizer, Vec<u32>) {
    let p = preset("tiny").unwrap();
    let corpus = Corpus::generate(p.train.corpus_dialogues, 5);
    let tok = Tokenizer::train(&corpus.all_text(), p.model.vocab_size).unwrap();
    let stream = pretrain_stream(&corpus, &tok, 5).unwrap();
    (p, corpus, tok, stream)
}

fn pretrain<E: Engine>(engine: &mut E, p: &Preset, stream: &[u32], steps: usize) -> Vec<f32> {
    let tc = p.train;
    block_on(train_loop(
        engine,
        &tc,
        steps,
        tc.learning_rate,
        |rng| Ok(lm_batch(stream, tc.batch_size, tc.seq_len, rng)),
        9,
        |s| assert!(!s.skipped, "step {} skipped", s.step),
    ))
    .unwrap()
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

#[test]
fn pretraining_lowers_the_loss_on_the_cpu_reference() {
    let (p, _, _, stream) = setup();
    let mut e = CpuGpt::new(p.model, ParamLayout::new(&p.model).init(1), p.train.batch_size, p.train.seq_len).unwrap();
    let losses = pretrain(&mut e, &p, &stream, 300);
    let (first, last) = (mean(&losses[..20]), mean(&losses[280..]));
    // ln(320) ≈ 5.77 for a uniform guess; a model that learned the corpus's words sits well below
    assert!(last < first - 1.0 && last < 4.0, "loss {first} -> {last}");
}

#[test]
fn pretraining_lowers_the_loss_on_the_gpu_and_tracks_the_cpu() {
    let (p, _, _, stream) = setup();
    let init = ParamLayout::new(&p.model).init(1);
    let mut g = GpuGpt::new(gpu(MatmulKind::Blocked), p.model, &init, p.train.batch_size, p.train.seq_len).unwrap();
    let gl = pretrain(&mut g, &p, &stream, 300);
    let (first, last) = (mean(&gl[..20]), mean(&gl[280..]));
    assert!(last < first - 1.0 && last < 4.0, "gpu loss {first} -> {last}");
    // the same batches on the CPU give nearly the same curve
    let mut c = CpuGpt::new(p.model, init, p.train.batch_size, p.train.seq_len).unwrap();
    let cl = pretrain(&mut c, &p, &stream, 300);
    assert!((mean(&cl[280..]) - last).abs() < 0.05, "cpu {} gpu {last}", mean(&cl[280..]));
}

#[test]
fn sft_lowers_the_response_loss() {
    let (p, corpus, tok, stream) = setup();
    let tc = p.train;
    let mut e = CpuGpt::new(p.model, ParamLayout::new(&p.model).init(1), tc.batch_size, tc.seq_len).unwrap();
    pretrain(&mut e, &p, &stream, 200);
    let mut e = CpuGpt::new(p.model, block_on(e.params()).unwrap(), tc.batch_size, tc.seq_len).unwrap();
    let losses = block_on(train_loop(
        &mut e,
        &tc,
        100,
        tc.sft_learning_rate,
        |rng| sft_batch(&tok, &corpus.demonstrations, tc.batch_size, tc.seq_len, rng),
        3,
        |_| {},
    ))
    .unwrap();
    assert!(mean(&losses[80..]) < mean(&losses[..10]) - 0.2, "sft {} -> {}", mean(&losses[..10]), mean(&losses[80..]));
}

#[test]
fn the_same_seed_gives_the_same_weights_on_each_engine() {
    let (p, _, _, stream) = setup();
    let init = ParamLayout::new(&p.model).init(3);
    let run_cpu = || {
        let mut e = CpuGpt::new(p.model, init.clone(), p.train.batch_size, p.train.seq_len).unwrap();
        pretrain(&mut e, &p, &stream, 30);
        block_on(e.params()).unwrap()
    };
    let run_gpu = || {
        let mut e = GpuGpt::new(gpu(MatmulKind::Blocked), p.model, &init, p.train.batch_size, p.train.seq_len).unwrap();
        pretrain(&mut e, &p, &stream, 30);
        block_on(e.params()).unwrap()
    };
    let (a, b) = (run_cpu(), run_cpu());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "cpu runs differ");
    assert_ne!(a, init, "training changed nothing");
    let (c, d) = (run_gpu(), run_gpu());
    assert!(c.iter().zip(&d).all(|(x, y)| x.to_bits() == y.to_bits()), "gpu runs differ");
    // and a different seed gives different weights
    let other = ParamLayout::new(&p.model).init(4);
    assert_ne!(other, init);
}

#[test]
fn prose_rows_lay_whole_documents_end_to_end_in_a_fresh_order_each_row() {
    const END: u32 = 0;
    // document i: [10i+1, 10i+2, (10i+3,) END], so every token says which document it is from
    let docs: Vec<Vec<u32>> = (1..=5).map(|i| (1..=2 + i % 2).map(|j| 10 * i + j).chain([END]).collect()).collect();
    let (b, t) = (200, 9);
    let batch = docs_batch(&docs, b, t, &mut Rng::new(3));
    assert_eq!((batch.tokens.len(), batch.targets.len()), (b * t, b * t));
    let mut followers = std::collections::HashSet::new();
    for r in 0..b {
        let (x, y) = (&batch.tokens[r * t..(r + 1) * t], &batch.targets[r * t..(r + 1) * t]);
        assert!(x[1..].iter().zip(&y[..t - 1]).all(|(&a, &b)| a as i32 == b), "targets are the next tokens");
        let row: Vec<u32> = x.iter().copied().chain([y[t - 1] as u32]).collect();
        // split after each end token: a document's tail, whole documents, then a document's head
        let pieces: Vec<&[u32]> = row.split_inclusive(|&x| x == END).collect();
        for (i, p) in pieces.iter().enumerate() {
            // a lone end token is the tail of any document
            let doc = p.iter().find(|&&x| x != END).map_or(&docs[0], |&x| &docs[x as usize / 10 - 1]);
            let whole = i > 0 && i + 1 < pieces.len();
            let fits = if whole {
                *p == &doc[..]
            } else if i == 0 {
                doc.ends_with(p)
            } else {
                doc.starts_with(p)
            };
            assert!(fits, "row {r}: piece {i} {p:?} of {row:?} against document {doc:?}");
        }
        for w in pieces.windows(2) {
            if w[0][0] != END && w[1][0] != END {
                followers.insert((w[0][0] / 10, w[1][0] / 10));
            }
        }
    }
    // one fixed stream would give each document one follower: here every pair turns up
    assert!(followers.len() > 20, "document orders seen: {followers:?}");
}
