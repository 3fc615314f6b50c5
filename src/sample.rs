//! Drawing responses from the model: temperature, top-k and top-p over the last position's logits.

use crate::engine::Engine;
use crate::error::Result;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug)]
pub struct SampleConfig {
    pub temperature: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    /// 1.0 keeps every token.
    pub top_p: f32,
    pub max_new_tokens: usize,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig { temperature: 1.0, top_k: 0, top_p: 1.0, max_new_tokens: 64 }
    }
}

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

/// K continuations of one prompt, sampled together as a batch of K rows. Each stops at `stop`
/// (kept out of the result) or after max_new_tokens. The context slides when it outgrows the model.
pub fn generate(engine: &mut dyn Engine, prompt: &[u32], k: usize, stop: u32, cfg: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
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
            let logits = engine.logits()?;
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
