//! Several reward models fitted to the same rankings, each from its own head and its own order of
//! the data: where they agree the preference is learned; where they disagree the policy has gone
//! where the rankings say little. The score the policy optimizes is their mean less a multiple of
//! their spread (Coste et al.'s uncertainty-weighted optimization).

use crate::engine::Engine;
use crate::error::Result;
use crate::reward::{
    mean_std, refit_schedule, replay_schedule, FitData, RewardModel, RewardRead, RmFit, RmMode, RmReport, StepOpt, TokenizedRanking,
};
use crate::rng::Rng;

pub struct RewardEnsemble<E: Engine> {
    pub members: Vec<RewardModel<E>>,
}

/// Each member's head starts from its own seed.
fn member_seed(seed: u64, i: usize) -> u64 {
    seed.wrapping_add(i as u64 * 0x9E37_79B9)
}

impl<E: Engine> RewardEnsemble<E> {
    /// Members on the given trunks (each a copy of the SFT model), heads from `seed`.
    pub fn new(trunks: Vec<E>, seed: u64) -> Self {
        RewardEnsemble { members: trunks.into_iter().enumerate().map(|(i, e)| RewardModel::new(e, member_seed(seed, i))).collect() }
    }

    /// Every member reading its hidden states as `read` says (`RewardModel::reading`).
    pub fn reading(self, read: RewardRead, marker: u32) -> Self {
        RewardEnsemble { members: self.members.into_iter().map(|m| m.reading(read, marker)).collect() }
    }

    pub fn first_mut(&mut self) -> &mut RewardModel<E> {
        &mut self.members[0]
    }

    /// Every member's scores of the sequences: (members, sequences).
    pub async fn member_scores(&mut self, seqs: &[Vec<u32>], pad: u32) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(self.members.len());
        for m in self.members.iter_mut() {
            out.push(m.score(seqs, pad).await?);
        }
        Ok(out)
    }

    /// The score the policy optimizes: the members' mean less `penalty` times their spread.
    pub async fn score(&mut self, seqs: &[Vec<u32>], pad: u32, penalty: f32) -> Result<Vec<f32>> {
        let all = self.member_scores(seqs, pad).await?;
        Ok(conservative(&all, penalty))
    }

    /// Starts every member again from the SFT trunk with a fresh head and optimizer.
    pub fn reset(&mut self, sft: &[f32], seed: u64) -> Result<()> {
        for (i, m) in self.members.iter_mut().enumerate() {
            m.reset(sft, member_seed(seed, i))?;
        }
        Ok(())
    }

    /// Fits every member to the rankings (see `RewardModel::fit`), each on its own schedule drawn
    /// from the shared random stream in turn; reports the first member's last pass and the steps
    /// skipped in all.
    pub async fn fit(&mut self, data: FitData<'_>, fresh: usize, pad: u32, fit: &RmFit, step: &StepOpt, rng: &mut Rng) -> Result<(RmReport, usize)> {
        let (mut first, mut skipped) = (None, 0);
        for m in self.members.iter_mut() {
            let schedule = match fit.mode {
                RmMode::Refit => refit_schedule(data.rankings.len(), fit.epochs, fit.batch, rng),
                RmMode::Warm => replay_schedule(data.rankings.len(), fresh, fit.steps, fit.batch, rng),
            };
            let (report, s) = m.fit(data, &schedule, pad, step).await?;
            first.get_or_insert(report);
            skipped += s;
        }
        Ok((first.unwrap_or_default(), skipped))
    }

    /// Normalizes each member on the SFT demonstrations (mean 0, spread 1).
    pub async fn normalize(&mut self, demos: &[Vec<u32>], pad: u32) -> Result<()> {
        for m in self.members.iter_mut() {
            m.normalize(demos, pad).await?;
        }
        Ok(())
    }

    /// Loss and pairwise accuracy of the members' mean score on rankings.
    pub async fn evaluate(&mut self, data: &[TokenizedRanking], pad: u32) -> Result<RmReport> {
        if self.members.len() == 1 {
            return self.members[0].evaluate(data, pad).await;
        }
        let mut scored = Vec::with_capacity(data.len());
        for (seqs, ranks) in data {
            let all = self.member_scores(seqs, pad).await?;
            scored.push((conservative(&all, 0.0), ranks.clone()));
        }
        Ok(crate::reward::report_on(&scored))
    }
}

/// Per sequence: the members' mean score and their (population) spread (members × sequences in).
pub fn member_stats(all: &[Vec<f32>]) -> Vec<(f32, f32)> {
    (0..all[0].len()).map(|j| mean_std(&all.iter().map(|m| m[j]).collect::<Vec<_>>())).collect()
}

/// Per sequence: the mean over members less `penalty` times their (population) spread. One member
/// is its own score.
pub fn conservative(all: &[Vec<f32>], penalty: f32) -> Vec<f32> {
    if all.len() == 1 {
        return all[0].clone();
    }
    member_stats(all).into_iter().map(|(mean, std)| mean - penalty * std).collect()
}

/// How far apart the reward models place a group's K answers (members × answers): the range of
/// their conservative scores. A group they score alike is likely all ties to whoever ranks it,
/// and a ranking of it teaches little.
pub fn score_range(all: &[Vec<f32>], penalty: f32) -> f32 {
    let s = conservative(all, penalty);
    let (lo, hi) = s.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if s.is_empty() {
        0.0
    } else {
        hi - lo
    }
}

/// How much the members disagree on the order of K answers (members × answers): over every pair,
/// the spread across members of the probability σ(r_i − r_j) that the first beats the second,
/// averaged. 0 for one member.
pub fn disagreement(all: &[Vec<f32>]) -> f32 {
    let k = all.first().map_or(0, |m| m.len());
    let (mut sum, mut pairs) = (0.0, 0);
    for i in 0..k {
        for j in i + 1..k {
            let p: Vec<f32> = all.iter().map(|m| 1.0 / (1.0 + (m[j] - m[i]).exp())).collect();
            sum += mean_std(&p).1;
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        sum / pairs as f32
    }
}
