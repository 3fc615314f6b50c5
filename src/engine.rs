//! What training needs from an engine; the CPU reference and the GPU engine both provide it.
//!
//! One forward pass computes the model up to its logits. Losses are read per position
//! (`token_losses`), and a backward pass starts from any weighted sum of those losses and/or from a
//! gradient at the final hidden state, which is where reward and value heads attach.
//!
//! Recording work is synchronous; everything that reads a result back is `async`, because in the
//! browser a GPU readback completes only after control returns to the event loop. Natively the
//! command line blocks on these futures; the CPU reference's futures are ready at once.

use crate::bail;
use crate::config::{AdamParams, ModelConfig, SampleConfig};
use crate::error::Result;
use crate::surrogate::{surrogate_weights, PolicyBatch, PtxBatch, SurrogateSums};

/// Result of one optimizer step.
#[derive(Clone, Copy, Debug)]
pub struct StepReport {
    pub grad_norm: f32,
    /// False when the gradient was not finite and the update was skipped.
    pub applied: bool,
}

/// Result of one PPO-ptx policy step.
#[derive(Clone, Copy, Debug)]
pub struct PolicyReport {
    pub sums: SurrogateSums,
    /// The pretraining batch's mean next-token loss (0 without one).
    pub ptx_loss: f32,
    pub step: StepReport,
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
    /// `forward` of a batch whose row i holds lens[i] tokens and then padding. An engine may skip
    /// the padding (the CPU engine does: its hidden states, logits and losses there read 0), so
    /// what it gives there is unspecified, and targets and hidden-state gradients there must be
    /// absent (−1 and 0).
    fn forward_rows(&mut self, tokens: &[u32], b: usize, t: usize, lens: &[usize]) -> Result<()> {
        check_lens(lens, b, t)?;
        self.forward(tokens, b, t)
    }
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
    /// One language-model training step: forward, the mean loss over positions with a target,
    /// backward, clip, AdamW; returns the loss and the step's report. The GPU engine does it in one
    /// submission with one readback.
    async fn lm_step(&mut self, tokens: &[u32], targets: &[i32], b: usize, t: usize, opt: &AdamParams, grad_clip: f32) -> Result<(f32, StepReport)>
    where
        Self: Sized,
    {
        let loss = lm_forward(self, tokens, targets, b, t).await?;
        self.zero_grad()?;
        lm_backward(self, targets, 1.0)?;
        Ok((loss, self.update(opt, grad_clip).await?))
    }
    /// One PPO-ptx policy step: the clipped surrogate on a minibatch plus γ times the mean
    /// pretraining loss, clip, AdamW. A non-finite surrogate skips the step. The GPU engine
    /// computes the surrogate's weights on the device: one submission, one readback.
    async fn policy_step(&mut self, x: &PolicyBatch<'_>, ptx: Option<&PtxBatch<'_>>, opt: &AdamParams, grad_clip: f32) -> Result<PolicyReport>
    where
        Self: Sized,
    {
        x.check()?;
        match x.lens {
            Some(lens) => self.forward_rows(x.tokens, x.b, x.t, lens)?,
            None => self.forward(x.tokens, x.b, x.t)?,
        }
        let tl = self.token_losses(x.targets, x.temperature).await?;
        let (weights, sums) = surrogate_weights(x, &tl.losses);
        if !weights.iter().all(|w| w.is_finite()) {
            return Ok(PolicyReport { sums, ptx_loss: 0.0, step: StepReport { grad_norm: f32::NAN, applied: false } });
        }
        self.zero_grad()?;
        self.backward(Some(&weights), None)?;
        let mut ptx_loss = 0.0;
        if let Some(p) = ptx {
            ptx_loss = lm_forward(self, p.tokens, p.targets, p.b, p.t).await?;
            lm_backward(self, p.targets, p.gamma)?;
        }
        Ok(PolicyReport { sums, ptx_loss, step: self.update(opt, grad_clip).await? })
    }
    /// Forgets the AdamW moments (a new training phase starts).
    fn reset_optimizer(&mut self) -> Result<()>;
    /// Gives up what training needs (gradients, moments): the engine will only run forward.
    fn freeze(&mut self) {}
    async fn params(&mut self) -> Result<Vec<f32>>;
    async fn grads(&mut self) -> Result<Vec<f32>>;
    fn set_params(&mut self, params: &[f32]) -> Result<()>;
    /// AdamW's first and second moments (m, v), each laid out like the parameters.
    async fn optimizer_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)>;
    fn set_optimizer_state(&mut self, m: &[f32], v: &[f32]) -> Result<()>;
    /// K continuations of a prompt, each stopping at `stop` (not included) or after
    /// `cfg.max_new_tokens`. The GPU engine samples on the GPU with a key-value cache.
    async fn generate(&mut self, prompt: &[u32], k: usize, stop: u32, cfg: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>>;
    /// K continuations of each of a batch's prompts, each group with its seed: one `generate` per
    /// group, in order, passing the turn between groups (see `turns`). A sharded engine runs the
    /// groups on its shards at once; a group's answers depend only on its prompt and seed.
    async fn generate_groups(&mut self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, cfg: &SampleConfig) -> Result<Vec<Vec<Vec<u32>>>>
    where
        Self: Sized,
    {
        let mut out = Vec::with_capacity(groups.len());
        for (prompt, seed) in groups {
            out.push(self.generate(prompt, k, stop, cfg, *seed).await?);
            crate::turns::pass().await;
        }
        Ok(out)
    }
}

/// Language-model loss: forward, then the mean next-token loss over positions with a target.
pub async fn lm_forward<E: Engine>(e: &mut E, tokens: &[u32], targets: &[i32], b: usize, t: usize) -> Result<f32> {
    // a malformed batch goes whole to `token_losses`, whose checks name what is wrong
    let lens = if targets.len() == b * t { loss_lens(targets, t) } else { vec![t; b] };
    e.forward_rows(tokens, b, t, &lens)?;
    let tl = e.token_losses(targets, 1.0).await?;
    Ok(mean_loss(&tl.losses, targets))
}

/// Each row's length as far as its loss reaches: one past its last position with a target (at
/// least 1). Under the causal mask no later position changes the loss, so none is computed: the
/// prose rows of the γ term beside shorter answers (`--favourites`), an SFT row's padding.
pub fn loss_lens(targets: &[i32], t: usize) -> Vec<usize> {
    targets.chunks(t.max(1)).map(|row| row.iter().rposition(|&x| x >= 0).map_or(1, |p| p + 1)).collect()
}

/// Gradient of the mean loss of the last `lm_forward`, scaled by `scale`, added to the parameter gradients.
pub fn lm_backward<E: Engine>(e: &mut E, targets: &[i32], scale: f32) -> Result<()> {
    let w: Vec<f32> = mean_weights(targets).iter().map(|x| x * scale).collect();
    e.backward(Some(&w), None)
}

/// Runs a future that completes without waiting (the CPU reference's), without an executor.
/// Fails instead of blocking when it would have to wait.
pub fn run_ready<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => {
            Err(crate::error::Error::new(crate::error::ErrorKind::Internal, "this work must wait for the GPU; call it asynchronously"))
        }
    }
}

/// Row weights of the mean loss: one over the number of positions that carry loss, zero elsewhere.
pub fn mean_weights(targets: &[i32]) -> Vec<f32> {
    let count = targets.iter().filter(|&&t| t >= 0).count();
    let w = if count == 0 { 0.0 } else { 1.0 / count as f32 };
    targets.iter().map(|&t| if t >= 0 { w } else { 0.0 }).collect()
}

/// The mean of the losses over positions that carry loss.
pub fn mean_loss(losses: &[f32], targets: &[i32]) -> f32 {
    let count = targets.iter().filter(|&&t| t >= 0).count();
    if count == 0 {
        0.0
    } else {
        losses.iter().sum::<f32>() / count as f32
    }
}

/// Checks targets for `token_losses`.
pub fn check_targets(cfg: &ModelConfig, targets: &[i32], n: usize, temperature: f32) -> Result<()> {
    if targets.len() != n {
        bail!("expected {n} targets for the last forward pass, got {}", targets.len());
    }
    if let Some(&bad) = targets.iter().find(|&&x| x >= cfg.vocab_size as i32) {
        bail!("target id {bad} is outside the vocabulary of {}", cfg.vocab_size);
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        bail!("temperature must be positive, got {temperature}");
    }
    Ok(())
}

/// Checks what a backward pass starts from.
pub fn check_backward_inputs(weights: Option<&[f32]>, dhidden: Option<&[f32]>, have_losses: bool, n: usize, btc: usize) -> Result<()> {
    match (weights, dhidden) {
        (None, None) => bail!("backward() needs loss weights, a hidden-state gradient, or both"),
        (Some(_), _) if !have_losses => bail!("backward() with loss weights needs token_losses() after forward()"),
        (Some(w), _) if w.len() != n => bail!("expected {n} loss weights, got {}", w.len()),
        (_, Some(d)) if d.len() != btc => bail!("expected a hidden-state gradient of {btc} values, got {}", d.len()),
        _ => Ok(()),
    }
}

/// Checks the rows' lengths of a padded (B,T) batch.
pub fn check_lens(lens: &[usize], b: usize, t: usize) -> Result<()> {
    if lens.len() != b {
        bail!("expected {b} row lengths, got {}", lens.len());
    }
    if let Some(bad) = lens.iter().find(|&&l| l == 0 || l > t) {
        bail!("a row length of {bad} is outside 1..={t}");
    }
    Ok(())
}

/// Checks a batch against an engine's model and capacity before any kernel sees it.
pub fn check_batch(cfg: &ModelConfig, cap: (usize, usize), tokens: &[u32], targets: Option<&[i32]>, b: usize, t: usize) -> Result<()> {
    if b == 0 || t == 0 || b > cap.0 || t > cap.1 {
        bail!("batch ({b}, {t}) is outside this engine's capacity {cap:?}");
    }
    if tokens.len() != b * t {
        bail!("expected {} tokens for a ({b}, {t}) batch, got {}", b * t, tokens.len());
    }
    if let Some(&bad) = tokens.iter().find(|&&x| x as usize >= cfg.vocab_size) {
        bail!("token id {bad} is outside the vocabulary of {}", cfg.vocab_size);
    }
    if let Some(tg) = targets {
        if tg.len() != b * t {
            bail!("expected {} targets, got {}", b * t, tg.len());
        }
        if let Some(&bad) = tg.iter().find(|&&x| x >= cfg.vocab_size as i32) {
            bail!("target id {bad} is outside the vocabulary of {}", cfg.vocab_size);
        }
    }
    Ok(())
}
