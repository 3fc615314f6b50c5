//! The reward model: the GPT trunk with a scalar head read at the last token, trained on K-way
//! rankings with InstructGPT's loss −1/C(K,2)·Σ log σ(r(x,y_w) − r(x,y_l)) over all pairs of one
//! ranking, all pairs of a prompt in one batch element (K forward passes, not C(K,2)). A tied pair
//! counts as half a win each way, so every ranking teaches something, an all-tied one included
//! ("these differences do not matter"), as ties count half in the win-rate.

use crate::bail;
use crate::checkpoint::HeadState;
use crate::config::AdamSettings;
use crate::corpus::format_dialogue;
use crate::cpu::adamw::adamw_update;
use crate::engine::Engine;
use crate::error::Result;
use crate::rng::Rng;
use crate::tokenizer::Tokenizer;

/// Responses per ranking: InstructGPT's labelers ranked K = 4 to 9; 2 is a plain comparison.
pub const K_MIN: usize = 2;
pub const K_MAX: usize = 9;

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
        if !(K_MIN..=K_MAX).contains(&k) {
            bail!("a ranking needs {K_MIN} to {K_MAX} responses, got {k}");
        }
        if self.ranks.len() != k {
            bail!("a ranking of {k} responses needs {k} ranks, got {}", self.ranks.len());
        }
        Ok(())
    }
}

/// The rank of each score, 0 = the highest; equal scores share a rank (a tie).
pub fn ranks_of(scores: &[f32]) -> Vec<usize> {
    scores.iter().map(|s| scores.iter().filter(|&o| o > s).count()).collect()
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
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The ranking loss of one prompt's rewards (K) and its gradient d loss / d reward (K):
/// −1/C(K,2)·Σ_pairs [log σ(r_w − r_l)], where a tied pair contributes ½[log σ(d) + log σ(−d)].
pub fn ranking_loss(rewards: &[f32], ranks: &[usize]) -> (f32, Vec<f32>) {
    smoothed_ranking_loss(rewards, ranks, 0.0)
}

/// The ranking loss with each untied pair's label smoothed by ε: the winner is taken to be preferred
/// with probability 1 − ε, so a pair contributes −[(1−ε)·log σ(d) + ε·log σ(−d)] (a conservative
/// Bradley-Terry loss for labels of which some are reversed; ε = 0 is `ranking_loss`). Its
/// minimum sits at a finite margin, d = log((1−ε)/ε), instead of at d → ∞.
pub fn smoothed_ranking_loss(rewards: &[f32], ranks: &[usize], eps: f32) -> (f32, Vec<f32>) {
    weighted_ranking_loss(rewards, ranks, eps, PairWeight::Uniform)
}

/// How much each pair of a ranking counts in the ranking loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairWeight {
    /// Every pair alike (InstructGPT's loss).
    #[default]
    Uniform,
    /// An untied pair by how far apart the ranking put its two answers, |rank_w − rank_l|, over
    /// the mean of that distance among the ranking's untied pairs (so the weights still sum to the
    /// number of pairs); a tied pair counts 1. A person who ranks with noise reverses neighbours
    /// far more often than answers ranked far apart, so the far pairs carry more of what they want.
    RankDistance,
}

/// Where the head reads the trunk's hidden states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardRead {
    /// At the last token: r = h_T·w + b (InstructGPT's, and HF's `GPT2ForSequenceClassification`).
    #[default]
    Last,
    /// Summed over the answer's tokens, its end token included: r = Σ_t h_t·w + b. A preference
    /// for what an answer says word by word is a sum over its words, which this head holds in one
    /// linear map, where the last token must first gather it through attention.
    Answer,
}

impl RewardRead {
    /// Whether a reward model read so can be written as HF's `GPT2ForSequenceClassification`,
    /// which reads the last token.
    pub fn check_exportable(self) -> Result<()> {
        if self != RewardRead::Last {
            bail!("a reward model summed over the answer (--rm-read answer) has no GPT2ForSequenceClassification form, which reads the last token: leave --out off, or read the last token");
        }
        Ok(())
    }
}

/// Each pair's weight (i < j, row-major over the upper triangle), as `PairWeight` says.
pub fn pair_weights(ranks: &[usize], how: PairWeight) -> Vec<f32> {
    let k = ranks.len();
    let dist: Vec<f32> = (0..k).flat_map(|i| (i + 1..k).map(move |j| ranks[i].abs_diff(ranks[j]) as f32)).collect();
    if how == PairWeight::Uniform {
        return vec![1.0; dist.len()];
    }
    let untied = dist.iter().filter(|&&d| d > 0.0);
    let mean = untied.clone().sum::<f32>() / untied.count().max(1) as f32;
    dist.iter().map(|&d| if d > 0.0 { d / mean } else { 1.0 }).collect()
}

/// The smoothed ranking loss with each pair weighted as `how` says (`PairWeight::Uniform` is
/// `smoothed_ranking_loss`): the weights keep the loss's scale, so the learning rate means the same.
pub fn weighted_ranking_loss(rewards: &[f32], ranks: &[usize], eps: f32, how: PairWeight) -> (f32, Vec<f32>) {
    let k = rewards.len();
    let mut grad = vec![0.0; k];
    if k < 2 {
        return (0.0, grad);
    }
    let scale = 2.0 / (k * (k - 1)) as f32;
    let weights = pair_weights(ranks, how);
    let mut loss = 0.0;
    // −log σ(d) and its derivative −σ(−d), weighted, for the pair (i over j)
    let mut win = |i: usize, j: usize, w: f32, loss: &mut f32| {
        let d = rewards[i] - rewards[j];
        *loss -= w * log_sigmoid(d) * scale;
        let g = -w * sigmoid(-d) * scale;
        grad[i] += g;
        grad[j] -= g;
    };
    let mut pair = 0;
    for i in 0..k {
        for j in i + 1..k {
            let (w, l, p) = match ranks[i].cmp(&ranks[j]) {
                std::cmp::Ordering::Less => (i, j, 1.0 - eps),
                std::cmp::Ordering::Greater => (j, i, 1.0 - eps),
                std::cmp::Ordering::Equal => (i, j, 0.5),
            };
            let c = weights[pair];
            pair += 1;
            win(w, l, c * p, &mut loss);
            if p < 1.0 {
                win(l, w, c * (1.0 - p), &mut loss);
            }
        }
    }
    (loss, grad)
}

/// The ranking loss of one prompt's K answers followed by answers to other questions put after this
/// one (`other_answers`; rewards: K + others): `weighted_ranking_loss` over the K, plus for each
/// other answer the pair "the favourite beats it", −log σ(r_fav − r_other), weighted as one of the
/// ranking's C(K,2) pairs (tied favourites share it). The person never ranked those pairs: they say
/// only that an answer as liked as any to its own question is not what this question wanted, which
/// rankings of one question's answers alone cannot teach. Gradient: d loss / d reward (K + others).
pub fn loss_with_others(rewards: &[f32], ranks: &[usize], eps: f32, how: PairWeight) -> (f32, Vec<f32>) {
    let k = ranks.len();
    let (mut loss, mut grad) = weighted_ranking_loss(&rewards[..k], ranks, eps, how);
    grad.resize(rewards.len(), 0.0);
    let top = ranks.iter().copied().min().unwrap_or(0);
    let favourites: Vec<usize> = (0..k).filter(|&i| ranks[i] == top).collect();
    let w = 2.0 / (k * (k - 1)) as f32 / favourites.len() as f32;
    for o in k..rewards.len() {
        for &f in &favourites {
            let d = rewards[f] - rewards[o];
            loss -= w * log_sigmoid(d);
            grad[f] -= w * sigmoid(-d);
            grad[o] += w * sigmoid(-d);
        }
    }
    (loss, grad)
}

/// For each ranking, the favourites of up to `n` rankings of other questions (the nearest before it
/// first, wrapping round to the newest), each put after this ranking's question and cut to `n_ctx`
/// tokens: the other answers of `loss_with_others`. prompt_lens[i]: the tokens of ranking i's
/// question, its marker included.
pub fn other_answers(data: &[TokenizedRanking], prompt_lens: &[usize], n: usize, n_ctx: usize) -> Vec<Vec<Vec<u32>>> {
    let len = data.len();
    let question = |i: usize| &data[i].0[0][..prompt_lens[i].min(data[i].0[0].len())];
    let answer = |j: usize| {
        let (seqs, ranks) = &data[j];
        let f = (0..ranks.len()).min_by_key(|&a| ranks[a]).unwrap_or(0);
        &seqs[f][prompt_lens[j].min(seqs[f].len())..]
    };
    (0..len)
        .map(|i| {
            (1..len)
                .map(|d| (i + len - d) % len)
                .filter(|&j| question(j) != question(i))
                .take(n)
                .map(|j| {
                    let mut s = [question(i), answer(j)].concat();
                    s.truncate(n_ctx);
                    s
                })
                .collect()
        })
        .collect()
}

/// Rankings that teach relevance before any person's (`RmFit::pretrain`), preference model
/// pretraining after Askell et al. (2021): each orders a demonstration (question and answer) above
/// three answers to other questions put after its question, the three tied. `demos`: token
/// sequences of question, `marker`, answer; `count` rankings drawn with `rng`.
pub fn relevance_rankings(demos: &[Vec<u32>], marker: u32, n_ctx: usize, count: usize, rng: &mut Rng) -> Vec<TokenizedRanking> {
    // each demonstration as (question, answer), split once
    let parts: Vec<(&[u32], &[u32])> = demos.iter().map(|d| d.split_at(answer_start(d, marker).unwrap_or(d.len()))).collect();
    let Some(&(first, _)) = parts.first() else { return Vec::new() };
    if parts.iter().all(|&(q, _)| q == first) {
        return Vec::new();
    }
    (0..count)
        .map(|_| {
            let i = rng.below(demos.len());
            let question = parts[i].0;
            let mut seqs = vec![demos[i].clone()];
            while seqs.len() < 4 {
                let (q, answer) = parts[rng.below(demos.len())];
                if q != question {
                    let mut s = [question, answer].concat();
                    s.truncate(n_ctx);
                    seqs.push(s);
                }
            }
            (seqs, vec![0, 1, 1, 1])
        })
        .collect()
}

/// Where a sequence's answer starts: right after its last `marker` (`<|assistant|>`), if it has one.
pub fn answer_start(seq: &[u32], marker: u32) -> Option<usize> {
    seq.iter().rposition(|&t| t == marker).map(|p| p + 1)
}

/// Fraction of untied pairs the rewards order correctly (ties in reward count half).
pub fn pair_accuracy(rewards: &[f32], ranks: &[usize]) -> (f32, usize) {
    let pairs = ranking_pairs(ranks);
    let right: f32 = pairs
        .iter()
        .map(|&(w, l)| {
            if rewards[w] > rewards[l] {
                1.0
            } else if rewards[w] == rewards[l] {
                0.5
            } else {
                0.0
            }
        })
        .sum();
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

    /// The head as a saved lab keeps it.
    pub fn state(&self) -> HeadState {
        HeadState { w: self.w.clone(), bias: self.bias, m: self.m.clone(), v: self.v.clone(), t: self.t }
    }

    pub fn from_state(h: HeadState) -> Self {
        let c = h.w.len();
        ScalarHead { w: h.w, bias: h.bias, m: h.m, v: h.v, grad: vec![0.0; c], t: h.t }
    }

    pub fn step(&mut self, opt: &AdamSettings, lr: f32) {
        self.t += 1;
        adamw_update(&mut self.w, &self.grad, &mut self.m, &mut self.v, &opt.at(lr, self.t), 1.0, false);
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
    /// Where the head reads the trunk.
    pub read: RewardRead,
    /// The token after which an answer starts (`RewardRead::Answer`).
    pub marker: u32,
}

/// Loss and accuracy of one pass over rankings.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct RmReport {
    pub loss: f32,
    /// Pairwise accuracy over the untied pairs (NaN when every pair was tied).
    pub accuracy: f32,
    /// Untied pairs the accuracy counts.
    #[serde(skip)]
    pub pairs: usize,
    /// The step was skipped (non-finite loss or gradient).
    #[serde(skip)]
    pub skipped: bool,
}

impl<E: Engine> RewardModel<E> {
    pub fn new(engine: E, seed: u64) -> Self {
        let c = engine.config().n_embd;
        RewardModel { engine, head: ScalarHead::new(c, seed), steps: 0, read: RewardRead::Last, marker: 0 }
    }

    /// The same model reading its hidden states as `read` says, answers starting after `marker`.
    pub fn reading(mut self, read: RewardRead, marker: u32) -> Self {
        self.read = read;
        self.marker = marker;
        self
    }

    /// The positions of a row the head reads: its last, or its answer's from after the last
    /// `marker` to its end (the last alone when the row has no marker).
    pub fn read_positions(&self, seq: &[u32]) -> std::ops::Range<usize> {
        let len = seq.len();
        match self.read {
            RewardRead::Last => len - 1..len,
            RewardRead::Answer => answer_start(seq, self.marker).map_or(len - 1, |p| p.min(len - 1))..len,
        }
    }

    /// The sum of row `i`'s hidden states at the read positions (C): the head's input.
    fn read_hidden(&self, h: &[f32], t: usize, i: usize, seq: &[u32]) -> Vec<f32> {
        let c = self.engine.config().n_embd;
        let mut x = vec![0.0; c];
        for s in self.read_positions(seq) {
            x.iter_mut().zip(&h[(i * t + s) * c..][..c]).for_each(|(a, b)| *a += b);
        }
        x
    }

    /// Rewards of token sequences (each read as `read` says).
    pub async fn score(&mut self, seqs: &[Vec<u32>], pad: u32) -> Result<Vec<f32>> {
        let (max_b, _) = self.engine.capacity();
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(max_b) {
            let (tokens, t, lens) = pad_batch(chunk, pad);
            self.engine.forward_rows(&tokens, chunk.len(), t, &lens)?;
            let h = self.engine.hidden().await?;
            for (i, seq) in chunk.iter().enumerate() {
                out.push(self.head.apply(&self.read_hidden(&h, t, i, seq)));
            }
            crate::turns::pass().await;
        }
        Ok(out)
    }

    /// One AdamW step on a minibatch of rankings (already tokenized: one K-row batch per ranking).
    pub async fn train_step(&mut self, batch: &[TokenizedRanking], pad: u32, step: &StepOpt) -> Result<RmReport> {
        self.train_step_with(batch, &[], pad, step).await
    }

    /// One `train_step` per `batch` rankings, in order, passing the thread between steps: a
    /// pretraining pass (`RmFit::pretrain`, the relevance gate).
    pub async fn train_steps(&mut self, rankings: &[TokenizedRanking], batch: usize, pad: u32, step: &StepOpt) -> Result<()> {
        for chunk in rankings.chunks(batch.max(1)) {
            self.train_step(chunk, pad, step).await?;
            crate::turns::pass().await;
        }
        Ok(())
    }

    /// `train_step` with each ranking's answers to other questions (`others[i]` for `batch[i]`,
    /// as many as the engine's rows leave room for; none past the end of `others`), learned by
    /// `loss_with_others`. The accuracy counts the rankings' own pairs only.
    pub async fn train_step_with(&mut self, batch: &[TokenizedRanking], others: &[Vec<Vec<u32>>], pad: u32, step: &StepOpt) -> Result<RmReport> {
        let (opt, lr) = (&step.adam, step.lr);
        let c = self.engine.config().n_embd;
        let (rows, _) = self.engine.capacity();
        self.engine.zero_grad()?;
        let mut report = RmReport::default();
        let (mut right, mut total) = (0.0, 0);
        for (b, (own, ranks)) in batch.iter().enumerate() {
            let other = others.get(b).map_or(&[][..], |o| &o[..o.len().min(rows.saturating_sub(own.len()))]);
            let seqs: Vec<&[u32]> = own.iter().chain(other).map(Vec::as_slice).collect();
            let (tokens, t, lens) = pad_batch(&seqs, pad);
            self.engine.forward_rows(&tokens, seqs.len(), t, &lens)?;
            let h = self.engine.hidden().await?;
            let read: Vec<Vec<f32>> = seqs.iter().enumerate().map(|(i, seq)| self.read_hidden(&h, t, i, seq)).collect();
            let rewards: Vec<f32> = read.iter().map(|x| self.head.apply(x)).collect();
            let (loss, dr) = loss_with_others(&rewards, ranks, step.label_smoothing, step.pair_weight);
            let (r, n) = pair_accuracy(&rewards[..own.len()], ranks);
            right += r;
            total += n;
            report.loss += loss / batch.len() as f32;
            let mut dh = vec![0.0; seqs.len() * t * c];
            for (i, &d) in dr.iter().enumerate() {
                let d = d / batch.len() as f32;
                for s in self.read_positions(seqs[i]) {
                    dh[(i * t + s) * c..][..c].iter_mut().zip(&self.head.w).for_each(|(r, w)| *r = d * w);
                }
                self.head.grad.iter_mut().zip(&read[i]).for_each(|(g, x)| *g += d * x);
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
        let rep = self.engine.update(&opt.at(lr, self.steps), step.grad_clip).await?;
        if rep.applied {
            self.head.step(opt, lr * step.head_lr_scale);
        } else {
            self.head.grad.fill(0.0);
            report.skipped = true;
        }
        report.accuracy = accuracy(right, total);
        report.pairs = total;
        Ok(report)
    }

    /// Loss and pairwise accuracy on rankings without training.
    pub async fn evaluate(&mut self, data: &[TokenizedRanking], pad: u32) -> Result<RmReport> {
        let mut scored = Vec::with_capacity(data.len());
        for (seqs, ranks) in data {
            scored.push((self.score(seqs, pad).await?, ranks.clone()));
        }
        Ok(report_on(&scored))
    }

    /// Starts again from the SFT trunk and a fresh head, with a fresh optimizer.
    pub fn reset(&mut self, sft: &[f32], seed: u64) -> Result<()> {
        self.engine.set_params(sft)?;
        self.engine.reset_optimizer()?;
        self.head = ScalarHead::new(self.engine.config().n_embd, seed);
        self.steps = 0;
        Ok(())
    }

    /// Steps over the rankings as `schedule` lists them (passes of minibatches of indices into
    /// `data.rankings`); reports the last pass's mean loss and pairwise accuracy, and how many steps were
    /// skipped.
    pub async fn fit(&mut self, data: FitData<'_>, schedule: &Schedule, pad: u32, step: &StepOpt) -> Result<(RmReport, usize)> {
        let FitData { rankings: data, others } = data;
        let mut skipped = 0;
        let mut last = RmReport::default();
        for pass in schedule {
            let (mut loss, mut right, mut pairs, mut n) = (0.0, 0.0, 0, 0);
            for idx in pass {
                let chunk: Vec<TokenizedRanking> = idx.iter().map(|&i| data[i].clone()).collect();
                let other: Vec<Vec<Vec<u32>>> = idx.iter().map(|&i| others.get(i).cloned().unwrap_or_default()).collect();
                let r = self.train_step_with(&chunk, &other, pad, step).await?;
                crate::turns::pass().await;
                if r.skipped {
                    skipped += 1;
                    continue;
                }
                loss += r.loss;
                if r.pairs > 0 {
                    right += r.accuracy * r.pairs as f32;
                    pairs += r.pairs;
                }
                n += 1;
            }
            last = RmReport { loss: loss / n.max(1) as f32, accuracy: accuracy(right, pairs), pairs, skipped: false };
        }
        Ok((last, skipped))
    }

    /// Scales and shifts the head so the given sequences (the SFT demonstrations) score mean 0 and
    /// standard deviation 1, as lm-human-preferences does under its reference policy: however a fit
    /// turns out, one unit of reward means one spread of SFT's answers, so β keeps one meaning.
    /// Returns the mean and spread before.
    pub async fn normalize(&mut self, demos: &[Vec<u32>], pad: u32) -> Result<(f32, f32)> {
        let r = self.score(demos, pad).await?;
        let (mean, std) = mean_std(&r);
        // a head that scores everything alike has no spread to divide by: only shift it
        let gain = if std > 1e-6 { 1.0 / std } else { 1.0 };
        self.head.w.iter_mut().for_each(|w| *w *= gain);
        self.head.bias = (self.head.bias - mean) * gain;
        Ok((mean, std))
    }
}

/// How the reward model is fitted to the rankings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RmFit {
    pub mode: RmMode,
    /// Passes over every ranking in a refit.
    pub epochs: usize,
    /// Steps per new ranking when warm-started (an iteration that takes several: for at most
    /// `AlignConfig::max_updates` of them).
    pub steps: usize,
    pub lr: f32,
    /// Rankings per step.
    pub batch: usize,
    /// Reward models in the ensemble, each a trunk and a head of its own.
    pub members: usize,
    /// The policy optimizes the members' mean score less this many times their spread.
    pub penalty: f32,
    /// A warm fit starts afresh, as a refit, while there are at most this many rankings: a fit
    /// to the first handful is not carried on for good (0: never).
    #[serde(default)]
    pub refit_until: usize,
    /// The head's step size as a multiple of the trunk's: a head that learns fast leaves the
    /// trunk's features less distorted by a handful of rankings (linear probing, then fine-tuning).
    #[serde(default = "one")]
    pub head_lr_scale: f32,
    /// The ranking loss's label smoothing ε (`smoothed_ranking_loss`; 0: none).
    #[serde(default)]
    pub label_smoothing: f32,
    /// How much each pair of a ranking counts in the ranking loss (`PairWeight`).
    #[serde(default)]
    pub pair_weight: PairWeight,
    /// A warm fit's steps per new ranking while the reward model already agrees with the newest
    /// rankings before learning from them (`Agreement::share` at least `sure_accuracy`), in place
    /// of `steps`: replays that a model which predicts the rankings does not need (0: always
    /// `steps`).
    #[serde(default)]
    pub sure_steps: usize,
    /// The agreement from which `sure_steps` applies.
    #[serde(default = "three_quarters")]
    pub sure_accuracy: f32,
    /// Where the head reads the trunk (`RewardRead`).
    #[serde(default)]
    pub read: RewardRead,
    /// Favourites of other questions' rankings each ranking's favourite learns to beat after its
    /// own question (`loss_with_others`; 0: none).
    #[serde(default)]
    pub others: usize,
    /// Steps on `relevance_rankings` of the SFT demonstrations each time the reward model starts
    /// from SFT, before it learns from the person's rankings (0: none).
    #[serde(default)]
    pub pretrain: usize,
    /// Pretraining steps of a relevance gate beside the reward model (`relevance::RelevanceGate`;
    /// 0: none).
    #[serde(default)]
    pub gate: usize,
    /// The ranking from which the gate trains and lowers rewards (1: from the first). Later, its
    /// pretraining can run while the person reads the first groups, and the first rankings learn
    /// as without it.
    #[serde(default = "first_ranking")]
    pub gate_from: usize,
    /// How far under the demonstrations' mean, in their spreads, an answer's relevance must fall
    /// before the gate lowers its reward (`relevance::gate_penalty`).
    #[serde(default = "default_gate_margin")]
    pub gate_margin: f32,
    /// The policy optimizes a moving average of the reward model's weights, this much of the last
    /// average and the rest the new fit's, after each fit (`reward_average`; 0: the fit itself).
    #[serde(default)]
    pub average: f32,
}

fn first_ranking() -> usize {
    1
}

/// A saved lab from before the margin was an option: the default, from its one place.
fn default_gate_margin() -> f32 {
    crate::settings::AlignConfig::default().rm.gate_margin
}

fn one() -> f32 {
    1.0
}

fn three_quarters() -> f32 {
    0.75
}

impl RmFit {
    /// A warm fit's steps per new ranking, given the reward model's agreement with the newest
    /// rankings (NaN, none measured yet: not sure).
    pub fn steps_at(&self, agreement: f32) -> usize {
        if self.sure_steps > 0 && agreement >= self.sure_accuracy {
            self.sure_steps
        } else {
            self.steps
        }
    }

    /// How the fit to `n` rankings runs.
    pub fn mode_at(&self, n: usize) -> RmMode {
        if n <= self.refit_until {
            RmMode::Refit
        } else {
            self.mode
        }
    }
}

/// What every step of a fit shares: the learning rate, AdamW's settings, the gradient clip.
#[derive(Clone, Copy, Debug)]
pub struct StepOpt {
    pub lr: f32,
    /// The head's step size as a multiple of `lr`.
    pub head_lr_scale: f32,
    /// ε of `smoothed_ranking_loss`.
    pub label_smoothing: f32,
    /// How much each pair counts (`weighted_ranking_loss`).
    pub pair_weight: PairWeight,
    pub adam: AdamSettings,
    pub grad_clip: f32,
}

/// Whether the reward model starts each fit afresh or goes on from the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RmMode {
    /// From the SFT trunk and a fresh head, `epochs` passes over every ranking: the fit does not
    /// depend on when rankings came, and costs more with each.
    Refit,
    /// From the last fit, `steps` steps over minibatches of the new rankings and a replay of the
    /// others: the cost of an iteration stays the same however many rankings there are.
    Warm,
}

/// Iterations' measures of agreement that `Agreement` pools.
pub const AGREEMENT_WINDOW: usize = 4;

/// How well the reward model predicted the newest rankings before it learned from them: the
/// share of their untied pairs it ordered as ranked, pooled over the last `AGREEMENT_WINDOW`
/// iterations that measured any (one ranking's 15 pairs say little alone).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agreement {
    /// (accuracy, untied pairs) per measuring iteration, oldest first.
    pub recent: std::collections::VecDeque<(f32, usize)>,
}

impl Agreement {
    /// Adds an iteration's measure; one without untied pairs (or before any fit) measures nothing.
    pub fn push(&mut self, accuracy: f32, pairs: usize) {
        if pairs == 0 || !accuracy.is_finite() {
            return;
        }
        if self.recent.len() == AGREEMENT_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back((accuracy, pairs));
    }

    /// The pooled share of pairs ordered as ranked (NaN before any measure).
    pub fn share(&self) -> f32 {
        let pairs: usize = self.recent.iter().map(|&(_, n)| n).sum();
        let right: f32 = self.recent.iter().map(|&(a, n)| a * n as f32).sum();
        accuracy(right, pairs)
    }
}

/// The steps of a fit: passes of minibatches, each a list of indices of rankings.
pub type Schedule = Vec<Vec<Vec<usize>>>;

/// `epochs` passes over `n` rankings in minibatches of `batch`, reshuffled before each pass.
pub fn refit_schedule(n: usize, epochs: usize, batch: usize, rng: &mut Rng) -> Schedule {
    let mut order: Vec<usize> = (0..n).collect();
    (0..epochs)
        .map(|_| {
            rng.shuffle(&mut order);
            order.chunks(batch.max(1)).map(|c| c.to_vec()).collect()
        })
        .collect()
}

/// `steps` minibatches of `batch` rankings out of `n`: the newest `fresh` first, then the others
/// drawn at random (none twice in a minibatch). One pass.
pub fn replay_schedule(n: usize, fresh: usize, steps: usize, batch: usize, rng: &mut Rng) -> Schedule {
    let mut new: Vec<usize> = (n - fresh.min(n)..n).collect();
    let step = (0..steps)
        .map(|_| {
            let mut chosen: Vec<usize> = new.drain(..new.len().min(batch)).collect();
            let mut rest: Vec<usize> = (0..n).filter(|i| !chosen.contains(i)).collect();
            rng.shuffle(&mut rest);
            chosen.extend(rest.into_iter().take(batch.saturating_sub(chosen.len())));
            chosen
        })
        .collect();
    vec![step]
}

/// One ranking ready for the trunk: K token sequences and their ranks.
pub type TokenizedRanking = (Vec<Vec<u32>>, Vec<usize>);

/// What a fit learns from: the rankings, and `others[i]`, ranking i's answers to other questions
/// (`other_answers`, learned by `train_step_with`; none past the end of `others`).
#[derive(Clone, Copy)]
pub struct FitData<'a> {
    pub rankings: &'a [TokenizedRanking],
    pub others: &'a [Vec<Vec<u32>>],
}

/// Mean ranking loss and pairwise accuracy of rewards given to rankings: (rewards, ranks) each.
pub fn report_on(scored: &[(Vec<f32>, Vec<usize>)]) -> RmReport {
    let (mut loss, mut right, mut total) = (0.0, 0.0, 0);
    for (r, ranks) in scored {
        loss += ranking_loss(r, ranks).0;
        let (a, n) = pair_accuracy(r, ranks);
        right += a;
        total += n;
    }
    RmReport { loss: loss / scored.len().max(1) as f32, accuracy: accuracy(right, total), pairs: total, skipped: false }
}

fn accuracy(right: f32, pairs: usize) -> f32 {
    if pairs == 0 {
        f32::NAN
    } else {
        right / pairs as f32
    }
}

/// Mean and (population) standard deviation.
pub fn mean_std(xs: &[f32]) -> (f32, f32) {
    let n = xs.len().max(1) as f32;
    let mean = xs.iter().sum::<f32>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    (mean, var.sqrt())
}
