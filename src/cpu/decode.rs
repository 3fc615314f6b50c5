//! Sampling on the CPU with a key-value cache, the mirror of `gpu/generate.rs`: the prompt goes
//! through once, then each step runs one new position per row. Keys: R rows, T cache length, C channels.

use super::attention::attention_decode;
use super::encoder::encoder_forward;
use super::gelu::gelu_forward;
use super::gpt::CpuGpt;
use super::layernorm::layernorm_forward;
use super::matmul::matmul_forward;
use super::residual::residual_forward;
use crate::bail;
use crate::config::SampleConfig;
use crate::error::Result;
use crate::params::*;
use crate::rng::Rng;
use crate::sample::sample_token;

/// Keys and values of every layer, (L,R,T,C) each.
struct KvCache {
    k: Vec<f32>,
    v: Vec<f32>,
    rows: usize,
    t: usize,
}

impl KvCache {
    fn new(l: usize, rows: usize, t: usize, c: usize) -> Self {
        KvCache { k: vec![0.0; l * rows * t * c], v: vec![0.0; l * rows * t * c], rows, t }
    }

    /// Copies row 0's first `len` positions into every other row (the shared prompt).
    fn broadcast_row0(&mut self, l_n: usize, len: usize, c: usize) {
        let (rows, t) = (self.rows, self.t);
        for buf in [&mut self.k, &mut self.v] {
            for l in 0..l_n {
                let layer = &mut buf[l * rows * t * c..][..rows * t * c];
                let (first, rest) = layer.split_at_mut(t * c);
                for row in rest.chunks_mut(t * c) {
                    row[..len * c].copy_from_slice(&first[..len * c]);
                }
            }
        }
    }
}

impl CpuGpt {
    /// Logits (R,V) of one new position `pos` for each row, whose token is tokens[r]; the position's
    /// keys and values are written into the cache.
    fn decode_step(&self, cache: &mut KvCache, tokens: &[u32], pos: usize) -> Vec<f32> {
        let (c, l_n, nh, v) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head, self.cfg.vocab_size);
        let (r, t) = (tokens.len(), cache.t);
        let lay = &self.layout;
        let p = |i: usize| &self.params[lay.range(i)];
        let pl = |i: usize, l: usize| &self.params[lay.layer_offset(i, l)..][..lay.numel(i) / l_n];
        let mut x = vec![0.0; r * c];
        // each row is one position: embed as a (R,1) batch, then add the position's row of wpe
        encoder_forward(&mut x, tokens, p(WTE), &p(WPE)[pos * c..], r, 1, c);
        let (mut ln, mut mean, mut rstd) = (vec![0.0; r * c], vec![0.0; r], vec![0.0; r]);
        let (mut qkv, mut atty, mut proj, mut res2) = (vec![0.0; r * 3 * c], vec![0.0; r * c], vec![0.0; r * c], vec![0.0; r * c]);
        let (mut fch, mut fch_gelu) = (vec![0.0; r * 4 * c], vec![0.0; r * 4 * c]);
        for l in 0..l_n {
            layernorm_forward(&mut ln, &mut mean, &mut rstd, &x, pl(LN1W, l), pl(LN1B, l), r, c);
            matmul_forward(&mut qkv, &ln, pl(QKVW, l), Some(pl(QKVB, l)), r, c, 3 * c);
            let layer = l * cache.rows * t * c;
            for ri in 0..r {
                let at = layer + (ri * t + pos) * c;
                cache.k[at..at + c].copy_from_slice(&qkv[ri * 3 * c + c..][..c]);
                cache.v[at..at + c].copy_from_slice(&qkv[ri * 3 * c + 2 * c..][..c]);
            }
            let (kc, vc) = (&cache.k[layer..], &cache.v[layer..]);
            attention_decode(&mut atty, &qkv, 3 * c, kc, vc, r, t, c, nh, pos);
            matmul_forward(&mut proj, &atty, pl(ATTPROJW, l), Some(pl(ATTPROJB, l)), r, c, c);
            residual_forward(&mut res2, &x, &proj);
            layernorm_forward(&mut ln, &mut mean, &mut rstd, &res2, pl(LN2W, l), pl(LN2B, l), r, c);
            matmul_forward(&mut fch, &ln, pl(FCW, l), Some(pl(FCB, l)), r, c, 4 * c);
            gelu_forward(&mut fch_gelu, &fch);
            matmul_forward(&mut proj, &fch_gelu, pl(FCPROJW, l), Some(pl(FCPROJB, l)), r, 4 * c, c);
            residual_forward(&mut x, &res2, &proj);
        }
        layernorm_forward(&mut ln, &mut mean, &mut rstd, &x, p(LNFW), p(LNFB), r, c);
        let mut logits = vec![0.0; r * v];
        matmul_forward(&mut logits, &ln, p(WTE), None, r, c, v);
        logits
    }

    /// K continuations of a prompt with a key-value cache; each stops at `stop` (not included),
    /// after max_new_tokens, or at the end of the context. Draws from one seeded stream in the
    /// order `generate_by_recompute` does for K rows in one batch, so the two agree wherever their
    /// logits do.
    pub fn generate_cached(&mut self, prompt: &[u32], k: usize, stop: u32, sc: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        let (p, t, v) = (prompt.len(), self.cfg.n_ctx, self.cfg.vocab_size);
        if p == 0 || p >= t {
            bail!("the prompt is {p} tokens; it must be 1 to {} for this model", t - 1);
        }
        if let Some(&bad) = prompt.iter().find(|&&x| x as usize >= v) {
            bail!("token id {bad} is outside the vocabulary of {v}");
        }
        let max_new = sc.max_new_tokens.min(t - p);
        let mut cache = KvCache::new(self.cfg.n_layer, k.max(1), t, self.cfg.n_embd);
        // the prompt once, in row 0
        let mut logits = Vec::new();
        for (pos, &tok) in prompt.iter().enumerate() {
            logits = self.decode_step(&mut cache, &[tok], pos);
        }
        cache.broadcast_row0(self.cfg.n_layer, p, self.cfg.n_embd);
        let mut logits: Vec<f32> = (0..k).flat_map(|_| logits.iter().copied()).collect();
        let mut rng = Rng::new(seed);
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); k];
        let mut done = vec![false; k];
        for step in 0..max_new {
            let next: Vec<u32> = (0..k).map(|r| sample_token(&logits[r * v..][..v], sc, &mut rng)).collect();
            for (r, &tok) in next.iter().enumerate() {
                if !done[r] {
                    if tok == stop {
                        done[r] = true
                    } else {
                        out[r].push(tok)
                    }
                }
            }
            if done.iter().all(|&d| d) || step + 1 == max_new {
                break;
            }
            logits = self.decode_step(&mut cache, &next, p + step);
        }
        Ok(out)
    }
}
