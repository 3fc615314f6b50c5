//! What training needs from an engine; the CPU reference and the GPU engine both provide it.
//!
//! One forward pass computes the model up to its logits. Losses are read per position
//! (`token_losses`), and a backward pass starts from any weighted sum of those losses and/or from a
//! gradient at the final hidden state, which is where reward and value heads attach.
//!
//! Recording work is synchronous; everything that reads a result back is `async`, because in the
//! browser a GPU readback completes only after control returns to the event loop. Natively the
//! command line blocks on these futures; the CPU reference's futures are ready at once.

use crate::config::ModelConfig;
use crate::cpu::adamw::AdamParams;
use crate::cpu::crossentropy::{mean_loss, mean_weights};
use crate::cpu::gpt::CpuGpt;
use crate::error::Result;
use crate::gpu::gpt::GpuGpt;
use crate::sample::SampleConfig;

/// Result of one optimizer step.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    pub grad_norm: f32,
    /// False when the gradient was not finite and the update was skipped.
    pub applied: bool,
}

/// Per-position results of `token_losses`.
#[derive(Clone, Debug, Default)]
pub struct TokenLosses {
    /// -log p(target) under softmax(logits / T); 0 where the target is negative.
    pub losses: Vec<f32>,
    /// Entropy of softmax(logits / T) at each position.
    pub entropy: Vec<f32>,
}

#[allow(async_fn_in_trait)]
pub trait Engine {
    fn config(&self) -> ModelConfig;
    /// Largest (B, T) this engine was built for.
    fn capacity(&self) -> (usize, usize);
    /// Runs the model on tokens (B,T) up to the logits.
    fn forward(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<()>;
    /// Per-position losses of the last forward pass against targets (B,T) at a temperature.
    async fn token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<TokenLosses>;
    /// Logits (B,T,V) of the last forward pass.
    async fn logits(&mut self) -> Result<Vec<f32>>;
    /// Final hidden state (B,T,C), after the last LayerNorm, of the last forward pass.
    async fn hidden(&mut self) -> Result<Vec<f32>>;
    /// Adds to the parameter gradients the gradient of Σ_r weights[r]·losses[r] (losses of the last
    /// `token_losses` call) plus Σ dhidden·hidden.
    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()>;
    fn zero_grad(&mut self) -> Result<()>;
    /// Clips the global gradient norm to `grad_clip` and takes an AdamW step; skips non-finite gradients.
    async fn update(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<StepReport>;
    /// Forgets the AdamW moments (a new training phase starts).
    fn reset_optimizer(&mut self) -> Result<()>;
    async fn params(&mut self) -> Result<Vec<f32>>;
    async fn grads(&mut self) -> Result<Vec<f32>>;
    fn set_params(&mut self, params: &[f32]) -> Result<()>;
    /// AdamW's first and second moments (m, v), each laid out like the parameters.
    async fn optimizer_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)>;
    fn set_optimizer_state(&mut self, m: &[f32], v: &[f32]) -> Result<()>;
    /// K continuations of a prompt, each stopping at `stop` (not included) or after
    /// `cfg.max_new_tokens`. The GPU engine samples on the GPU with a key-value cache.
    async fn generate(&mut self, prompt: &[u32], k: usize, stop: u32, cfg: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>>;
}

/// Language-model loss: forward, then the mean next-token loss over positions with a target.
pub async fn lm_forward<E: Engine>(e: &mut E, tokens: &[u32], targets: &[i32], b: usize, t: usize) -> Result<f32> {
    e.forward(tokens, b, t)?;
    let tl = e.token_losses(targets, 1.0).await?;
    Ok(mean_loss(&tl.losses, targets))
}

/// Gradient of the mean loss of the last `lm_forward`, scaled by `scale`, added to the parameter gradients.
pub fn lm_backward<E: Engine>(e: &mut E, targets: &[i32], scale: f32) -> Result<()> {
    let w: Vec<f32> = mean_weights(targets).iter().map(|x| x * scale).collect();
    e.backward(Some(&w), None)
}

/// Either engine, chosen at run time (the command line's --engine, the page's WebGPU check).
pub enum AnyEngine {
    Cpu(CpuGpt),
    Gpu(Box<GpuGpt>),
}

impl AnyEngine {
    /// The GPU engine on `gpu` when there is one, else the CPU reference.
    pub fn new(cfg: ModelConfig, gpu: Option<&crate::gpu::Gpu>, params: Vec<f32>, b: usize, t: usize) -> Result<AnyEngine> {
        Ok(match gpu {
            Some(g) => AnyEngine::Gpu(Box::new(GpuGpt::new(g.clone(), cfg, &params, b, t)?)),
            None => AnyEngine::Cpu(CpuGpt::new(cfg, params, b, t)?),
        })
    }
}

macro_rules! each {
    ($self:ident, $e:ident => $body:expr) => {
        match $self {
            AnyEngine::Cpu($e) => $body,
            AnyEngine::Gpu($e) => $body,
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
}

/// Runs a future that completes without waiting (the CPU reference's), without an executor.
/// Fails instead of blocking when it would have to wait.
pub fn run_ready<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => Err(crate::error::Error("this work must wait for the GPU; call it asynchronously".into())),
    }
}
