//! Where every parameter tensor lives in one flat f32 buffer (llm.c's layout: each kind of
//! tensor stacked over layers), shared by the CPU reference, the GPU engine and checkpoints; and
//! the table of activations both engines keep.
//! Keys: B batch, T time, C channels, L layers, NH heads, V vocabulary.

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

/// Which engine a buffer size is for: the two keep slightly different activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keeper {
    Cpu,
    Gpu,
}

/// Sizes of the activations kept for the backward pass, for a (B, T) batch.
#[derive(Clone, Copy, Debug)]
pub struct ActShapes {
    pub b: usize,
    pub t: usize,
    pub c: usize,
    pub l: usize,
    pub nh: usize,
    pub v: usize,
    pub keeper: Keeper,
}

impl ActShapes {
    pub fn new(cfg: &ModelConfig, b: usize, t: usize, keeper: Keeper) -> Self {
        ActShapes { b, t, c: cfg.n_embd, l: cfg.n_layer, nh: cfg.n_head, v: cfg.vocab_size, keeper }
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
    /// n for the CPU reference, nothing for the GPU.
    pub fn cpu(&self, n: usize) -> usize {
        if self.keeper == Keeper::Cpu {
            n
        } else {
            0
        }
    }
    /// n for the GPU, nothing for the CPU reference.
    pub fn gpu(&self, n: usize) -> usize {
        if self.keeper == Keeper::Gpu {
            n
        } else {
            0
        }
    }
}

/// The one table of activations both engines carve their buffers from: each name with its size for
/// a batch `s` (an `ActShapes`), in the order of the forward pass. Per-layer ones are stacked (L, ...).
/// The CPU reference stores the attention matrices (T,T) as the paper writes them; the GPU keeps one
/// logsumexp per row instead and recomputes the weights in the backward pass.
/// `$emit` receives `s; name = size; ...` and builds a struct from it.
#[macro_export]
macro_rules! activation_table {
    ($emit:ident, $s:ident) => {
        $emit! { $s;
            encoded = $s.btc();               // (B,T,C)
            ln1 = $s.l * $s.btc();            // (L,B,T,C)
            ln1_mean = $s.l * $s.bt();        // (L,B,T)
            ln1_rstd = $s.l * $s.bt();        // (L,B,T)
            qkv = $s.l * 3 * $s.btc();        // (L,B,T,3C)
            atty = $s.l * $s.btc();           // (L,B,T,C)
            preatt = $s.cpu($s.l * $s.att()); // (L,B,NH,T,T)
            att = $s.cpu($s.l * $s.att());    // (L,B,NH,T,T)
            att_lse = $s.gpu($s.l * $s.nh * $s.bt()); // (L,B,NH,T)
            attproj = $s.l * $s.btc();        // (L,B,T,C)
            residual2 = $s.l * $s.btc();      // (L,B,T,C)
            ln2 = $s.l * $s.btc();            // (L,B,T,C)
            ln2_mean = $s.l * $s.bt();        // (L,B,T)
            ln2_rstd = $s.l * $s.bt();        // (L,B,T)
            fch = $s.l * 4 * $s.btc();        // (L,B,T,4C)
            fch_gelu = $s.l * 4 * $s.btc();   // (L,B,T,4C)
            fcproj = $s.l * $s.btc();         // (L,B,T,C)
            residual3 = $s.l * $s.btc();      // (L,B,T,C)
            lnf = $s.btc();                   // (B,T,C)
            lnf_mean = $s.bt();               // (B,T)
            lnf_rstd = $s.bt();               // (B,T)
            logits = $s.bt() * $s.v;          // (B,T,V)
            losses = $s.bt();                 // (B,T)
            lse = $s.bt();                    // (B,T)
            entropy = $s.bt();                // (B,T)
        }
    };
}
