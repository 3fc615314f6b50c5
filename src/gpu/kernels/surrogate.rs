//! Launcher of shaders/surrogate.wgsl: PPO's clipped surrogate at each action, on the device.

use super::{u, Access, Builder, Kernel, Kernels};
use crate::gpu::context::GBuf;
use crate::gpu::recorder::Recorder;

/// The shader, as the GPU engine compiles it (after the shared header).
pub(super) const SOURCE: &str = include_str!("../../../shaders/surrogate.wgsl");

super::uniform! {
    struct SurrogateP {
        n: u32,
        out: u32,
        clip: f32,
        answers: f32,
    }
}

#[derive(Clone)]
pub(crate) struct SurrogateKernels {
    surrogate: Kernel,
}

impl SurrogateKernels {
    pub(crate) fn new(b: &mut Builder) -> SurrogateKernels {
        use Access::*;
        let m = b.module("surrogate", &[SOURCE]);
        SurrogateKernels { surrogate: b.kernel::<SurrogateP>(&m, "surrogate", &[(1, Read), (2, Read), (3, Read), (4, ReadWrite), (5, ReadWrite)]) }
    }
}

/// The buffers of the surrogate: targets and −log π (N), the old log-probabilities then the
/// advantages (2N), the weights it writes (N), and where its four sums go.
pub struct SurrogateBufs<'a> {
    pub targets: &'a GBuf,
    pub losses: &'a GBuf,
    pub old_adv: &'a GBuf,
    pub weights: &'a GBuf,
    pub out: (&'a GBuf, usize),
}

impl Kernels {
    /// weights (N) = −∂surrogate/∂log π / answers at each action (0 elsewhere); out[at..at+4] =
    /// Σ (loss, clipped, 1, ρ − 1 − log ρ) over the actions.
    pub fn surrogate(&self, rec: &mut Recorder, x: &SurrogateBufs, n: usize, clip: f32, answers: f32) {
        let p = SurrogateP { n: u(n), out: u(x.out.1), clip, answers };
        let binds = [(1, x.targets), (2, x.losses), (3, x.old_adv), (4, x.weights), (5, x.out.0)];
        rec.dispatch(&self.surrogate.surrogate, &p, &binds, [1, 1, 1]);
    }
}
