//! A moving average of the reward model's weights (`RmFit::average`), which the policy optimizes
//! in place of the last fit. WARM (Ramé et al. 2024) averages reward models fine-tuned from one
//! pretrained model in weight space: one model, scored at no extra cost, that keeps what the fits
//! share and less of what one fit picked up from a few noisy rankings. Here the fits are the warm
//! fit's successive states, one per iteration, each a few steps on from the last.

use crate::engine::Engine;
use crate::error::Result;
use crate::reward::RewardModel;

/// `avg ← decay·avg + (1 − decay)·new`, element by element.
pub fn ema_into(avg: &mut [f32], new: &[f32], decay: f32) {
    avg.iter_mut().zip(new).for_each(|(a, &n)| *a = decay * *a + (1.0 - decay) * n);
}

pub struct AveragedReward<E: Engine> {
    model: RewardModel<E>,
    /// The last average's weight in the next (0: the last fit alone).
    decay: f32,
    /// The trunk's averaged parameters (empty before the first fit).
    trunk: Vec<f32>,
}

impl<E: Engine> AveragedReward<E> {
    /// The average on `model` (a copy of the SFT model that reads as the fitted ones do).
    pub fn new(model: RewardModel<E>, decay: f32) -> Self {
        AveragedReward { model, decay, trunk: Vec::new() }
    }

    /// Takes a fit into the average (the first fit is the average), then normalizes the average on
    /// the demonstrations as the fitted model is, so that β keeps its meaning.
    pub async fn take(&mut self, fitted: &mut RewardModel<E>, demos: &[Vec<u32>], pad: u32) -> Result<()> {
        let params = fitted.engine.params().await?;
        let head = &fitted.head;
        if self.trunk.is_empty() {
            self.trunk = params;
            self.model.head.w.clone_from(&head.w);
            self.model.head.bias = head.bias;
        } else {
            ema_into(&mut self.trunk, &params, self.decay);
            ema_into(&mut self.model.head.w, &head.w, self.decay);
            self.model.head.bias = self.decay * self.model.head.bias + (1.0 - self.decay) * head.bias;
        }
        self.model.engine.set_params(&self.trunk)?;
        self.model.normalize(demos, pad).await?;
        Ok(())
    }

    /// Whether the average holds a fit: before its first (and in a restored lab, whose average is
    /// not saved, before the next fit) the fitted model scores in its place.
    pub fn ready(&self) -> bool {
        !self.trunk.is_empty()
    }

    /// Rewards of token sequences under the average.
    pub async fn score(&mut self, seqs: &[Vec<u32>], pad: u32) -> Result<Vec<f32>> {
        self.model.score(seqs, pad).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_weighs_the_last_average_by_the_decay() {
        let mut avg = vec![1.0, -2.0, 0.0];
        ema_into(&mut avg, &[3.0, 2.0, 4.0], 0.5);
        assert_eq!(avg, vec![2.0, 0.0, 2.0]);
        ema_into(&mut avg, &[0.0, 4.0, 2.0], 0.75);
        assert_eq!(avg, vec![1.5, 1.0, 2.0]);
        ema_into(&mut avg, &[7.0, 7.0, 7.0], 0.0);
        assert_eq!(avg, vec![7.0, 7.0, 7.0]);
    }
}
