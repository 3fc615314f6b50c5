//! Launchers of shaders/layernorm.wgsl: LayerNorm fused with the embedding or a residual add, and
//! its backward pass.

use super::{u, Access, Builder, Kernel, Kernels, WG_ROWS};
use crate::gpu::context::{groups_1d, GBuf};
use crate::gpu::recorder::Recorder;

/// LayerNorm (with the fused embedding and residual) and the embedding's backward pass.
pub(super) const SOURCES: [&str; 2] = [include_str!("../../../shaders/layernorm.wgsl"), include_str!("../../../shaders/encoder.wgsl")];

super::uniform! {
    /// The uniform block, as shaders/layernorm.wgsl's `P`.
    struct LnP {
        n: u32,
        c: u32,
        t: u32,
        pos0: u32,
        inp_off: u32,
        inp2_off: u32,
        res_off: u32,
        out_off: u32,
        stat_off: u32,
        w_off: u32,
        b_off: u32,
        dinp_off: u32,
        row_groups: u32,
        wte_off: u32,
        wpe_off: u32,
        accumulate: u32,
    }
}

/// Where a LayerNorm's rows live: its input (the residual stream) and output rows, its statistics,
/// and its weight and bias (into the parameters, or the gradients in the backward pass).
#[derive(Clone, Copy, Debug)]
pub struct LnOffsets {
    pub res: usize,
    pub out: usize,
    pub stat: usize,
    pub w: usize,
    pub b: usize,
}

/// The buffers a fused forward kernel writes.
pub struct LnOut<'a> {
    pub res: &'a GBuf,
    pub out: &'a GBuf,
    pub mean: &'a GBuf,
    pub rstd: &'a GBuf,
}

#[derive(Clone)]
pub(crate) struct LayerNormKernels {
    embed: Kernel,
    residual: Kernel,
    backward: Kernel,
    encoder_backward: Kernel,
}

super::uniform! {
    /// The embedding's backward pass, as shaders/encoder.wgsl's `P`.
    struct EncP {
        b: u32,
        t: u32,
        c: u32,
        wte_off: u32,
        wpe_off: u32,
        dout_off: u32,
        wte_groups: u32,
        _p0: u32,
    }
}

impl LayerNormKernels {
    pub(crate) fn new(b: &mut Builder) -> LayerNormKernels {
        use Access::*;
        let m = b.module("layernorm", &[SOURCES[0]]);
        let out = [(5, ReadWrite), (6, ReadWrite), (7, ReadWrite), (8, ReadWrite)];
        let enc = b.module("encoder", &[SOURCES[1]]);
        LayerNormKernels {
            embed: b.kernel::<LnP>(&m, "embed_layernorm", &[&[(1, Read), (2, Read)], &out[..]].concat()),
            residual: b.kernel::<LnP>(&m, "residual_layernorm", &[&[(2, Read), (3, Read), (4, Read)], &out[..]].concat()),
            backward: b.kernel::<LnP>(
                &m,
                "layernorm_backward",
                &[(2, Read), (3, Read), (9, Read), (10, Read), (11, Read), (12, ReadWrite), (13, ReadWrite)],
            ),
            encoder_backward: b.kernel::<EncP>(&enc, "encoder_backward", &[(1, Read), (2, Read), (3, ReadWrite)]),
        }
    }
}

fn out_binds<'a>(o: &LnOut<'a>) -> [(u32, &'a GBuf); 4] {
    [(5, o.res), (6, o.out), (7, o.mean), (8, o.rstd)]
}

impl Kernels {
    /// res (N,C) = wte[tokens] + wpe[pos0 + row mod T]; out = layernorm(res).
    #[allow(clippy::too_many_arguments)]
    pub fn embed_layernorm(
        &self,
        rec: &mut Recorder,
        tokens: &GBuf,
        params: &GBuf,
        o: &LnOut,
        at: LnOffsets,
        wte: usize,
        wpe: usize,
        n: usize,
        t: usize,
        pos0: usize,
        c: usize,
    ) {
        let p = LnP {
            n: u(n),
            c: u(c),
            t: u(t),
            pos0: u(pos0),
            res_off: u(at.res),
            out_off: u(at.out),
            stat_off: u(at.stat),
            w_off: u(at.w),
            b_off: u(at.b),
            wte_off: u(wte),
            wpe_off: u(wpe),
            ..Default::default()
        };
        let binds = [&[(1, tokens), (2, params)][..], &out_binds(o)[..]].concat();
        rec.dispatch(&self.layernorm.embed, &p, &binds, groups_1d(n, WG_ROWS));
    }

    /// res (N,C) = x + y (each at its offset); out = layernorm(res).
    #[allow(clippy::too_many_arguments)]
    pub fn residual_layernorm(
        &self,
        rec: &mut Recorder,
        x: (&GBuf, usize),
        y: (&GBuf, usize),
        params: &GBuf,
        o: &LnOut,
        at: LnOffsets,
        n: usize,
        c: usize,
    ) {
        let p = LnP {
            n: u(n),
            c: u(c),
            inp_off: u(x.1),
            inp2_off: u(y.1),
            res_off: u(at.res),
            out_off: u(at.out),
            stat_off: u(at.stat),
            w_off: u(at.w),
            b_off: u(at.b),
            ..Default::default()
        };
        let binds = [&[(2, params), (3, x.0), (4, y.0)][..], &out_binds(o)[..]].concat();
        rec.dispatch(&self.layernorm.residual, &p, &binds, groups_1d(n, WG_ROWS));
    }

    /// dinp (at `dinp.1`) += ∂/∂inp (or = when not `accumulate`); grads[w], grads[b] += ∂/∂weight,
    /// ∂/∂bias. `at.res` addresses the forward input in `inp`, `at.out` the output gradient in `dout`.
    #[allow(clippy::too_many_arguments)]
    pub fn layernorm_backward(
        &self,
        rec: &mut Recorder,
        dinp: (&GBuf, usize, bool),
        grads: &GBuf,
        dout: &GBuf,
        inp: &GBuf,
        params: &GBuf,
        stats: (&GBuf, &GBuf),
        at: LnOffsets,
        n: usize,
        c: usize,
    ) {
        let row_groups = n.div_ceil(WG_ROWS as usize);
        let p = LnP {
            n: u(n),
            c: u(c),
            inp_off: u(at.res),
            out_off: u(at.out),
            stat_off: u(at.stat),
            w_off: u(at.w),
            b_off: u(at.b),
            dinp_off: u(dinp.1),
            row_groups: u(row_groups),
            accumulate: dinp.2 as u32,
            ..Default::default()
        };
        let binds = [(2, params), (3, inp), (9, dout), (10, stats.0), (11, stats.1), (12, dinp.0), (13, grads)];
        rec.dispatch(&self.layernorm.backward, &p, &binds, groups_1d(row_groups + c.div_ceil(WG_ROWS as usize), 1));
    }

    /// dwte, dwpe (into grads at their offsets) from dout (B,T,C) at `dout.1`.
    #[allow(clippy::too_many_arguments)]
    pub fn encoder_backward(
        &self,
        rec: &mut Recorder,
        grads: &GBuf,
        dout: (&GBuf, usize),
        tokens: &GBuf,
        wte: usize,
        wpe: usize,
        b: usize,
        t: usize,
        c: usize,
    ) {
        let wte_groups = c.div_ceil(WG_ROWS as usize);
        let p = EncP { b: u(b), t: u(t), c: u(c), wte_off: u(wte), wpe_off: u(wpe), dout_off: u(dout.1), wte_groups: u(wte_groups), _p0: 0 };
        let groups = [u(wte_groups + (t * c).div_ceil(WG_ROWS as usize)), 1, 1];
        rec.dispatch(&self.layernorm.encoder_backward, &p, &[(1, tokens), (2, dout.0), (3, grads)], groups);
    }
}
