//! The reward model: the GPT trunk with a scalar head read at the last token, trained on K-way
//! rankings with InstructGPT's loss −1/P·Σ log σ(r(x,y_w) − r(x,y_l)) over the P untied pairs of one
//! ranking, all pairs of a prompt in one batch element (K forward passes, not P).

use crate::bail;
use crate::corpus::format_dialogue;
use crate::cpu::adamw::{adamw_update, AdamParams};
use crate::engine::Engine;
use crate::error::Result;
use crate::rng::Rng;
use crate::tokenizer::Tokenizer;

/// One labeler's ranking of K responses to a prompt: ranks[i] = 0 for the best; equal ranks are ties.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ranking {
    pub prompt: String,
    pub responses: Vec<String>,
    pub ranks: Vec<usize>,
}

impl Ranking {
    pub fn validate(&self) -> Result<()> {
        let k = self.responses.len();
        if !(2..=9).contains(&k) {
            bail!("a ranking needs 2 to 9 responses, got {k}");
        }
        if self.ranks.len() != k {
            bail!("a ranking of {k} responses needs {k} ranks, got {}", self.ranks.len());
        }
        if ranking_pairs(&self.ranks).is_empty() {
            bail!("every response is tied: the ranking says nothing");
        }
        Ok(())
    }
}

/// Every (winner, loser) pair of a ranking; tied responses make no pair.
pub fn ranking_pairs(ranks: &[usize]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for i in 0..ranks.len() {
        for j in 0..ranks.len() {
            if ranks[i] < ranks[j] {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// log σ(x), stable for large |x|.
fn log_sigmoid(x: f32) -> f32 {
    if x >= 0.0 { -(-x).exp().ln_1p() } else { x - x.exp().ln_1p() }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The ranking loss of one prompt's rewards (K) and its gradient d loss / d reward (K).
pub fn ranking_loss(rewards: &[f32], ranks: &[usize]) -> (f32, Vec<f32>) {
    let pairs = ranking_pairs(ranks);
    let mut grad = vec![0.0; rewards.len()];
    if pairs.is_empty() {
        return (0.0, grad);
    }
    let scale = 1.0 / pairs.len() as f32;
    let mut loss = 0.0;
    for &(w, l) in &pairs {
        let d = rewards[w] - rewards[l];
        loss -= log_sigmoid(d) * scale;
        // d/dd [−log σ(d)] = −σ(−d)
        let g = -sigmoid(-d) * scale;
        grad[w] += g;
        grad[l] -= g;
    }
    (loss, grad)
}

/// Fraction of untied pairs the rewards order correctly (ties in reward count half).
pub fn pair_accuracy(rewards: &[f32], ranks: &[usize]) -> (f32, usize) {
    let pairs = ranking_pairs(ranks);
    let right: f32 = pairs.iter().map(|&(w, l)| if rewards[w] > rewards[l] { 1.0 } else if rewards[w] == rewards[l] { 0.5 } else { 0.0 }).sum();
    (right, pairs.len())
}

/// A scalar head on the final hidden state: r = h·w + bias. Trained with AdamW on the CPU (C+1 values).
#[derive(Clone, Debug)]
pub struct ScalarHead {
    pub w: Vec<f32>,
    pub bias: f32,
    /// AdamW moments and step count.
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub grad: Vec<f32>,
    pub t: u32,
}

impl ScalarHead {
    pub fn new(c: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        // small, so the first rewards sit near zero
        let w = (0..c).map(|_| rng.normal() * 0.02).collect();
        ScalarHead { w, bias: 0.0, m: vec![0.0; c], v: vec![0.0; c], grad: vec![0.0; c], t: 0 }
    }

    pub fn apply(&self, h: &[f32]) -> f32 {
        h.iter().zip(&self.w).map(|(a, b)| a * b).sum::<f32>() + self.bias
    }

    pub fn step(&mut self, lr: f32) {
        self.t += 1;
        let p = AdamParams { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0, t: self.t };
        adamw_update(&mut self.w, &self.grad, &mut self.m, &mut self.v, &p, 1.0, false);
        self.grad.fill(0.0);
    }
}

/// Token ids of prompt + response + end, cut to the context.
pub fn dialogue_ids(tok: &Tokenizer, prompt: &str, response: &str, n_ctx: usize) -> Result<Vec<u32>> {
    let mut ids = tok.encode(&format_dialogue(prompt, response))?;
    ids.truncate(n_ctx);
    Ok(ids)
}

/// Right-pads sequences into one (B,T) batch; returns tokens and each row's length.
pub fn pad_batch<S: AsRef<[u32]>>(seqs: &[S], pad: u32) -> (Vec<u32>, usize, Vec<usize>) {
    let t = seqs.iter().map(|s| s.as_ref().len()).max().unwrap_or(1).max(1);
    let mut tokens = Vec::with_capacity(seqs.len() * t);
    for s in seqs {
        let s = s.as_ref();
        tokens.extend_from_slice(s);
        tokens.extend(std::iter::repeat_n(pad, t - s.len()));
    }
    (tokens, t, seqs.iter().map(|s| s.as_ref().len()).collect())
}

pub struct RewardModel<E: Engine> {
    pub engine: E,
    pub head: ScalarHead,
    /// AdamW steps taken by the trunk.
    pub steps: u32,
}

/// Loss and accuracy of one pass over rankings.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct RmReport {
    pub loss: f32,
    pub accuracy: f32,
    /// The step was skipped (non-finite loss or gradient).
    #[serde(skip)]
    pub skipped: bool,
}

impl<E: Engine> RewardModel<E> {
    pub fn new(engine: E, seed: u64) -> Self {
        let c = engine.config().n_embd;
        RewardModel { engine, head: ScalarHead::new(c, seed), steps: 0 }
    }

    /// Rewards of token sequences (each scored at its last token).
    pub async fn score(&mut self, seqs: &[Vec<u32>], pad: u32) -> Result<Vec<f32>> {
        let (max_b, _) = self.engine.capacity();
        let c = self.engine.config().n_embd;
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(max_b) {
            let (tokens, t, lens) = pad_batch(chunk, pad);
            self.engine.forward(&tokens, chunk.len(), t)?;
            let h = self.engine.hidden().await?;
            for (i, len) in lens.iter().enumerate() {
                out.push(self.head.apply(&h[(i * t + len - 1) * c..][..c]));
            }
        }
        Ok(out)
    }

    /// One AdamW step on a minibatch of rankings (already tokenized: one K-row batch per ranking).
    pub async fn train_step(&mut self, batch: &[(Vec<Vec<u32>>, Vec<usize>)], pad: u32, lr: f32, grad_clip: f32) -> Result<RmReport> {
        let c = self.engine.config().n_embd;
        self.engine.zero_grad()?;
        let mut report = RmReport::default();
        let (mut right, mut total) = (0.0, 0);
        for (seqs, ranks) in batch {
            let (tokens, t, lens) = pad_batch(seqs, pad);
            self.engine.forward(&tokens, seqs.len(), t)?;
            let h = self.engine.hidden().await?;
            let last = |i: usize| &h[(i * t + lens[i] - 1) * c..][..c];
            let rewards: Vec<f32> = (0..seqs.len()).map(|i| self.head.apply(last(i))).collect();
            let (loss, dr) = ranking_loss(&rewards, ranks);
            let (r, n) = pair_accuracy(&rewards, ranks);
            right += r;
            total += n;
            report.loss += loss / batch.len() as f32;
            let mut dh = vec![0.0; seqs.len() * t * c];
            for (i, &d) in dr.iter().enumerate() {
                let d = d / batch.len() as f32;
                let row = &mut dh[(i * t + lens[i] - 1) * c..][..c];
                for j in 0..c {
                    row[j] = d * self.head.w[j];
                    self.head.grad[j] += d * last(i)[j];
                }
            }
            self.engine.backward(None, Some(&dh))?;
        }
        if !report.loss.is_finite() {
            // skip the step: the weights stay as they were
            self.head.grad.fill(0.0);
            report.skipped = true;
            return Ok(report);
        }
        self.steps += 1;
        let opt = AdamParams { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0, t: self.steps };
        let rep = self.engine.update(&opt, grad_clip).await?;
        if rep.applied {
            self.head.step(lr);
        } else {
            self.head.grad.fill(0.0);
            report.skipped = true;
        }
        report.accuracy = if total == 0 { 0.0 } else { right / total as f32 };
        Ok(report)
    }

    /// Loss and pairwise accuracy on rankings without training.
    pub async fn evaluate(&mut self, data: &[(Vec<Vec<u32>>, Vec<usize>)], pad: u32) -> Result<RmReport> {
        let (mut loss, mut right, mut total) = (0.0, 0.0, 0);
        for (seqs, ranks) in data {
            let r = self.score(seqs, pad).await?;
            loss += ranking_loss(&r, ranks).0;
            let (a, n) = pair_accuracy(&r, ranks);
            right += a;
            total += n;
        }
        Ok(RmReport { loss: loss / data.len().max(1) as f32, accuracy: if total == 0 { 0.0 } else { right / total as f32 }, skipped: false })
    }

    /// Shifts the bias so the given sequences (the SFT demonstrations) score mean 0.
    pub async fn normalize(&mut self, demos: &[Vec<u32>], pad: u32) -> Result<f32> {
        let r = self.score(demos, pad).await?;
        let mean = r.iter().sum::<f32>() / r.len().max(1) as f32;
        self.head.bias -= mean;
        Ok(mean)
    }
}
