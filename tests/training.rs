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
use rlhf_lab::tokenizer::Tokenizer;
use rlhf_lab::train::{lm_batch, pretrain_stream, sft_batch, train_loop};

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
