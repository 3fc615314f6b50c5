//! `rlhf bench`: forward+backward throughput and matrix-product speed of each engine.
//! Figures depend on the machine; compare rows of one run, not runs of different days.

use crate::config::Preset;
use crate::cpu::gpt::CpuGpt;
use crate::cpu::matmul::gemm;
use crate::engine::{lm_backward, lm_forward, Engine};
use crate::error::Result;
use crate::gpu::context::now_ms;
use crate::gpu::gpt::GpuGpt;
use crate::gpu::kernels::Mm;
use crate::gpu::{Gpu, MatmulKind};

use crate::params::ParamLayout;
use crate::rng::Rng;

pub fn header() -> String {
    format!(
        "| {:<6} | {:<28} | {:>9} | {:>16} | {:>26} |\n|--------|------------------------------|-----------|------------------|----------------------------|",
        "preset", "engine", "B×T", "fwd+bwd tok/s", "matmul GFLOP/s (M×K×N)"
    )
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

fn step<E: Engine>(engine: &mut E, tokens: &[u32], targets: &[i32], b: usize, t: usize) -> Result<()> {
    pollster::block_on(async {
        lm_forward(engine, tokens, targets, b, t).await?;
        engine.zero_grad()?;
        lm_backward(engine, targets, 1.0)?;
        // a gradient read waits for the backward pass, so the timing covers it
        engine.grads().await.map(|_| ())
    })
}

pub fn run(p: &Preset, engine: &str) -> Result<Vec<String>> {
    let cfg = p.model;
    let (b, t) = (p.train.batch_size, p.train.seq_len.min(cfg.n_ctx));
    let params = ParamLayout::new(&cfg).init(1);
    let mut rng = Rng::new(2);
    let tokens: Vec<u32> = (0..b * t).map(|_| rng.below(cfg.vocab_size) as u32).collect();
    let targets: Vec<i32> = (0..b * t).map(|_| rng.below(cfg.vocab_size) as i32).collect();
    // the MLP's first product: (B·T, C) × (C, 4C)
    let (m, k, n) = (b * t, cfg.n_embd, 4 * cfg.n_embd);
    let flops = 2.0 * (m * k * n) as f64;
    let shape = format!("{m}×{k}×{n}");
    let mut rows = Vec::new();
    let row = |eng: &str, tok_s: f64, gflops: f64| {
        format!("| {:<6} | {:<28} | {:>9} | {:>16.0} | {:>10.2} ({:>13}) |", p.name, eng, format!("{b}×{t}"), tok_s, gflops, shape)
    };
    match engine {
        "cpu" => {
            let mut e = CpuGpt::new(cfg, params, b, t)?;
            let ms = time_ms(2000.0, || step(&mut e, &tokens, &targets, b, t))?;
            let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
            let bm: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
            let mut c = vec![0.0f32; m * n];
            let mm_ms = time_ms(500.0, || {
                gemm(m, k, n, &a, k, 1, &bm, n, 1, 0.0, &mut c);
                Ok(())
            })?;
            rows.push(row("cpu (matrixmultiply)", (b * t) as f64 / (ms / 1e3), flops / (mm_ms / 1e3) / 1e9));
        }
        "gpu" => {
            for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
                let gpu = Gpu::new_blocking(Some(kind))?;
                let name = format!("gpu {} ({})", format!("{kind:?}").to_lowercase(), gpu.short_name());
                let ga = gpu.buffer("a", m * k);
                let gb = gpu.buffer("b", k * n);
                let gc = gpu.buffer("c", m * n);
                let reps = 4;
                let mm_ms = time_ms(1000.0, || {
                    let mut enc = gpu.encoder();
                    for _ in 0..reps {
                        gpu.kernels.matmul(&gpu, &mut enc, &Mm::plain(m, k, n), &ga, &gb, None, &gc);
                    }
                    gpu.submit(enc);
                    gpu.read_blocking::<f32>(&gc, 0, 1).map(|_| ())
                })? / reps as f64;
                let mut e = GpuGpt::new(gpu, cfg, &params, b, t)?;
                let ms = time_ms(2000.0, || step(&mut e, &tokens, &targets, b, t))?;
                rows.push(row(&name, (b * t) as f64 / (ms / 1e3), flops / (mm_ms / 1e3) / 1e9));
            }
        }
        other => crate::bail!("unknown engine '{other}' (cpu or gpu)"),
    }
    Ok(rows)
}
