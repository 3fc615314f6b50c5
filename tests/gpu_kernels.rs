//! Every WGSL kernel against the CPU reference on random shapes (natively on lavapipe in CI),
//! then the whole model: forward, backward and an AdamW step on both engines.

mod common;
use pollster::block_on;
use common::{assert_close, gpu, randn};

use rlhf_lab::config::preset;
use rlhf_lab::cpu;
use rlhf_lab::cpu::adamw::{adamw_update, clip_scale, global_norm, AdamParams};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::{lm_backward, lm_forward, Engine};
use rlhf_lab::gpu::gpt::GpuGpt;
use rlhf_lab::gpu::kernels::{AdamUniforms, AttnOffsets, LnOffsets, Mm};
use rlhf_lab::gpu::{Gpu, MatmulKind};
use rlhf_lab::params::ParamLayout;
use rlhf_lab::rng::Rng;

const ATOL: f32 = 1e-4;
const RTOL: f32 = 1e-4;

fn read(g: &Gpu, b: &wgpu::Buffer, n: usize) -> Vec<f32> {
    g.read_blocking(b, 0, n).unwrap()
}

#[test]
fn matmul_kernels_equal_cpu_on_random_shapes_and_strides() {
    let mut rng = Rng::new(10);
    for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
        let g = gpu(kind);
        for _ in 0..6 {
            let (m, k, n) = (1 + rng.below(70), 1 + rng.below(40), 1 + rng.below(70));
            let a = randn(&mut rng, m * k + 3, 1.0);
            let b = randn(&mut rng, k * n + 5, 1.0);
            let bias = randn(&mut rng, n + 2, 1.0);
            let c0 = randn(&mut rng, m * n + 4, 1.0);
            // row-major with offsets, A transposed, B transposed; with and without bias/accumulate
            for (case, (ars, acs, brs, bcs)) in [(k, 1, n, 1), (1, m, n, 1), (k, 1, 1, k)].into_iter().enumerate() {
                let (ao, bo, co) = (3, 5, 4);
                let accumulate = case != 1;
                let bias_off = if case != 2 { Some(2) } else { None };
                let mut want = c0.clone();
                let mut prod = vec![0.0; m * n];
                cpu::matmul::gemm_naive(m, k, n, &a[ao..], ars, acs, &b[bo..], brs, bcs, 0.0, &mut prod);
                for i in 0..m {
                    for j in 0..n {
                        let mut v = prod[i * n + j] + bias_off.map_or(0.0, |o| bias[o + j]);
                        if accumulate {
                            v += c0[co + i * n + j];
                        }
                        want[co + i * n + j] = v;
                    }
                }
                let (ga, gb, gbias, gc) = (g.buffer_from("a", &a), g.buffer_from("b", &b), g.buffer_from("bias", &bias), g.buffer_from("c", &c0));
                let mm = Mm { m, n, k, a: (ao, ars, acs), b: (bo, brs, bcs), c_off: co, c_rs: n, bias_off, accumulate };
                let mut e = g.encoder();
                g.kernels.matmul(&g, &mut e, &mm, &ga, &gb, Some(&gbias), &gc);
                g.submit(e);
                assert_close(&format!("{kind:?} {m}x{k}x{n} case {case}"), &read(&g, &gc, c0.len()), &want, ATOL, RTOL);
            }
        }
    }
}

#[test]
fn layernorm_kernels_equal_cpu() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(11);
    let (n, c) = (1 + rng.below(50), 1 + rng.below(40));
    let inp = randn(&mut rng, n * c, 2.0);
    let params = randn(&mut rng, 2 * c, 1.0);
    let (w, b) = (&params[..c], &params[c..]);
    let dout = randn(&mut rng, n * c, 1.0);
    let (mut out, mut mean, mut rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
    cpu::layernorm::layernorm_forward(&mut out, &mut mean, &mut rstd, &inp, w, b, n, c);
    let mut dinp = randn(&mut rng, n * c, 1.0);
    let dinp0 = dinp.clone();
    let (mut dw, mut db) = (vec![0.0; c], vec![0.0; c]);
    cpu::layernorm::layernorm_backward(&mut dinp, &mut dw, &mut db, &dout, &inp, w, &mean, &rstd, n, c);

    let (gi, gp) = (g.buffer_from("inp", &inp), g.buffer_from("params", &params));
    let (go, gm, gr) = (g.buffer("out", n * c), g.buffer("mean", n), g.buffer("rstd", n));
    let (gd, gdi, gg) = (g.buffer_from("dout", &dout), g.buffer_from("dinp", &dinp0), g.buffer("grads", 2 * c));
    let o = LnOffsets { inp: 0, out: 0, stat: 0, w: 0, b: c };
    let mut e = g.encoder();
    g.kernels.layernorm_forward(&g, &mut e, &go, &gm, &gr, &gi, &gp, o, n, c);
    g.kernels.layernorm_backward(&g, &mut e, &gdi, 0, &gg, &gd, &gi, &gp, &gm, &gr, o, n, c);
    g.submit(e);
    assert_close("ln out", &read(&g, &go, n * c), &out, ATOL, RTOL);
    assert_close("ln rstd", &read(&g, &gr, n), &rstd, ATOL, RTOL);
    assert_close("ln dinp", &read(&g, &gdi, n * c), &dinp, 1e-3, 1e-3);
    let grads = read(&g, &gg, 2 * c);
    assert_close("ln dweight", &grads[..c], &dw, 1e-3, 1e-3);
    assert_close("ln dbias", &grads[c..], &db, 1e-3, 1e-3);
}

#[test]
fn attention_kernels_equal_cpu() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(12);
    let (b, t, nh) = (1 + rng.below(3), 1 + rng.below(12), 1 + rng.below(3));
    let c = nh * (1 + rng.below(6));
    let inp = randn(&mut rng, b * t * 3 * c, 1.0);
    let dout = randn(&mut rng, b * t * c, 1.0);
    let an = b * nh * t * t;
    let (mut out, mut pre, mut att) = (vec![0.0; b * t * c], vec![0.0; an], vec![0.0; an]);
    cpu::attention::attention_forward(&mut out, &mut pre, &mut att, &inp, b, t, c, nh);
    let (mut dinp, mut dpre, mut datt) = (vec![0.0; inp.len()], vec![0.0; an], vec![0.0; an]);
    cpu::attention::attention_backward(&mut dinp, &mut dpre, &mut datt, &dout, &inp, &att, b, t, c, nh);

    let gi = g.buffer_from("qkv", &inp);
    let (go, gpre, gatt) = (g.buffer("out", b * t * c), g.buffer("preatt", an), g.buffer("att", an));
    let (gd, gdi, gdpre) = (g.buffer_from("dout", &dout), g.buffer("dqkv", inp.len()), g.buffer("dpreatt", an));
    let o = AttnOffsets { qkv: 0, out: 0, att: 0 };
    let mut e = g.encoder();
    g.kernels.attention_forward(&g, &mut e, &go, &gpre, &gatt, &gi, o, b, t, c, nh);
    g.kernels.attention_backward(&g, &mut e, &gdi, &gdpre, &gd, &gi, &gatt, o, b, t, c, nh);
    g.submit(e);
    assert_close("att out", &read(&g, &go, b * t * c), &out, ATOL, RTOL);
    assert_close("att weights", &read(&g, &gatt, an), &att, ATOL, RTOL);
    assert_close("att preatt", &read(&g, &gpre, an), &pre, ATOL, RTOL);
    assert_close("att dpreatt", &read(&g, &gdpre, an), &dpre, 1e-3, 1e-3);
    assert_close("att dqkv", &read(&g, &gdi, inp.len()), &dinp, 1e-3, 1e-3);
}

#[test]
fn elementwise_kernels_equal_cpu() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(13);
    let n = 1 + rng.below(3000);
    let x = randn(&mut rng, n, 3.0);
    let y = randn(&mut rng, n, 1.0);
    let d = randn(&mut rng, n, 1.0);
    // gelu
    let mut out = vec![0.0; n];
    cpu::gelu::gelu_forward(&mut out, &x);
    let mut dx = y.clone();
    cpu::gelu::gelu_backward(&mut dx, &x, &d);
    let (gx, gout, gd, gdx) = (g.buffer_from("x", &x), g.buffer("out", n), g.buffer_from("d", &d), g.buffer_from("dx", &y));
    let mut e = g.encoder();
    g.kernels.gelu_forward(&g, &mut e, &gout, &gx, 0, n);
    g.kernels.gelu_backward(&g, &mut e, &gdx, &gx, &gd, 0, n);
    g.submit(e);
    assert_close("gelu", &read(&g, &gout, n), &out, ATOL, RTOL);
    assert_close("gelu backward", &read(&g, &gdx, n), &dx, ATOL, RTOL);
    // residual
    let mut sum = vec![0.0; n];
    cpu::residual::residual_forward(&mut sum, &x, &y);
    let (mut da, mut db) = (x.clone(), y.clone());
    cpu::residual::residual_backward(&mut da, &mut db, &d);
    let (gy, gs, gda, gdb) = (g.buffer_from("y", &y), g.buffer("sum", n), g.buffer_from("da", &x), g.buffer_from("db", &y));
    let mut e = g.encoder();
    g.kernels.residual_forward(&g, &mut e, &gs, 0, &gx, 0, &gy, 0, n);
    g.kernels.residual_backward(&g, &mut e, &gda, 0, &gdb, 0, &gd, 0, n);
    g.submit(e);
    assert_close("residual", &read(&g, &gs, n), &sum, ATOL, RTOL);
    assert_close("residual da", &read(&g, &gda, n), &da, ATOL, RTOL);
    assert_close("residual db", &read(&g, &gdb, n), &db, ATOL, RTOL);
}

#[test]
fn encoder_and_crossentropy_kernels_equal_cpu() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(14);
    let (b, t, c, v) = (3, 7, 5, 11);
    let tokens: Vec<u32> = (0..b * t).map(|_| rng.below(v) as u32).collect();
    let params = randn(&mut rng, v * c + t * c, 1.0);
    let (wte, wpe) = (&params[..v * c], &params[v * c..]);
    let mut out = vec![0.0; b * t * c];
    cpu::encoder::encoder_forward(&mut out, &tokens, wte, wpe, b, t, c);
    let dout = randn(&mut rng, b * t * c, 1.0);
    let mut grads = vec![0.0; params.len()];
    {
        let (dwte, dwpe) = grads.split_at_mut(v * c);
        cpu::encoder::encoder_backward(dwte, dwpe, &dout, &tokens, b, t, c);
    }
    let (gt, gp, go, gd, gg) = (g.buffer_from("tok", &tokens), g.buffer_from("p", &params), g.buffer("out", out.len()), g.buffer_from("dout", &dout), g.buffer("g", params.len()));
    let mut e = g.encoder();
    g.kernels.encoder_forward(&g, &mut e, &go, &gt, &gp, 0, v * c, b, t, c);
    g.kernels.encoder_backward(&g, &mut e, &gg, &gd, &gt, 0, v * c, b, t, c);
    g.submit(e);
    assert_close("encoder", &read(&g, &go, out.len()), &out, ATOL, RTOL);
    assert_close("encoder backward", &read(&g, &gg, params.len()), &grads, ATOL, RTOL);

    let n = b * t;
    let logits = randn(&mut rng, n * v, 3.0);
    let targets: Vec<i32> = (0..n).map(|i| if i % 5 == 2 { -1 } else { rng.below(v) as i32 }).collect();
    let temp = 0.8;
    let (mut losses, mut lse, mut ent) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    cpu::crossentropy::crossentropy_forward(&mut losses, &mut lse, &mut ent, &logits, &targets, temp, n, v);
    let weights = randn(&mut rng, n, 1.0);
    let mut dl = vec![0.0; n * v];
    cpu::crossentropy::crossentropy_backward(&mut dl, &logits, &lse, &targets, &weights, temp, n, v);
    let (gl, gtg, gls, glse, gdl) = (g.buffer_from("l", &logits), g.buffer_from("tg", &targets), g.buffer("losses", n), g.buffer("lse", n), g.buffer("dl", n * v));
    let (gent, gw) = (g.buffer("entropy", n), g.buffer_from("w", &weights));
    let mut e = g.encoder();
    g.kernels.crossentropy_forward(&g, &mut e, &gls, &glse, &gent, &gl, &gtg, temp, n, v);
    g.kernels.crossentropy_backward(&g, &mut e, &gdl, &gl, &glse, &gtg, &gw, temp, n, v);
    g.submit(e);
    assert_close("losses", &read(&g, &gls, n), &losses, ATOL, RTOL);
    assert_close("entropy", &read(&g, &gent, n), &ent, ATOL, RTOL);
    assert_close("dlogits", &read(&g, &gdl, n * v), &dl, ATOL, RTOL);
}

#[test]
fn adamw_kernel_equals_cpu_and_skips_nonfinite_gradients() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(15);
    let n = 5000;
    let params = randn(&mut rng, n, 1.0);
    let grads = randn(&mut rng, n, 0.5);
    let m0 = randn(&mut rng, n, 0.1);
    let v0: Vec<f32> = randn(&mut rng, n, 0.1).iter().map(|x| x * x).collect();
    let opt = AdamParams { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, t: 3 };
    let max_norm = 1.0;
    let norm = global_norm(&grads);
    let scale = clip_scale(norm, max_norm);
    assert!(scale < 1.0, "the test means to exercise clipping");
    let (mut p, mut m, mut v) = (params.clone(), m0.clone(), v0.clone());
    adamw_update(&mut p, &grads, &mut m, &mut v, &opt, scale, true);

    let run = |grads: &[f32]| {
        let (gp, gg, gm, gv) = (g.buffer_from("p", &params), g.buffer_from("g", grads), g.buffer_from("m", &m0), g.buffer_from("v", &v0));
        let (gpart, gnorm) = (g.buffer("partial", 64), g.buffer("norm", 2));
        let au = AdamUniforms { lr: opt.lr, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps, b1_corr: 1.0 - 0.9f32.powi(3), b2_corr: 1.0 - 0.95f32.powi(3) };
        let mut e = g.encoder();
        g.kernels.grad_norm(&g, &mut e, &gg, &gpart, &gnorm, n, max_norm);
        g.kernels.adamw(&g, &mut e, &gp, &gg, &gm, &gv, &gnorm, 0, n, &au, opt.weight_decay);
        g.submit(e);
        (read(&g, &gnorm, 2), read(&g, &gp, n), read(&g, &gm, n))
    };
    let (gn, gp, gm) = run(&grads);
    assert_close("grad norm", &gn, &[norm, scale], 1e-5, 1e-4);
    assert_close("params", &gp, &p, 1e-5, 1e-4);
    assert_close("adam m", &gm, &m, 1e-6, 1e-4);

    let mut bad = grads.clone();
    bad[17] = f32::NAN;
    let (gn, gp, _) = run(&bad);
    assert!(!gn[0].is_finite());
    assert_eq!(gp, params, "a non-finite gradient must leave the weights untouched");
}

#[test]
fn whole_model_on_gpu_equals_cpu_reference() {
    let p = preset("tiny").unwrap();
    let cfg = p.model;
    let params = ParamLayout::new(&cfg).init(21);
    let (b, t) = (3, 17);
    let mut rng = Rng::new(22);
    let tokens: Vec<u32> = (0..b * t).map(|_| rng.below(cfg.vocab_size) as u32).collect();
    let targets: Vec<i32> = (0..b * t).map(|i| if i % 6 == 0 { -1 } else { rng.below(cfg.vocab_size) as i32 }).collect();
    // a larger epsilon: where a gradient is near zero its rounding differs between engines, and
    // AdamW would turn that into a full-size step of either sign
    let opt = AdamParams { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-4, weight_decay: 0.1, t: 1 };
    for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
        let mut c = CpuGpt::new(cfg, params.clone(), b, t).unwrap();
        let mut g = GpuGpt::new(gpu(kind), cfg, &params, b, t).unwrap();
        for step in 0..2 {
            let lc = block_on(lm_forward(&mut c, &tokens, &targets, b, t)).unwrap();
            let lg = block_on(lm_forward(&mut g, &tokens, &targets, b, t)).unwrap();
            assert!((lc - lg).abs() < 1e-4, "{kind:?} step {step}: loss cpu {lc} gpu {lg}");
            assert_close("logits", &block_on(g.logits()).unwrap(), &block_on(c.logits()).unwrap(), 1e-4, 1e-3);
            c.zero_grad().unwrap();
            g.zero_grad().unwrap();
            lm_backward(&mut c, &targets, 1.0).unwrap();
            lm_backward(&mut g, &targets, 1.0).unwrap();
            assert_close(&format!("{kind:?} grads"), &block_on(g.grads()).unwrap(), &block_on(c.grads()).unwrap(), 1e-5, 1e-3);
            // a second backward pass from the hidden state, as reward and value heads do, accumulates on both
            let dh = randn(&mut rng, b * t * cfg.n_embd, 0.1);
            c.backward(None, Some(&dh)).unwrap();
            g.backward(None, Some(&dh)).unwrap();
            assert_close(&format!("{kind:?} grads after dhidden"), &block_on(g.grads()).unwrap(), &block_on(c.grads()).unwrap(), 1e-5, 1e-3);
            assert_close("hidden", &block_on(g.hidden()).unwrap(), &block_on(c.hidden()).unwrap(), 1e-4, 1e-3);
            let rc = block_on(c.update(&AdamParams { t: step + 1, ..opt }, 1.0)).unwrap();
            let rg = block_on(g.update(&AdamParams { t: step + 1, ..opt }, 1.0)).unwrap();
            assert!((rc.grad_norm - rg.grad_norm).abs() < 1e-4 * rc.grad_norm.max(1.0));
            assert_close(&format!("{kind:?} params"), &block_on(g.params()).unwrap(), &block_on(c.params()).unwrap(), 1e-5, 1e-3);
        }
    }
}

#[test]
fn optimizer_state_round_trips_on_both_engines() {
    let cfg = preset("tiny").unwrap().model;
    let n = ParamLayout::new(&cfg).total;
    let mut rng = Rng::new(40);
    let m = randn(&mut rng, n, 0.1);
    let v: Vec<f32> = randn(&mut rng, n, 0.1).iter().map(|x| x * x).collect();
    let params = ParamLayout::new(&cfg).init(41);
    let mut c = CpuGpt::new(cfg, params.clone(), 2, 8).unwrap();
    let mut g = GpuGpt::new(gpu(MatmulKind::Blocked), cfg, &params, 2, 8).unwrap();
    c.set_optimizer_state(&m, &v).unwrap();
    g.set_optimizer_state(&m, &v).unwrap();
    assert_eq!(block_on(c.optimizer_state()).unwrap(), (m.clone(), v.clone()));
    assert_eq!(block_on(g.optimizer_state()).unwrap(), (m.clone(), v.clone()));
    assert!(c.set_optimizer_state(&m[1..], &v).is_err());
    // after a reset the moments are zero again
    g.reset_optimizer().unwrap();
    assert!(block_on(g.optimizer_state()).unwrap().0.iter().all(|&x| x == 0.0));
}
