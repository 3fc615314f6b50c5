//! GPT-2 on the WGSL kernels: the same model as `cpu::gpt`, recorded into few submissions. Work is
//! recorded into a pending list and submitted when a result must come back, so a training step is
//! one submission with one readback. Engines of one device and batch shape share their activation
//! buffers (they never run at once); a frozen engine (the SFT reference) keeps no gradients or moments.

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::context::{GBuf, Gpu};
use super::kernels::{
    AdamUniforms, AdamW, AttnOffsets, CeBufs, Epilogue, LnOffsets, LnOut, Mm, Operands, SurrogateBufs, MAX_HEAD_SIZE, NUM_PARTIALS,
};
use super::recorder::Recorder;
use crate::bail;
use crate::config::{AdamParams, ModelConfig, SampleConfig};
use crate::engine::{check_backward_inputs, check_batch, check_targets, mean_weights, Engine, PolicyReport, StepReport, TokenLosses};
use crate::error::{ErrorKind, Result};
use crate::params::*;
use crate::surrogate::{PolicyBatch, PtxBatch, SurrogateSums};

macro_rules! gpu_acts {
    ($s:ident; $($name:ident = $size:expr;)*) => {
        /// Activation buffers, as `activation_table!` lists them (and, as a second set, their gradients).
        pub struct GpuActs {
            $(pub $name: GBuf,)*
        }

        impl GpuActs {
            fn new(gpu: &Gpu, $s: &ActShapes) -> Self {
                GpuActs { $($name: gpu.buffer(stringify!($name), $size),)* }
            }

            pub fn bytes(&self) -> u64 {
                0 $(+ self.$name.bytes())*
            }
        }
    };
}
crate::activation_table!(gpu_acts, s);

/// The activations (and, once a trainable engine asks, their gradients) of every engine of one
/// device and batch shape, with the id of the engine whose forward pass they hold.
pub struct SharedActs {
    acts: GpuActs,
    grads: OnceCell<GpuActs>,
    shapes: ActShapes,
    owner: AtomicU64,
}

impl SharedActs {
    pub fn bytes(&self) -> u64 {
        self.acts.bytes() + self.grads.get().map_or(0, |g| g.bytes())
    }
}

/// What a trainable engine keeps beside its parameters.
struct Trainable {
    grads: GBuf,
    m: GBuf,
    v: GBuf,
    /// Loss weights of the backward pass (B,T).
    weights: GBuf,
    partial: GBuf,
    /// A policy step's old log-probabilities (B,T), then its advantages (B,T).
    old_adv: GBuf,
    /// [gradient norm, clip scale, mean loss, then the surrogate's sums: loss, clipped, actions,
    /// approximate KL], read back at once at the end of a step
    norm: GBuf,
}

impl Trainable {
    fn bytes(&self) -> u64 {
        [&self.grads, &self.m, &self.v, &self.weights, &self.partial, &self.old_adv, &self.norm].iter().map(|b| b.bytes()).sum()
    }
}

pub struct GpuGpt {
    pub gpu: Gpu,
    pub cfg: ModelConfig,
    pub layout: ParamLayout,
    id: u64,
    pub(super) params: GBuf,
    train: Option<Trainable>,
    pub(super) tokens: GBuf,
    targets: GBuf,
    pub(super) shared: Rc<SharedActs>,
    /// The key-value cache for generation (L, B, T, 3C), made on the first call.
    pub(super) kv: Option<GBuf>,
    /// The decode step's buffers, made on the first call.
    pub(super) decode: Option<Rc<super::generate::DecodeBuffers>>,
    pub(super) max_b: usize,
    pub(super) max_t: usize,
    /// (B, T) of the last forward pass.
    pub(super) last: Option<(usize, usize)>,
    /// Temperature of the last `token_losses` call (its targets stay in `targets`).
    last_ce: Option<f32>,
    /// Work recorded and not yet submitted.
    pub(super) pending: Option<Recorder>,
}

/// The shared activations for this device and shape, made on first use.
fn shared_acts(gpu: &Gpu, cfg: &ModelConfig, b: usize, t: usize) -> Rc<SharedActs> {
    let key = (*cfg, b, t);
    let found = gpu.caches.borrow_mut().acts.get(&key).cloned();
    if let Some(acts) = found.as_ref().and_then(|a| a.downcast_ref::<Rc<SharedActs>>()) {
        return acts.clone();
    }
    let shapes = ActShapes::new(cfg, b, t, Keeper::Gpu);
    let acts = Rc::new(SharedActs { acts: GpuActs::new(gpu, &shapes), grads: OnceCell::new(), shapes, owner: AtomicU64::new(0) });
    gpu.caches.borrow_mut().acts.insert(key, Rc::new(acts.clone()));
    acts
}

impl GpuGpt {
    /// A trainable engine: parameters, gradients and AdamW moments.
    pub fn new(gpu: Gpu, cfg: ModelConfig, params: &[f32], max_b: usize, max_t: usize) -> Result<Self> {
        Self::build(gpu, cfg, params, max_b, max_t, true)
    }

    /// An engine that only runs forward (a frozen reference): no gradients, no moments.
    pub fn frozen(gpu: Gpu, cfg: ModelConfig, params: &[f32], max_b: usize, max_t: usize) -> Result<Self> {
        Self::build(gpu, cfg, params, max_b, max_t, false)
    }

    fn build(gpu: Gpu, cfg: ModelConfig, params: &[f32], max_b: usize, max_t: usize, trainable: bool) -> Result<Self> {
        cfg.validate()?;
        let layout = ParamLayout::new(&cfg);
        if params.len() != layout.total {
            bail!("expected {} parameters for {cfg:?}, got {}", layout.total, params.len());
        }
        if max_t > cfg.n_ctx {
            bail!("sequence length {max_t} exceeds the model's context {}", cfg.n_ctx);
        }
        if cfg.head_size() > MAX_HEAD_SIZE as usize {
            bail!("head size {} exceeds the attention kernels' {MAX_HEAD_SIZE}", cfg.head_size());
        }
        let shapes = ActShapes::new(&cfg, max_b, max_t, Keeper::Gpu);
        let limit = gpu.device.limits().max_storage_buffer_binding_size as usize;
        let largest = [shapes.bt() * shapes.v, shapes.l * 4 * shapes.btc(), layout.total].into_iter().max().unwrap_or(0) * 4;
        if largest > limit {
            bail!(kind: ErrorKind::OutOfMemory, "a batch of ({max_b}, {max_t}) needs a {largest}-byte buffer; this GPU allows {limit}. Use a smaller batch.");
        }
        let n = layout.total;
        let train = trainable.then(|| Trainable {
            grads: gpu.buffer("grads", n),
            m: gpu.buffer("adam m", n),
            v: gpu.buffer("adam v", n),
            weights: gpu.buffer("loss weights", max_b * max_t),
            partial: gpu.buffer("norm partials", NUM_PARTIALS as usize),
            old_adv: gpu.buffer("old log-probs and advantages", 2 * max_b * max_t),
            norm: gpu.buffer("norm", 8),
        });
        let shared = shared_acts(&gpu, &cfg, max_b, max_t);
        if trainable {
            shared.grads.get_or_init(|| GpuActs::new(&gpu, &shared.shapes));
        }
        Ok(GpuGpt {
            id: gpu.fresh_id(),
            params: gpu.buffer_from("params", params),
            train,
            tokens: gpu.buffer("tokens", max_b * max_t),
            targets: gpu.buffer("targets", max_b * max_t),
            shared,
            kv: None,
            decode: None,
            gpu,
            cfg,
            layout,
            max_b,
            max_t,
            last: None,
            last_ce: None,
            pending: None,
        })
    }

    /// Bytes this engine holds on the device: its own buffers, and the shared activations apart.
    pub fn device_bytes(&self) -> (u64, u64) {
        let t = self.train.as_ref().map_or(0, Trainable::bytes);
        let decode = self.decode.as_ref().map_or(0, |d| d.bytes());
        let own = self.params.bytes() + t + self.tokens.bytes() + self.targets.bytes() + self.kv.as_ref().map_or(0, |k| k.bytes()) + decode;
        (own, self.shared.bytes())
    }

    pub(super) fn shared_qkv(&self) -> GBuf {
        self.shared.acts.qkv.clone()
    }

    pub(super) fn shared_logits(&self) -> GBuf {
        self.shared.acts.logits.clone()
    }

    pub(super) fn lo(&self, i: usize, l: usize) -> usize {
        self.layout.layer_offset(i, l)
    }

    /// The pending command list (a new one when there is none).
    pub(super) fn rec(&mut self) -> &mut Recorder {
        self.pending.get_or_insert_with(|| self.gpu.recorder())
    }

    /// The pending work, submitted with a readback of the given ranges at its end.
    pub(super) async fn read_parts(&mut self, parts: &[(&GBuf, usize, usize)]) -> Result<Vec<Vec<f32>>> {
        let rec = self.pending.take().unwrap_or_else(|| self.gpu.recorder());
        rec.submit_and_read_parts(parts).await
    }

    fn trainable(&self) -> Result<&Trainable> {
        self.train.as_ref().ok_or_else(|| crate::error::Error::new(ErrorKind::Internal, "this engine is frozen: it keeps no gradients"))
    }

    /// Fails when another engine's forward pass has overwritten the shared activations since ours.
    fn check_owner(&self) -> Result<()> {
        if self.shared.owner.load(Ordering::Relaxed) != self.id {
            bail!(kind: ErrorKind::Internal, "another model's forward pass overwrote this model's activations; run forward again");
        }
        Ok(())
    }

    /// Records the forward pass for a (B,T) batch already uploaded to `tokens`.
    pub(super) fn record_forward(&mut self, b: usize, t: usize) {
        self.shared.owner.store(self.id, Ordering::Relaxed);
        let (shared, params, tokens, k) = (self.shared.clone(), self.params.clone(), self.tokens.clone(), self.gpu.kernels.clone());
        let a = &shared.acts;
        let (c, l_n, nh, v) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head, self.cfg.vocab_size);
        let (n, btc) = (b * t, b * t * c);
        let lay = self.layout.clone();
        let lo = |i: usize, l: usize| lay.layer_offset(i, l);
        let rec = self.rec();
        let ln1 = |l: usize| LnOut { res: if l == 0 { &a.encoded } else { &a.residual3 }, out: &a.ln1, mean: &a.ln1_mean, rstd: &a.ln1_rstd };
        let ln1_at = |l: usize| LnOffsets { res: l.saturating_sub(1) * btc, out: l * btc, stat: l * n, w: lo(LN1W, l), b: lo(LN1B, l) };
        k.embed_layernorm(rec, &tokens, &params, &ln1(0), ln1_at(0), lay.offsets[WTE], lay.offsets[WPE], n, t, 0, c);
        for l in 0..l_n {
            let linear = |i_w: usize, i_b: usize, ic: usize, oc: usize, inp: usize, out: usize| Mm {
                m: n,
                n: oc,
                k: ic,
                a: (inp, ic, 1),
                b: (lo(i_w, l), 1, ic),
                c_off: out,
                c_rs: oc,
                epi: Epilogue { bias: Some(lo(i_b, l)), ..Default::default() },
            };
            k.matmul(rec, &linear(QKVW, QKVB, c, 3 * c, l * btc, l * 3 * btc), &a.ln1, &params, &a.qkv, Some(&params), None);
            let ao = AttnOffsets { qkv: l * 3 * btc, out: l * btc, lse: l * nh * n };
            k.attention_forward(rec, &a.atty, &a.att_lse, &a.qkv, ao, b, t, c, nh);
            k.matmul(rec, &linear(ATTPROJW, ATTPROJB, c, c, l * btc, l * btc), &a.atty, &params, &a.attproj, Some(&params), None);
            let res_in = if l == 0 { (&a.encoded, 0) } else { (&a.residual3, (l - 1) * btc) };
            let ln2 = LnOut { res: &a.residual2, out: &a.ln2, mean: &a.ln2_mean, rstd: &a.ln2_rstd };
            let ln2_at = LnOffsets { res: l * btc, out: l * btc, stat: l * n, w: lo(LN2W, l), b: lo(LN2B, l) };
            k.residual_layernorm(rec, res_in, (&a.attproj, l * btc), &params, &ln2, ln2_at, n, c);
            let mut fc = linear(FCW, FCB, c, 4 * c, l * btc, l * 4 * btc);
            fc.epi.gelu = Some(l * 4 * btc);
            k.matmul(rec, &fc, &a.ln2, &params, &a.fch, Some(&params), Some(&a.fch_gelu));
            k.matmul(rec, &linear(FCPROJW, FCPROJB, 4 * c, c, l * 4 * btc, l * btc), &a.fch_gelu, &params, &a.fcproj, Some(&params), None);
            // the block's output, normalized for the next block (or by the final LayerNorm)
            let (next, next_at) = if l + 1 < l_n {
                (ln1(l + 1), LnOffsets { res: l * btc, ..ln1_at(l + 1) })
            } else {
                let lnf = LnOut { res: &a.residual3, out: &a.lnf, mean: &a.lnf_mean, rstd: &a.lnf_rstd };
                (lnf, LnOffsets { res: l * btc, out: 0, stat: 0, w: lay.offsets[LNFW], b: lay.offsets[LNFB] })
            };
            k.residual_layernorm(rec, (&a.residual2, l * btc), (&a.fcproj, l * btc), &params, &next, next_at, n, c);
        }
        let logits = Mm { m: n, n: v, k: c, a: (0, c, 1), b: (lay.offsets[WTE], 1, c), c_off: 0, c_rs: v, epi: Epilogue::default() };
        k.matmul(rec, &logits, &a.lnf, &params, &a.logits, None, None);
    }
}

impl GpuGpt {
    /// The head backward (N = B·T rows): cross-entropy at the weights, then dlnf (+)= dlogits·wte and
    /// dwte += dlogitsᵀ·lnf, in one dispatch. `accumulate` adds to a dlnf already given (a value head's).
    fn record_head_backward(&mut self, n: usize, temp: f32, accumulate: bool) -> Result<()> {
        let tr = self.trainable()?;
        let (gr, weights) = (tr.grads.clone(), tr.weights.clone());
        let (shared, params, targets, k) = (self.shared.clone(), self.params.clone(), self.targets.clone(), self.gpu.kernels.clone());
        let (a, d) = (&shared.acts, shared.grads.get().expect("made with the trainable engine"));
        let (c, v, wte) = (self.cfg.n_embd, self.cfg.vocab_size, self.layout.offsets[WTE]);
        let rec = self.rec();
        let x = CeBufs { logits: &a.logits, targets: &targets, losses: &a.losses, lse: &a.lse, entropy: &a.entropy };
        k.crossentropy_backward(rec, &d.logits, &x, &weights, temp, n, v);
        let dx = Mm { m: n, n: c, k: v, a: (0, v, 1), b: (wte, c, 1), c_off: 0, c_rs: c, epi: Epilogue { accumulate, ..Default::default() } };
        let dw = Mm { m: v, n: c, k: n, a: (0, 1, v), b: (0, c, 1), c_off: wte, c_rs: c, epi: Epilogue { accumulate: true, ..Default::default() } };
        k.matmul2(rec, &d.logits, (&dx, Operands { b: &params, c: &d.lnf }), (&dw, Operands { b: &a.lnf, c: &gr }), None);
        Ok(())
    }

    /// Records the backward pass from loss weights (`ce`: the temperature of the last token_losses)
    /// and/or a gradient already written to the hidden state's gradient (`dhidden`). The gradient of
    /// the residual stream accumulates in one (B,T,C) buffer, layer by layer, so no buffer needs
    /// clearing and no residual kernel runs.
    fn record_backward(&mut self, b: usize, t: usize, ce: Option<f32>, dhidden: bool) -> Result<()> {
        if let Some(temp) = ce {
            self.record_head_backward(b * t, temp, dhidden)?;
        }
        let gr = self.trainable()?.grads.clone();
        let (shared, params, tokens, k) = (self.shared.clone(), self.params.clone(), self.tokens.clone(), self.gpu.kernels.clone());
        let (a, d) = (&shared.acts, shared.grads.get().expect("made with the trainable engine"));
        let (c, l_n, nh) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head);
        let (n, btc) = (b * t, b * t * c);
        let lay = self.layout.clone();
        let lo = |i: usize, l: usize| lay.layer_offset(i, l);
        let rec = self.rec();
        let dres = &d.encoded;
        let lnf = LnOffsets { res: (l_n - 1) * btc, out: 0, stat: 0, w: lay.offsets[LNFW], b: lay.offsets[LNFB] };
        k.layernorm_backward(rec, (dres, 0, false), &gr, &d.lnf, &a.residual3, &params, (&a.lnf_mean, &a.lnf_rstd), lnf, n, c);
        for l in (0..l_n).rev() {
            // a linear layer's dinp = dout·W and dW (+ dbias) += doutᵀ·inp, in one dispatch
            let linear_back = |rec: &mut Recorder,
                               i_w: usize,
                               i_b: usize,
                               ic: usize,
                               oc: usize,
                               dout: (&GBuf, usize),
                               inp: (&GBuf, usize),
                               dinp: (&GBuf, usize),
                               gelu_of: Option<usize>| {
                let dx = Mm {
                    m: n,
                    n: ic,
                    k: oc,
                    a: (dout.1, oc, 1),
                    b: (lo(i_w, l), ic, 1),
                    c_off: dinp.1,
                    c_rs: ic,
                    epi: Epilogue { gelu_grad: gelu_of, ..Default::default() },
                };
                let dw = Mm {
                    m: oc,
                    n: ic,
                    k: n,
                    a: (dout.1, 1, oc),
                    b: (inp.1, ic, 1),
                    c_off: lo(i_w, l),
                    c_rs: ic,
                    epi: Epilogue { accumulate: true, bias_grad: Some(lo(i_b, l)), ..Default::default() },
                };
                k.matmul2(rec, dout.0, (&dx, Operands { b: &params, c: dinp.0 }), (&dw, Operands { b: inp.0, c: &gr }), gelu_of.map(|_| &a.fch));
            };
            // dres = ∂L/∂residual3[l]: through the MLP (GELU's derivative fused into dfch)
            linear_back(rec, FCPROJW, FCPROJB, 4 * c, c, (dres, 0), (&a.fch_gelu, l * 4 * btc), (&d.fch, l * 4 * btc), Some(l * 4 * btc));
            linear_back(rec, FCW, FCB, c, 4 * c, (&d.fch, l * 4 * btc), (&a.ln2, l * btc), (&d.ln2, l * btc), None);
            let ln2 = LnOffsets { res: l * btc, out: l * btc, stat: l * n, w: lo(LN2W, l), b: lo(LN2B, l) };
            k.layernorm_backward(rec, (dres, 0, true), &gr, &d.ln2, &a.residual2, &params, (&a.ln2_mean, &a.ln2_rstd), ln2, n, c);
            // dres = ∂L/∂residual2[l]: through attention
            linear_back(rec, ATTPROJW, ATTPROJB, c, c, (dres, 0), (&a.atty, l * btc), (&d.atty, l * btc), None);
            let ao = AttnOffsets { qkv: l * 3 * btc, out: l * btc, lse: l * nh * n };
            k.attention_backward(rec, &d.qkv, &d.att_lse, &d.atty, &a.qkv, &a.atty, &a.att_lse, ao, b, t, c, nh);
            linear_back(rec, QKVW, QKVB, c, 3 * c, (&d.qkv, l * 3 * btc), (&a.ln1, l * btc), (&d.ln1, l * btc), None);
            let (res_in, res_off) = if l == 0 { (&a.encoded, 0) } else { (&a.residual3, (l - 1) * btc) };
            let ln1 = LnOffsets { res: res_off, out: l * btc, stat: l * n, w: lo(LN1W, l), b: lo(LN1B, l) };
            k.layernorm_backward(rec, (dres, 0, true), &gr, &d.ln1, res_in, &params, (&a.ln1_mean, &a.ln1_rstd), ln1, n, c);
        }
        k.encoder_backward(rec, &gr, (dres, 0), &tokens, lay.offsets[WTE], lay.offsets[WPE], b, t, c);
        Ok(())
    }

    /// Records the gradient norm, its clip and the AdamW step over all parameters.
    fn record_update(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<()> {
        let tr = self.trainable()?;
        let (params, grads, m, v, partial, norm) =
            (self.params.clone(), tr.grads.clone(), tr.m.clone(), tr.v.clone(), tr.partial.clone(), tr.norm.clone());
        let kinds: Vec<(usize, bool)> = (0..NUM_TENSORS).map(|i| (self.layout.offsets[i], self.layout.decays(i))).collect();
        let total = self.layout.total;
        let k = self.gpu.kernels.clone();
        let x = AdamW { params: &params, grads: &grads, m: &m, v: &v, partial: &partial, norm: &norm };
        k.adamw_step(self.rec(), &x, total, &AdamUniforms::from(opt), grad_clip, &kinds);
        Ok(())
    }

    fn upload_batch(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<()> {
        check_batch(&self.cfg, (self.max_b, self.max_t), tokens, None, b, t)?;
        let buf = self.tokens.clone();
        self.rec().write(&buf, 0, tokens);
        self.last = Some((b, t));
        self.last_ce = None;
        Ok(())
    }

    fn record_token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<usize> {
        let Some((b, t)) = self.last else { bail!(kind: ErrorKind::Internal, "token_losses() called before forward()") };
        self.check_owner()?;
        check_targets(&self.cfg, targets, b * t, temperature)?;
        let buf = self.targets.clone();
        self.rec().write(&buf, 0, targets);
        let (shared, tg, k) = (self.shared.clone(), self.targets.clone(), self.gpu.kernels.clone());
        let a = &shared.acts;
        let x = CeBufs { logits: &a.logits, targets: &tg, losses: &a.losses, lse: &a.lse, entropy: &a.entropy };
        let v = self.cfg.vocab_size;
        k.crossentropy_forward(self.rec(), &x, temperature, b * t, v);
        self.last_ce = Some(temperature);
        Ok(b * t)
    }

    /// Records forward, the mean next-token loss (into norm[2]) and the backward pass of `scale` times
    /// that loss for a (B,T) batch, adding to the gradients.
    fn record_lm_loss(&mut self, tokens: &[u32], targets: &[i32], b: usize, t: usize, scale: f32) -> Result<()> {
        self.upload_batch(tokens, b, t)?;
        self.record_forward(b, t);
        let n = self.record_token_losses(targets, 1.0)?;
        let tr = self.trainable()?;
        let (norm, weights) = (tr.norm.clone(), tr.weights.clone());
        let w: Vec<f32> = mean_weights(targets).iter().map(|w| w * scale).collect();
        self.rec().write(&weights, 0, &w);
        let (shared, tg, k) = (self.shared.clone(), self.targets.clone(), self.gpu.kernels.clone());
        k.mean_loss(self.rec(), &shared.acts.losses, &tg, n, (&norm, 2));
        self.record_backward(b, t, Some(1.0), false)
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
        self.upload_batch(tokens, b, t)?;
        self.record_forward(b, t);
        Ok(())
    }

    async fn token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<TokenLosses> {
        let n = self.record_token_losses(targets, temperature)?;
        let shared = self.shared.clone();
        let mut parts = self.read_parts(&[(&shared.acts.losses, 0, n), (&shared.acts.entropy, 0, n)]).await?;
        let entropy = parts.pop().unwrap_or_default();
        Ok(TokenLosses { losses: parts.pop().unwrap_or_default(), entropy })
    }

    async fn logits(&mut self) -> Result<Vec<f32>> {
        let Some((b, t)) = self.last else { bail!(kind: ErrorKind::Internal, "logits() called before forward()") };
        self.check_owner()?;
        let shared = self.shared.clone();
        Ok(self.read_parts(&[(&shared.acts.logits, 0, b * t * self.cfg.vocab_size)]).await?.remove(0))
    }

    async fn hidden(&mut self) -> Result<Vec<f32>> {
        let Some((b, t)) = self.last else { bail!(kind: ErrorKind::Internal, "hidden() called before forward()") };
        self.check_owner()?;
        let shared = self.shared.clone();
        Ok(self.read_parts(&[(&shared.acts.lnf, 0, b * t * self.cfg.n_embd)]).await?.remove(0))
    }

    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        let Some((b, t)) = self.last else { bail!(kind: ErrorKind::Internal, "backward() called before forward()") };
        self.check_owner()?;
        check_backward_inputs(weights, dhidden, self.last_ce.is_some(), b * t, b * t * self.cfg.n_embd)?;
        let w_buf = self.trainable()?.weights.clone();
        if let Some(w) = weights {
            self.rec().write(&w_buf, 0, w);
        }
        if let Some(dh) = dhidden {
            let shared = self.shared.clone();
            self.rec().write(&shared.grads.get().expect("made with the trainable engine").lnf, 0, dh);
        }
        self.record_backward(b, t, weights.and(self.last_ce), dhidden.is_some())
    }

    fn zero_grad(&mut self) -> Result<()> {
        let g = self.trainable()?.grads.clone();
        self.rec().clear(&g);
        Ok(())
    }

    async fn update(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<StepReport> {
        self.record_update(opt, grad_clip)?;
        let norm = self.trainable()?.norm.clone();
        let out = self.read_parts(&[(&norm, 0, 1)]).await?.remove(0);
        Ok(StepReport { grad_norm: out[0], applied: out[0].is_finite() })
    }

    /// One submission: forward, the mean loss, backward, clip, AdamW; one readback of [gradient
    /// norm, clip scale, mean loss].
    async fn lm_step(&mut self, tokens: &[u32], targets: &[i32], b: usize, t: usize, opt: &AdamParams, grad_clip: f32) -> Result<(f32, StepReport)> {
        let grads = self.trainable()?.grads.clone();
        self.rec().clear(&grads);
        self.record_lm_loss(tokens, targets, b, t, 1.0)?;
        self.record_update(opt, grad_clip)?;
        let norm = self.trainable()?.norm.clone();
        let out = self.read_parts(&[(&norm, 0, 3)]).await?.remove(0);
        Ok((out[2], StepReport { grad_norm: out[0], applied: out[0].is_finite() }))
    }

    /// One submission: forward, the surrogate's weights computed on the device, backward, the
    /// pretraining batch's forward and backward, clip, AdamW; one readback of [gradient norm, clip
    /// scale, ptx loss, the surrogate's sums]. A non-finite surrogate makes the gradient non-finite,
    /// and AdamW skips it.
    async fn policy_step(&mut self, x: &PolicyBatch<'_>, ptx: Option<&PtxBatch<'_>>, opt: &AdamParams, grad_clip: f32) -> Result<PolicyReport> {
        x.check()?;
        self.upload_batch(x.tokens, x.b, x.t)?;
        self.record_forward(x.b, x.t);
        let n = self.record_token_losses(x.targets, x.temperature)?;
        let tr = self.trainable()?;
        let (norm, grads, weights, old_adv) = (tr.norm.clone(), tr.grads.clone(), tr.weights.clone(), tr.old_adv.clone());
        let (shared, tg, k) = (self.shared.clone(), self.targets.clone(), self.gpu.kernels.clone());
        self.rec().write(&old_adv, 0, x.logp_old);
        self.rec().write(&old_adv, n, x.advantages);
        let bufs = SurrogateBufs { targets: &tg, losses: &shared.acts.losses, old_adv: &old_adv, weights: &weights, out: (&norm, 3) };
        k.surrogate(self.rec(), &bufs, n, x.clip, x.answers);
        self.rec().clear(&grads);
        self.record_backward(x.b, x.t, Some(x.temperature), false)?;
        if let Some(p) = ptx {
            self.record_lm_loss(p.tokens, p.targets, p.b, p.t, p.gamma)?;
        }
        self.record_update(opt, grad_clip)?;
        let out = self.read_parts(&[(&norm, 0, 7)]).await?.remove(0);
        let sums = SurrogateSums { loss: out[3], clipped: out[4], actions: out[5], approx_kl: out[6] };
        let step = StepReport { grad_norm: out[0], applied: out[0].is_finite() };
        Ok(PolicyReport { sums, ptx_loss: if ptx.is_some() { out[2] } else { 0.0 }, step })
    }

    fn freeze(&mut self) {
        self.train = None;
    }

    fn reset_optimizer(&mut self) -> Result<()> {
        let (m, v) = (self.trainable()?.m.clone(), self.trainable()?.v.clone());
        let rec = self.rec();
        rec.clear(&m);
        rec.clear(&v);
        Ok(())
    }

    async fn params(&mut self) -> Result<Vec<f32>> {
        let p = self.params.clone();
        Ok(self.read_parts(&[(&p, 0, self.layout.total)]).await?.remove(0))
    }

    async fn grads(&mut self) -> Result<Vec<f32>> {
        let g = self.trainable()?.grads.clone();
        Ok(self.read_parts(&[(&g, 0, self.layout.total)]).await?.remove(0))
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.layout.total {
            bail!("expected {} parameters, got {}", self.layout.total, params.len());
        }
        let p = self.params.clone();
        self.rec().write(&p, 0, params);
        Ok(())
    }

    async fn generate(&mut self, prompt: &[u32], k: usize, stop: u32, cfg: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        self.generate_gpu(prompt, k, stop, cfg, seed).await
    }

    async fn optimizer_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = self.layout.total;
        let tr = self.trainable()?;
        let (m, v) = (tr.m.clone(), tr.v.clone());
        let mut parts = self.read_parts(&[(&m, 0, n), (&v, 0, n)]).await?;
        let v = parts.pop().unwrap_or_default();
        Ok((parts.pop().unwrap_or_default(), v))
    }

    fn set_optimizer_state(&mut self, m: &[f32], v: &[f32]) -> Result<()> {
        let n = self.layout.total;
        if m.len() != n || v.len() != n {
            bail!("expected optimizer moments of {n} values, got {} and {}", m.len(), v.len());
        }
        let (mb, vb) = (self.trainable()?.m.clone(), self.trainable()?.v.clone());
        let rec = self.rec();
        rec.write(&mb, 0, m);
        rec.write(&vb, 0, v);
        Ok(())
    }
}
