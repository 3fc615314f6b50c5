//! Every WGSL kernel, fused ones included, against the CPU reference on random shapes (natively on
//! lavapipe in CI), the Rust–WGSL contract (uniform blocks of equal size), then the whole model:
//! forward, backward and an AdamW step on both engines, and what a step asks of the device.

mod common;
use common::{assert_close, gpu, randn};
use pollster::block_on;

use rlhf_lab::config::{preset, AdamParams};
use rlhf_lab::cpu;
use rlhf_lab::cpu::adamw::{adamw_update, clip_scale, global_norm};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::{lm_backward, lm_forward, Engine};
use rlhf_lab::gpu::gpt::GpuGpt;
use rlhf_lab::gpu::kernels::{AdamUniforms, AdamW, AttnOffsets, CeBufs, Epilogue, LnOffsets, LnOut, Mm, Operands, SurrogateBufs};
use rlhf_lab::gpu::{GBuf, Gpu, MatmulKind};
use rlhf_lab::params::ParamLayout;
use rlhf_lab::rng::Rng;
use rlhf_lab::surrogate::{surrogate_weights, PolicyBatch, PtxBatch};

const ATOL: f32 = 1e-4;
const RTOL: f32 = 1e-4;

fn read(g: &Gpu, b: &GBuf, n: usize) -> Vec<f32> {
    g.read_blocking(b, 0, n).unwrap()
}

fn submit(g: &Gpu, f: impl FnOnce(&mut rlhf_lab::gpu::recorder::Recorder)) {
    let mut rec = g.recorder();
    f(&mut rec);
    rec.submit();
}

/// C = [C0 +] A·B with strides, then the epilogue, written out in f64 loops.
fn product(mm: &Mm, a: &[f32], b: &[f32], c0: &[f32]) -> Vec<f32> {
    let mut prod = vec![0.0; mm.m * mm.n];
    cpu::matmul::gemm_naive(mm.m, mm.k, mm.n, &a[mm.a.0..], mm.a.1, mm.a.2, &b[mm.b.0..], mm.b.1, mm.b.2, 0.0, &mut prod);
    let mut c = c0.to_vec();
    for i in 0..mm.m {
        for j in 0..mm.n {
            let o = mm.c_off + i * mm.c_rs + j;
            c[o] = prod[i * mm.n + j] + if mm.epi.accumulate { c0[o] } else { 0.0 };
        }
    }
    c
}

#[test]
fn matmul_kernels_equal_cpu_on_random_shapes_strides_and_epilogues() {
    let mut rng = Rng::new(10);
    for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
        let g = gpu(kind);
        for _ in 0..5 {
            let (m, k, n) = (1 + rng.below(70), 1 + rng.below(40), 1 + rng.below(70));
            let a = randn(&mut rng, m * k + 3, 1.0);
            let b = randn(&mut rng, k * n + 5, 1.0);
            let src2 = randn(&mut rng, m * n + n + 2, 1.0);
            let c0 = randn(&mut rng, m * n + m + 4, 1.0);
            // row-major with offsets, A transposed, B transposed; bias, accumulate, gelu, gelu', bias gradient
            for (case, (ars, acs, brs, bcs)) in [(k, 1, n, 1), (1, m, n, 1), (k, 1, 1, k), (k, 1, n, 1), (1, m, n, 1)].into_iter().enumerate() {
                let epi = match case {
                    0 => Epilogue { accumulate: true, bias: Some(2), ..Default::default() },
                    1 => Epilogue::default(),
                    2 => Epilogue { bias: Some(1), gelu: Some(0), ..Default::default() },
                    3 => Epilogue { gelu_grad: Some(n), ..Default::default() },
                    _ => Epilogue { accumulate: true, bias_grad: Some(m * n + 4), ..Default::default() },
                };
                let mm = Mm { m, n, k, a: (3, ars, acs), b: (5, brs, bcs), c_off: 4, c_rs: n, epi };
                let mut want = product(&mm, &a, &b, &c0);
                let mut want_act = vec![0.0; m * n];
                for i in 0..m {
                    for j in 0..n {
                        let o = 4 + i * n + j;
                        if let Some(bo) = epi.bias {
                            want[o] += src2[bo + j];
                        }
                        if let Some(go) = epi.gelu_grad {
                            let mut d = [0.0];
                            cpu::gelu::gelu_backward(&mut d, &[src2[go + i * n + j]], &[want[o]]);
                            want[o] = d[0];
                        }
                        if epi.gelu.is_some() {
                            cpu::gelu::gelu_forward(&mut want_act[i * n + j..i * n + j + 1], &[want[o]]);
                        }
                    }
                    if let Some(bg) = epi.bias_grad {
                        // the row sums of A
                        want[bg + i] += (0..k).map(|p| a[3 + i * ars + p * acs] as f64).sum::<f64>() as f32;
                    }
                }
                let (ga, gb, gs, gc, gact) =
                    (g.buffer_from("a", &a), g.buffer_from("b", &b), g.buffer_from("s", &src2), g.buffer_from("c", &c0), g.buffer("act", m * n));
                submit(&g, |rec| g.kernels.matmul(rec, &mm, &ga, &gb, &gc, Some(&gs), epi.gelu.map(|_| &gact)));
                assert_close(&format!("{kind:?} {m}x{k}x{n} case {case}"), &read(&g, &gc, c0.len()), &want, ATOL, RTOL);
                if epi.gelu.is_some() {
                    assert_close(&format!("{kind:?} gelu {m}x{k}x{n}"), &read(&g, &gact, m * n), &want_act, ATOL, RTOL);
                }
            }
        }
    }
}

#[test]
fn two_products_in_one_dispatch_equal_two_separate_ones() {
    // a linear layer's backward pass: dinp = dout·W and dW (+ dbias) += doutᵀ·inp, both from dout
    let mut rng = Rng::new(16);
    for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
        let g = gpu(kind);
        let (n, ic, oc) = (1 + rng.below(60), 1 + rng.below(30), 1 + rng.below(50));
        let dout = randn(&mut rng, n * oc, 1.0);
        let w = randn(&mut rng, oc * ic, 1.0);
        let inp = randn(&mut rng, n * ic, 1.0);
        let grads0 = randn(&mut rng, oc * ic + oc, 1.0);
        let (mut dinp, mut grads) = (vec![0.0; n * ic], grads0.clone());
        {
            let (dw, db) = grads.split_at_mut(oc * ic);
            cpu::matmul::matmul_backward(&mut dinp, dw, Some(db), &dout, &inp, &w, n, ic, oc);
        }
        let dx = Mm { m: n, n: ic, k: oc, a: (0, oc, 1), b: (0, ic, 1), c_off: 0, c_rs: ic, epi: Epilogue::default() };
        let dw = Mm {
            m: oc,
            n: ic,
            k: n,
            a: (0, 1, oc),
            b: (0, ic, 1),
            c_off: 0,
            c_rs: ic,
            epi: Epilogue { accumulate: true, bias_grad: Some(oc * ic), ..Default::default() },
        };
        let (gd, gw, gi, gdi, gg) = (
            g.buffer_from("dout", &dout),
            g.buffer_from("w", &w),
            g.buffer_from("inp", &inp),
            g.buffer("dinp", n * ic),
            g.buffer_from("grads", &grads0),
        );
        submit(&g, |rec| g.kernels.matmul2(rec, &gd, (&dx, Operands { b: &gw, c: &gdi }), (&dw, Operands { b: &gi, c: &gg }), None));
        assert_close(&format!("{kind:?} dinp"), &read(&g, &gdi, n * ic), &dinp, ATOL, RTOL);
        assert_close(&format!("{kind:?} dweight and dbias"), &read(&g, &gg, grads.len()), &grads, 1e-3, 1e-3);
    }
}

#[test]
fn fused_layernorm_kernels_equal_cpu() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(11);
    let (b, t, c, v) = (2, 1 + rng.below(20), 1 + rng.below(40), 13);
    let n = b * t;
    let tokens: Vec<u32> = (0..n).map(|_| rng.below(v) as u32).collect();
    // params: wte (V,C), wpe (T+3,C), ln weight and bias (C each)
    let params = randn(&mut rng, v * c + (t + 3) * c + 2 * c, 1.0);
    let (wte, wpe, lnw, lnb) = (&params[..v * c], &params[v * c..v * c + (t + 3) * c], v * c + (t + 3) * c, v * c + (t + 3) * c + c);
    let at = LnOffsets { res: 0, out: 0, stat: 0, w: lnw, b: lnb };
    let ln = |x: &[f32]| {
        let (mut out, mut mean, mut rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
        cpu::layernorm::layernorm_forward(&mut out, &mut mean, &mut rstd, x, &params[lnw..lnw + c], &params[lnb..lnb + c], n, c);
        (out, mean, rstd)
    };
    let (gp, gt) = (g.buffer_from("params", &params), g.buffer_from("tokens", &tokens));
    let (gres, gout, gm, gr) = (g.buffer("res", n * c), g.buffer("out", n * c), g.buffer("mean", n), g.buffer("rstd", n));
    let o = LnOut { res: &gres, out: &gout, mean: &gm, rstd: &gr };
    // the embedding (at positions 2.., as a decode step would start) then LayerNorm
    let mut enc = vec![0.0; n * c];
    cpu::encoder::encoder_forward(&mut enc, &tokens, wte, &wpe[2 * c..], b, t, c);
    let (out, _, rstd) = ln(&enc);
    submit(&g, |rec| g.kernels.embed_layernorm(rec, &gt, &gp, &o, at, 0, v * c, n, t, 2, c));
    assert_close("embedding", &read(&g, &gres, n * c), &enc, ATOL, RTOL);
    assert_close("embedding + ln", &read(&g, &gout, n * c), &out, ATOL, RTOL);
    assert_close("ln rstd", &read(&g, &gr, n), &rstd, ATOL, RTOL);
    // a residual add then LayerNorm
    let (x, y) = (randn(&mut rng, n * c + 3, 2.0), randn(&mut rng, n * c, 1.0));
    let mut sum = vec![0.0; n * c];
    cpu::residual::residual_forward(&mut sum, &x[3..], &y);
    let (out, mean, rstd) = ln(&sum);
    let (gx, gy) = (g.buffer_from("x", &x), g.buffer_from("y", &y));
    submit(&g, |rec| g.kernels.residual_layernorm(rec, (&gx, 3), (&gy, 0), &gp, &o, at, n, c));
    assert_close("residual", &read(&g, &gres, n * c), &sum, ATOL, RTOL);
    assert_close("residual + ln", &read(&g, &gout, n * c), &out, ATOL, RTOL);
    // the backward pass, accumulating into dinp and writing it
    let dout = randn(&mut rng, n * c, 1.0);
    let dinp0 = randn(&mut rng, n * c, 1.0);
    for accumulate in [true, false] {
        let mut dinp = if accumulate { dinp0.clone() } else { vec![0.0; n * c] };
        let (mut dw, mut db) = (vec![0.0; c], vec![0.0; c]);
        cpu::layernorm::layernorm_backward(&mut dinp, &mut dw, &mut db, &dout, &sum, &params[lnw..lnw + c], &mean, &rstd, n, c);
        let (gd, gdi, gg) = (g.buffer_from("dout", &dout), g.buffer_from("dinp", &dinp0), g.buffer("grads", params.len()));
        submit(&g, |rec| g.kernels.layernorm_backward(rec, (&gdi, 0, accumulate), &gg, &gd, &gres, &gp, (&gm, &gr), at, n, c));
        assert_close("ln dinp", &read(&g, &gdi, n * c), &dinp, 1e-3, 1e-3);
        let grads = read(&g, &gg, params.len());
        assert_close("ln dweight", &grads[lnw..lnw + c], &dw, 1e-3, 1e-3);
        assert_close("ln dbias", &grads[lnb..lnb + c], &db, 1e-3, 1e-3);
    }
    // the embedding's backward pass
    let mut grads = vec![0.0; params.len()];
    {
        let (dwte, rest) = grads.split_at_mut(v * c);
        cpu::encoder::encoder_backward(dwte, &mut rest[..(t + 3) * c], &dout, &tokens, b, t, c);
    }
    let (gd, gg) = (g.buffer_from("dout", &dout), g.buffer("grads", params.len()));
    submit(&g, |rec| g.kernels.encoder_backward(rec, &gg, (&gd, 0), &gt, 0, v * c, b, t, c));
    assert_close("encoder backward", &read(&g, &gg, params.len()), &grads, ATOL, RTOL);
}

#[test]
fn attention_kernels_equal_cpu() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(12);
    for _ in 0..3 {
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
        let (go, glse) = (g.buffer("out", b * t * c), g.buffer("lse", b * nh * t));
        // dqkv starts from garbage: the kernels write every element whole
        let (gd, gdi, gsum) = (g.buffer_from("dout", &dout), g.buffer_from("dqkv", &randn(&mut rng, inp.len(), 9.0)), g.buffer("dsum", b * nh * t));
        let o = AttnOffsets { qkv: 0, out: 0, lse: 0 };
        submit(&g, |rec| {
            g.kernels.attention_forward(rec, &go, &glse, &gi, o, b, t, c, nh);
            g.kernels.attention_backward(rec, &gdi, &gsum, &gd, &gi, &go, &glse, o, b, t, c, nh);
        });
        assert_close("att out", &read(&g, &go, b * t * c), &out, ATOL, RTOL);
        assert_close("att dqkv", &read(&g, &gdi, inp.len()), &dinp, 1e-3, 1e-3);
    }
}

#[test]
fn crossentropy_kernels_equal_cpu() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(14);
    let (n, v) = (21, 11);
    let logits = randn(&mut rng, n * v, 3.0);
    let targets: Vec<i32> = (0..n).map(|i| if i % 5 == 2 { -1 } else { rng.below(v) as i32 }).collect();
    let temp = 0.8;
    let (mut losses, mut lse, mut ent) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    cpu::crossentropy::crossentropy_forward(&mut losses, &mut lse, &mut ent, &logits, &targets, temp, n, v);
    let weights = randn(&mut rng, n, 1.0);
    let mut dl = vec![0.0; n * v];
    cpu::crossentropy::crossentropy_backward(&mut dl, &logits, &lse, &targets, &weights, temp, n, v);
    let (gl, gtg, gls, glse, gent) =
        (g.buffer_from("l", &logits), g.buffer_from("tg", &targets), g.buffer("losses", n), g.buffer("lse", n), g.buffer("entropy", n));
    let (gw, gdl, gmean) = (g.buffer_from("w", &weights), g.buffer_from("dl", &randn(&mut rng, n * v, 5.0)), g.buffer("mean", 3));
    let x = CeBufs { logits: &gl, targets: &gtg, losses: &gls, lse: &glse, entropy: &gent };
    submit(&g, |rec| {
        g.kernels.crossentropy_forward(rec, &x, temp, n, v);
        g.kernels.crossentropy_backward(rec, &gdl, &x, &gw, temp, n, v);
        g.kernels.mean_loss(rec, &gls, &gtg, n, (&gmean, 2));
    });
    assert_close("losses", &read(&g, &gls, n), &losses, ATOL, RTOL);
    assert_close("entropy", &read(&g, &gent, n), &ent, ATOL, RTOL);
    assert_close("dlogits", &read(&g, &gdl, n * v), &dl, ATOL, RTOL);
    let mean = rlhf_lab::engine::mean_loss(&losses, &targets);
    assert_close("mean loss", &read(&g, &gmean, 3)[2..], &[mean], ATOL, RTOL);
}

#[test]
fn surrogate_kernel_equals_cpu() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(15);
    // more positions than one workgroup has threads, ratios far enough from 1 to clip on both sides
    let n = 700;
    let targets: Vec<i32> = (0..n).map(|i| if i % 7 == 3 { -1 } else { rng.below(50) as i32 }).collect();
    let losses: Vec<f32> = randn(&mut rng, n, 1.0).iter().map(|x| x.abs() + 0.1).collect();
    let logp_old: Vec<f32> = losses.iter().zip(randn(&mut rng, n, 0.3)).map(|(l, d)| -l + d).collect();
    let advantages = randn(&mut rng, n, 1.0);
    let x = PolicyBatch {
        tokens: &[],
        targets: &targets,
        logp_old: &logp_old,
        advantages: &advantages,
        b: 5,
        t: 140,
        lens: None,
        clip: 0.2,
        temperature: 1.0,
        answers: 5.0,
    };
    let (want, sums) = surrogate_weights(&x, &losses);
    assert!(sums.clipped > 50.0 && sums.clipped < sums.actions - 50.0, "both cases exercised: {sums:?}");
    let old_adv: Vec<f32> = logp_old.iter().chain(&advantages).copied().collect();
    let (gtg, gls, goa, gw, gout) = (
        g.buffer_from("tg", &targets),
        g.buffer_from("l", &losses),
        g.buffer_from("oa", &old_adv),
        g.buffer_from("w", &randn(&mut rng, n, 1.0)),
        g.buffer("out", 8),
    );
    submit(&g, |rec| {
        let bufs = SurrogateBufs { targets: &gtg, losses: &gls, old_adv: &goa, weights: &gw, out: (&gout, 3) };
        g.kernels.surrogate(rec, &bufs, n, x.clip, x.answers);
    });
    assert_close("surrogate weights", &read(&g, &gw, n), &want, ATOL, RTOL);
    let want_sums = [sums.loss, sums.clipped, sums.actions, sums.approx_kl];
    assert_close("surrogate sums", &read(&g, &gout, 8)[3..7], &want_sums, 1e-3, 1e-4);
}

#[test]
fn adamw_kernel_equals_cpu_per_tensor_and_skips_nonfinite_gradients() {
    let g = gpu(MatmulKind::Blocked);
    let mut rng = Rng::new(15);
    let n = 5000;
    // three kinds of tensor: decayed, not decayed, decayed
    let kinds = [(0usize, true), (1200, false), (3100, true)];
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
    for (i, &(s, decays)) in kinds.iter().enumerate() {
        let e = kinds.get(i + 1).map_or(n, |k| k.0);
        adamw_update(&mut p[s..e], &grads[s..e], &mut m[s..e], &mut v[s..e], &opt, scale, decays);
    }
    let run = |grads: &[f32]| {
        let (gp, gg, gm, gv) = (g.buffer_from("p", &params), g.buffer_from("g", grads), g.buffer_from("m", &m0), g.buffer_from("v", &v0));
        let (gpart, gnorm) = (g.buffer("partial", 64), g.buffer("norm", 2));
        let x = AdamW { params: &gp, grads: &gg, m: &gm, v: &gv, partial: &gpart, norm: &gnorm };
        submit(&g, |rec| g.kernels.adamw_step(rec, &x, n, &AdamUniforms::from(&opt), max_norm, &kinds));
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
fn every_uniform_block_is_laid_out_as_its_wgsl_struct() {
    // naga reflects each WGSL struct (after the header of Rust constants the engine prepends); the
    // Rust struct must have its size and, field by field, its names and offsets
    for u in rlhf_lab::gpu::kernels::uniform_layouts() {
        let module = naga::front::wgsl::parse_str(&u.wgsl).unwrap_or_else(|e| panic!("{}: {}", u.wgsl_struct, e.emit_to_string(&u.wgsl)));
        let ty =
            module.types.iter().find(|(_, t)| t.name.as_deref() == Some(u.wgsl_struct)).unwrap_or_else(|| panic!("no struct {}", u.wgsl_struct)).1;
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{} is not a struct", u.wgsl_struct) };
        let wgsl: Vec<(String, usize)> = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize)).collect();
        let rust: Vec<(String, usize)> = u.fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
        assert_eq!(rust, wgsl, "struct {}: fields and offsets, Rust vs WGSL", u.wgsl_struct);
        assert_eq!(u.size, *span as usize, "struct {}: size", u.wgsl_struct);
    }
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
        // the one-submission training step takes the same step as the pieces above
        let o3 = AdamParams { t: 3, ..opt };
        let (lc, rc) = block_on(c.lm_step(&tokens, &targets, b, t, &o3, 1.0)).unwrap();
        let (lg, rg) = block_on(g.lm_step(&tokens, &targets, b, t, &o3, 1.0)).unwrap();
        assert!((lc - lg).abs() < 1e-4 && (rc.grad_norm - rg.grad_norm).abs() < 1e-4 * rc.grad_norm.max(1.0), "{lc} {lg} {rc:?} {rg:?}");
        assert_close(&format!("{kind:?} params after lm_step"), &block_on(g.params()).unwrap(), &block_on(c.params()).unwrap(), 1e-5, 1e-3);
    }
}

#[test]
fn a_ppo_policy_step_on_gpu_equals_cpu_in_one_submission() {
    let cfg = preset("tiny").unwrap().model;
    let params = ParamLayout::new(&cfg).init(24);
    let (b, t) = (3, 20);
    let mut rng = Rng::new(25);
    let tokens: Vec<u32> = (0..b * t).map(|_| rng.below(cfg.vocab_size) as u32).collect();
    // each row: a prompt of 5 tokens, then actions to its end
    let targets: Vec<i32> = (0..b * t).map(|i| if i % t < 4 || i % t == t - 1 { -1 } else { tokens[i + 1] as i32 }).collect();
    let advantages: Vec<f32> = targets.iter().zip(randn(&mut rng, b * t, 1.0)).map(|(&tg, a)| if tg < 0 { 0.0 } else { a }).collect();
    let (pb, pt) = (2, 16);
    let ptx_tokens: Vec<u32> = (0..pb * pt).map(|_| rng.below(cfg.vocab_size) as u32).collect();
    let ptx_targets: Vec<i32> = (0..pb * pt).map(|_| rng.below(cfg.vocab_size) as i32).collect();
    let ptx = PtxBatch { tokens: &ptx_tokens, targets: &ptx_targets, b: pb, t: pt, gamma: 2.0 };
    let opt = AdamParams { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-4, weight_decay: 0.1, t: 1 };
    let g = gpu(MatmulKind::Blocked);
    let mut c = CpuGpt::new(cfg, params.clone(), b, t).unwrap();
    let mut e = GpuGpt::new(g.clone(), cfg, &params, b, t).unwrap();
    // old log-probs: the current policy's, nudged, so some ratios clip after the first step
    c.forward(&tokens, b, t).unwrap();
    let logp_old: Vec<f32> =
        block_on(c.token_losses(&targets, 0.7)).unwrap().losses.iter().zip(randn(&mut rng, b * t, 0.2)).map(|(l, d)| -l + d).collect();
    let x = PolicyBatch {
        tokens: &tokens,
        targets: &targets,
        logp_old: &logp_old,
        advantages: &advantages,
        b,
        t,
        lens: None,
        clip: 0.2,
        temperature: 0.7,
        answers: b as f32,
    };
    let mut clipped = 0.0;
    for step in 1..=3 {
        let o = AdamParams { t: step, ..opt };
        let rc = block_on(c.policy_step(&x, Some(&ptx), &o, 1.0)).unwrap();
        let s0 = g.snapshot();
        let rg = block_on(e.policy_step(&x, Some(&ptx), &o, 1.0)).unwrap();
        let s = g.snapshot().since(&s0);
        assert_eq!((s.submissions, s.readbacks), (1, 1), "one submission and one readback: {s:?}");
        let (a, b) = (
            [rc.sums.loss, rc.sums.clipped, rc.sums.actions, rc.sums.approx_kl, rc.ptx_loss, rc.step.grad_norm],
            [rg.sums.loss, rg.sums.clipped, rg.sums.actions, rg.sums.approx_kl, rg.ptx_loss, rg.step.grad_norm],
        );
        assert_close(&format!("step {step}: surrogate sums, ptx loss, gradient norm"), &b, &a, 1e-4, 1e-3);
        assert_close(&format!("step {step}: params"), &block_on(e.params()).unwrap(), &block_on(c.params()).unwrap(), 1e-5, 1e-3);
        clipped += rc.sums.clipped;
    }
    assert!(clipped > 0.0, "some ratios clip");
    // a non-finite advantage skips the step on both engines and leaves the parameters alone
    let mut bad = advantages.clone();
    bad[6] = f32::NAN;
    let x = PolicyBatch { advantages: &bad, ..x };
    let before = block_on(e.params()).unwrap();
    assert!(!block_on(c.policy_step(&x, Some(&ptx), &AdamParams { t: 4, ..opt }, 1.0)).unwrap().step.applied);
    assert!(!block_on(e.policy_step(&x, Some(&ptx), &AdamParams { t: 4, ..opt }, 1.0)).unwrap().step.applied);
    assert_eq!(block_on(e.params()).unwrap(), before);
}

#[test]
fn a_training_step_is_one_submission_and_makes_nothing_after_warm_up() {
    let p = preset("tiny").unwrap();
    let cfg = p.model;
    let params = ParamLayout::new(&cfg).init(23);
    let (b, t) = (4, 32);
    let tokens: Vec<u32> = (0..b * t).map(|i| (i * 7 % cfg.vocab_size) as u32).collect();
    let targets: Vec<i32> = tokens.iter().map(|&x| x as i32).collect();
    let g = gpu(MatmulKind::Blocked);
    let mut e = GpuGpt::new(g.clone(), cfg, &params, b, t).unwrap();
    let opt = AdamParams { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0, t: 1 };
    block_on(e.lm_step(&tokens, &targets, b, t, &opt, 1.0)).unwrap();
    let s0 = g.snapshot();
    for step in 2..5 {
        block_on(e.lm_step(&tokens, &targets, b, t, &AdamParams { t: step, ..opt }, 1.0)).unwrap();
    }
    let s = g.snapshot().since(&s0);
    assert_eq!((s.submissions, s.readbacks), (3, 3), "one submission and one readback per step: {s:?}");
    assert_eq!((s.buffers_created, s.bind_groups_created), (0, 0), "nothing made after warm-up: {s:?}");
    // two layers: 1 + 7·2 + 1 forward, 2 for the loss, 3 + 8·2 + 1 backward, 3 for AdamW
    assert_eq!(s.dispatches, 3 * (16 + 2 + 20 + 3), "{s:?}");
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
    // a frozen engine keeps none, and says so
    g.freeze();
    assert!(block_on(g.optimizer_state()).is_err());
}
