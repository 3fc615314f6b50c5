//! Launchers of the two matrix kernels (shaders/matmul_*.wgsl): strided products with a fused
//! epilogue, one or two products per dispatch.

use super::{u, Access, Builder, Kernel, Kernels, MM_ACCUMULATE, MM_BIAS, MM_BIAS_GRAD, MM_BLOCK_TILE, MM_GELU, MM_GELU_GRAD, MM_TILE};
use crate::clock::now_ms;
use crate::error::Result;
use crate::gpu::context::{groups_1d, GBuf, Gpu};
use crate::gpu::recorder::Recorder;

/// What both matrix kernels share: GELU (for the epilogue), the problem descriptor and the epilogue.
pub(super) const SOURCES: [&str; 2] = [include_str!("../../../shaders/gelu.wgsl"), include_str!("../../../shaders/matmul_common.wgsl")];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKind {
    /// 4×4 outputs per thread, no shared memory: fastest on software adapters.
    Blocked,
    /// Workgroup tiles through shared memory: for real GPUs.
    Tiled,
}

impl MatmulKind {
    pub fn parse(s: &str) -> Option<MatmulKind> {
        match s {
            "blocked" => Some(MatmulKind::Blocked),
            "tiled" => Some(MatmulKind::Tiled),
            _ => None,
        }
    }

    fn tile(self) -> usize {
        match self {
            MatmulKind::Blocked => MM_BLOCK_TILE as usize,
            MatmulKind::Tiled => MM_TILE as usize,
        }
    }

    /// Times both kernels on a 256³ product and keeps the faster.
    pub async fn choose(gpu: &Gpu) -> Result<MatmulKind> {
        let n = 256;
        let a = gpu.buffer("probe a", n * n);
        let c = gpu.buffer("probe c", n * n);
        let mut best = (f64::INFINITY, MatmulKind::Blocked);
        for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
            let run = || {
                let mut rec = gpu.recorder();
                for _ in 0..4 {
                    gpu.kernels.matmul_with(&mut rec, kind, &Mm::plain(n, n, n), &a, &a, &c, None, None);
                }
                rec.submit();
            };
            run();
            gpu.finish().await?;
            let t0 = now_ms();
            run();
            gpu.finish().await?;
            let dt = now_ms() - t0;
            if dt < best.0 {
                best = (dt, kind);
            }
        }
        Ok(best.1)
    }
}

/// What happens to each product element before it is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Epilogue {
    /// Add to what C holds.
    pub accumulate: bool,
    /// Add the bias at this offset of `src2`.
    pub bias: Option<usize>,
    /// Also write gelu(v) to `act` at this offset (laid out like C).
    pub gelu: Option<usize>,
    /// Multiply by gelu'(x), x from `src2` at this offset (laid out like C).
    pub gelu_grad: Option<usize>,
    /// Add each row's sum of A (the product with a column of ones) to C's buffer at this offset.
    pub bias_grad: Option<usize>,
}

/// One strided product C (M,N) = A·B: element (i,j) of A is at a.0 + i·a.1 + j·a.2.
#[derive(Clone, Copy, Debug)]
pub struct Mm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: (usize, usize, usize),
    pub b: (usize, usize, usize),
    pub c_off: usize,
    /// Row stride of C (N when C is packed).
    pub c_rs: usize,
    pub epi: Epilogue,
}

impl Mm {
    /// Contiguous row-major A (M,K), B (K,N), C (M,N).
    pub fn plain(m: usize, k: usize, n: usize) -> Mm {
        Mm { m, n, k, a: (0, k, 1), b: (0, n, 1), c_off: 0, c_rs: n, epi: Epilogue::default() }
    }

    fn cols(&self) -> usize {
        self.n + self.epi.bias_grad.is_some() as usize
    }

    fn uniform(&self, tile: usize) -> MmU {
        let e = &self.epi;
        let flag = |on: bool, f: u32| if on { f } else { 0 };
        let flags = flag(e.accumulate, MM_ACCUMULATE)
            | flag(e.bias.is_some(), MM_BIAS)
            | flag(e.gelu.is_some(), MM_GELU)
            | flag(e.gelu_grad.is_some(), MM_GELU_GRAD)
            | flag(e.bias_grad.is_some(), MM_BIAS_GRAD);
        let tiles_n = self.cols().div_ceil(tile);
        let empty = self.m == 0 || self.cols() == 0 || self.k == 0;
        MmU {
            m: u(self.m),
            n: u(self.n),
            k: u(self.k),
            flags,
            a_off: u(self.a.0),
            a_rs: u(self.a.1),
            a_cs: u(self.a.2),
            bias_off: u(e.bias.or(e.bias_grad).unwrap_or(0)),
            b_off: u(self.b.0),
            b_rs: u(self.b.1),
            b_cs: u(self.b.2),
            aux_off: u(e.gelu.or(e.gelu_grad).unwrap_or(0)),
            c_off: u(self.c_off),
            c_rs: u(self.c_rs),
            tiles_n: u(tiles_n),
            tiles: if empty { 0 } else { u(tiles_n * self.m.div_ceil(tile)) },
        }
    }
}

super::uniform! {
    /// One product's descriptor, as shaders/matmul_common.wgsl's `Mm`.
    struct MmU {
        m: u32,
        n: u32,
        k: u32,
        flags: u32,
        a_off: u32,
        a_rs: u32,
        a_cs: u32,
        bias_off: u32,
        b_off: u32,
        b_rs: u32,
        b_cs: u32,
        aux_off: u32,
        c_off: u32,
        c_rs: u32,
        tiles_n: u32,
        tiles: u32,
    }
}

super::uniform! {
    /// The uniform block of both matrix kernels: two products.
    struct MatmulP {
        p0: MmU,
        p1: MmU,
    }
}

/// Buffers that stand in for bindings a call leaves unused (writable ones must not alias).
#[derive(Clone)]
pub(crate) struct Spares {
    c1: GBuf,
    act: GBuf,
}

#[derive(Clone)]
pub(crate) struct MatmulKernels {
    blocked: Kernel,
    tiled: Kernel,
}

const BINDS: [(u32, Access); 7] = [
    (1, Access::Read),
    (2, Access::Read),
    (3, Access::Read),
    (4, Access::Read),
    (5, Access::ReadWrite),
    (6, Access::ReadWrite),
    (7, Access::ReadWrite),
];

impl MatmulKernels {
    pub(crate) fn new(b: &mut Builder) -> MatmulKernels {
        let common = SOURCES;
        let blocked = b.module("matmul_blocked", &[common[0], common[1], include_str!("../../../shaders/matmul_blocked.wgsl")]);
        let tiled = b.module("matmul_tiled", &[common[0], common[1], include_str!("../../../shaders/matmul_tiled.wgsl")]);
        MatmulKernels { blocked: b.kernel::<MatmulP>(&blocked, "matmul", &BINDS), tiled: b.kernel::<MatmulP>(&tiled, "matmul", &BINDS) }
    }
}

/// The operands of one product besides A: B and C.
pub struct Operands<'a> {
    pub b: &'a GBuf,
    pub c: &'a GBuf,
}

impl Kernels {
    /// C = A·B with its epilogue; `src2` holds the bias or the GELU input, `act` receives gelu(C).
    /// Products of a few rows (one decode step) always take the blocked kernel: a 64-row tile would
    /// be mostly idle there, and its barriers are what software adapters pay most for.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(&self, rec: &mut Recorder, mm: &Mm, a: &GBuf, b: &GBuf, c: &GBuf, src2: Option<&GBuf>, act: Option<&GBuf>) {
        let kind = if mm.m < 32 { MatmulKind::Blocked } else { self.matmul_kind };
        self.matmul_with(rec, kind, mm, a, b, c, src2, act);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn matmul_with(&self, rec: &mut Recorder, kind: MatmulKind, mm: &Mm, a: &GBuf, b: &GBuf, c: &GBuf, src2: Option<&GBuf>, act: Option<&GBuf>) {
        self.dispatch_products(rec, kind, a, (mm, Operands { b, c }), None, src2, act);
    }

    /// Two products that share A in one dispatch (a linear layer's dinp and dweight).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul2(&self, rec: &mut Recorder, a: &GBuf, first: (&Mm, Operands), second: (&Mm, Operands), src2: Option<&GBuf>) {
        let kind = if first.0.m.max(second.0.m) < 32 { MatmulKind::Blocked } else { self.matmul_kind };
        self.dispatch_products(rec, kind, a, first, Some(second), src2, None);
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch_products(
        &self,
        rec: &mut Recorder,
        kind: MatmulKind,
        a: &GBuf,
        first: (&Mm, Operands),
        second: Option<(&Mm, Operands)>,
        src2: Option<&GBuf>,
        act: Option<&GBuf>,
    ) {
        let tile = kind.tile();
        let p0 = first.0.uniform(tile);
        let p1 = second.as_ref().map_or(MmU::default(), |s| s.0.uniform(tile));
        let gpu = rec.gpu();
        let spares = gpu.spares.get_or_init(|| Spares { c1: gpu.buffer("spare c1", 1), act: gpu.buffer("spare act", 1) }).clone();
        let (b1, c1) = second.as_ref().map_or((first.1.b, &spares.c1), |s| (s.1.b, s.1.c));
        let binds = [(1, a), (2, first.1.b), (3, b1), (4, src2.unwrap_or(a)), (5, first.1.c), (6, c1), (7, act.unwrap_or(&spares.act))];
        let k = match kind {
            MatmulKind::Blocked => &self.matmul.blocked,
            MatmulKind::Tiled => &self.matmul.tiled,
        };
        rec.dispatch(k, &MatmulP { p0, p1 }, &binds, groups_1d((p0.tiles + p1.tiles) as usize, 1));
    }
}
