//! GPT-2 on the CPU reference kernels: forward, backward and AdamW, as in llm.c's gpt2_forward/backward.

use super::adamw::{adamw_update, clip_scale, global_norm};
use super::attention::{attention_backward, attention_forward};
use super::crossentropy::{crossentropy_backward, crossentropy_forward};
use super::encoder::{encoder_backward, encoder_forward};
use super::gelu::{gelu_backward, gelu_forward};
use super::layernorm::{layernorm_backward, layernorm_forward};
use super::matmul::{matmul_backward, matmul_forward};
use super::residual::{residual_backward, residual_forward};
use super::rows::Rows;
use crate::bail;
use crate::config::AdamParams;
use crate::config::ModelConfig;
use crate::engine::{check_backward_inputs, check_batch, check_lens, check_targets, Engine, StepReport, TokenLosses};
use crate::error::Result;
use crate::params::*;

macro_rules! cpu_acts {
    ($s:ident; $($name:ident = $size:expr;)*) => {
        /// Activations of one forward pass (and, reused, their gradients), as `activation_table!` lists them.
        #[derive(Clone, Default)]
        pub struct Acts {
            $(pub $name: Vec<f32>,)*
        }

        impl Acts {
            pub fn new($s: &ActShapes) -> Self {
                Acts { $($name: vec![0.0; $size],)* }
            }

            /// Zeroes what a batch of `$s`'s shape uses: the buffers are made for the largest batch,
            /// and zeroing all of them cost 8% of a step on smaller ones.
            fn zero_used(&mut self, $s: &ActShapes) {
                $(self.$name[..$size].fill(0.0);)*
            }
        }
    };
}
crate::activation_table!(cpu_acts, s);

pub struct CpuGpt {
    pub cfg: ModelConfig,
    pub layout: ParamLayout,
    pub params: Vec<f32>,
    pub grads: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    max_b: usize,
    max_t: usize,
    /// The activations and their gradients, made on the first forward and backward pass: an engine
    /// that only generates (with its own key-value cache) never holds them.
    shapes: ActShapes,
    acts: Acts,
    grad_acts: Acts,
    /// A frozen engine keeps no gradients or moments (see `Engine::freeze`).
    frozen: bool,
    /// The rows and kept tokens (N) of the last forward pass.
    last: Option<(Rows, Vec<u32>)>,
    /// Targets (N) and temperature of the last `token_losses` call.
    last_ce: Option<(Vec<i32>, f32)>,
    /// What the last forward pass's logits are: the (N,V) product is made when first asked for,
    /// since a reward or value model reads only the hidden states (a tenth of a forward pass).
    logits: Logits,
}

/// The state of the last forward pass's logits.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Logits {
    /// Not made yet; the weights are those of the forward pass.
    Pending,
    Ready,
    /// Not made, and the weights changed since the forward pass: they can no longer be.
    Lost,
}

impl CpuGpt {
    pub fn new(cfg: ModelConfig, params: Vec<f32>, max_b: usize, max_t: usize) -> Result<Self> {
        cfg.validate()?;
        let layout = ParamLayout::new(&cfg);
        if params.len() != layout.total {
            bail!("expected {} parameters for {cfg:?}, got {}", layout.total, params.len());
        }
        if max_t > cfg.n_ctx {
            bail!("sequence length {max_t} exceeds the model's context {}", cfg.n_ctx);
        }
        let shapes = ActShapes::new(&cfg, max_b, max_t, Keeper::Cpu);
        let n = layout.total;
        Ok(CpuGpt {
            cfg,
            layout,
            params,
            grads: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            max_b,
            max_t,
            shapes,
            acts: Acts::default(),
            grad_acts: Acts::default(),
            frozen: false,
            last: None,
            last_ce: None,
            logits: Logits::Pending,
        })
    }

    /// A copy that computes gradients but never steps (a shard of a sharded engine): no AdamW moments.
    pub fn without_moments(mut self) -> Self {
        (self.m, self.v) = (Vec::new(), Vec::new());
        self
    }

    /// The last forward pass's logits (N,V) = lnf (N,C) · wteᵀ, made once, on first use.
    fn make_logits(&mut self, caller: &str) -> Result<()> {
        match self.logits {
            Logits::Ready => return Ok(()),
            Logits::Lost => bail!(kind: crate::error::ErrorKind::Internal, "{caller}: the weights changed since forward(); run it again"),
            Logits::Pending => {}
        }
        let Some((rows, _)) = &self.last else { bail!("{caller} called before forward()") };
        let (n, c, v) = (rows.n(), self.cfg.n_embd, self.cfg.vocab_size);
        let mut a = std::mem::take(&mut self.acts);
        matmul_forward(&mut a.logits[..n * v], &a.lnf[..n * c], self.p(WTE), None, n, c, v);
        self.acts = a;
        self.logits = Logits::Ready;
        Ok(())
    }

    fn weights_changed(&mut self) {
        if self.logits == Logits::Pending {
            self.logits = Logits::Lost;
        }
    }

    fn p(&self, i: usize) -> &[f32] {
        &self.params[self.layout.range(i)]
    }

    /// Layer l's slice of tensor kind i.
    fn pl(&self, i: usize, l: usize) -> &[f32] {
        let n = self.layout.numel(i) / self.cfg.n_layer;
        &self.params[self.layout.layer_offset(i, l)..][..n]
    }
}

/// Mutable slices of two disjoint tensor kinds of a flat buffer.
fn split2(buf: &mut [f32], a: std::ops::Range<usize>, b: std::ops::Range<usize>) -> (&mut [f32], &mut [f32]) {
    assert!(a.end <= b.start, "split2 wants ranges in storage order");
    let (lo, hi) = buf.split_at_mut(b.start);
    (&mut lo[a], &mut hi[..b.end - b.start])
}

/// Layer l of `v`, a buffer of layers of `size` values each.
fn at(v: &[f32], l: usize, size: usize) -> &[f32] {
    &v[l * size..][..size]
}

fn at_mut(v: &mut [f32], l: usize, size: usize) -> &mut [f32] {
    &mut v[l * size..][..size]
}

/// Block l backward: from the gradient at its output (g.residual3[l]) to the gradient at its input
/// (g.residual3[l − 1], or g.encoded for the first block), adding its weights' gradients to `grads`.
#[allow(clippy::too_many_arguments)]
fn block_backward(g: &mut Acts, a: &Acts, grads: &mut [f32], params: &[f32], lay: &ParamLayout, cfg: &ModelConfig, l: usize, rows: &Rows) {
    let (c, nh, l_n) = (cfg.n_embd, cfg.n_head, cfg.n_layer);
    let (n, att_n, pieces) = (rows.n(), rows.att_size(nh), rows.kc_pieces());
    let btc = n * c;
    let w = |i: usize| &params[lay.layer_offset(i, l)..][..lay.numel(i) / l_n];
    let gl = |i: usize| lay.layer_offset(i, l)..lay.layer_offset(i, l) + lay.numel(i) / l_n;
    let residual: &[f32] = if l == 0 { &a.encoded[..btc] } else { at(&a.residual3, l - 1, btc) };
    // residual3 = residual2 + fcproj
    let dres3 = at(&g.residual3, l, btc).to_vec();
    residual_backward(at_mut(&mut g.residual2, l, btc), at_mut(&mut g.fcproj, l, btc), &dres3);
    let (dw, db) = split2(grads, gl(FCPROJW), gl(FCPROJB));
    matmul_backward_rows(
        at_mut(&mut g.fch_gelu, l, 4 * btc),
        dw,
        Some(db),
        at(&g.fcproj, l, btc),
        at(&a.fch_gelu, l, 4 * btc),
        w(FCPROJW),
        &pieces,
        4 * c,
        c,
    );
    gelu_backward(at_mut(&mut g.fch, l, 4 * btc), at(&a.fch, l, 4 * btc), at(&g.fch_gelu, l, 4 * btc));
    let (dw, db) = split2(grads, gl(FCW), gl(FCB));
    matmul_backward_rows(at_mut(&mut g.ln2, l, btc), dw, Some(db), at(&g.fch, l, 4 * btc), at(&a.ln2, l, btc), w(FCW), &pieces, c, 4 * c);
    let (dw, db) = split2(grads, gl(LN2W), gl(LN2B));
    let (mean, rstd) = (at(&a.ln2_mean, l, n), at(&a.ln2_rstd, l, n));
    layernorm_backward(at_mut(&mut g.residual2, l, btc), dw, db, at(&g.ln2, l, btc), at(&a.residual2, l, btc), w(LN2W), mean, rstd, n, c);
    // residual2 = residual + attproj
    let dres2 = at(&g.residual2, l, btc).to_vec();
    let dresidual: &mut [f32] = if l == 0 { &mut g.encoded[..btc] } else { at_mut(&mut g.residual3, l - 1, btc) };
    residual_backward(dresidual, at_mut(&mut g.attproj, l, btc), &dres2);
    let (dw, db) = split2(grads, gl(ATTPROJW), gl(ATTPROJB));
    matmul_backward_rows(at_mut(&mut g.atty, l, btc), dw, Some(db), at(&g.attproj, l, btc), at(&a.atty, l, btc), w(ATTPROJW), &pieces, c, c);
    let (dqkv, dpreatt, datt) = (at_mut(&mut g.qkv, l, 3 * btc), at_mut(&mut g.preatt, l, att_n), at_mut(&mut g.att, l, att_n));
    for (i, len) in rows.lens.iter().copied().enumerate() {
        // each row alone, T = its length: a row's past is all it attends to
        let (r, m) = (rows.range(i), rows.att_range(i, nh));
        let (x3, x) = (r.start * 3 * c..r.end * 3 * c, r.start * c..r.end * c);
        attention_backward(
            &mut dqkv[x3.clone()],
            &mut dpreatt[m.clone()],
            &mut datt[m.clone()],
            &at(&g.atty, l, btc)[x],
            &at(&a.qkv, l, 3 * btc)[x3],
            &at(&a.att, l, att_n)[m],
            1,
            len,
            c,
            nh,
        );
    }
    let (dw, db) = split2(grads, gl(QKVW), gl(QKVB));
    matmul_backward_rows(at_mut(&mut g.ln1, l, btc), dw, Some(db), at(&g.qkv, l, 3 * btc), at(&a.ln1, l, btc), w(QKVW), &pieces, c, 3 * c);
    let (dw, db) = split2(grads, gl(LN1W), gl(LN1B));
    let dresidual: &mut [f32] = if l == 0 { &mut g.encoded[..btc] } else { at_mut(&mut g.residual3, l - 1, btc) };
    let (mean, rstd) = (at(&a.ln1_mean, l, n), at(&a.ln1_rstd, l, n));
    layernorm_backward(dresidual, dw, db, at(&g.ln1, l, btc), residual, w(LN1W), mean, rstd, n, c);
}

/// `matmul_backward` over kept positions (N,C) -> (N,OC), one call per piece of `Rows::kc_pieces`:
/// the weight's gradient sums its positions in the blocks the padded batch would.
#[allow(clippy::too_many_arguments)]
fn matmul_backward_rows(
    dinp: &mut [f32],
    dweight: &mut [f32],
    mut dbias: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    pieces: &[std::ops::Range<usize>],
    c: usize,
    oc: usize,
) {
    for p in pieces {
        let (x, y) = (p.start * c..p.end * c, p.start * oc..p.end * oc);
        matmul_backward(&mut dinp[x.clone()], dweight, dbias.as_deref_mut(), &dout[y], &inp[x], weight, p.len(), c, oc);
    }
}

impl CpuGpt {
    /// The forward pass over the kept positions of `rows` (tokens (N)).
    fn forward_kept(&mut self, tokens: Vec<u32>, rows: Rows) {
        let (c, l_n, nh) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head);
        let (n, att_n) = (rows.n(), rows.att_size(nh));
        let btc = n * c;
        let mut a = std::mem::take(&mut self.acts);
        if a.encoded.is_empty() {
            a = Acts::new(&self.shapes);
        }
        for i in 0..rows.b() {
            let r = rows.range(i);
            encoder_forward(&mut a.encoded[r.start * c..r.end * c], &tokens[r.clone()], self.p(WTE), self.p(WPE), 1, r.len(), c);
        }
        for l in 0..l_n {
            let (prev, cur) = a.residual3.split_at_mut(l * btc);
            let residual: &[f32] = if l == 0 { &a.encoded[..btc] } else { &prev[(l - 1) * btc..] };
            let ln1 = &mut a.ln1[l * btc..][..btc];
            layernorm_forward(ln1, &mut a.ln1_mean[l * n..][..n], &mut a.ln1_rstd[l * n..][..n], residual, self.pl(LN1W, l), self.pl(LN1B, l), n, c);
            let qkv = &mut a.qkv[l * 3 * btc..][..3 * btc];
            matmul_forward(qkv, ln1, self.pl(QKVW, l), Some(self.pl(QKVB, l)), n, c, 3 * c);
            let atty = &mut a.atty[l * btc..][..btc];
            let (preatt, att) = (&mut a.preatt[l * att_n..][..att_n], &mut a.att[l * att_n..][..att_n]);
            for (i, len) in rows.lens.iter().copied().enumerate() {
                let (r, m) = (rows.range(i), rows.att_range(i, nh));
                let (x3, x) = (r.start * 3 * c..r.end * 3 * c, r.start * c..r.end * c);
                attention_forward(&mut atty[x], &mut preatt[m.clone()], &mut att[m], &qkv[x3], 1, len, c, nh);
            }
            let attproj = &mut a.attproj[l * btc..][..btc];
            matmul_forward(attproj, atty, self.pl(ATTPROJW, l), Some(self.pl(ATTPROJB, l)), n, c, c);
            let residual2 = &mut a.residual2[l * btc..][..btc];
            residual_forward(residual2, residual, attproj);
            let ln2 = &mut a.ln2[l * btc..][..btc];
            layernorm_forward(ln2, &mut a.ln2_mean[l * n..][..n], &mut a.ln2_rstd[l * n..][..n], residual2, self.pl(LN2W, l), self.pl(LN2B, l), n, c);
            let fch = &mut a.fch[l * 4 * btc..][..4 * btc];
            matmul_forward(fch, ln2, self.pl(FCW, l), Some(self.pl(FCB, l)), n, c, 4 * c);
            let fch_gelu = &mut a.fch_gelu[l * 4 * btc..][..4 * btc];
            gelu_forward(fch_gelu, fch);
            let fcproj = &mut a.fcproj[l * btc..][..btc];
            matmul_forward(fcproj, fch_gelu, self.pl(FCPROJW, l), Some(self.pl(FCPROJB, l)), n, 4 * c, c);
            residual_forward(&mut cur[..btc], residual2, fcproj);
        }
        let last = &a.residual3[(l_n - 1) * btc..][..btc];
        layernorm_forward(&mut a.lnf[..btc], &mut a.lnf_mean[..n], &mut a.lnf_rstd[..n], last, self.p(LNFW), self.p(LNFB), n, c);
        self.acts = a;
        self.last = Some((rows, tokens));
        self.last_ce = None;
        self.logits = Logits::Pending;
    }
}

/// x (N,W) of the kept positions as (B,T,W), zero at the padding.
fn padded(rows: &Rows, x: &[f32], w: usize) -> Vec<f32> {
    if rows.is_full() {
        x[..rows.n() * w].to_vec()
    } else {
        rows.scatter(&x[..rows.n() * w], w, 0.0)
    }
}

impl Engine for CpuGpt {
    fn config(&self) -> ModelConfig {
        self.cfg
    }

    fn capacity(&self) -> (usize, usize) {
        (self.max_b, self.max_t)
    }

    fn forward(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<()> {
        check_batch(&self.cfg, self.capacity(), tokens, None, b, t)?;
        self.forward_kept(tokens.to_vec(), Rows::full(b, t));
        Ok(())
    }

    fn forward_rows(&mut self, tokens: &[u32], b: usize, t: usize, lens: &[usize]) -> Result<()> {
        check_batch(&self.cfg, self.capacity(), tokens, None, b, t)?;
        check_lens(lens, b, t)?;
        let rows = Rows::new(t, lens);
        self.forward_kept(rows.gather(tokens, 1), rows);
        Ok(())
    }

    async fn token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<TokenLosses> {
        let Some((rows, _)) = &self.last else { bail!("token_losses() called before forward()") };
        let (rows, v) = (rows.clone(), self.cfg.vocab_size);
        check_targets(&self.cfg, targets, rows.b() * rows.t, temperature)?;
        if !rows.padding_is(targets, 1, -1) {
            bail!(kind: crate::error::ErrorKind::Internal, "token_losses(): a target at a padded position, which forward_rows() skipped");
        }
        self.make_logits("token_losses()")?;
        let (n, targets) = (rows.n(), rows.gather(targets, 1));
        let a = &mut self.acts;
        crossentropy_forward(&mut a.losses[..n], &mut a.lse[..n], &mut a.entropy[..n], &a.logits[..n * v], &targets, temperature, n, v);
        self.last_ce = Some((targets, temperature));
        Ok(TokenLosses { losses: padded(&rows, &a.losses, 1), entropy: padded(&rows, &a.entropy, 1) })
    }

    async fn logits(&mut self) -> Result<Vec<f32>> {
        self.make_logits("logits()")?;
        let Some((rows, _)) = &self.last else { bail!("logits() called before forward()") };
        Ok(padded(rows, &self.acts.logits, self.cfg.vocab_size))
    }

    async fn hidden(&mut self) -> Result<Vec<f32>> {
        let Some((rows, _)) = &self.last else { bail!("hidden() called before forward()") };
        Ok(padded(rows, &self.acts.lnf, self.cfg.n_embd))
    }

    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        let Some((rows, tokens)) = self.last.clone() else { bail!("backward() called before forward()") };
        let (c, l_n, v) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.vocab_size);
        let (b, t, n) = (rows.b(), rows.t, rows.n());
        let btc = n * c;
        check_backward_inputs(weights, dhidden, self.last_ce.is_some(), b * t, b * t * c)?;
        if self.frozen {
            bail!(kind: crate::error::ErrorKind::Internal, "this engine is frozen: it keeps no gradients");
        }
        if dhidden.is_some_and(|dh| !rows.padding_is(dh, c, 0.0)) {
            bail!(kind: crate::error::ErrorKind::Internal, "backward(): a hidden-state gradient at a padded position, which forward_rows() skipped");
        }
        let pieces = rows.kc_pieces();
        let a = &self.acts;
        let mut g = std::mem::take(&mut self.grad_acts);
        if g.encoded.is_empty() {
            g = Acts::new(&self.shapes);
        }
        g.zero_used(&ActShapes::new(&self.cfg, b, t, Keeper::Cpu));
        let lay = self.layout.clone();
        let params = &self.params;
        let grads = &mut self.grads;

        if let Some(dh) = dhidden {
            g.lnf[..btc].copy_from_slice(&rows.gather(dh, c));
        }
        if let (Some(w), Some((targets, temp))) = (weights, &self.last_ce) {
            let w = rows.gather(w, 1);
            crossentropy_backward(&mut g.logits[..n * v], &a.logits[..n * v], &a.lse[..n], targets, &w, *temp, n, v);
            matmul_backward_rows(
                &mut g.lnf[..btc],
                &mut grads[lay.range(WTE)],
                None,
                &g.logits[..n * v],
                &a.lnf[..btc],
                &params[lay.range(WTE)],
                &pieces,
                c,
                v,
            );
        }
        let (dw, db) = split2(grads, lay.range(LNFW), lay.range(LNFB));
        let (last, dlast) = (at(&a.residual3, l_n - 1, btc), at_mut(&mut g.residual3, l_n - 1, btc));
        layernorm_backward(dlast, dw, db, &g.lnf[..btc], last, &params[lay.range(LNFW)], &a.lnf_mean[..n], &a.lnf_rstd[..n], n, c);
        for l in (0..l_n).rev() {
            block_backward(&mut g, a, grads, params, &lay, &self.cfg, l, &rows);
        }
        let (dwte, dwpe) = split2(grads, lay.range(WTE), lay.range(WPE));
        for i in 0..b {
            let r = rows.range(i);
            encoder_backward(dwte, dwpe, &g.encoded[r.start * c..r.end * c], &tokens[r.clone()], 1, r.len(), c);
        }
        self.grad_acts = g;
        Ok(())
    }

    fn zero_grad(&mut self) -> Result<()> {
        self.grads.fill(0.0);
        Ok(())
    }

    fn freeze(&mut self) {
        self.frozen = true;
        (self.grads, self.m, self.v, self.grad_acts) = (Vec::new(), Vec::new(), Vec::new(), Acts::default());
    }

    fn reset_optimizer(&mut self) -> Result<()> {
        self.m.fill(0.0);
        self.v.fill(0.0);
        Ok(())
    }

    async fn update(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<StepReport> {
        if self.frozen {
            bail!(kind: crate::error::ErrorKind::Internal, "this engine is frozen: it keeps no gradients");
        }
        let norm = global_norm(&self.grads);
        if !norm.is_finite() {
            return Ok(StepReport { grad_norm: norm, applied: false });
        }
        let scale = clip_scale(norm, grad_clip);
        self.weights_changed();
        for i in 0..NUM_TENSORS {
            let r = self.layout.range(i);
            adamw_update(
                &mut self.params[r.clone()],
                &self.grads[r.clone()],
                &mut self.m[r.clone()],
                &mut self.v[r],
                opt,
                scale,
                self.layout.decays(i),
            );
        }
        Ok(StepReport { grad_norm: norm, applied: true })
    }

    async fn params(&mut self) -> Result<Vec<f32>> {
        Ok(self.params.clone())
    }

    async fn grads(&mut self) -> Result<Vec<f32>> {
        Ok(self.grads.clone())
    }

    async fn generate(&mut self, prompt: &[u32], k: usize, stop: u32, cfg: &crate::config::SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        self.generate_cached(prompt, k, stop, cfg, seed)
    }

    /// The groups decoding in step (`GroupDecoder`), passing the turn after every token.
    async fn generate_groups(
        &mut self,
        groups: &[(Vec<u32>, u64)],
        k: usize,
        stop: u32,
        cfg: &crate::config::SampleConfig,
    ) -> Result<Vec<Vec<Vec<u32>>>> {
        let mut d = self.start_groups(groups, k, stop, cfg)?;
        while self.decode_next(&mut d) {
            crate::turns::pass().await;
        }
        Ok(d.answers())
    }

    async fn optimizer_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.m.clone(), self.v.clone()))
    }

    fn set_optimizer_state(&mut self, m: &[f32], v: &[f32]) -> Result<()> {
        if m.len() != self.m.len() || v.len() != self.v.len() {
            bail!("expected optimizer moments of {} values, got {} and {}", self.m.len(), m.len(), v.len());
        }
        self.m.copy_from_slice(m);
        self.v.copy_from_slice(v);
        Ok(())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.params.len() {
            bail!("expected {} parameters, got {}", self.params.len(), params.len());
        }
        self.weights_changed();
        self.params.copy_from_slice(params);
        Ok(())
    }
}
