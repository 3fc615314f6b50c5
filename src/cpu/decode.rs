//! Sampling on the CPU with a key-value cache, the mirror of `gpu/generate.rs`: the prompts go
//! through once, then each step runs one new position per row, every group's rows in one product.
//! Keys: R rows (or slots: a row at a position), T cache length, C channels, V vocabulary.

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

    /// Copies row `first`'s first `len` positions into the `n − 1` rows after it (a shared prompt).
    fn broadcast(&mut self, l_n: usize, first: usize, n: usize, len: usize, c: usize) {
        let (rows, t) = (self.rows, self.t);
        for buf in [&mut self.k, &mut self.v] {
            for l in 0..l_n {
                let block = &mut buf[(l * rows + first) * t * c..][..n * t * c];
                let (head, rest) = block.split_at_mut(t * c);
                for row in rest.chunks_mut(t * c) {
                    row[..len * c].copy_from_slice(&head[..len * c]);
                }
            }
        }
    }
}

/// One position to run in a decoding step: its token, the cache row it belongs to, its position.
#[derive(Clone, Copy)]
struct Slot {
    token: u32,
    row: usize,
    pos: usize,
}

/// One group's sampling: K rows from one prompt, drawn from the group's own seeded stream.
struct GroupRun {
    first_row: usize,
    prompt_len: usize,
    max_new: usize,
    rng: Rng,
    out: Vec<Vec<u32>>,
    done: Vec<bool>,
    /// Logits (K,V) of each row's next position.
    logits: Vec<f32>,
    finished: bool,
}

/// Several groups decoding in step: every unfinished group's K rows run one new position each per
/// step, each at its own position, so one product per layer serves all of them (the weights are
/// packed once per step, not once per group and position). Each row's arithmetic is what it would
/// be alone, so a group's answers do not depend on which groups share its steps.
pub struct GroupDecoder {
    cache: KvCache,
    groups: Vec<GroupRun>,
    k: usize,
    stop: u32,
    sc: SampleConfig,
    step: usize,
}

impl GroupDecoder {
    /// Each group's K answers, in the order the groups were given.
    pub fn answers(self) -> Vec<Vec<Vec<u32>>> {
        self.groups.into_iter().map(|g| g.out).collect()
    }
}

impl CpuGpt {
    /// Logits (W,V) of the slots listed in `want`, after running every slot through the model;
    /// each slot's keys and values are written into the cache first at each layer, so slots of one
    /// row at consecutive positions (a prompt) attend to each other as in a forward pass.
    fn decode_step(&self, cache: &mut KvCache, slots: &[Slot], want: &[usize]) -> Vec<f32> {
        let (c, l_n, nh, v) = (self.cfg.n_embd, self.cfg.n_layer, self.cfg.n_head, self.cfg.vocab_size);
        let (r, t) = (slots.len(), cache.t);
        let lay = &self.layout;
        let p = |i: usize| &self.params[lay.range(i)];
        let pl = |i: usize, l: usize| &self.params[lay.layer_offset(i, l)..][..lay.numel(i) / l_n];
        let mut x = vec![0.0; r * c];
        // each slot is one position: embed as a (1,1) batch with its position's row of wpe
        for (s, xs) in slots.iter().zip(x.chunks_mut(c)) {
            encoder_forward(xs, &[s.token], p(WTE), &p(WPE)[s.pos * c..], 1, 1, c);
        }
        let at: Vec<(usize, usize)> = slots.iter().map(|s| (s.row, s.pos)).collect();
        let (mut ln, mut mean, mut rstd) = (vec![0.0; r * c], vec![0.0; r], vec![0.0; r]);
        let (mut qkv, mut atty, mut proj, mut res2) = (vec![0.0; r * 3 * c], vec![0.0; r * c], vec![0.0; r * c], vec![0.0; r * c]);
        let (mut fch, mut fch_gelu) = (vec![0.0; r * 4 * c], vec![0.0; r * 4 * c]);
        for l in 0..l_n {
            layernorm_forward(&mut ln, &mut mean, &mut rstd, &x, pl(LN1W, l), pl(LN1B, l), r, c);
            matmul_forward(&mut qkv, &ln, pl(QKVW, l), Some(pl(QKVB, l)), r, c, 3 * c);
            let layer = l * cache.rows * t * c;
            for (ri, s) in slots.iter().enumerate() {
                let to = layer + (s.row * t + s.pos) * c;
                cache.k[to..to + c].copy_from_slice(&qkv[ri * 3 * c + c..][..c]);
                cache.v[to..to + c].copy_from_slice(&qkv[ri * 3 * c + 2 * c..][..c]);
            }
            let (kc, vc) = (&cache.k[layer..], &cache.v[layer..]);
            attention_decode(&mut atty, &qkv, 3 * c, kc, vc, &at, t, c, nh);
            matmul_forward(&mut proj, &atty, pl(ATTPROJW, l), Some(pl(ATTPROJB, l)), r, c, c);
            residual_forward(&mut res2, &x, &proj);
            layernorm_forward(&mut ln, &mut mean, &mut rstd, &res2, pl(LN2W, l), pl(LN2B, l), r, c);
            matmul_forward(&mut fch, &ln, pl(FCW, l), Some(pl(FCB, l)), r, c, 4 * c);
            gelu_forward(&mut fch_gelu, &fch);
            matmul_forward(&mut proj, &fch_gelu, pl(FCPROJW, l), Some(pl(FCPROJB, l)), r, 4 * c, c);
            residual_forward(&mut x, &res2, &proj);
        }
        let w = want.len();
        let picked: Vec<f32> = want.iter().flat_map(|&i| x[i * c..][..c].iter().copied()).collect();
        layernorm_forward(&mut ln[..w * c], &mut mean[..w], &mut rstd[..w], &picked, p(LNFW), p(LNFB), w, c);
        let mut logits = vec![0.0; w * v];
        matmul_forward(&mut logits, &ln[..w * c], p(WTE), None, w, c, v);
        logits
    }

    /// Starts K continuations of each group's prompt (each group with its seed): checks the prompts
    /// and runs them through the model at once, each into its group's first cache row, copied to
    /// the group's other rows. Each continuation stops at `stop` (not included), after
    /// max_new_tokens, or at the end of the context.
    pub fn start_groups(&self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, sc: &SampleConfig) -> Result<GroupDecoder> {
        let (t, v, c, l_n) = (self.cfg.n_ctx, self.cfg.vocab_size, self.cfg.n_embd, self.cfg.n_layer);
        for (prompt, _) in groups {
            let p = prompt.len();
            if p == 0 || p >= t {
                bail!("the prompt is {p} tokens; it must be 1 to {} for this model", t - 1);
            }
            if let Some(&bad) = prompt.iter().find(|&&x| x as usize >= v) {
                bail!("token id {bad} is outside the vocabulary of {v}");
            }
        }
        let kk = k.max(1);
        let mut cache = KvCache::new(l_n, kk * groups.len(), t, c);
        let mut slots = Vec::new();
        let mut want = Vec::new();
        for (g, (prompt, _)) in groups.iter().enumerate() {
            slots.extend(prompt.iter().enumerate().map(|(pos, &token)| Slot { token, row: g * kk, pos }));
            want.push(slots.len() - 1);
        }
        let last = if groups.is_empty() { Vec::new() } else { self.decode_step(&mut cache, &slots, &want) };
        let runs = groups
            .iter()
            .enumerate()
            .map(|(g, (prompt, seed))| {
                let p = prompt.len();
                cache.broadcast(l_n, g * kk, kk, p, c);
                let max_new = sc.max_new_tokens.min(t - p);
                GroupRun {
                    first_row: g * kk,
                    prompt_len: p,
                    max_new,
                    rng: Rng::new(*seed),
                    out: vec![Vec::new(); k],
                    done: vec![false; k],
                    logits: (0..k).flat_map(|_| last[g * v..][..v].iter().copied()).collect(),
                    finished: max_new == 0 || k == 0,
                }
            })
            .collect();
        Ok(GroupDecoder { cache, groups: runs, k, stop, sc: *sc, step: 0 })
    }

    /// Samples one token for every row of every unfinished group and runs the rows that go on
    /// through the model; false once every group has finished.
    pub fn decode_next(&self, d: &mut GroupDecoder) -> bool {
        let (v, k, step) = (self.cfg.vocab_size, d.k, d.step);
        let mut slots = Vec::new();
        for g in d.groups.iter_mut().filter(|g| !g.finished) {
            let next: Vec<u32> = (0..k).map(|r| sample_token(&g.logits[r * v..][..v], &d.sc, &mut g.rng)).collect();
            for (r, &tok) in next.iter().enumerate() {
                if !g.done[r] {
                    if tok == d.stop {
                        g.done[r] = true
                    } else {
                        g.out[r].push(tok)
                    }
                }
            }
            if g.done.iter().all(|&x| x) || step + 1 == g.max_new {
                g.finished = true;
                continue;
            }
            slots.extend(next.iter().enumerate().map(|(r, &token)| Slot { token, row: g.first_row + r, pos: g.prompt_len + step }));
        }
        if slots.is_empty() {
            return false;
        }
        let want: Vec<usize> = (0..slots.len()).collect();
        let logits = self.decode_step(&mut d.cache, &slots, &want);
        let mut rest = &logits[..];
        for g in d.groups.iter_mut().filter(|g| !g.finished) {
            let (mine, tail) = rest.split_at(k * v);
            g.logits.copy_from_slice(mine);
            rest = tail;
        }
        d.step += 1;
        true
    }

    /// K continuations of each group's prompt, the groups decoding in step (`GroupDecoder`).
    pub fn generate_cached_groups(&self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, sc: &SampleConfig) -> Result<Vec<Vec<Vec<u32>>>> {
        let mut d = self.start_groups(groups, k, stop, sc)?;
        while self.decode_next(&mut d) {}
        Ok(d.answers())
    }

    /// K continuations of a prompt with a key-value cache; each stops at `stop` (not included),
    /// after max_new_tokens, or at the end of the context. Draws from one seeded stream in the
    /// order `generate_by_recompute` does for K rows in one batch, so the two agree wherever their
    /// logits do.
    pub fn generate_cached(&self, prompt: &[u32], k: usize, stop: u32, sc: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        let mut groups = self.generate_cached_groups(&[(prompt.to_vec(), seed)], k, stop, sc)?;
        Ok(groups.pop().unwrap_or_default())
    }
}
