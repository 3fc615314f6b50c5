//! A relevance gate beside the person's reward model (`RmFit::gate`): a second reward model,
//! pretrained once on rankings that put an SFT demonstration above answers to other questions
//! (`relevance_rankings`) and then frozen. Every pair a person ranks shares its question, so their
//! reward model cannot learn whether an answer is to the question; the gate lowers the policy's
//! reward where the answer is clearly not, and leaves every other answer's reward as it was.

use crate::engine::Engine;
use crate::error::Result;
use crate::reward::{relevance_rankings, RewardModel, StepOpt, TokenizedRanking};
use crate::rng::Rng;

/// The gate's penalty for a normalized relevance score (demonstrations mean 0, spread 1): nothing
/// above `-margin` (`RmFit::gate_margin`), one unit of reward per spread below it.
pub fn gate_penalty(relevance: f32, margin: f32) -> f32 {
    (relevance + margin).min(0.0)
}

pub struct RelevanceGate<E: Engine> {
    model: RewardModel<E>,
    /// Pretraining steps (`RmFit::gate`).
    steps: usize,
    /// How far under the demonstrations a relevance must fall to be lowered (`RmFit::gate_margin`).
    margin: f32,
    /// Seeds the pretraining's draws.
    seed: u64,
    /// The pretraining's rankings, drawn at its first step; the steps taken of them.
    drawn: Vec<TokenizedRanking>,
    done: usize,
    trained: bool,
}

/// What the gate's pretraining is given: the SFT demonstrations and how to read them, and the
/// reward model's optimizer settings.
pub struct GateData<'a> {
    pub demos: &'a [Vec<u32>],
    pub marker: u32,
    pub pad: u32,
    pub n_ctx: usize,
    pub batch: usize,
    pub step: StepOpt,
}

impl<E: Engine> RelevanceGate<E> {
    /// The gate on `engine` (a copy of the SFT model), its head and its draws from `seed`.
    pub fn new(engine: E, steps: usize, margin: f32, seed: u64) -> Self {
        RelevanceGate { model: RewardModel::new(engine, seed), steps, margin, seed, drawn: Vec::new(), done: 0, trained: false }
    }

    /// Pretrains the gate the first time it is needed, from the same draws every time (a restored
    /// lab pretrains it again to the same weights), then normalizes it on the demonstrations.
    pub async fn ensure_trained(&mut self, data: &GateData<'_>) -> Result<()> {
        self.train_some(usize::MAX, data).await.map(|_| ())
    }

    /// At most `steps` more of the pretraining's steps, normalizing once they are all taken: the
    /// page runs them while the person reads, in short turns. Whether the gate is trained. In
    /// turns or at once, the same steps on the same draws: the same weights.
    pub async fn train_some(&mut self, steps: usize, data: &GateData<'_>) -> Result<bool> {
        if self.trained {
            return Ok(true);
        }
        let batch = data.batch.max(1);
        if self.drawn.is_empty() {
            self.drawn = relevance_rankings(data.demos, data.marker, data.n_ctx, self.steps * batch, &mut Rng::new(self.seed));
        }
        let end = self.done.saturating_add(steps).min(self.steps);
        let rankings = &self.drawn[(self.done * batch).min(self.drawn.len())..(end * batch).min(self.drawn.len())];
        self.model.train_steps(rankings, batch, data.pad, &data.step).await?;
        self.done = end;
        if self.done == self.steps {
            self.model.normalize(data.demos, data.pad).await?;
            self.drawn = Vec::new();
            self.trained = true;
        }
        Ok(self.trained)
    }

    /// Each sequence's penalty (≤ 0), once trained; none before.
    pub async fn penalties(&mut self, seqs: &[Vec<u32>], pad: u32) -> Result<Vec<f32>> {
        if !self.trained {
            return Ok(vec![0.0; seqs.len()]);
        }
        Ok(self.model.score(seqs, pad).await?.into_iter().map(|g| gate_penalty(g, self.margin)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_lowers_only_answers_far_under_the_demonstrations() {
        assert_eq!(gate_penalty(0.5, 2.0), 0.0);
        assert_eq!(gate_penalty(-2.0, 2.0), 0.0);
        assert_eq!(gate_penalty(-1.9, 2.0), 0.0);
        assert!((gate_penalty(-2.5, 2.0) + 0.5).abs() < 1e-6);
        assert!((gate_penalty(-5.0, 2.0) + 3.0).abs() < 1e-6);
        // a wider margin lowers fewer answers, and those it lowers by less
        assert_eq!(gate_penalty(-2.5, 3.0), 0.0);
        assert!((gate_penalty(-5.0, 3.0) + 2.0).abs() < 1e-6);
    }
}
