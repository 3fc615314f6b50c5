//! What a training loop needs from an engine; the CPU reference and the GPU engine both provide it.

use crate::config::ModelConfig;
use crate::cpu::adamw::AdamParams;
use crate::error::Result;

/// Result of one optimizer step.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    pub grad_norm: f32,
    /// False when the gradient was not finite and the update was skipped.
    pub applied: bool,
}

pub trait Engine {
    fn config(&self) -> ModelConfig;
    /// Largest (B, T) this engine was built for.
    fn capacity(&self) -> (usize, usize);
    /// Runs the model on tokens (B,T). With targets (B,T) (negative = no loss there) returns the mean loss.
    fn forward(&mut self, tokens: &[u32], targets: Option<&[i32]>, b: usize, t: usize) -> Result<Option<f32>>;
    /// Logits (B,T,V) of the last forward pass.
    fn logits(&mut self) -> Result<Vec<f32>>;
    /// Gradients of the last forward pass's mean loss, added to the parameter gradients.
    fn backward(&mut self) -> Result<()>;
    fn zero_grad(&mut self) -> Result<()>;
    /// Clips the global gradient norm to `grad_clip` and takes an AdamW step; skips non-finite gradients.
    fn update(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<StepReport>;
    fn params(&mut self) -> Result<Vec<f32>>;
    fn grads(&mut self) -> Result<Vec<f32>>;
    fn set_params(&mut self, params: &[f32]) -> Result<()>;
}
