//! An RLHF lab on a compact GPT: a CPU reference and WGSL kernels through wgpu, natively and in wasm.

pub mod any_engine;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod corpus;
pub mod cpu;
pub mod engine;
pub mod error;
pub mod gpu;
pub mod lab;
pub mod labelers;
pub mod methods;
pub mod options;
pub mod params;
pub mod relevance;
pub mod reward;
pub mod reward_average;
pub mod reward_ensemble;
pub mod rng;
pub mod rollout;
pub mod sample;
pub mod settings;
pub mod shard;
pub mod surrogate;
pub mod timing;
pub mod tokenizer;
pub mod train;
pub mod turns;

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod thread_shard;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
#[cfg(target_arch = "wasm32")]
pub mod wasm_shards;
