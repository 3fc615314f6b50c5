//! Launchers of shaders/crossentropy.wgsl: softmax cross-entropy at a temperature, per position.

use super::{u, Access, Builder, Kernel, Kernels, WG, WG_ROWS};
use crate::gpu::context::{groups_1d, GBuf};
use crate::gpu::recorder::Recorder;

/// The shader, as the GPU engine compiles it (after the shared header).
pub(super) const SOURCE: &str = include_str!("../../../shaders/crossentropy.wgsl");

super::uniform! {
    struct CeP {
        n: u32,
        v: u32,
        inv_t: f32,
        _p0: u32,
    }
}

#[derive(Clone)]
pub(crate) struct CrossEntropyKernels {
    forward: Kernel,
    backward: Kernel,
    mean: Kernel,
}

impl CrossEntropyKernels {
    pub(crate) fn new(b: &mut Builder) -> CrossEntropyKernels {
        use Access::*;
        let m = b.module("crossentropy", &[SOURCE]);
        CrossEntropyKernels {
            forward: b.kernel::<CeP>(&m, "crossentropy_forward", &[(1, Read), (2, Read), (3, ReadWrite), (4, ReadWrite), (7, ReadWrite)]),
            backward: b.kernel::<CeP>(&m, "crossentropy_backward", &[(1, Read), (2, Read), (5, Read), (6, ReadWrite), (8, Read)]),
            mean: b.kernel::<CeP>(&m, "mean_loss", &[(2, Read), (9, Read), (10, ReadWrite)]),
        }
    }
}

/// The buffers of a cross-entropy: logits (N,V), targets, and per-row losses, lse, entropy.
pub struct CeBufs<'a> {
    pub logits: &'a GBuf,
    pub targets: &'a GBuf,
    pub losses: &'a GBuf,
    pub lse: &'a GBuf,
    pub entropy: &'a GBuf,
}

impl Kernels {
    /// losses, lse, entropy (N) of softmax(logits/T) against targets (N).
    pub fn crossentropy_forward(&self, rec: &mut Recorder, x: &CeBufs, temperature: f32, n: usize, v: usize) {
        let p = CeP { n: u(n), v: u(v), inv_t: 1.0 / temperature, _p0: 0 };
        let binds = [(1, x.logits), (2, x.targets), (3, x.losses), (4, x.lse), (7, x.entropy)];
        rec.dispatch(&self.crossentropy.forward, &p, &binds, groups_1d(n, WG_ROWS));
    }

    /// out[at] = the mean of the losses over rows with a target (0 when none has one).
    pub fn mean_loss(&self, rec: &mut Recorder, losses: &GBuf, targets: &GBuf, n: usize, out: (&GBuf, usize)) {
        let p = CeP { n: u(n), v: u(out.1), inv_t: 1.0, _p0: 0 };
        rec.dispatch(&self.crossentropy.mean, &p, &[(2, targets), (9, losses), (10, out.0)], [1, 1, 1]);
    }

    /// dlogits = weights[r]·∂losses[r]/∂logits (0 in rows without a target or weight)
    #[allow(clippy::too_many_arguments)]
    pub fn crossentropy_backward(&self, rec: &mut Recorder, dlogits: &GBuf, x: &CeBufs, weights: &GBuf, temperature: f32, n: usize, v: usize) {
        let p = CeP { n: u(n), v: u(v), inv_t: 1.0 / temperature, _p0: 0 };
        let binds = [(1, x.logits), (2, x.targets), (5, x.lse), (6, dlogits), (8, weights)];
        rec.dispatch(&self.crossentropy.backward, &p, &binds, groups_1d(n * v, WG));
    }
}
