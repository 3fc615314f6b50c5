//! Drawing responses from the model: temperature, top-k and top-p over the last position's logits.

use crate::config::SampleConfig;
use crate::engine::Engine;
use crate::error::Result;
use crate::rng::Rng;
use crate::tokenizer::Tokenizer;

/// Picks one token from logits (V). Temperature 0 is greedy.
pub fn sample_token(logits: &[f32], cfg: &SampleConfig, rng: &mut Rng) -> u32 {
    let argmax = logits.iter().enumerate().fold(0, |best, (i, &x)| if x > logits[best] { i } else { best });
    if cfg.temperature <= 0.0 {
        return argmax as u32;
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if cfg.top_k > 0 {
        idx.truncate(cfg.top_k);
    }
    let m = logits[idx[0]];
    let mut probs: Vec<f32> = idx.iter().map(|&i| ((logits[i] - m) / cfg.temperature).exp()).collect();
    let sum: f32 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= sum);
    if cfg.top_p < 1.0 {
        // the smallest prefix whose mass reaches top_p
        let mut acc = 0.0;
        let keep = probs.iter().position(|p| {
            acc += p;
            acc >= cfg.top_p
        });
        let keep = keep.map_or(probs.len(), |k| k + 1);
        probs.truncate(keep);
        let s: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= s);
    }
    let r = rng.uniform();
    let mut acc = 0.0;
    for (j, p) in probs.iter().enumerate() {
        acc += p;
        if r < acc {
            return idx[j] as u32;
        }
    }
    idx[probs.len() - 1] as u32
}

/// PCG hash (as in shaders/sample.wgsl).
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// The GPU sampler's random number for (seed, row, step), in [0, 1).
pub fn counter_uniform(seed: u64, row: u32, step: u32) -> f32 {
    let (lo, hi) = (seed as u32, (seed >> 32) as u32);
    let h = pcg(lo ^ pcg(hi ^ pcg(row ^ pcg(step))));
    (h >> 8) as f32 / 16_777_216.0
}

/// Bisection steps for the top-k and top-p thresholds (the GPU sampler uses the same).
pub const BISECT_ITERS: usize = 40;

/// The GPU sampler's rule on the CPU (see shaders/sample.wgsl): top-k and top-p as thresholds found
/// by bisection on the scaled logits, then an inverse-CDF walk in index order with the uniform `u`.
pub fn sample_threshold(logits: &[f32], cfg: &SampleConfig, u: f32) -> u32 {
    let (mut m, mut best, mut lowest) = (f32::MIN, 0usize, f32::MAX);
    for (j, &x) in logits.iter().enumerate() {
        if x > m {
            m = x;
            best = j;
        }
        lowest = lowest.min(x);
    }
    if cfg.temperature <= 0.0 {
        return best as u32;
    }
    let inv_t = 1.0 / cfg.temperature;
    let x = |j: usize| (logits[j] - m) * inv_t;
    let v = logits.len();
    let floor_x = (lowest - m) * inv_t;
    let bisect = |lo: f32, keep: &dyn Fn(f32) -> bool| {
        let (mut lo, mut hi) = (lo, 0.0f32);
        for _ in 0..BISECT_ITERS {
            let mid = 0.5 * (lo + hi);
            if keep(mid) {
                lo = mid
            } else {
                hi = mid
            }
        }
        lo
    };
    let tk = if cfg.top_k > 0 && cfg.top_k < v { bisect(floor_x, &|t| (0..v).filter(|&j| x(j) >= t).count() >= cfg.top_k) } else { floor_x };
    let mass = |t: f32| (0..v).filter(|&j| x(j) >= t).map(|j| x(j).exp()).sum::<f32>();
    let zk = mass(tk);
    let tp = if cfg.top_p < 1.0 { bisect(tk, &|t| mass(t) >= cfg.top_p * zk) } else { tk };
    let target = u * mass(tp);
    let mut acc = 0.0;
    let mut last = best;
    for j in 0..v {
        if x(j) >= tp {
            acc += x(j).exp();
            last = j;
            if acc > target {
                return j as u32;
            }
        }
    }
    last as u32
}

/// K answers to a prompt (its token ids, as `Tokenizer::prompt_ids` gives them) as text.
pub async fn answers<E: Engine>(engine: &mut E, tok: &Tokenizer, prompt: &[u32], k: usize, cfg: &SampleConfig, seed: u64) -> Result<Vec<String>> {
    let outs = engine.generate(prompt, k, tok.end, cfg, seed).await?;
    outs.iter().map(|o| tok.answer_text(o)).collect()
}

/// K continuations of a prompt with the engine's own sampler (on the GPU for the GPU engine).
pub async fn generate<E: Engine>(engine: &mut E, prompt: &[u32], k: usize, stop: u32, cfg: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
    engine.generate(prompt, k, stop, cfg, seed).await
}

/// The reference sampler: K continuations of one prompt as a batch of K rows, recomputing the whole
/// context for each new token. Each stops at `stop` (kept out of the result) or after
/// max_new_tokens. The context slides when it outgrows the model.
pub async fn generate_by_recompute<E: Engine>(
    engine: &mut E,
    prompt: &[u32],
    k: usize,
    stop: u32,
    cfg: &SampleConfig,
    seed: u64,
) -> Result<Vec<Vec<u32>>> {
    let (max_b, max_t) = engine.capacity();
    let v = engine.config().vocab_size;
    let mut rng = Rng::new(seed);
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); k];
    let mut done = vec![false; k];
    for chunk_start in (0..k).step_by(max_b) {
        let rows = (k - chunk_start).min(max_b);
        let mut seqs: Vec<Vec<u32>> = vec![prompt.to_vec(); rows];
        for _ in 0..cfg.max_new_tokens {
            let len = seqs[0].len().min(max_t);
            let tokens: Vec<u32> = seqs.iter().flat_map(|s| s[s.len() - len..].iter().copied()).collect();
            engine.forward(&tokens, rows, len)?;
            let logits = engine.logits().await?;
            for r in 0..rows {
                let i = chunk_start + r;
                // finished rows keep stepping (the batch stays rectangular) but their samples are dropped
                let next = sample_token(&logits[(r * len + len - 1) * v..][..v], cfg, &mut rng);
                seqs[r].push(next);
                if !done[i] {
                    if next == stop {
                        done[i] = true;
                    } else {
                        out[i].push(next);
                    }
                }
            }
            if (chunk_start..chunk_start + rows).all(|i| done[i]) {
                break;
            }
        }
    }
    Ok(out)
}
