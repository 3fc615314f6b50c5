//! Sampling on the GPU with a key-value cache: one prefill over the context, then one position per
//! step for every row at once. Steps are recorded many to a command buffer; only token ids come back.

use wgpu::Buffer;

use super::gpt::GpuGpt;
use super::kernels::{LnOffsets, Mm};
use crate::bail;
use crate::error::Result;
use crate::params::*;
use crate::sample::SampleConfig;

/// Steps recorded per submission; between submissions the tokens are read to stop early.
const STEPS_PER_SUBMIT: usize = 16;

/// Per-call buffers of the decode step, for B rows.
struct DecodeBuffers {
    x: Buffer, // (L+1, B, C): x[0] the embedding, x[l+1] the output of layer l
    ln: Buffer,
    mean: Buffer,
    rstd: Buffer,
    atty: Buffer,
    attproj: Buffer,
    res2: Buffer,
    ln2: Buffer,
    fch: Buffer,
    fch_gelu: Buffer,
    fcproj: Buffer,
    lnf: Buffer,
    logits: Buffer,
    next: Buffer,
    out: Buffer,
}

impl GpuGpt {
    /// K continuations of a prompt, sampled on the GPU; each stops at `stop` (not included) or after
    /// max_new_tokens, or at the end of the context.
    pub async fn generate_gpu(&mut self, prompt: &[u32], k: usize, stop: u32, sc: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        let (p, t) = (prompt.len(), self.max_t);
        if p == 0 || p >= t {
            bail!("the prompt is {p} tokens; it must be 1 to {} for this engine", t - 1);
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

    async fn generate_rows(&mut self, prompt: &[u32], b: usize, stop: u32, sc: &SampleConfig, seed: u64, max_new: usize) -> Result<Vec<Vec<u32>>> {
        let (p, t) = (prompt.len(), self.max_t);
        let (c, v) = (self.cfg.n_embd, self.cfg.vocab_size);
        let g = self.gpu.clone();
        let bufs = DecodeBuffers {
            x: g.buffer("dec x", (self.cfg.n_layer + 1) * b * c),
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
            lnf: g.buffer("dec lnf", b * c),
            logits: g.buffer("dec logits", b * v),
            next: g.buffer("dec next", b),
            out: g.buffer("dec out", b * max_new),
        };
        // prefill: the prompt in every row, padded to the cache length (causal: the padding is never seen)
        let mut tokens = Vec::with_capacity(b * t);
        for _ in 0..b {
            tokens.extend_from_slice(prompt);
            tokens.extend(std::iter::repeat_n(stop, t - p));
        }
        g.write(&self.tokens, 0, &tokens);
        let mut e = g.encoder();
        self.record_forward(&mut e, b, t);
        g.kernels.sample_next(&g, &mut e, &bufs.next, &bufs.out, &self.acts.logits, (p - 1) * v, t * v, b, v, sc, seed, 0, max_new);
        self.last = None; // the activations no longer hold a training batch
        let mut step = 1;
        let outs: Vec<u32> = loop {
            let end = (step + STEPS_PER_SUBMIT).min(max_new);
            while step < end {
                self.record_decode_step(&mut e, &bufs, b, t, p + step - 1);
                g.kernels.sample_next(&g, &mut e, &bufs.next, &bufs.out, &bufs.logits, 0, v, b, v, sc, seed, step, max_new);
                step += 1;
            }
            g.submit(std::mem::replace(&mut e, g.encoder()));
            let outs: Vec<u32> = g.read(&bufs.out, 0, b * max_new).await?;
            let finished = |r: usize| outs[r * max_new..r * max_new + step].contains(&stop);
            if step >= max_new || (0..b).all(finished) {
                break outs;
            }
        };
        Ok((0..b)
            .map(|r| outs[r * max_new..r * max_new + step].iter().copied().take_while(|&x| x != stop).collect())
            .collect())
    }

    /// One position for every row: the token in `next` at position `pos`, through every layer to logits.
    fn record_decode_step(&self, e: &mut wgpu::CommandEncoder, d: &DecodeBuffers, b: usize, t: usize, pos: usize) {
        let g = &self.gpu;
        let k = &g.kernels;
        let (c, l_n, nh, v) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head, self.cfg.vocab_size);
        let lay = &self.layout;
        let p = &self.params;
        let bc = b * c;
        let btc = b * t * c;
        k.encoder_decode(g, e, &d.x, &d.next, p, lay.offsets[WTE], lay.offsets[WPE], b, c, pos);
        for l in 0..l_n {
            let ln1 = LnOffsets { inp: l * bc, out: 0, stat: 0, w: self.lo(LN1W, l), b: self.lo(LN1B, l) };
            k.layernorm_forward(g, e, &d.ln, &d.mean, &d.rstd, &d.x, p, ln1, b, c);
            // the new q, k, v go straight into the cache: row b at (l, b, pos)
            let qkv = Mm {
                m: b, n: 3 * c, k: c, a: (0, c, 1), b: (self.lo(QKVW, l), 1, c),
                c_off: l * 3 * btc + pos * 3 * c, c_rs: t * 3 * c, bias_off: Some(self.lo(QKVB, l)), accumulate: false,
            };
            k.matmul(g, e, &qkv, &d.ln, p, Some(p), &self.acts.qkv);
            k.attention_decode(g, e, &d.atty, &self.acts.qkv, l * 3 * btc, b, t, c, nh, pos);
            k.linear_forward(g, e, &d.attproj, 0, &d.atty, 0, p, self.lo(ATTPROJW, l), Some(self.lo(ATTPROJB, l)), b, c, c);
            k.residual_forward(g, e, &d.res2, 0, &d.x, l * bc, &d.attproj, 0, bc);
            let ln2 = LnOffsets { inp: 0, out: 0, stat: 0, w: self.lo(LN2W, l), b: self.lo(LN2B, l) };
            k.layernorm_forward(g, e, &d.ln2, &d.mean, &d.rstd, &d.res2, p, ln2, b, c);
            k.linear_forward(g, e, &d.fch, 0, &d.ln2, 0, p, self.lo(FCW, l), Some(self.lo(FCB, l)), b, c, 4 * c);
            k.gelu_forward(g, e, &d.fch_gelu, &d.fch, 0, 4 * bc);
            k.linear_forward(g, e, &d.fcproj, 0, &d.fch_gelu, 0, p, self.lo(FCPROJW, l), Some(self.lo(FCPROJB, l)), b, 4 * c, c);
            k.residual_forward(g, e, &d.x, (l + 1) * bc, &d.res2, 0, &d.fcproj, 0, bc);
        }
        let lnf = LnOffsets { inp: l_n * bc, out: 0, stat: 0, w: lay.offsets[LNFW], b: lay.offsets[LNFB] };
        k.layernorm_forward(g, e, &d.lnf, &d.mean, &d.rstd, &d.x, p, lnf, b, c);
        k.linear_forward(g, e, &d.logits, 0, &d.lnf, 0, p, lay.offsets[WTE], None, b, c, v);
    }
}
