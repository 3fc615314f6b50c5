//! Methods side by side on the same rankings: a method trained from the base model on this lab's
//! rankings, one per iteration in the order they came, with a labeler's learning curve, its KL and
//! its cost. The page's "Compare methods" and `rlhf compare` both run it.

use serde::Serialize;

use super::curve::{Cadence, CurvePoint, WinRateProtocol};
use super::{AlignConfig, Lab};
use crate::engine::Engine;
use crate::error::Result;
use crate::labelers::Labeler;
use crate::methods::MethodKind;

/// One method's run: its learning curve (a point every `every` rankings and at the end) and the
/// seconds its iterations took.
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    pub method: MethodKind,
    pub title: &'static str,
    pub curve: Vec<CurvePoint>,
    pub seconds: f64,
}

impl<E: Engine> Lab<E> {
    /// `method` trained from the base model on this lab's rankings, with this lab's settings and
    /// engines, one ranking per iteration; the labeler's win-rate every `every` rankings and after
    /// the last (see `WinRateProtocol`).
    pub async fn replay(&self, method: MethodKind, labeler: &Labeler, every: usize, protocol: WinRateProtocol) -> Result<Replay> {
        let cfg = AlignConfig { method, ..self.config() };
        let lab = Lab::with(self.sft.clone(), self.model, self.tok.clone(), cfg, self.make.clone())?;
        lab.set_watch_prompts(Vec::new())?;
        lab.set_cadence(Cadence { labeler: Some(labeler.clone()), every, protocol });
        lab.start().await?;
        let (mut curve, mut seconds) = (Vec::new(), 0.0);
        for r in self.rankings() {
            lab.submit(r, None)?;
            let record = lab.iterate().await?;
            let m = &record.metrics;
            seconds += m.seconds_reward_model + m.seconds_scoring + m.seconds_update + m.seconds_generation;
            curve.extend(record.curve);
        }
        let n = lab.rankings().len();
        if curve.last().is_none_or(|c| c.rankings != n) {
            curve.push(lab.evaluate(labeler, protocol).await?);
        }
        Ok(Replay { method, title: method.info().title, curve, seconds })
    }
}
