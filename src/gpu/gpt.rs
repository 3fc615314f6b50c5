//! GPT-2 on the WGSL kernels: the same sequence of layers as `cpu::gpt`, recorded into command buffers.

use wgpu::Buffer;

use super::context::Gpu;
use super::kernels::{AdamUniforms, AttnOffsets, LnOffsets, NUM_PARTIALS};
use crate::bail;
use crate::config::ModelConfig;
use crate::cpu::adamw::AdamParams;
use crate::cpu::gpt::{check_backward_inputs, check_batch, check_targets};
use crate::engine::{Engine, StepReport, TokenLosses};
use crate::error::Result;
use crate::params::*;

/// Activation buffers, laid out as `cpu::gpt::Acts`.
pub struct GpuActs {
    pub(super) encoded: Buffer,
    ln1: Buffer,
    ln1_mean: Buffer,
    ln1_rstd: Buffer,
    pub(super) qkv: Buffer,
    atty: Buffer,
    preatt: Buffer,
    att: Buffer,
    attproj: Buffer,
    residual2: Buffer,
    ln2: Buffer,
    ln2_mean: Buffer,
    ln2_rstd: Buffer,
    fch: Buffer,
    fch_gelu: Buffer,
    fcproj: Buffer,
    residual3: Buffer,
    lnf: Buffer,
    lnf_mean: Buffer,
    lnf_rstd: Buffer,
    pub(super) logits: Buffer,
    losses: Buffer,
    lse: Buffer,
    entropy: Buffer,
}

impl GpuActs {
    fn new(gpu: &Gpu, s: &ActShapes) -> Self {
        let (btc, bt, l) = (s.btc(), s.bt(), s.l);
        GpuActs {
            encoded: gpu.buffer("encoded", btc),
            ln1: gpu.buffer("ln1", l * btc),
            ln1_mean: gpu.buffer("ln1_mean", l * bt),
            ln1_rstd: gpu.buffer("ln1_rstd", l * bt),
            qkv: gpu.buffer("qkv", l * 3 * btc),
            atty: gpu.buffer("atty", l * btc),
            preatt: gpu.buffer("preatt", l * s.att()),
            att: gpu.buffer("att", l * s.att()),
            attproj: gpu.buffer("attproj", l * btc),
            residual2: gpu.buffer("residual2", l * btc),
            ln2: gpu.buffer("ln2", l * btc),
            ln2_mean: gpu.buffer("ln2_mean", l * bt),
            ln2_rstd: gpu.buffer("ln2_rstd", l * bt),
            fch: gpu.buffer("fch", l * 4 * btc),
            fch_gelu: gpu.buffer("fch_gelu", l * 4 * btc),
            fcproj: gpu.buffer("fcproj", l * btc),
            residual3: gpu.buffer("residual3", l * btc),
            lnf: gpu.buffer("lnf", btc),
            lnf_mean: gpu.buffer("lnf_mean", bt),
            lnf_rstd: gpu.buffer("lnf_rstd", bt),
            logits: gpu.buffer("logits", bt * s.v),
            losses: gpu.buffer("losses", bt),
            lse: gpu.buffer("lse", bt),
            entropy: gpu.buffer("entropy", bt),
        }
    }

    /// The buffers that gradients accumulate into (lnf aside: a backward pass may start there).
    fn grad_buffers(&self) -> [&Buffer; 13] {
        [
            &self.encoded, &self.ln1, &self.qkv, &self.atty, &self.preatt, &self.attproj, &self.residual2,
            &self.ln2, &self.fch, &self.fch_gelu, &self.fcproj, &self.residual3, &self.logits,
        ]
    }
}

pub struct GpuGpt {
    pub gpu: Gpu,
    pub cfg: ModelConfig,
    pub layout: ParamLayout,
    pub(super) params: Buffer,
    grads: Buffer,
    m: Buffer,
    v: Buffer,
    pub(super) tokens: Buffer,
    targets: Buffer,
    weights: Buffer,
    partial: Buffer,
    norm: Buffer,
    pub(super) acts: GpuActs,
    grad_acts: GpuActs,
    pub(super) max_b: usize,
    pub(super) max_t: usize,
    /// (B, T) of the last forward pass.
    pub(super) last: Option<(usize, usize)>,
    /// Temperature of the last `token_losses` call (its targets stay in `targets`).
    last_ce: Option<f32>,
}

impl GpuGpt {
    pub fn new(gpu: Gpu, cfg: ModelConfig, params: &[f32], max_b: usize, max_t: usize) -> Result<Self> {
        cfg.validate()?;
        let layout = ParamLayout::new(&cfg);
        if params.len() != layout.total {
            bail!("expected {} parameters for {cfg:?}, got {}", layout.total, params.len());
        }
        if max_t > cfg.n_ctx {
            bail!("sequence length {max_t} exceeds the model's context {}", cfg.n_ctx);
        }
        let shapes = ActShapes::new(&cfg, max_b, max_t);
        let limit = gpu.device.limits().max_storage_buffer_binding_size as usize;
        let largest = [shapes.bt() * shapes.v, shapes.l * shapes.att(), shapes.l * 4 * shapes.btc()].into_iter().max().unwrap_or(0) * 4;
        if largest > limit {
            bail!("a batch of ({max_b}, {max_t}) needs a {largest}-byte buffer; this GPU allows {limit}. Use a smaller batch.");
        }
        let n = layout.total;
        let p = gpu.buffer_from("params", params);
        let eng = GpuGpt {
            grads: gpu.buffer("grads", n),
            m: gpu.buffer("adam m", n),
            v: gpu.buffer("adam v", n),
            tokens: gpu.buffer("tokens", max_b * max_t),
            targets: gpu.buffer("targets", max_b * max_t),
            weights: gpu.buffer("loss weights", max_b * max_t),
            partial: gpu.buffer("norm partials", NUM_PARTIALS),
            norm: gpu.buffer("norm", 2),
            acts: GpuActs::new(&gpu, &shapes),
            grad_acts: GpuActs::new(&gpu, &shapes),
            params: p,
            gpu,
            cfg,
            layout,
            max_b,
            max_t,
            last: None,
            last_ce: None,
        };
        Ok(eng)
    }

    pub(super) fn lo(&self, i: usize, l: usize) -> usize {
        self.layout.layer_offset(i, l)
    }

    /// Records the forward pass for a (B,T) batch already uploaded.
    pub(super) fn record_forward(&self, e: &mut wgpu::CommandEncoder, b: usize, t: usize) {
        let g = &self.gpu;
        let k = &g.kernels;
        let a = &self.acts;
        let (c, l_n, nh, v) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head, self.cfg.vocab_size);
        let (n, btc, att_n) = (b * t, b * t * c, b * nh * t * t);
        let lay = &self.layout;
        let p = &self.params;
        k.encoder_forward(g, e, &a.encoded, &self.tokens, p, lay.offsets[WTE], lay.offsets[WPE], b, t, c);
        for l in 0..l_n {
            let (res_buf, res_off) = if l == 0 { (&a.encoded, 0) } else { (&a.residual3, (l - 1) * btc) };
            let ln1 = LnOffsets { inp: res_off, out: l * btc, stat: l * n, w: self.lo(LN1W, l), b: self.lo(LN1B, l) };
            k.layernorm_forward(g, e, &a.ln1, &a.ln1_mean, &a.ln1_rstd, res_buf, p, ln1, n, c);
            k.linear_forward(g, e, &a.qkv, l * 3 * btc, &a.ln1, l * btc, p, self.lo(QKVW, l), Some(self.lo(QKVB, l)), n, c, 3 * c);
            let ao = AttnOffsets { qkv: l * 3 * btc, out: l * btc, att: l * att_n };
            k.attention_forward(g, e, &a.atty, &a.preatt, &a.att, &a.qkv, ao, b, t, c, nh);
            k.linear_forward(g, e, &a.attproj, l * btc, &a.atty, l * btc, p, self.lo(ATTPROJW, l), Some(self.lo(ATTPROJB, l)), n, c, c);
            k.residual_forward(g, e, &a.residual2, l * btc, res_buf, res_off, &a.attproj, l * btc, btc);
            let ln2 = LnOffsets { inp: l * btc, out: l * btc, stat: l * n, w: self.lo(LN2W, l), b: self.lo(LN2B, l) };
            k.layernorm_forward(g, e, &a.ln2, &a.ln2_mean, &a.ln2_rstd, &a.residual2, p, ln2, n, c);
            k.linear_forward(g, e, &a.fch, l * 4 * btc, &a.ln2, l * btc, p, self.lo(FCW, l), Some(self.lo(FCB, l)), n, c, 4 * c);
            k.gelu_forward(g, e, &a.fch_gelu, &a.fch, l * 4 * btc, 4 * btc);
            k.linear_forward(g, e, &a.fcproj, l * btc, &a.fch_gelu, l * 4 * btc, p, self.lo(FCPROJW, l), Some(self.lo(FCPROJB, l)), n, 4 * c, c);
            k.residual_forward(g, e, &a.residual3, l * btc, &a.residual2, l * btc, &a.fcproj, l * btc, btc);
        }
        let lnf = LnOffsets { inp: (l_n - 1) * btc, out: 0, stat: 0, w: lay.offsets[LNFW], b: lay.offsets[LNFB] };
        k.layernorm_forward(g, e, &a.lnf, &a.lnf_mean, &a.lnf_rstd, &a.residual3, p, lnf, n, c);
        k.linear_forward(g, e, &a.logits, 0, &a.lnf, 0, p, lay.offsets[WTE], None, n, c, v);
    }

    /// Records the backward pass. `ce`: the temperature when the loss weights are used;
    /// `dhidden`: whether grad_acts.lnf already holds a gradient (else it is cleared here).
    fn record_backward(&self, e: &mut wgpu::CommandEncoder, b: usize, t: usize, ce: Option<f32>, dhidden: bool) {
        let g = &self.gpu;
        let k = &g.kernels;
        let (a, d) = (&self.acts, &self.grad_acts);
        let (c, l_n, nh, v) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head, self.cfg.vocab_size);
        let (n, btc, att_n) = (b * t, b * t * c, b * nh * t * t);
        let lay = &self.layout;
        let (p, gr) = (&self.params, &self.grads);
        for buf in d.grad_buffers() {
            e.clear_buffer(buf, 0, None);
        }
        if !dhidden {
            e.clear_buffer(&d.lnf, 0, None);
        }
        if let Some(temp) = ce {
            k.crossentropy_backward(g, e, &d.logits, &a.logits, &a.lse, &self.targets, &self.weights, temp, n, v);
            k.linear_backward(g, e, &d.lnf, gr, &d.logits, 0, &a.lnf, 0, p, lay.offsets[WTE], None, n, c, v);
        }
        let lnf = LnOffsets { inp: (l_n - 1) * btc, out: 0, stat: 0, w: lay.offsets[LNFW], b: lay.offsets[LNFB] };
        k.layernorm_backward(g, e, &d.residual3, (l_n - 1) * btc, gr, &d.lnf, &a.residual3, p, &a.lnf_mean, &a.lnf_rstd, lnf, n, c);
        for l in (0..l_n).rev() {
            let (res_buf, dres_buf, res_off) =
                if l == 0 { (&a.encoded, &d.encoded, 0) } else { (&a.residual3, &d.residual3, (l - 1) * btc) };
            k.residual_backward(g, e, &d.residual2, l * btc, &d.fcproj, l * btc, &d.residual3, l * btc, btc);
            k.linear_backward(g, e, &d.fch_gelu, gr, &d.fcproj, l * btc, &a.fch_gelu, l * 4 * btc, p, self.lo(FCPROJW, l), Some(self.lo(FCPROJB, l)), n, 4 * c, c);
            k.gelu_backward(g, e, &d.fch, &a.fch, &d.fch_gelu, l * 4 * btc, 4 * btc);
            k.linear_backward(g, e, &d.ln2, gr, &d.fch, l * 4 * btc, &a.ln2, l * btc, p, self.lo(FCW, l), Some(self.lo(FCB, l)), n, c, 4 * c);
            let ln2 = LnOffsets { inp: l * btc, out: l * btc, stat: l * n, w: self.lo(LN2W, l), b: self.lo(LN2B, l) };
            k.layernorm_backward(g, e, &d.residual2, l * btc, gr, &d.ln2, &a.residual2, p, &a.ln2_mean, &a.ln2_rstd, ln2, n, c);
            k.residual_backward(g, e, dres_buf, res_off, &d.attproj, l * btc, &d.residual2, l * btc, btc);
            k.linear_backward(g, e, &d.atty, gr, &d.attproj, l * btc, &a.atty, l * btc, p, self.lo(ATTPROJW, l), Some(self.lo(ATTPROJB, l)), n, c, c);
            let ao = AttnOffsets { qkv: l * 3 * btc, out: l * btc, att: l * att_n };
            k.attention_backward(g, e, &d.qkv, &d.preatt, &d.atty, &a.qkv, &a.att, ao, b, t, c, nh);
            k.linear_backward(g, e, &d.ln1, gr, &d.qkv, l * 3 * btc, &a.ln1, l * btc, p, self.lo(QKVW, l), Some(self.lo(QKVB, l)), n, c, 3 * c);
            let ln1 = LnOffsets { inp: res_off, out: l * btc, stat: l * n, w: self.lo(LN1W, l), b: self.lo(LN1B, l) };
            k.layernorm_backward(g, e, dres_buf, res_off, gr, &d.ln1, res_buf, p, &a.ln1_mean, &a.ln1_rstd, ln1, n, c);
        }
        k.encoder_backward(g, e, gr, &d.encoded, &self.tokens, lay.offsets[WTE], lay.offsets[WPE], b, t, c);
    }

    pub fn submit_forward(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<()> {
        check_batch(&self.cfg, (self.max_b, self.max_t), tokens, None, b, t)?;
        self.gpu.write(&self.tokens, 0, tokens);
        let mut e = self.gpu.encoder();
        self.record_forward(&mut e, b, t);
        self.gpu.submit(e);
        self.last = Some((b, t));
        self.last_ce = None;
        Ok(())
    }

    pub fn submit_token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<()> {
        let Some((b, t)) = self.last else { bail!("token_losses() called before forward()") };
        check_targets(&self.cfg, targets, b * t, temperature)?;
        self.gpu.write(&self.targets, 0, targets);
        let a = &self.acts;
        let mut e = self.gpu.encoder();
        self.gpu.kernels.crossentropy_forward(&self.gpu, &mut e, &a.losses, &a.lse, &a.entropy, &a.logits, &self.targets, temperature, b * t, self.cfg.vocab_size);
        self.gpu.submit(e);
        self.last_ce = Some(temperature);
        Ok(())
    }

    /// Per-position losses and entropies of the last `submit_token_losses`.
    pub async fn read_token_losses(&self) -> Result<TokenLosses> {
        let (Some((b, t)), Some(_)) = (self.last, self.last_ce) else { bail!("no token losses to read") };
        Ok(TokenLosses { losses: self.gpu.read(&self.acts.losses, 0, b * t).await?, entropy: self.gpu.read(&self.acts.entropy, 0, b * t).await? })
    }

    pub async fn read_logits(&self) -> Result<Vec<f32>> {
        let Some((b, t)) = self.last else { bail!("logits() called before forward()") };
        self.gpu.read(&self.acts.logits, 0, b * t * self.cfg.vocab_size).await
    }

    pub async fn read_hidden(&self) -> Result<Vec<f32>> {
        let Some((b, t)) = self.last else { bail!("hidden() called before forward()") };
        self.gpu.read(&self.acts.lnf, 0, b * t * self.cfg.n_embd).await
    }

    pub fn submit_backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        let Some((b, t)) = self.last else { bail!("backward() called before forward()") };
        check_backward_inputs(weights, dhidden, self.last_ce.is_some(), b * t, b * t * self.cfg.n_embd)?;
        if let Some(w) = weights {
            self.gpu.write(&self.weights, 0, w);
        }
        if let Some(dh) = dhidden {
            // queue writes land before the next submitted commands, so the backward pass starts from it
            self.gpu.write(&self.grad_acts.lnf, 0, dh);
        }
        let mut e = self.gpu.encoder();
        self.record_backward(&mut e, b, t, weights.and(self.last_ce), dhidden.is_some());
        self.gpu.submit(e);
        Ok(())
    }

    /// Clip + AdamW, all on the GPU; reads back only the gradient norm.
    pub async fn step(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<StepReport> {
        let g = &self.gpu;
        let mut e = g.encoder();
        g.kernels.grad_norm(g, &mut e, &self.grads, &self.partial, &self.norm, self.layout.total, grad_clip);
        let au = AdamUniforms {
            lr: opt.lr,
            beta1: opt.beta1,
            beta2: opt.beta2,
            eps: opt.eps,
            b1_corr: 1.0 - opt.beta1.powi(opt.t as i32),
            b2_corr: 1.0 - opt.beta2.powi(opt.t as i32),
        };
        for i in 0..NUM_TENSORS {
            let wd = if self.layout.decays(i) { opt.weight_decay } else { 0.0 };
            g.kernels.adamw(g, &mut e, &self.params, &self.grads, &self.m, &self.v, &self.norm, self.layout.offsets[i], self.layout.numel(i), &au, wd);
        }
        g.submit(e);
        let norm: Vec<f32> = g.read(&self.norm, 0, 1).await?;
        Ok(StepReport { grad_norm: norm[0], applied: norm[0].is_finite() })
    }

    pub async fn read_params(&self) -> Result<Vec<f32>> {
        self.gpu.read(&self.params, 0, self.layout.total).await
    }

    pub async fn read_grads(&self) -> Result<Vec<f32>> {
        self.gpu.read(&self.grads, 0, self.layout.total).await
    }

    pub fn clear_grads(&mut self) {
        let mut e = self.gpu.encoder();
        e.clear_buffer(&self.grads, 0, None);
        self.gpu.submit(e);
    }

    pub fn clear_optimizer(&mut self) {
        let mut e = self.gpu.encoder();
        e.clear_buffer(&self.m, 0, None);
        e.clear_buffer(&self.v, 0, None);
        self.gpu.submit(e);
    }

    pub fn write_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.layout.total {
            bail!("expected {} parameters, got {}", self.layout.total, params.len());
        }
        self.gpu.write(&self.params, 0, params);
        Ok(())
    }
}

impl Engine for GpuGpt {
    fn config(&self) -> ModelConfig {
        self.cfg
    }

    fn capacity(&self) -> (usize, usize) {
        (self.max_b, self.max_t)
    }

    fn forward(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<()> {
        self.submit_forward(tokens, b, t)
    }

    async fn token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<TokenLosses> {
        self.submit_token_losses(targets, temperature)?;
        self.read_token_losses().await
    }

    async fn logits(&mut self) -> Result<Vec<f32>> {
        self.read_logits().await
    }

    async fn hidden(&mut self) -> Result<Vec<f32>> {
        self.read_hidden().await
    }

    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        self.submit_backward(weights, dhidden)
    }

    fn zero_grad(&mut self) -> Result<()> {
        self.clear_grads();
        Ok(())
    }

    async fn update(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<StepReport> {
        self.step(opt, grad_clip).await
    }

    fn reset_optimizer(&mut self) -> Result<()> {
        self.clear_optimizer();
        Ok(())
    }

    async fn params(&mut self) -> Result<Vec<f32>> {
        self.read_params().await
    }

    async fn grads(&mut self) -> Result<Vec<f32>> {
        self.read_grads().await
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.write_params(params)
    }

    async fn generate(&mut self, prompt: &[u32], k: usize, stop: u32, cfg: &crate::sample::SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        self.generate_gpu(prompt, k, stop, cfg, seed).await
    }

    async fn optimizer_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = self.layout.total;
        Ok((self.gpu.read(&self.m, 0, n).await?, self.gpu.read(&self.v, 0, n).await?))
    }

    fn set_optimizer_state(&mut self, m: &[f32], v: &[f32]) -> Result<()> {
        let n = self.layout.total;
        if m.len() != n || v.len() != n {
            bail!("expected optimizer moments of {n} values, got {} and {}", m.len(), v.len());
        }
        self.gpu.write(&self.m, 0, m);
        self.gpu.write(&self.v, 0, v);
        Ok(())
    }
}
