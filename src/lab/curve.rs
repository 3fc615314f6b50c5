//! The learning curve: a labeler's win-rate of the policy against SFT on held-out prompts, now and
//! then as rankings come in.

use serde::Serialize;

use crate::bail;
use crate::config::SampleConfig;
use crate::engine::Engine;
use crate::error::Result;
use crate::labelers::Labeler;
use crate::reward::{dialogue_ids, RewardModel};
use crate::tokenizer::Tokenizer;

/// B's answer to prompt i is drawn with seed `seed + B_SEEDS + i`, apart from A's draws.
pub const B_SEEDS: u64 = 10_000;

/// How a win-rate against SFT is measured: the first `prompts` held-out prompts, `samples`
/// answers of each model to each, compared pairwise by the labeler; ties count half.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WinRateProtocol {
    pub prompts: usize,
    pub samples: usize,
}

/// The benchmark's: every held-out prompt four times, 96 pairs (a win-rate moves ±0.05 by chance).
pub const FULL: WinRateProtocol = WinRateProtocol { prompts: 24, samples: 4 };
/// The page's learning curve while the autopilot trains: a quarter of the cost, 24 pairs (±0.1).
pub const QUICK: WinRateProtocol = WinRateProtocol { prompts: 24, samples: 1 };

/// The page's learning curve while the autopilot trains: its labeler's win-rate every 4 rankings,
/// the quick way (a point costs about a third of an iteration).
pub const PAGE_CURVE: Cadence = Cadence { labeler: None, every: 4, protocol: QUICK };

/// One point of the learning curve.
#[derive(Clone, Debug, Serialize)]
pub struct CurvePoint {
    pub labeler: &'static str,
    pub rankings: usize,
    pub iterations: usize,
    pub win_rate_vs_sft: f32,
    /// KL to SFT of the last iteration's rollouts (nats per answer).
    pub kl: f32,
    pub ptx_loglik: f32,
    /// The same on a fixed batch of the training prose the γ term reads: rising above the
    /// held-out figure means the policy memorizes its prose rather than keeping the language.
    /// Measured here, not every iteration, to keep it off the page's path.
    pub ptx_loglik_seen: f32,
    pub seconds: f64,
}

/// When the lab measures a point: every `every` rankings, with the labeler (none: never).
#[derive(Clone, Debug)]
pub struct Cadence {
    pub labeler: Option<Labeler>,
    pub every: usize,
    pub protocol: WinRateProtocol,
}

impl Cadence {
    /// Whether the rankings went past a multiple of `every` since the last iteration.
    pub fn due(&self, before: usize, now: usize) -> Option<Labeler> {
        let l = self.labeler.as_ref()?;
        (self.every > 0 && now / self.every > before / self.every).then(|| l.clone())
    }
}

/// The labeler's preference for policy A over policy B on prompts: for each prompt, `samples`
/// answers from each, compared pairwise; ties count half.
#[allow(clippy::too_many_arguments)]
pub async fn win_rate<A: Engine, B: Engine>(
    a: &mut A,
    b: &mut B,
    tok: &Tokenizer,
    labeler: &Labeler,
    prompts: &[String],
    samples: usize,
    sc: &SampleConfig,
    seed: u64,
) -> Result<f32> {
    best_of_n_win_rate(a, b, tok, labeler, None::<&mut RewardModel<A>>, prompts, samples, 1, sc, seed).await
}

/// `win_rate` with each of A's answers the favourite of `n` drawn for it: by the labeler's own rule
/// (what a policy that knew the rule could reach without leaving A's answers, at a KL to A of at
/// most log n nats), or by a reward model's score when `judge` is one (what that reward model can
/// tell apart). n = 1 is `win_rate`, answer for answer.
#[allow(clippy::too_many_arguments)]
pub async fn best_of_n_win_rate<A: Engine, B: Engine, R: Engine>(
    a: &mut A,
    b: &mut B,
    tok: &Tokenizer,
    labeler: &Labeler,
    judge: Option<&mut RewardModel<R>>,
    prompts: &[String],
    samples: usize,
    n: usize,
    sc: &SampleConfig,
    seed: u64,
) -> Result<f32> {
    Ok(best_of_n(a, b, tok, labeler, judge, prompts, samples, n, sc, seed).await?.win_rate)
}

/// What `best_of_n` measured: the labeler's win-rate, and the score the picks had by which they
/// were picked, as a mean over the picks (the judge's reward, or the labeler's rule).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BestOf {
    pub win_rate: f32,
    pub mean_score: f32,
}

/// `best_of_n_win_rate` with the picks' mean score: with a judge, how high that reward model scores
/// what it picked (n = 1: A's own answers), to set beside the labeler's verdict.
#[allow(clippy::too_many_arguments)]
pub async fn best_of_n<A: Engine, B: Engine, R: Engine>(
    a: &mut A,
    b: &mut B,
    tok: &Tokenizer,
    labeler: &Labeler,
    mut judge: Option<&mut RewardModel<R>>,
    prompts: &[String],
    samples: usize,
    n: usize,
    sc: &SampleConfig,
    seed: u64,
) -> Result<BestOf> {
    if prompts.is_empty() || samples == 0 || n == 0 {
        bail!("a win-rate needs at least one prompt, one sample per prompt and one draw per sample");
    }
    let mut best: Vec<Vec<(f32, String)>> = vec![Vec::new(); prompts.len()];
    // draw c of every sample; draw 0 is win_rate's answers
    for c in 0..n as u64 {
        let drawn = answers_to(a, tok, prompts, samples, sc, seed + 100_000 * c).await?;
        for ((p, ya), kept) in prompts.iter().zip(drawn).zip(best.iter_mut()) {
            let scores = match judge.as_deref_mut() {
                Some(rm) => {
                    let n_ctx = rm.engine.config().n_ctx;
                    let seqs: Vec<Vec<u32>> = ya.iter().map(|y| dialogue_ids(tok, p, y, n_ctx)).collect::<Result<_>>()?;
                    rm.score(&seqs, tok.end).await?
                }
                None => ya.iter().map(|y| labeler.score(p, y)).collect(),
            };
            keep_best(kept, ya, scores);
        }
    }
    let picks = best.iter().flatten().count().max(1);
    let mean_score = best.iter().flatten().map(|(s, _)| s).sum::<f32>() / picks as f32;
    let chosen: Vec<Vec<String>> = best.into_iter().map(|b| b.into_iter().map(|(_, y)| y).collect()).collect();
    let yb = answers_to(b, tok, prompts, samples, sc, seed + B_SEEDS).await?;
    Ok(BestOf { win_rate: win_rate_of(labeler, prompts, &chosen, &yb), mean_score })
}

/// Each of `prompts`' `samples` answers from one engine, prompt i drawn with seed `seed + i`, all
/// the prompts as one batch of groups (`Engine::generate_groups`: a sharded engine splits them, the
/// CPU engine decodes each shard's groups in step); a group's answers are those `generate` gives it.
pub async fn answers_to<E: Engine>(
    e: &mut E,
    tok: &Tokenizer,
    prompts: &[String],
    samples: usize,
    sc: &SampleConfig,
    seed: u64,
) -> Result<Vec<Vec<String>>> {
    let n_ctx = e.config().n_ctx;
    let groups: Vec<(Vec<u32>, u64)> =
        prompts.iter().enumerate().map(|(i, p)| Ok((tok.prompt_ids(p, n_ctx)?, seed + i as u64))).collect::<Result<_>>()?;
    let outs = e.generate_groups(&groups, samples, tok.end, sc).await?;
    outs.iter().map(|g| g.iter().map(|o| tok.answer_text(o)).collect()).collect()
}

/// Keeps, sample by sample, the better scored of the kept answer and the new one (the kept on a tie).
fn keep_best(kept: &mut Vec<(f32, String)>, answers: Vec<String>, scores: Vec<f32>) {
    for (j, (y, s)) in answers.into_iter().zip(scores).enumerate() {
        match kept.get_mut(j) {
            None => kept.push((s, y)),
            Some(k) if s > k.0 => *k = (s, y),
            Some(_) => {}
        }
    }
}

/// The labeler's preference for answers A over answers B, sample j of A against sample j of B on
/// each prompt; ties count half.
pub fn win_rate_of(labeler: &Labeler, prompts: &[String], a: &[Vec<String>], b: &[Vec<String>]) -> f32 {
    let (mut total, mut pairs) = (0.0, 0);
    for ((p, xa), xb) in prompts.iter().zip(a).zip(b) {
        for (x, y) in xa.iter().zip(xb) {
            total += labeler.compare(p, x, y);
            pairs += 1;
        }
    }
    total / pairs.max(1) as f32
}
