//! Launchers of shaders/decode.wgsl (attention of one new position against the key-value cache) and
//! shaders/sample.wgsl (drawing the next token on the GPU).

use super::{u, Access, Builder, Kernel, Kernels, WG_ROWS};
use crate::config::SampleConfig;
use crate::gpu::context::{groups_1d, GBuf};
use crate::gpu::recorder::Recorder;

/// The decode step's attention and the sampler, as the GPU engine compiles them.
pub(super) const SOURCES: [&str; 2] = [include_str!("../../../shaders/decode.wgsl"), include_str!("../../../shaders/sample.wgsl")];

super::uniform! {
    struct DecodeP {
        b: u32,
        t: u32,
        c: u32,
        nh: u32,
        kv_off: u32,
        pos: u32,
        _p0: u32,
        _p1: u32,
    }
}

super::uniform! {
    /// As shaders/sample.wgsl's `P`.
    struct SampleP {
        b: u32,
        v: u32,
        logits_off: u32,
        logits_rs: u32,
        top_k: u32,
        seed_lo: u32,
        seed_hi: u32,
        step: u32,
        inv_t: f32,
        top_p: f32,
        greedy: u32,
        out_stride: u32,
    }
}

#[derive(Clone)]
pub(crate) struct DecodeKernels {
    attention: Kernel,
    sample: Kernel,
}

impl DecodeKernels {
    pub(crate) fn new(b: &mut Builder) -> DecodeKernels {
        use Access::*;
        let d = b.module("decode", &[SOURCES[0]]);
        let s = b.module("sample", &[SOURCES[1]]);
        DecodeKernels {
            attention: b.kernel::<DecodeP>(&d, "attention_decode", &[(1, Read), (2, ReadWrite)]),
            sample: b.kernel::<SampleP>(&s, "sample_next", &[(1, Read), (2, ReadWrite), (3, ReadWrite)]),
        }
    }
}

impl Kernels {
    /// out (B,C): attention of position `pos` over the cache kv (L,B,T,3C), layer block at kv_off.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_decode(&self, rec: &mut Recorder, out: &GBuf, kv: &GBuf, kv_off: usize, b: usize, t: usize, c: usize, nh: usize, pos: usize) {
        let p = DecodeP { b: u(b), t: u(t), c: u(c), nh: u(nh), kv_off: u(kv_off), pos: u(pos), _p0: 0, _p1: 0 };
        rec.dispatch(&self.decode.attention, &p, &[(1, kv), (2, out)], groups_1d(b * nh, WG_ROWS));
    }

    /// Samples one token per row from logits rows (row r at logits_off + r·logits_rs) into `next`
    /// and into out[r·out_stride + step].
    #[allow(clippy::too_many_arguments)]
    pub fn sample_next(
        &self,
        rec: &mut Recorder,
        next: &GBuf,
        out: &GBuf,
        logits: (&GBuf, usize, usize),
        b: usize,
        v: usize,
        sc: &SampleConfig,
        seed: u64,
        step: usize,
        out_stride: usize,
    ) {
        let greedy = sc.temperature <= 0.0;
        let p = SampleP {
            b: u(b),
            v: u(v),
            logits_off: u(logits.1),
            logits_rs: u(logits.2),
            top_k: u(sc.top_k),
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            step: u(step),
            inv_t: if greedy { 1.0 } else { 1.0 / sc.temperature },
            top_p: sc.top_p,
            greedy: greedy as u32,
            out_stride: u(out_stride),
        };
        rec.dispatch(&self.decode.sample, &p, &[(1, logits.0), (2, next), (3, out)], groups_1d(b, WG_ROWS));
    }
}
