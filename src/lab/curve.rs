//! The learning curve: a labeler's win-rate of the policy against SFT on held-out prompts, now and
//! then as rankings come in.

use serde::Serialize;

use crate::bail;
use crate::config::SampleConfig;
use crate::engine::Engine;
use crate::error::Result;
use crate::labelers::Labeler;
use crate::reward::{dialogue_ids, RewardModel};
use crate::sample::answers;
use crate::tokenizer::Tokenizer;

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
    mut judge: Option<&mut RewardModel<R>>,
    prompts: &[String],
    samples: usize,
    n: usize,
    sc: &SampleConfig,
    seed: u64,
) -> Result<f32> {
    if prompts.is_empty() || samples == 0 || n == 0 {
        bail!("a win-rate needs at least one prompt, one sample per prompt and one draw per sample");
    }
    let mut total = 0.0;
    let mut pairs = 0;
    for (i, p) in prompts.iter().enumerate() {
        let ids = tok.prompt_ids(p, a.config().n_ctx)?;
        let mut best: Vec<(f32, String)> = Vec::new();
        // draw c of every sample; draw 0 is win_rate's answers (B's seeds are 10 000 above)
        for c in 0..n as u64 {
            let ya = answers(a, tok, &ids, samples, sc, seed + i as u64 + 100_000 * c).await?;
            let scores = match judge.as_deref_mut() {
                Some(rm) => {
                    let n_ctx = rm.engine.config().n_ctx;
                    let seqs: Vec<Vec<u32>> = ya.iter().map(|y| dialogue_ids(tok, p, y, n_ctx)).collect::<Result<_>>()?;
                    rm.score(&seqs, tok.end).await?
                }
                None => ya.iter().map(|y| labeler.score(p, y)).collect(),
            };
            for (j, (y, s)) in ya.into_iter().zip(scores).enumerate() {
                match best.get_mut(j) {
                    None => best.push((s, y)),
                    Some(kept) if s > kept.0 => *kept = (s, y),
                    Some(_) => {}
                }
            }
        }
        let yb = answers(b, tok, &ids, samples, sc, seed + 10_000 + i as u64).await?;
        for ((_, x), y) in best.iter().zip(&yb) {
            total += labeler.compare(p, x, y);
            pairs += 1;
        }
        crate::turns::pass().await;
    }
    Ok(total / pairs as f32)
}
