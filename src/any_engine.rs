//! Either engine, chosen at run time: the command line's --engine, the page's start-up measurement.

use crate::config::{AdamParams, ModelConfig, SampleConfig};
use crate::cpu::gpt::CpuGpt;
use crate::engine::{Engine, PolicyReport, StepReport, TokenLosses};
use crate::error::Result;
use crate::gpu::gpt::GpuGpt;
use crate::surrogate::{PolicyBatch, PtxBatch};

/// The CPU engine's other copies: the page's shard Workers, natively threads.
#[cfg(target_arch = "wasm32")]
type OtherShard = crate::wasm_shards::RemoteShard;
#[cfg(not(target_arch = "wasm32"))]
type OtherShard = crate::thread_shard::ThreadShard;

pub enum AnyEngine {
    Cpu(Box<CpuGpt>),
    Gpu(Box<GpuGpt>),
    /// The CPU engine with a batch's rows split across shards (`shard.rs`).
    Sharded(Box<crate::shard::Sharded<OtherShard>>),
}

impl AnyEngine {
    /// The GPU engine on `gpu` when there is one, else the CPU reference.
    pub fn new(cfg: ModelConfig, gpu: Option<&crate::gpu::Gpu>, params: Vec<f32>, b: usize, t: usize) -> Result<AnyEngine> {
        Ok(match gpu {
            Some(g) => AnyEngine::Gpu(Box::new(GpuGpt::new(g.clone(), cfg, &params, b, t)?)),
            None => AnyEngine::Cpu(Box::new(CpuGpt::new(cfg, params, b, t)?)),
        })
    }

    /// The CPU engine over the page's shard Workers: this Worker's copy and one in each of the
    /// pool's, each for its share of `b` rows. With no shard Workers, the plain CPU engine.
    #[cfg(target_arch = "wasm32")]
    pub fn sharded(cfg: ModelConfig, pool: &crate::wasm_shards::ShardPool, params: Vec<f32>, b: usize, t: usize) -> Result<AnyEngine> {
        let n = pool.size() as usize;
        if n == 0 {
            return Ok(AnyEngine::Cpu(Box::new(CpuGpt::new(cfg, params, b, t)?)));
        }
        let rows = crate::shard::shard_rows(b, n + 1);
        let others = (0..n as u32).map(|w| crate::wasm_shards::RemoteShard::new(pool, w, &params, rows, t)).collect();
        Ok(AnyEngine::Sharded(Box::new(crate::shard::Sharded::new(CpuGpt::new(cfg, params, rows, t)?, others, b))))
    }

    /// The CPU engine on `threads` threads: this thread's copy and one on each other, each for its
    /// share of `b` rows. With one thread, the plain CPU engine.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn threaded(cfg: ModelConfig, params: Vec<f32>, b: usize, t: usize, threads: usize) -> Result<AnyEngine> {
        if threads <= 1 {
            return Ok(AnyEngine::Cpu(Box::new(CpuGpt::new(cfg, params, b, t)?)));
        }
        let rows = crate::shard::shard_rows(b, threads);
        let others =
            (1..threads).map(|_| crate::thread_shard::ThreadShard::new(CpuGpt::new(cfg, params.clone(), rows, t)?)).collect::<Result<_>>()?;
        Ok(AnyEngine::Sharded(Box::new(crate::shard::Sharded::new(CpuGpt::new(cfg, params, rows, t)?, others, b))))
    }
}

macro_rules! each {
    ($self:ident, $e:ident => $body:expr) => {
        match $self {
            AnyEngine::Cpu($e) => $body,
            AnyEngine::Gpu($e) => $body,
            AnyEngine::Sharded($e) => $body,
        }
    };
}

impl Engine for AnyEngine {
    fn config(&self) -> ModelConfig {
        each!(self, e => e.config())
    }
    fn capacity(&self) -> (usize, usize) {
        each!(self, e => e.capacity())
    }
    fn forward(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<()> {
        each!(self, e => e.forward(tokens, b, t))
    }
    fn forward_rows(&mut self, tokens: &[u32], b: usize, t: usize, lens: &[usize]) -> Result<()> {
        each!(self, e => e.forward_rows(tokens, b, t, lens))
    }
    async fn token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<TokenLosses> {
        each!(self, e => e.token_losses(targets, temperature).await)
    }
    async fn logits(&mut self) -> Result<Vec<f32>> {
        each!(self, e => e.logits().await)
    }
    async fn hidden(&mut self) -> Result<Vec<f32>> {
        each!(self, e => e.hidden().await)
    }
    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        each!(self, e => e.backward(weights, dhidden))
    }
    fn zero_grad(&mut self) -> Result<()> {
        each!(self, e => e.zero_grad())
    }
    async fn update(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<StepReport> {
        each!(self, e => e.update(opt, grad_clip).await)
    }
    async fn lm_step(&mut self, tokens: &[u32], targets: &[i32], b: usize, t: usize, opt: &AdamParams, grad_clip: f32) -> Result<(f32, StepReport)> {
        each!(self, e => e.lm_step(tokens, targets, b, t, opt, grad_clip).await)
    }
    async fn policy_step(&mut self, x: &PolicyBatch<'_>, ptx: Option<&PtxBatch<'_>>, opt: &AdamParams, grad_clip: f32) -> Result<PolicyReport> {
        each!(self, e => e.policy_step(x, ptx, opt, grad_clip).await)
    }
    fn freeze(&mut self) {
        each!(self, e => e.freeze())
    }
    fn reset_optimizer(&mut self) -> Result<()> {
        each!(self, e => e.reset_optimizer())
    }
    async fn params(&mut self) -> Result<Vec<f32>> {
        each!(self, e => e.params().await)
    }
    async fn grads(&mut self) -> Result<Vec<f32>> {
        each!(self, e => e.grads().await)
    }
    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        each!(self, e => e.set_params(params))
    }
    async fn optimizer_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        each!(self, e => e.optimizer_state().await)
    }
    fn set_optimizer_state(&mut self, m: &[f32], v: &[f32]) -> Result<()> {
        each!(self, e => e.set_optimizer_state(m, v))
    }
    async fn generate(&mut self, prompt: &[u32], k: usize, stop: u32, cfg: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        each!(self, e => e.generate(prompt, k, stop, cfg, seed).await)
    }
    async fn generate_groups(&mut self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, cfg: &SampleConfig) -> Result<Vec<Vec<Vec<u32>>>> {
        each!(self, e => e.generate_groups(groups, k, stop, cfg).await)
    }
}
