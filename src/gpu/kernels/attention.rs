//! Launchers of shaders/attention.wgsl: causal attention that keeps one logsumexp per row instead
//! of the (T,T) weights.

use super::{u, Access, Builder, Kernel, Kernels, WG_ROWS};
use crate::gpu::context::{groups_1d, GBuf};
use crate::gpu::recorder::Recorder;

/// The shader, as the GPU engine compiles it (after the shared header).
pub(super) const SOURCE: &str = include_str!("../../../shaders/attention.wgsl");

super::uniform! {
    struct AttnP {
        b: u32,
        t: u32,
        c: u32,
        nh: u32,
        qkv_off: u32,
        out_off: u32,
        lse_off: u32,
        _p0: u32,
    }
}

/// Where layer l's qkv, output and logsumexp rows start.
#[derive(Clone, Copy, Debug)]
pub struct AttnOffsets {
    pub qkv: usize,
    pub out: usize,
    pub lse: usize,
}

#[derive(Clone)]
pub(crate) struct AttentionKernels {
    forward: Kernel,
    rows: Kernel,
    cols: Kernel,
}

impl AttentionKernels {
    pub(crate) fn new(b: &mut Builder) -> AttentionKernels {
        use Access::*;
        let m = b.module("attention", &[SOURCE]);
        AttentionKernels {
            forward: b.kernel::<AttnP>(&m, "attention_forward", &[(1, Read), (2, ReadWrite), (3, ReadWrite)]),
            rows: b.kernel::<AttnP>(&m, "attention_backward_rows", &[(1, Read), (4, Read), (5, Read), (6, Read), (7, ReadWrite), (8, ReadWrite)]),
            cols: b.kernel::<AttnP>(&m, "attention_backward_cols", &[(1, Read), (5, Read), (6, Read), (7, ReadWrite), (9, Read)]),
        }
    }
}

fn uniform(o: AttnOffsets, b: usize, t: usize, c: usize, nh: usize) -> AttnP {
    AttnP { b: u(b), t: u(t), c: u(c), nh: u(nh), qkv_off: u(o.qkv), out_off: u(o.out), lse_off: u(o.lse), _p0: 0 }
}

impl Kernels {
    /// out (B,T,C) and lse (B,NH,T) from qkv (B,T,3C).
    #[allow(clippy::too_many_arguments)]
    pub fn attention_forward(&self, rec: &mut Recorder, out: &GBuf, lse: &GBuf, qkv: &GBuf, o: AttnOffsets, b: usize, t: usize, c: usize, nh: usize) {
        rec.dispatch(&self.attention.forward, &uniform(o, b, t, c, nh), &[(1, qkv), (2, out), (3, lse)], groups_1d(b * nh * t, WG_ROWS));
    }

    /// dqkv += ∂/∂qkv from dout (B,T,C); `dsum` (B,NH,T) is scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_backward(
        &self,
        rec: &mut Recorder,
        dqkv: &GBuf,
        dsum: &GBuf,
        dout: &GBuf,
        qkv: &GBuf,
        out: &GBuf,
        lse: &GBuf,
        o: AttnOffsets,
        b: usize,
        t: usize,
        c: usize,
        nh: usize,
    ) {
        let p = uniform(o, b, t, c, nh);
        let groups = groups_1d(b * nh * t, WG_ROWS);
        rec.dispatch(&self.attention.rows, &p, &[(1, qkv), (4, out), (5, lse), (6, dout), (7, dqkv), (8, dsum)], groups);
        rec.dispatch(&self.attention.cols, &p, &[(1, qkv), (5, lse), (6, dout), (7, dqkv), (9, dsum)], groups);
    }
}
