//! Sampling on the GPU with a key-value cache: greedy decoding equals the CPU reference's full
//! recomputation, the sampling kernel equals its CPU mirror, and the mirror draws from the
//! temperature-scaled, top-k/top-p-truncated softmax.

mod common;
use common::{gpu, randn};
use pollster::block_on;

use rlhf_lab::config::preset;
use rlhf_lab::config::{ModelConfig, SampleConfig};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::gpu::gpt::GpuGpt;
use rlhf_lab::gpu::MatmulKind;
use rlhf_lab::params::ParamLayout;
use rlhf_lab::rng::Rng;
use rlhf_lab::sample::{counter_uniform, generate_by_recompute, sample_threshold};

/// Tiny's weights from `init`, made larger by noise from `noise`: distinct logits, so greedy
/// choices are not decided by rounding. Returns the noise's stream to draw prompts from.
fn larger_weights(cfg: &ModelConfig, init: u64, noise: u64) -> (Vec<f32>, Rng) {
    let mut params = ParamLayout::new(cfg).init(init);
    let mut rng = Rng::new(noise);
    params.iter_mut().for_each(|p| *p += 0.2 * rng.normal());
    (params, rng)
}

#[test]
fn greedy_decoding_with_the_kv_cache_equals_full_recomputation() {
    let cfg = preset("tiny").unwrap().model;
    let (params, mut rng) = larger_weights(&cfg, 31, 32);
    let greedy = SampleConfig { temperature: 0.0, top_k: 0, top_p: 1.0, max_new_tokens: 40 };
    for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
        let mut g = GpuGpt::new(gpu(kind), cfg, &params, 3, cfg.n_ctx).unwrap();
        let mut c = CpuGpt::new(cfg, params.clone(), 3, cfg.n_ctx).unwrap();
        for plen in [1, 5, 17] {
            let prompt: Vec<u32> = (0..plen).map(|_| rng.below(cfg.vocab_size) as u32).collect();
            // a stop token that never wins keeps every row going to the length limit
            let stop = cfg.vocab_size as u32;
            let want = block_on(generate_by_recompute(&mut c, &prompt, 3, stop, &greedy, 0)).unwrap();
            let got = block_on(g.generate_gpu(&prompt, 3, stop, &greedy, 0)).unwrap();
            assert_eq!(got, want, "{kind:?}, prompt of {plen}");
            assert_eq!(got[0].len(), 40);
        }
        // rows stop at their stop token
        let prompt = vec![1u32, 2, 3];
        let first = block_on(g.generate_gpu(&prompt, 2, u32::MAX, &greedy, 0)).unwrap()[0].clone();
        let stop = first[5];
        let cut = block_on(g.generate_gpu(&prompt, 2, stop, &greedy, 0)).unwrap();
        let expect: Vec<u32> = first.iter().copied().take_while(|&x| x != stop).collect();
        assert_eq!(cut[0], expect);
        // the context bounds the length
        let long: Vec<u32> = (0..cfg.n_ctx as u32 - 4).map(|i| i % 50).collect();
        let out = block_on(g.generate_gpu(&long, 1, u32::MAX, &greedy, 0)).unwrap();
        assert_eq!(out[0].len(), 4);
        assert!(block_on(g.generate_gpu(&vec![1; cfg.n_ctx], 1, 0, &greedy, 0)).is_err());
    }
}

#[test]
fn the_sampling_kernel_equals_its_cpu_mirror() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(33);
    let (b, v) = (64, 50);
    let logits = randn(&mut rng, b * v, 2.0);
    let configs = [
        SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 1 },
        SampleConfig { temperature: 0.7, top_k: 5, top_p: 1.0, max_new_tokens: 1 },
        SampleConfig { temperature: 1.3, top_k: 0, top_p: 0.8, max_new_tokens: 1 },
        SampleConfig { temperature: 1.0, top_k: 10, top_p: 0.5, max_new_tokens: 1 },
        SampleConfig { temperature: 0.0, top_k: 0, top_p: 1.0, max_new_tokens: 1 },
    ];
    let gl = g.buffer_from("logits", &logits);
    // out is (B, 4): the draw of step 3 lands in column 3
    let (next, out) = (g.buffer("next", b), g.buffer("out", b * 4));
    let mut mismatches = 0;
    for (ci, sc) in configs.iter().enumerate() {
        let seed = 0x1234_5678_9ABC + ci as u64;
        let mut rec = g.recorder();
        g.kernels.sample_next(&mut rec, &next, &out, (&gl, 0, v), b, v, sc, seed, 3, 4);
        rec.submit();
        let got: Vec<u32> = g.read_blocking(&out, 0, b * 4).unwrap();
        let nxt: Vec<u32> = g.read_blocking(&next, 0, b).unwrap();
        for r in 0..b {
            let want = sample_threshold(&logits[r * v..][..v], sc, counter_uniform(seed, r as u32, 3));
            mismatches += (got[r * 4 + 3] != want) as usize;
            assert_eq!(nxt[r], got[r * 4 + 3]);
        }
    }
    // exp() may differ by an ulp between the GPU and the CPU, which can move a draw that sits on a
    // boundary of the cumulative sum: allow one in a hundred
    assert!(mismatches * 100 <= configs.len() * b, "{mismatches} of {} draws differ", configs.len() * b);
}

#[test]
fn the_mirror_draws_from_the_truncated_softmax() {
    let logits = [2.0f32, 1.0, 0.5, 0.0, -1.0, -3.0];
    let probs = |t: f32, keep: &[usize]| {
        let w: Vec<f32> = (0..6).map(|j| if keep.contains(&j) { (logits[j] / t).exp() } else { 0.0 }).collect();
        let s: f32 = w.iter().sum();
        w.iter().map(|x| x / s).collect::<Vec<f32>>()
    };
    let n = 20_000;
    let freq = |sc: &SampleConfig| {
        let mut f = [0.0f32; 6];
        for i in 0..n {
            let u = (i as f32 + 0.5) / n as f32;
            f[sample_threshold(&logits, sc, u) as usize] += 1.0 / n as f32;
        }
        f
    };
    let check = |sc: SampleConfig, keep: &[usize]| {
        let (f, p) = (freq(&sc), probs(sc.temperature, keep));
        for j in 0..6 {
            assert!((f[j] - p[j]).abs() < 2e-3, "{sc:?}: token {j} drawn {} want {}", f[j], p[j]);
        }
    };
    check(SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 1 }, &[0, 1, 2, 3, 4, 5]);
    check(SampleConfig { temperature: 0.5, top_k: 0, top_p: 1.0, max_new_tokens: 1 }, &[0, 1, 2, 3, 4, 5]);
    check(SampleConfig { temperature: 1.0, top_k: 3, top_p: 1.0, max_new_tokens: 1 }, &[0, 1, 2]);
    // top-p 0.8 at T=1: p = [.54, .20, .12, .07, ...]: the first three reach 0.86 ≥ 0.8
    check(SampleConfig { temperature: 1.0, top_k: 0, top_p: 0.8, max_new_tokens: 1 }, &[0, 1, 2]);
    check(SampleConfig { temperature: 1.0, top_k: 2, top_p: 0.5, max_new_tokens: 1 }, &[0]);
}

#[test]
fn the_cpu_key_value_cache_equals_full_recomputation() {
    let cfg = preset("tiny").unwrap().model;
    let (params, mut rng) = larger_weights(&cfg, 41, 42);
    let mut c = CpuGpt::new(cfg, params, 4, cfg.n_ctx).unwrap();
    let stop = cfg.vocab_size as u32;
    for sc in [
        SampleConfig { temperature: 0.0, top_k: 0, top_p: 1.0, max_new_tokens: 40 },
        SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 40 },
    ] {
        for plen in [1, 6, 19] {
            let prompt: Vec<u32> = (0..plen).map(|_| rng.below(cfg.vocab_size) as u32).collect();
            let want = block_on(generate_by_recompute(&mut c, &prompt, 4, stop, &sc, 5)).unwrap();
            let got = c.generate_cached(&prompt, 4, stop, &sc, 5).unwrap();
            assert_eq!(got, want, "T={}, prompt of {plen}", sc.temperature);
        }
    }
    // a row stops at its stop token; the context bounds the length
    let greedy = SampleConfig { temperature: 0.0, top_k: 0, top_p: 1.0, max_new_tokens: 40 };
    let first = c.generate_cached(&[1, 2, 3], 1, stop, &greedy, 0).unwrap()[0].clone();
    let cut = c.generate_cached(&[1, 2, 3], 1, first[5], &greedy, 0).unwrap();
    assert_eq!(cut[0], first.iter().copied().take_while(|&x| x != first[5]).collect::<Vec<_>>());
    let long: Vec<u32> = (0..cfg.n_ctx as u32 - 4).map(|i| i % 50).collect();
    assert_eq!(c.generate_cached(&long, 1, stop, &greedy, 0).unwrap()[0].len(), 4);
    assert!(c.generate_cached(&vec![1; cfg.n_ctx], 1, stop, &greedy, 0).is_err());
}

#[test]
fn groups_decoding_in_step_sample_what_each_samples_alone() {
    let cfg = preset("tiny").unwrap().model;
    let (params, mut rng) = larger_weights(&cfg, 43, 44);
    let mut c = CpuGpt::new(cfg, params, 4, cfg.n_ctx).unwrap();
    let sc = SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 30 };
    // prompts of different lengths, one so near the context's end that its group stops first
    let groups: Vec<(Vec<u32>, u64)> = [1, 9, 4, cfg.n_ctx - 6]
        .iter()
        .enumerate()
        .map(|(i, &n)| ((0..n).map(|_| rng.below(cfg.vocab_size) as u32).collect(), 7 + i as u64))
        .collect();
    // a stop token one row draws early, so rows and groups finish at different steps
    let stop = c.generate_cached(&groups[1].0, 3, cfg.vocab_size as u32, &sc, groups[1].1).unwrap()[0][2];
    let together = c.generate_cached_groups(&groups, 3, stop, &sc).unwrap();
    for (g, (prompt, seed)) in groups.iter().enumerate() {
        assert_eq!(together[g], c.generate_cached(prompt, 3, stop, &sc, *seed).unwrap(), "group {g} alone");
        if prompt.len() + sc.max_new_tokens <= cfg.n_ctx {
            // (recomputation does not stop at the context's end)
            assert_eq!(together[g], block_on(generate_by_recompute(&mut c, prompt, 3, stop, &sc, *seed)).unwrap(), "group {g} recomputed");
        }
    }
    assert!(together[3].iter().all(|a| a.len() <= 6), "the last group ran past the context");
    let lens: Vec<usize> = together[..3].iter().flatten().map(Vec::len).collect();
    assert!(lens.iter().any(|&n| n < 30) && lens.iter().any(|&n| n > 6), "every row stopped alike: {lens:?}");
}
