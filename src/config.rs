//! Model and training configuration, with named presets.
//! Presets are data: every code path reads the numbers, none branches on the name.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// The largest shapes a model may have here: far beyond a page's GPU, and within what 32-bit
/// offsets address.
const MAX_VOCAB: usize = 1 << 20;
const MAX_CTX: usize = 1 << 14;
const MAX_LAYERS: usize = 256;
const MAX_EMBD: usize = 1 << 14;
const MAX_PARAMS: u128 = 1 << 30;

/// Shape of a GPT-2-style model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelConfig {
    pub vocab_size: usize,
    /// Maximum context length (rows of the positional embedding).
    pub n_ctx: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
}

impl ModelConfig {
    pub fn head_size(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Checks the shape before anything is allocated for it: no zero dimension, heads that divide
    /// the channels, and sizes this lab can hold (the GPU kernels index with 32 bits).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::new(ErrorKind::BadInput, msg));
        let ok = self.vocab_size > 0 && self.n_ctx > 0 && self.n_layer > 0 && self.n_head > 0 && self.n_embd > 0;
        if !ok {
            return bad(format!("model config has a zero dimension: {self:?}"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return bad(format!("n_embd {} is not a multiple of n_head {}", self.n_embd, self.n_head));
        }
        for (name, v, max) in [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("n_positions", self.n_ctx, MAX_CTX),
            ("n_layer", self.n_layer, MAX_LAYERS),
            ("n_embd", self.n_embd, MAX_EMBD),
        ] {
            if v > max {
                return bad(format!("{name} {v} is larger than this lab handles ({max})"));
            }
        }
        let (v, t, l, c) = (self.vocab_size as u128, self.n_ctx as u128, self.n_layer as u128, self.n_embd as u128);
        let params = (v + t) * c + l * 12 * c * c + 2 * c;
        if params > MAX_PARAMS {
            return bad(format!("a model of {params} parameters is larger than this lab handles ({MAX_PARAMS})"));
        }
        Ok(())
    }
}

/// AdamW's settings apart from the learning rate and the step count, which change every step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamSettings {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl AdamSettings {
    pub fn at(&self, lr: f32, t: u32) -> AdamParams {
        AdamParams { lr, beta1: self.beta1, beta2: self.beta2, eps: self.eps, weight_decay: self.weight_decay, t }
    }
}

/// One AdamW step's hyperparameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamParams {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based step count, for bias correction.
    pub t: u32,
}

/// How answers are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleConfig {
    pub temperature: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    /// 1.0 keeps every token.
    pub top_p: f32,
    pub max_new_tokens: usize,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 64 }
    }
}

/// Optimizer and schedule for pretraining and SFT.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub seq_len: usize,
    pub pretrain_steps: usize,
    pub sft_steps: usize,
    pub learning_rate: f32,
    pub sft_learning_rate: f32,
    pub warmup_steps: usize,
    pub weight_decay: f32,
    pub grad_clip: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Dialogues the grammar generates for the corpus.
    pub corpus_dialogues: usize,
    pub seed: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub model: ModelConfig,
    pub train: TrainConfig,
}

const ADAMW: TrainConfig = TrainConfig {
    batch_size: 8,
    seq_len: 128,
    pretrain_steps: 1000,
    sft_steps: 100,
    learning_rate: 1e-3,
    sft_learning_rate: 1e-4,
    warmup_steps: 50,
    weight_decay: 0.1,
    grad_clip: 1.0,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    corpus_dialogues: 6000,
    seed: 1337,
};

pub const PRESETS: [Preset; 2] = [
    // For tests: about 42k parameters, trains in seconds on a software adapter; its context holds
    // a whole answer in its small vocabulary, so its answers end.
    Preset {
        name: "tiny",
        model: ModelConfig { vocab_size: 384, n_ctx: 128, n_layer: 2, n_head: 2, n_embd: 32 },
        train: TrainConfig {
            batch_size: 4,
            seq_len: 128,
            pretrain_steps: 1500,
            sft_steps: 200,
            learning_rate: 1e-2,
            sft_learning_rate: 3e-3,
            warmup_steps: 10,
            corpus_dialogues: 400,
            ..ADAMW
        },
    },
    // For the page: about 2M parameters, context 128.
    Preset { name: "demo", model: ModelConfig { vocab_size: 1024, n_ctx: 128, n_layer: 4, n_head: 4, n_embd: 192 }, train: ADAMW },
];

pub fn preset(name: &str) -> Result<Preset, Error> {
    PRESETS.iter().find(|p| p.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        Error::new(ErrorKind::BadInput, format!("unknown preset '{name}'; choose one of: {}", names.join(", ")))
    })
}
