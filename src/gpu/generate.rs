//! Sampling on the GPU with a key-value cache: the prompt goes through once (one row: every row
//! shares it), its keys and values are copied to each row of the cache, then each step runs one
//! position for every row. Steps are recorded many to a submission; only token ids come back.

use super::context::GBuf;
use super::gpt::GpuGpt;
use super::kernels::{Epilogue, LnOffsets, LnOut, Mm};
use super::recorder::Recorder;
use crate::bail;
use crate::config::SampleConfig;
use crate::error::Result;
use crate::params::*;

/// Steps recorded per submission; between submissions the tokens are read to stop early.
const STEPS_PER_SUBMIT: usize = 16;

/// The decode step's buffers, for the engine's largest batch; made on the first generation.
pub(super) struct DecodeBuffers {
    x: GBuf, // (L+1, B, C): x[0] the embedding, x[l+1] the output of layer l
    ln: GBuf,
    mean: GBuf,
    rstd: GBuf,
    atty: GBuf,
    attproj: GBuf,
    res2: GBuf,
    ln2: GBuf,
    fch: GBuf,
    fch_gelu: GBuf,
    fcproj: GBuf,
    logits: GBuf,
    next: GBuf,
    out: GBuf,
}

impl DecodeBuffers {
    pub(super) fn bytes(&self) -> u64 {
        [
            &self.x,
            &self.ln,
            &self.mean,
            &self.rstd,
            &self.atty,
            &self.attproj,
            &self.res2,
            &self.ln2,
            &self.fch,
            &self.fch_gelu,
            &self.fcproj,
            &self.logits,
            &self.next,
            &self.out,
        ]
        .iter()
        .map(|b| b.bytes())
        .sum()
    }
}

/// A LayerNorm whose input lands in the residual stream x and whose output is the next ln.
fn ln_x(d: &DecodeBuffers) -> LnOut<'_> {
    LnOut { res: &d.x, out: &d.ln, mean: &d.mean, rstd: &d.rstd }
}

impl GpuGpt {
    /// K continuations of a prompt, sampled on the GPU; each stops at `stop` (not included) or after
    /// max_new_tokens, or at the end of the context.
    pub async fn generate_gpu(&mut self, prompt: &[u32], k: usize, stop: u32, sc: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        let (p, t) = (prompt.len(), self.cfg.n_ctx);
        if p == 0 || p >= t || p > self.max_t {
            bail!("the prompt is {p} tokens; it must be 1 to {} for this engine", (t - 1).min(self.max_t));
        }
        if let Some(&bad) = prompt.iter().find(|&&x| x as usize >= self.cfg.vocab_size) {
            bail!("token id {bad} is outside the vocabulary of {}", self.cfg.vocab_size);
        }
        let max_new = sc.max_new_tokens.min(t - p);
        let mut results = Vec::with_capacity(k);
        let mut row0 = 0;
        while row0 < k {
            let b = (k - row0).min(self.max_b);
            let rows = self.generate_rows(prompt, b, stop, sc, seed.wrapping_add(row0 as u64 * 0x9E37_79B9), max_new).await?;
            results.extend(rows);
            row0 += b;
        }
        Ok(results)
    }

    /// The decode step's buffers (for max_b rows and answers up to the context), made on first use.
    fn decode_buffers(&mut self) -> std::rc::Rc<DecodeBuffers> {
        let (b, c, v, l_n, t) = (self.max_b, self.cfg.n_embd, self.cfg.vocab_size, self.cfg.n_layer, self.cfg.n_ctx);
        let g = self.gpu.clone();
        self.decode
            .get_or_insert_with(|| {
                std::rc::Rc::new(DecodeBuffers {
                    x: g.buffer("dec x", (l_n + 1) * b * c),
                    ln: g.buffer("dec ln", b * c),
                    mean: g.buffer("dec mean", b),
                    rstd: g.buffer("dec rstd", b),
                    atty: g.buffer("dec atty", b * c),
                    attproj: g.buffer("dec attproj", b * c),
                    res2: g.buffer("dec res2", b * c),
                    ln2: g.buffer("dec ln2", b * c),
                    fch: g.buffer("dec fch", 4 * b * c),
                    fch_gelu: g.buffer("dec fch_gelu", 4 * b * c),
                    fcproj: g.buffer("dec fcproj", b * c),
                    logits: g.buffer("dec logits", b * v),
                    next: g.buffer("dec next", b),
                    out: g.buffer("dec out", b * t),
                })
            })
            .clone()
    }

    /// The cache (L, max_b, n_ctx, 3C), made on first use.
    fn kv_cache(&mut self) -> GBuf {
        let n = self.cfg.n_layer * self.max_b * self.cfg.n_ctx * 3 * self.cfg.n_embd;
        self.kv.get_or_insert_with(|| self.gpu.buffer("kv cache", n)).clone()
    }

    async fn generate_rows(&mut self, prompt: &[u32], b: usize, stop: u32, sc: &SampleConfig, seed: u64, max_new: usize) -> Result<Vec<Vec<u32>>> {
        let (p, t) = (prompt.len(), self.cfg.n_ctx);
        let (c, v, l_n) = (self.cfg.n_embd, self.cfg.vocab_size, self.cfg.n_layer);
        let g = self.gpu.clone();
        let kv = self.kv_cache();
        let d = self.decode_buffers();
        let out_stride = t;
        // prefill: the prompt once, in one row; its q, k, v copied to every row of the cache
        let tokens = self.tokens.clone();
        self.rec().write(&tokens, 0, prompt);
        self.record_forward(1, p);
        let (qkv, max_b) = (self.shared_qkv(), self.max_b);
        let rec = self.rec();
        for l in 0..l_n {
            for r in 0..b {
                rec.copy(&qkv, l * 3 * p * c, &kv, ((l * max_b + r) * t) * 3 * c, p * 3 * c);
            }
        }
        let logits = self.shared_logits();
        g.kernels.sample_next(self.rec(), &d.next, &d.out, (&logits, (p - 1) * v, 0), b, v, sc, seed, 0, out_stride);
        self.last = None; // the activations no longer hold a training batch
        let mut step = 1;
        let outs: Vec<u32> = loop {
            let end = (step + STEPS_PER_SUBMIT).min(max_new);
            let mut rec = self.pending.take().unwrap_or_else(|| g.recorder());
            while step < end {
                self.record_decode_step(&mut rec, &d, &kv, b, p + step - 1);
                g.kernels.sample_next(&mut rec, &d.next, &d.out, (&d.logits, 0, v), b, v, sc, seed, step, out_stride);
                step += 1;
            }
            let outs: Vec<u32> = rec.submit_and_read(&d.out, 0, b * out_stride).await?;
            let finished = |r: usize| outs[r * out_stride..r * out_stride + step].contains(&stop);
            if step >= max_new || (0..b).all(finished) {
                break outs;
            }
        };
        Ok((0..b).map(|r| outs[r * out_stride..r * out_stride + step].iter().copied().take_while(|&x| x != stop).collect()).collect())
    }

    /// One position for every row: the token in `next` at position `pos`, through every layer to logits.
    fn record_decode_step(&self, rec: &mut Recorder, d: &DecodeBuffers, kv: &GBuf, b: usize, pos: usize) {
        let k = &self.gpu.kernels;
        let (c, l_n, nh, v, t) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head, self.cfg.vocab_size, self.cfg.n_ctx);
        let lay = &self.layout;
        let p = &self.params;
        let bc = b * c;
        let layer_kv = |l: usize| l * self.max_b * t * 3 * c;
        let ln1 = |l: usize| LnOffsets { res: l * bc, out: 0, stat: 0, w: self.lo(LN1W, l), b: self.lo(LN1B, l) };
        k.embed_layernorm(rec, &d.next, p, &ln_x(d), ln1(0), lay.offsets[WTE], lay.offsets[WPE], b, 1, pos, c);
        for l in 0..l_n {
            let linear = |i_w: usize, i_b: usize, ic: usize, oc: usize| Mm {
                m: b,
                n: oc,
                k: ic,
                a: (0, ic, 1),
                b: (self.lo(i_w, l), 1, ic),
                c_off: 0,
                c_rs: oc,
                epi: Epilogue { bias: Some(self.lo(i_b, l)), ..Default::default() },
            };
            // the new q, k, v go straight into the cache: row r at (l, r, pos)
            let qkv = Mm { c_off: layer_kv(l) + pos * 3 * c, c_rs: t * 3 * c, ..linear(QKVW, QKVB, c, 3 * c) };
            k.matmul(rec, &qkv, &d.ln, p, kv, Some(p), None);
            k.attention_decode(rec, &d.atty, kv, layer_kv(l), b, t, c, nh, pos);
            k.matmul(rec, &linear(ATTPROJW, ATTPROJB, c, c), &d.atty, p, &d.attproj, Some(p), None);
            let ln2 = LnOut { res: &d.res2, out: &d.ln2, mean: &d.mean, rstd: &d.rstd };
            k.residual_layernorm(
                rec,
                (&d.x, l * bc),
                (&d.attproj, 0),
                p,
                &ln2,
                LnOffsets { res: 0, out: 0, stat: 0, w: self.lo(LN2W, l), b: self.lo(LN2B, l) },
                b,
                c,
            );
            let fc = Mm { epi: Epilogue { bias: Some(self.lo(FCB, l)), gelu: Some(0), ..Default::default() }, ..linear(FCW, FCB, c, 4 * c) };
            k.matmul(rec, &fc, &d.ln2, p, &d.fch, Some(p), Some(&d.fch_gelu));
            k.matmul(rec, &linear(FCPROJW, FCPROJB, 4 * c, c), &d.fch_gelu, p, &d.fcproj, Some(p), None);
            let next = if l + 1 < l_n { ln1(l + 1) } else { LnOffsets { res: 0, out: 0, stat: 0, w: lay.offsets[LNFW], b: lay.offsets[LNFB] } };
            k.residual_layernorm(rec, (&d.res2, 0), (&d.fcproj, 0), p, &ln_x(d), LnOffsets { res: (l + 1) * bc, ..next }, b, c);
        }
        let logits = Mm { m: b, n: v, k: c, a: (0, c, 1), b: (lay.offsets[WTE], 1, c), c_off: 0, c_rs: v, epi: Epilogue::default() };
        k.matmul(rec, &logits, &d.ln, p, &d.logits, None, None);
    }
}
