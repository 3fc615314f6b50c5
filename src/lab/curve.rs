//! The learning curve: a labeler's win-rate of the policy against SFT on held-out prompts, now and
//! then as rankings come in.

use serde::Serialize;

use crate::bail;
use crate::config::SampleConfig;
use crate::engine::Engine;
use crate::error::Result;
use crate::labelers::Labeler;
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
    if prompts.is_empty() || samples == 0 {
        bail!("a win-rate needs at least one prompt and one sample per prompt");
    }
    let mut total = 0.0;
    let mut n = 0;
    for (i, p) in prompts.iter().enumerate() {
        let ids = tok.prompt_ids(p, a.config().n_ctx)?;
        let ya = answers(a, tok, &ids, samples, sc, seed + i as u64).await?;
        let yb = answers(b, tok, &ids, samples, sc, seed + 10_000 + i as u64).await?;
        for (x, y) in ya.iter().zip(&yb) {
            total += labeler.compare(p, x, y);
            n += 1;
        }
        crate::turns::pass().await;
    }
    Ok(total / n as f32)
}
