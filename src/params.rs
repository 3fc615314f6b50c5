//! Where every parameter tensor lives in one flat f32 buffer (llm.c's layout: each kind of
//! tensor stacked over layers), shared by the CPU reference, the GPU engine and checkpoints.

use crate::config::ModelConfig;
use crate::rng::Rng;

/// Index of each tensor kind in the flat buffer, in storage order.
pub const WTE: usize = 0; // (V, C), also the output head (tied)
pub const WPE: usize = 1; // (maxT, C)
pub const LN1W: usize = 2; // (L, C)
pub const LN1B: usize = 3; // (L, C)
pub const QKVW: usize = 4; // (L, 3C, C)
pub const QKVB: usize = 5; // (L, 3C)
pub const ATTPROJW: usize = 6; // (L, C, C)
pub const ATTPROJB: usize = 7; // (L, C)
pub const LN2W: usize = 8; // (L, C)
pub const LN2B: usize = 9; // (L, C)
pub const FCW: usize = 10; // (L, 4C, C)
pub const FCB: usize = 11; // (L, 4C)
pub const FCPROJW: usize = 12; // (L, C, 4C)
pub const FCPROJB: usize = 13; // (L, C)
pub const LNFW: usize = 14; // (C)
pub const LNFB: usize = 15; // (C)
pub const NUM_TENSORS: usize = 16;

#[derive(Clone, Debug)]
pub struct ParamLayout {
    /// Shape of each tensor kind, the leading L included for per-layer kinds.
    pub shapes: Vec<Vec<usize>>,
    pub offsets: Vec<usize>,
    pub total: usize,
    pub n_layer: usize,
}

impl ParamLayout {
    pub fn new(cfg: &ModelConfig) -> Self {
        let (v, t, l, c) = (cfg.vocab_size, cfg.n_ctx, cfg.n_layer, cfg.n_embd);
        let shapes = vec![
            vec![v, c],
            vec![t, c],
            vec![l, c],
            vec![l, c],
            vec![l, 3 * c, c],
            vec![l, 3 * c],
            vec![l, c, c],
            vec![l, c],
            vec![l, c],
            vec![l, c],
            vec![l, 4 * c, c],
            vec![l, 4 * c],
            vec![l, c, 4 * c],
            vec![l, c],
            vec![c],
            vec![c],
        ];
        let mut offsets = Vec::with_capacity(NUM_TENSORS);
        let mut total = 0;
        for s in &shapes {
            offsets.push(total);
            total += s.iter().product::<usize>();
        }
        ParamLayout { shapes, offsets, total, n_layer: l }
    }

    pub fn numel(&self, i: usize) -> usize {
        self.shapes[i].iter().product()
    }

    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i]..self.offsets[i] + self.numel(i)
    }

    pub fn is_per_layer(&self, i: usize) -> bool {
        !matches!(i, WTE | WPE | LNFW | LNFB)
    }

    /// Offset of layer `l`'s slice of a per-layer tensor kind.
    pub fn layer_offset(&self, i: usize, l: usize) -> usize {
        debug_assert!(self.is_per_layer(i));
        self.offsets[i] + l * self.numel(i) / self.n_layer
    }

    /// Matrices get weight decay; biases, LayerNorm gains and shifts do not (as in GPT-2/nanoGPT).
    pub fn decays(&self, i: usize) -> bool {
        matches!(i, WTE | WPE | QKVW | ATTPROJW | FCW | FCPROJW)
    }

    /// GPT-2's initialization: N(0, 0.02), residual projections scaled by 1/sqrt(2L), LayerNorm at identity.
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut p = vec![0.0f32; self.total];
        let proj_std = 0.02 / (2.0 * self.n_layer as f32).sqrt();
        for i in 0..NUM_TENSORS {
            let std = match i {
                WTE | WPE | QKVW | FCW => 0.02,
                ATTPROJW | FCPROJW => proj_std,
                _ => 0.0,
            };
            let fill = if matches!(i, LN1W | LN2W | LNFW) { 1.0 } else { 0.0 };
            for x in &mut p[self.range(i)] {
                *x = if std > 0.0 { std * rng.normal() } else { fill };
            }
        }
        p
    }
}

/// Sizes of the activations kept for the backward pass, for a batch of (B, T).
#[derive(Clone, Copy, Debug)]
pub struct ActShapes {
    pub b: usize,
    pub t: usize,
    pub c: usize,
    pub l: usize,
    pub nh: usize,
    pub v: usize,
}

impl ActShapes {
    pub fn new(cfg: &ModelConfig, b: usize, t: usize) -> Self {
        ActShapes { b, t, c: cfg.n_embd, l: cfg.n_layer, nh: cfg.n_head, v: cfg.vocab_size }
    }
    pub fn btc(&self) -> usize {
        self.b * self.t * self.c
    }
    pub fn bt(&self) -> usize {
        self.b * self.t
    }
    pub fn att(&self) -> usize {
        self.b * self.nh * self.t * self.t
    }
}
