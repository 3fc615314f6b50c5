//! Launchers of shaders/adamw.wgsl: the global gradient norm, its clip scale, and AdamW over the
//! whole flat parameter buffer in one dispatch.

use super::{u, Access, Builder, Kernel, Kernels, MAX_KINDS_VEC4, NUM_PARTIALS, WG};
use crate::config::AdamParams;
use crate::gpu::context::{groups_1d, GBuf};
use crate::gpu::recorder::Recorder;

/// The shader, as the GPU engine compiles it (after the shared header).
pub(super) const SOURCE: &str = include_str!("../../../shaders/adamw.wgsl");

super::uniform! {
    struct AdamP {
        n: u32,
        max_norm: f32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        b1_corr: f32,
        b2_corr: f32,
        decay_mask: u32,
        kinds: u32,
        _p0: u32,
        kind_start: [[u32; 4]; MAX_KINDS_VEC4 as usize],
    }
}

/// AdamW's step hyperparameters with the bias corrections of its step count.
#[derive(Clone, Copy, Debug)]
pub struct AdamUniforms {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub b1_corr: f32,
    pub b2_corr: f32,
}

impl From<&AdamParams> for AdamUniforms {
    fn from(o: &AdamParams) -> Self {
        AdamUniforms {
            lr: o.lr,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            b1_corr: 1.0 - o.beta1.powi(o.t as i32),
            b2_corr: 1.0 - o.beta2.powi(o.t as i32),
        }
    }
}

/// The buffers of one optimizer step.
pub struct AdamW<'a> {
    pub params: &'a GBuf,
    pub grads: &'a GBuf,
    pub m: &'a GBuf,
    pub v: &'a GBuf,
    /// NUM_PARTIALS scratch values, and [norm, clip scale].
    pub partial: &'a GBuf,
    pub norm: &'a GBuf,
}

#[derive(Clone)]
pub(crate) struct AdamWKernels {
    sumsq: Kernel,
    clip: Kernel,
    adamw: Kernel,
}

impl AdamWKernels {
    pub(crate) fn new(b: &mut Builder) -> AdamWKernels {
        use Access::*;
        let m = b.module("adamw", &[SOURCE]);
        AdamWKernels {
            sumsq: b.kernel::<AdamP>(&m, "sumsq_partial", &[(1, Read), (2, ReadWrite)]),
            clip: b.kernel::<AdamP>(&m, "clip_scale", &[(3, Read), (4, ReadWrite)]),
            adamw: b.kernel::<AdamP>(&m, "adamw", &[(1, Read), (5, ReadWrite), (6, ReadWrite), (7, ReadWrite), (8, Read)]),
        }
    }
}

impl Kernels {
    /// Clips the global gradient norm to `max_norm` and takes an AdamW step on all n parameters;
    /// a non-finite norm leaves them. `kinds` gives each kind of tensor's first index and whether it
    /// takes weight decay, in order. The norm and the clip scale land in `norm`.
    pub fn adamw_step(&self, rec: &mut Recorder, x: &AdamW, n: usize, a: &AdamUniforms, max_norm: f32, kinds: &[(usize, bool)]) {
        assert!(kinds.len() <= 4 * MAX_KINDS_VEC4 as usize);
        let mut starts = [[0u32; 4]; MAX_KINDS_VEC4 as usize];
        for (i, &(s, _)) in kinds.iter().enumerate() {
            starts[i / 4][i % 4] = u(s);
        }
        let decay_mask = kinds.iter().enumerate().fold(0u32, |m, (i, &(_, d))| m | ((d as u32) << i));
        let kind_start = kinds;
        let p = AdamP {
            n: u(n),
            max_norm,
            lr: a.lr,
            beta1: a.beta1,
            beta2: a.beta2,
            eps: a.eps,
            weight_decay: a.weight_decay,
            b1_corr: a.b1_corr,
            b2_corr: a.b2_corr,
            decay_mask,
            kinds: u(kind_start.len()),
            _p0: 0,
            kind_start: starts,
        };
        rec.dispatch(&self.adamw.sumsq, &p, &[(1, x.grads), (2, x.partial)], [NUM_PARTIALS, 1, 1]);
        rec.dispatch(&self.adamw.clip, &p, &[(3, x.partial), (4, x.norm)], [1, 1, 1]);
        rec.dispatch(&self.adamw.adamw, &p, &[(1, x.grads), (5, x.params), (6, x.m), (7, x.v), (8, x.norm)], groups_1d(n, WG));
    }
}
