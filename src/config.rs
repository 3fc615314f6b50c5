//! Model and training configuration, with named presets.
//! Presets are data: every code path reads the numbers, none branches on the name.

use serde::{Deserialize, Serialize};

/// Shape of a GPT-2-style model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

    pub fn validate(&self) -> Result<(), String> {
        let ok = self.vocab_size > 0 && self.n_ctx > 0 && self.n_layer > 0 && self.n_head > 0 && self.n_embd > 0;
        if !ok {
            return Err(format!("model config has a zero dimension: {self:?}"));
        }
        if self.n_embd % self.n_head != 0 {
            return Err(format!("n_embd {} is not a multiple of n_head {}", self.n_embd, self.n_head));
        }
        Ok(())
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
    // For tests: about 40k parameters, trains in seconds on a software adapter.
    Preset {
        name: "tiny",
        model: ModelConfig { vocab_size: 384, n_ctx: 64, n_layer: 2, n_head: 2, n_embd: 32 },
        train: TrainConfig {
            batch_size: 4,
            seq_len: 32,
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
    Preset {
        name: "demo",
        model: ModelConfig { vocab_size: 1024, n_ctx: 128, n_layer: 4, n_head: 4, n_embd: 192 },
        train: ADAMW,
    },
];

pub fn preset(name: &str) -> Result<Preset, String> {
    PRESETS.iter().find(|p| p.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        format!("unknown preset '{name}'; choose one of: {}", names.join(", "))
    })
}
