//! `rlhf bench`: forward+backward throughput and matrix-product speed of each engine, and for the
//! GPU engine what a step asks of the device: dispatches, submissions, readbacks, encoding time,
//! buffers and bind groups made after warm-up, and the bytes each model holds.
//! Figures depend on the machine; compare rows of one run, not runs of different days.

use crate::clock::now_ms;
use crate::config::{Preset, SampleConfig};
use crate::cpu::matmul::gemm;
use crate::engine::Engine;
use crate::error::Result;
use crate::gpu::context::Snapshot;
use crate::gpu::gpt::GpuGpt;
use crate::gpu::kernels::Mm;
use crate::gpu::{Gpu, MatmulKind};
use crate::params::ParamLayout;
use crate::rng::Rng;
use crate::timing::{random_batch, step_ms, TimedPolicy, TIMED_OPT};
use crate::train::Batch;

pub fn header() -> String {
    format!(
        "| {:<6} | {:<28} | {:>9} | {:>16} | {:>26} |\n|--------|------------------------------|-----------|------------------|----------------------------|",
        "preset", "engine", "B×T", "fwd+bwd tok/s", "matmul GFLOP/s (M×K×N)"
    )
}

pub fn counts_header() -> String {
    "| preset | kernel | per | dispatches | submissions | readbacks | encode ms | buffers made | bind groups made |\n|---|---|---|---|---|---|---|---|---|".to_string()
}

/// Repeats `f` after one warm-up call until at least `min_ms` have passed; returns ms per call.
fn time_ms(min_ms: f64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let t0 = now_ms();
    let mut n = 0;
    while n == 0 || now_ms() - t0 < min_ms {
        f()?;
        n += 1;
    }
    Ok((now_ms() - t0) / n as f64)
}

/// One training step, waited for (the step reads back its loss and gradient norm).
fn step<E: Engine>(engine: &mut E, x: &Batch) -> Result<()> {
    pollster::block_on(crate::timing::lm_step(engine, x))
}

/// Runs `f(0)` to warm up, then `f(1)` .. `f(n)`, and returns what those n runs asked of the device.
fn after_warm_up(gpu: &Gpu, n: usize, mut f: impl FnMut(u64) -> Result<()>) -> Result<Snapshot> {
    f(0)?;
    let s0 = gpu.snapshot();
    for i in 1..=n {
        f(i as u64)?;
    }
    Ok(gpu.snapshot().since(&s0))
}

fn batch(p: &Preset) -> Batch {
    random_batch(p.model.vocab_size, p.train.batch_size, p.train.seq_len.min(p.model.n_ctx), 2)
}

/// Rows of `engine` ("cpu" on `threads` threads, or "gpu" with each matrix kernel).
pub fn run(p: &Preset, engine: &str, threads: usize) -> Result<Vec<String>> {
    let cfg = p.model;
    let x = batch(p);
    let params = ParamLayout::new(&cfg).init(1);
    // the MLP's first product: (B·T, C) × (C, 4C)
    let (m, k, n) = (x.b * x.t, cfg.n_embd, 4 * cfg.n_embd);
    let flops = 2.0 * (m * k * n) as f64;
    let shape = format!("{m}×{k}×{n}");
    let row = |eng: &str, tok_s: f64, gflops: f64| {
        format!("| {:<6} | {:<28} | {:>9} | {:>16.0} | {:>10.2} ({:>13}) |", p.name, eng, format!("{}×{}", x.b, x.t), tok_s, gflops, shape)
    };
    let mut rows = Vec::new();
    match engine {
        "cpu" => {
            let mut e = crate::any_engine::AnyEngine::threaded(cfg, params, x.b, x.t, threads)?;
            let ms = pollster::block_on(step_ms(&mut e, &x, 2000.0))?;
            let mut rng = Rng::new(3);
            let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
            let bm: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
            let mut c = vec![0.0f32; m * n];
            let mm_ms = time_ms(500.0, || {
                gemm(m, k, n, &a, k, 1, &bm, n, 1, 0.0, &mut c);
                Ok(())
            })?;
            rows.push(row(&format!("cpu (matrixmultiply), {threads} thr."), (x.b * x.t) as f64 / (ms / 1e3), flops / (mm_ms / 1e3) / 1e9));
        }
        "gpu" => {
            for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
                let gpu = Gpu::new_blocking(Some(kind))?;
                let name = format!("gpu {} ({})", format!("{kind:?}").to_lowercase(), gpu.short_name());
                let (ga, gb, gc) = (gpu.buffer("a", m * k), gpu.buffer("b", k * n), gpu.buffer("c", m * n));
                let reps = 4;
                let mm_ms = time_ms(1000.0, || {
                    let mut rec = gpu.recorder();
                    for _ in 0..reps {
                        gpu.kernels.matmul(&mut rec, &Mm::plain(m, k, n), &ga, &gb, &gc, None, None);
                    }
                    pollster::block_on(rec.submit_and_read::<f32>(&gc, 0, 1)).map(|_| ())
                })? / reps as f64;
                let mut e = GpuGpt::new(gpu, cfg, &params, x.b, x.t)?;
                let ms = pollster::block_on(step_ms(&mut e, &x, 2000.0))?;
                rows.push(row(&name, (x.b * x.t) as f64 / (ms / 1e3), flops / (mm_ms / 1e3) / 1e9));
            }
        }
        other => crate::bail!("unknown engine '{other}' (cpu or gpu)"),
    }
    Ok(rows)
}

/// What one GPU training step, one PPO-ptx policy minibatch and one generated token ask of the
/// device after warm-up, with each matrix kernel, as table rows.
pub fn counts(p: &Preset) -> Result<Vec<String>> {
    let mut rows = Vec::new();
    for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
        rows.extend(counts_with(p, Gpu::new_blocking(Some(kind))?)?);
    }
    Ok(rows)
}

fn counts_with(p: &Preset, gpu: Gpu) -> Result<Vec<String>> {
    let cfg = p.model;
    let x = batch(p);
    let params = ParamLayout::new(&cfg).init(1);
    let mut e = GpuGpt::new(gpu.clone(), cfg, &params, x.b, x.t)?;
    let per = |what: &str, s: Snapshot, n: usize| {
        let f = |v: u64| format!("{:.1}", v as f64 / n as f64);
        format!(
            "| {} | {:?} | {what} | {} | {} | {} | {:.3} | {} | {} |",
            p.name,
            gpu.kernels.matmul_kind,
            f(s.dispatches),
            f(s.submissions),
            f(s.readbacks),
            s.encode_ms / n as f64,
            f(s.buffers_created),
            f(s.bind_groups_created)
        )
    };
    let mut rows = Vec::new();
    let steps = 5;
    let s = after_warm_up(&gpu, steps, |_| step(&mut e, &x))?;
    rows.push(per("training step", s, steps));
    // a PPO-ptx policy minibatch: the batch's second half as actions, a 4×64 pretraining batch
    let timed = TimedPolicy::new(x.clone());
    let (pol, ptx) = (timed.policy(), timed.ptx());
    let s = after_warm_up(&gpu, steps, |_| pollster::block_on(e.policy_step(&pol, Some(&ptx), &TIMED_OPT, 1.0)).map(|_| ()))?;
    rows.push(per("PPO-ptx policy minibatch", s, steps));
    let sc = SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 48 };
    let prompt: Vec<u32> = x.tokens[..12].to_vec();
    let stop = cfg.vocab_size as u32; // never sampled: every row runs to the limit
    let s = after_warm_up(&gpu, 1, |seed| pollster::block_on(e.generate(&prompt, 4, stop, &sc, seed + 1)).map(|_| ()))?;
    rows.push(per("generated token (4 rows)", s, sc.max_new_tokens));
    Ok(rows)
}

/// The bytes a trainable model (having trained and generated), a frozen one, and the activations
/// models of one shape share hold on the device.
pub fn memory(p: &Preset) -> Result<String> {
    let cfg = p.model;
    let x = batch(p);
    let params = ParamLayout::new(&cfg).init(1);
    let gpu = Gpu::new_blocking(None)?;
    let mut e = GpuGpt::new(gpu.clone(), cfg, &params, x.b, x.t)?;
    // after a step and a generation, so the decode buffers and key-value caches count too
    step(&mut e, &x)?;
    let sc = SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 8 };
    pollster::block_on(e.generate(&x.tokens[..12], 4, cfg.vocab_size as u32, &sc, 1))?;
    let (own, shared) = e.device_bytes();
    let (frozen_own, _) = GpuGpt::frozen(gpu, cfg, &params, x.b, x.t)?.device_bytes();
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    Ok(format!(
        "device memory ({} {}×{}): a trainable model {} (parameters, gradients, AdamW moments, generation caches), a frozen one {}, the activations every model of this shape shares {}",
        p.name,
        x.b,
        x.t,
        mb(own),
        mb(frozen_own),
        mb(shared)
    ))
}
