//! Every CPU backward against central finite differences of its forward, and the whole model likewise.

mod common;
use common::{assert_close, randn};
use pollster::block_on;

use rlhf_lab::config::{preset, ModelConfig};
use rlhf_lab::cpu::attention::*;
use rlhf_lab::cpu::crossentropy::*;
use rlhf_lab::cpu::encoder::*;
use rlhf_lab::cpu::gelu::*;
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::cpu::layernorm::*;
use rlhf_lab::cpu::matmul::*;
use rlhf_lab::cpu::residual::*;
use rlhf_lab::engine::mean_weights;
use rlhf_lab::engine::{lm_backward, lm_forward, Engine};
use rlhf_lab::params::ParamLayout;
use rlhf_lab::rng::Rng;

/// Numerical gradient of f at x by central differences, in f64 arithmetic on the outputs.
fn numgrad(x: &mut [f32], f: &mut dyn FnMut(&[f32]) -> f64, eps: f32) -> Vec<f32> {
    (0..x.len())
        .map(|i| {
            let x0 = x[i];
            x[i] = x0 + eps;
            let up = f(x);
            x[i] = x0 - eps;
            let down = f(x);
            x[i] = x0;
            ((up - down) / (2.0 * eps as f64)) as f32
        })
        .collect()
}

/// A scalar probe of an output: Σ w·out with fixed random w, so every output element matters.
fn probe(out: &[f32], w: &[f32]) -> f64 {
    out.iter().zip(w).map(|(a, b)| *a as f64 * *b as f64).sum()
}

#[test]
fn matmul_backward_matches_finite_differences() {
    let mut rng = Rng::new(1);
    let (n, c, oc) = (5, 7, 6);
    let mut inp = randn(&mut rng, n * c, 1.0);
    let mut weight = randn(&mut rng, oc * c, 1.0);
    let mut bias = randn(&mut rng, oc, 1.0);
    let w = randn(&mut rng, n * oc, 1.0);
    let run = |inp: &[f32], weight: &[f32], bias: &[f32]| {
        let mut out = vec![0.0; n * oc];
        matmul_forward(&mut out, inp, weight, Some(bias), n, c, oc);
        probe(&out, &w)
    };
    let (mut dinp, mut dw, mut db) = (vec![0.0; n * c], vec![0.0; oc * c], vec![0.0; oc]);
    matmul_backward(&mut dinp, &mut dw, Some(&mut db), &w, &inp, &weight, n, c, oc);
    let (wc, bc, ic) = (weight.clone(), bias.clone(), inp.clone());
    assert_close("dinp", &dinp, &numgrad(&mut inp, &mut |x| run(x, &wc, &bc), 1e-2), 1e-3, 1e-2);
    assert_close("dweight", &dw, &numgrad(&mut weight, &mut |x| run(&ic, x, &bc), 1e-2), 1e-3, 1e-2);
    assert_close("dbias", &db, &numgrad(&mut bias, &mut |x| run(&ic, &wc, x), 1e-2), 1e-3, 1e-2);
}

#[test]
fn gemm_equals_plain_loops_for_every_stride_pattern() {
    let mut rng = Rng::new(2);
    let (m, k, n) = (9, 13, 11);
    let a = randn(&mut rng, m * k, 1.0);
    let b = randn(&mut rng, k * n, 1.0);
    // row-major, A transposed, B transposed
    for (ars, acs, brs, bcs) in [(k, 1, n, 1), (1, m, n, 1), (k, 1, 1, k)] {
        let mut c1 = randn(&mut rng, m * n, 1.0);
        let mut c2 = c1.clone();
        gemm(m, k, n, &a, ars, acs, &b, brs, bcs, 1.0, &mut c1);
        gemm_naive(m, k, n, &a, ars, acs, &b, brs, bcs, 1.0, &mut c2);
        assert_close("gemm", &c1, &c2, 1e-4, 1e-4);
    }
}

#[test]
fn layernorm_backward_matches_finite_differences() {
    let mut rng = Rng::new(3);
    let (n, c) = (4, 8);
    let mut inp = randn(&mut rng, n * c, 1.0);
    let mut weight = randn(&mut rng, c, 1.0);
    let mut bias = randn(&mut rng, c, 1.0);
    let w = randn(&mut rng, n * c, 1.0);
    let run = |inp: &[f32], weight: &[f32], bias: &[f32]| {
        let (mut out, mut mean, mut rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
        layernorm_forward(&mut out, &mut mean, &mut rstd, inp, weight, bias, n, c);
        probe(&out, &w)
    };
    let (mut out, mut mean, mut rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
    layernorm_forward(&mut out, &mut mean, &mut rstd, &inp, &weight, &bias, n, c);
    let (mut dinp, mut dw, mut db) = (vec![0.0; n * c], vec![0.0; c], vec![0.0; c]);
    layernorm_backward(&mut dinp, &mut dw, &mut db, &w, &inp, &weight, &mean, &rstd, n, c);
    let (wc, bc, ic) = (weight.clone(), bias.clone(), inp.clone());
    assert_close("dinp", &dinp, &numgrad(&mut inp, &mut |x| run(x, &wc, &bc), 1e-2), 2e-3, 2e-2);
    assert_close("dweight", &dw, &numgrad(&mut weight, &mut |x| run(&ic, x, &bc), 1e-2), 2e-3, 2e-2);
    assert_close("dbias", &db, &numgrad(&mut bias, &mut |x| run(&ic, &wc, x), 1e-2), 2e-3, 2e-2);
}

#[test]
fn attention_backward_matches_finite_differences() {
    let mut rng = Rng::new(4);
    let (b, t, c, nh) = (2, 5, 8, 2);
    let mut inp = randn(&mut rng, b * t * 3 * c, 1.0);
    let w = randn(&mut rng, b * t * c, 1.0);
    let run = |inp: &[f32]| {
        let (mut out, mut pre, mut att) = (vec![0.0; b * t * c], vec![0.0; b * nh * t * t], vec![0.0; b * nh * t * t]);
        attention_forward(&mut out, &mut pre, &mut att, inp, b, t, c, nh);
        probe(&out, &w)
    };
    let (mut out, mut pre, mut att) = (vec![0.0; b * t * c], vec![0.0; b * nh * t * t], vec![0.0; b * nh * t * t]);
    attention_forward(&mut out, &mut pre, &mut att, &inp, b, t, c, nh);
    // causal: the first position attends only to itself
    assert!((att[0] - 1.0).abs() < 1e-6 && att[1] == 0.0);
    let (mut dinp, mut dpre, mut datt) = (vec![0.0; inp.len()], vec![0.0; pre.len()], vec![0.0; att.len()]);
    attention_backward(&mut dinp, &mut dpre, &mut datt, &w, &inp, &att, b, t, c, nh);
    assert_close("dqkv", &dinp, &numgrad(&mut inp, &mut |x| run(x), 1e-2), 2e-3, 2e-2);
}

#[test]
fn gelu_residual_encoder_backward_match_finite_differences() {
    let mut rng = Rng::new(5);
    let n = 20;
    let mut x = randn(&mut rng, n, 2.0);
    let w = randn(&mut rng, n, 1.0);
    let mut dx = vec![0.0; n];
    gelu_backward(&mut dx, &x, &w);
    let num = numgrad(
        &mut x,
        &mut |x| {
            let mut out = vec![0.0; n];
            gelu_forward(&mut out, x);
            probe(&out, &w)
        },
        1e-2,
    );
    assert_close("gelu", &dx, &num, 1e-3, 1e-2);

    let (mut da, mut db) = (vec![0.0; n], vec![0.0; n]);
    residual_backward(&mut da, &mut db, &w);
    let a = randn(&mut rng, n, 1.0);
    let mut bb = randn(&mut rng, n, 1.0);
    let num = numgrad(
        &mut bb,
        &mut |bb| {
            let mut out = vec![0.0; n];
            residual_forward(&mut out, &a, bb);
            probe(&out, &w)
        },
        1e-2,
    );
    assert_close("residual", &db, &num, 1e-3, 1e-2);
    assert_eq!(da, db);

    let (b, t, c, v) = (2, 3, 4, 5);
    let tokens: Vec<u32> = vec![0, 3, 3, 4, 1, 0];
    let mut wte = randn(&mut rng, v * c, 1.0);
    let wpe = randn(&mut rng, t * c, 1.0);
    let w = randn(&mut rng, b * t * c, 1.0);
    let (mut dwte, mut dwpe) = (vec![0.0; v * c], vec![0.0; t * c]);
    encoder_backward(&mut dwte, &mut dwpe, &w, &tokens, b, t, c);
    let num = numgrad(
        &mut wte,
        &mut |wte| {
            let mut out = vec![0.0; b * t * c];
            encoder_forward(&mut out, &tokens, wte, &wpe, b, t, c);
            probe(&out, &w)
        },
        1e-2,
    );
    assert_close("dwte", &dwte, &num, 1e-3, 1e-2);
}

#[test]
fn crossentropy_backward_matches_finite_differences_and_skips_masked_rows() {
    let mut rng = Rng::new(6);
    let (n, v) = (4, 7);
    let mut logits = randn(&mut rng, n * v, 2.0);
    let targets = vec![3, -1, 0, 6];
    let scale = mean_weights(&targets)[0];
    assert!((scale - 1.0 / 3.0).abs() < 1e-7);
    let weights = [0.5, 2.0, -1.0, 1.5];
    let temp = 0.7;
    let run = |l: &[f32]| {
        let (mut losses, mut lse, mut ent) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        crossentropy_forward(&mut losses, &mut lse, &mut ent, l, &targets, temp, n, v);
        losses.iter().zip(&weights).map(|(&x, &w)| x as f64 * w as f64).sum::<f64>() * scale as f64
    };
    let (mut losses, mut lse, mut ent) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    crossentropy_forward(&mut losses, &mut lse, &mut ent, &logits, &targets, temp, n, v);
    assert_eq!(losses[1], 0.0);
    // entropy by its definition
    for r in 0..n {
        let p: Vec<f64> = (0..v).map(|j| ((logits[r * v + j] / temp - lse[r]) as f64).exp()).collect();
        let h: f64 = -p.iter().map(|p| p * p.ln()).sum::<f64>();
        assert!((h as f32 - ent[r]).abs() < 1e-4, "entropy {} vs {h}", ent[r]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5);
    }
    let mut dl = vec![0.0; n * v];
    let w: Vec<f32> = weights.iter().map(|w| w * scale).collect();
    crossentropy_backward(&mut dl, &logits, &lse, &targets, &w, temp, n, v);
    assert!(dl[v..2 * v].iter().all(|&x| x == 0.0), "a masked row gets no gradient");
    assert_close("dlogits", &dl, &numgrad(&mut logits, &mut |l| run(l), 1e-2), 1e-3, 1e-2);
}

fn tiny_model(seed: u64) -> (ModelConfig, Vec<f32>) {
    let cfg = preset("tiny").unwrap().model;
    let mut params = ParamLayout::new(&cfg).init(seed);
    // larger weights than at init, so every path carries a visible gradient
    let mut rng = Rng::new(seed + 100);
    for p in params.iter_mut() {
        *p += 0.1 * rng.normal();
    }
    (cfg, params)
}

#[test]
fn whole_model_gradient_matches_finite_differences() {
    let (cfg, params) = tiny_model(7);
    let (b, t) = (2, 6);
    let mut rng = Rng::new(8);
    let tokens: Vec<u32> = (0..b * t).map(|_| rng.below(cfg.vocab_size) as u32).collect();
    let targets: Vec<i32> = (0..b * t).map(|i| if i % 4 == 0 { -1 } else { rng.below(cfg.vocab_size) as i32 }).collect();
    let mut m = CpuGpt::new(cfg, params.clone(), b, t).unwrap();
    block_on(lm_forward(&mut m, &tokens, &targets, b, t)).unwrap();
    m.zero_grad().unwrap();
    lm_backward(&mut m, &targets, 1.0).unwrap();
    let grads = block_on(m.grads()).unwrap();
    // check a spread of parameters from every tensor kind
    let lay = ParamLayout::new(&cfg);
    let eps = 1e-2;
    for kind in 0..rlhf_lab::params::NUM_TENSORS {
        let r = lay.range(kind);
        for j in 0..3 {
            let i = r.start + (j * 7919) % r.len();
            let mut p = params.clone();
            p[i] += eps;
            m.set_params(&p).unwrap();
            let up = block_on(lm_forward(&mut m, &tokens, &targets, b, t)).unwrap() as f64;
            p[i] -= 2.0 * eps;
            m.set_params(&p).unwrap();
            let down = block_on(lm_forward(&mut m, &tokens, &targets, b, t)).unwrap() as f64;
            let num = ((up - down) / (2.0 * eps as f64)) as f32;
            assert_close(&format!("tensor {kind} index {i}"), &[grads[i]], &[num], 5e-3, 5e-2);
        }
    }
}

#[test]
fn gradient_from_the_hidden_state_matches_finite_differences() {
    // what a reward or value head sends back: loss = Σ w·hidden at the last position of each row
    let (cfg, params) = tiny_model(9);
    let (b, t, c) = (2, 5, cfg.n_embd);
    let mut rng = Rng::new(10);
    let tokens: Vec<u32> = (0..b * t).map(|_| rng.below(cfg.vocab_size) as u32).collect();
    let head = randn(&mut rng, c, 1.0);
    let mut dh = vec![0.0; b * t * c];
    for bi in 0..b {
        dh[(bi * t + t - 1) * c..][..c].copy_from_slice(&head);
    }
    let mut m = CpuGpt::new(cfg, params.clone(), b, t).unwrap();
    let value = |m: &mut CpuGpt, p: &[f32]| {
        m.set_params(p).unwrap();
        m.forward(&tokens, b, t).unwrap();
        probe(&block_on(m.hidden()).unwrap(), &dh)
    };
    value(&mut m, &params);
    m.zero_grad().unwrap();
    m.backward(None, Some(&dh)).unwrap();
    let grads = block_on(m.grads()).unwrap();
    assert!(grads[ParamLayout::new(&cfg).range(rlhf_lab::params::WTE)].iter().any(|&g| g != 0.0));
    let lay = ParamLayout::new(&cfg);
    for kind in [rlhf_lab::params::WPE, rlhf_lab::params::QKVW, rlhf_lab::params::FCPROJW, rlhf_lab::params::LNFW] {
        let r = lay.range(kind);
        for j in 0..3 {
            let i = r.start + (j * 613) % r.len();
            let mut p = params.clone();
            p[i] += 1e-2;
            let up = value(&mut m, &p);
            p[i] -= 2e-2;
            let down = value(&mut m, &p);
            assert_close(&format!("tensor {kind} index {i}"), &[grads[i]], &[((up - down) / 2e-2) as f32], 5e-3, 5e-2);
        }
    }
    // asking for a backward pass with nothing to start from is an error, not a silent no-op
    assert!(m.backward(None, None).is_err());
    assert!(m.backward(Some(&[1.0]), None).is_err());
}

#[test]
fn the_layers_exp_is_within_two_ulp_of_exp_and_keeps_nan() {
    use rlhf_lab::cpu::expf::{expf, EXP_MAX, EXP_MIN};
    let mut worst = 0.0f64;
    let steps = 200_000;
    for i in 0..=steps {
        let x = EXP_MIN + (EXP_MAX - EXP_MIN) * i as f32 / steps as f32;
        let exact = (x as f64).exp();
        let ulp = (exact as f32).abs() * f32::EPSILON;
        worst = worst.max((expf(x) as f64 - exact).abs() / ulp as f64);
    }
    assert!(worst <= 2.0, "expf is {worst:.2} ulp from exp at worst");
    assert_eq!(expf(0.0), 1.0);
    assert!(expf(f32::NAN).is_nan());
    assert_eq!(expf(EXP_MIN - 1.0), 0.0);
    assert_eq!(expf(f32::NEG_INFINITY), 0.0);
    assert!(expf(1e9).is_finite());
}

#[test]
fn gelu_gives_the_same_bits_in_a_vector_loop_as_one_value_at_a_time() {
    // a long slice runs in the loop's vector lanes (AVX2 where the CPU has it), one value alone in
    // its scalar tail: the same operations either way
    let mut rng = Rng::new(17);
    let x: Vec<f32> = randn(&mut rng, 4099, 3.0).into_iter().chain([0.0, -0.0, 20.0, -20.0, 1e-30]).collect();
    let d = randn(&mut rng, x.len(), 1.0);
    let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.5; x.len()]);
    gelu_forward(&mut y, &x);
    gelu_backward(&mut dx, &x, &d);
    for i in 0..x.len() {
        let (mut y1, mut dx1) = ([0.0], [0.5]);
        gelu_forward(&mut y1, &x[i..=i]);
        gelu_backward(&mut dx1, &x[i..=i], &d[i..=i]);
        assert_eq!((y[i].to_bits(), dx[i].to_bits()), (y1[0].to_bits(), dx1[0].to_bits()), "gelu at {}", x[i]);
    }
}
