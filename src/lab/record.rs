//! One iteration as the lab runs it: the rankings that came in handed to the trainer, and what the
//! iteration leaves behind: its history record (metrics, the watched answers, a learning-curve
//! point when one is due), the groups of the new batch offered for ranking, and the serving copy
//! of the policy brought up to date.

use super::curve::{answers_to, win_rate_of, CurvePoint, WinRateProtocol, B_SEEDS};
use super::trainer::{IterationMetrics, Prose, Trainer};
use super::views::Watched;
use super::{Lab, Selection};
use crate::clock::now_ms;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::labelers::Labeler;
use crate::reward::Ranking;
use crate::settings::SALT_EVAL;

/// What one iteration leaves in the history: its metrics, the watched answers, and a point of the
/// learning curve when one was due.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Record {
    #[serde(flatten)]
    pub metrics: IterationMetrics,
    pub watch: Vec<Watched>,
    /// The learning-curve point's win-rate, for the page's plot.
    pub win_rate: Option<f32>,
    pub curve: Option<CurvePoint>,
    pub labeler: Option<&'static str>,
}

impl<E: Engine> Lab<E> {
    /// One iteration (see the module's comment); fails with `not_ready` when no ranking came in
    /// since the last. Returns the iteration's history record.
    pub async fn iterate(&self) -> Result<Record> {
        let out = self.run_iteration().await;
        self.phase.set("");
        out
    }

    async fn run_iteration(&self) -> Result<Record> {
        let _turn = crate::turns::take().await;
        let mut tr = self.trainer()?;
        let (fresh, places, asked) = {
            let mut d = self.desk.borrow_mut();
            if !d.has_fresh() {
                crate::bail!(kind: ErrorKind::NotReady, "waiting for a ranking: every iteration learns from at least one new ranking");
            }
            let (fresh, places) = d.take_fresh();
            (fresh, places, std::mem::take(&mut d.asked))
        };
        let before = tr.data_len();
        let metrics = tr.iterate(&fresh, &places, &asked, &*self.make).await?;
        let watch_prompts = self.watch_prompts();
        tr.phase.set("answering the watched questions");
        let watch = tr.watch(&watch_prompts, crate::settings::SALT_WATCH).await?;
        let cadence = self.cadence.borrow().clone();
        let curve = match cadence.due(before, metrics.rankings) {
            Some(l) => {
                tr.phase.set("measuring the win-rate");
                Some(evaluate(&mut tr, &l, cadence.protocol).await?)
            }
            None => None,
        };
        let record = Record {
            win_rate: curve.as_ref().map(|p| p.win_rate_vs_sft),
            metrics,
            watch,
            curve,
            labeler: cadence.labeler.as_ref().map(|l| l.name()),
        };
        self.publish(&mut tr).await?;
        // through a Value: its keys sorted as a saved state's come back, so a restored text is the same
        let text = serde_json::to_value(&record).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?.to_string();
        self.desk.borrow_mut().history.push(text);
        Ok(record)
    }

    /// Offers the trainer's new batch, in the configured order, and brings the serving copy of the
    /// policy up to date.
    pub(super) async fn publish(&self, tr: &mut Trainer<E>) -> Result<()> {
        let order = offer_order(tr).await?;
        let (answers, sft_places) = tr.offered_answers(&order).await?;
        let mut groups = Vec::with_capacity(order.len());
        for ((i, outs), sft) in order.into_iter().zip(answers).zip(sft_places) {
            let prompt = tr.batch[i].prompt.clone();
            let responses: Vec<String> = outs.iter().map(|o| self.tok.decode(o)).collect::<Result<_>>()?;
            let notes = self.notes(&prompt, &responses);
            groups.push(super::Offer { id: 0, prompt, responses, yours: false, notes, sft });
        }
        let params = tr.policy.params().await?;
        self.serving.borrow_mut().policy.set_params(&params)?;
        self.desk.borrow_mut().publish(groups);
        Ok(())
    }

    /// What a person should know about a group before ranking it: a question outside what the
    /// model knows, answers that read the same.
    pub(super) fn notes(&self, prompt: &str, responses: &[String]) -> Vec<String> {
        let mut notes = Vec::new();
        if crate::corpus::topic_of(prompt).is_none() {
            notes.push(format!(
                "This small model knows only about {}: it answers other questions with what it knows of those.",
                crate::corpus::topic_names().join(", ")
            ));
        }
        for (i, a) in responses.iter().enumerate() {
            if let Some(j) = responses[..i].iter().position(|b| b == a) {
                notes.push(format!("Answers {} and {} are the same text; rank them as a tie.", j + 1, i + 1));
            }
        }
        notes
    }

    /// Why a ranking may teach less than it seems: an empty answer, or answers cut to the model's
    /// context (a prompt too long for it).
    pub(super) fn ranking_warning(&self, r: &Ranking) -> Result<Option<String>> {
        if r.responses.iter().any(|a| a.trim().is_empty()) {
            return Ok(Some("an answer is empty".into()));
        }
        for a in &r.responses {
            let n = self.tok.encode(&crate::corpus::format_dialogue(&r.prompt, a))?.len();
            if n > self.model.n_ctx {
                return Ok(Some(format!(
                    "the question and an answer take {n} tokens, more than this model's context of {}: the reward model reads them cut short",
                    self.model.n_ctx
                )));
            }
        }
        Ok(None)
    }

    /// The labeler's win-rate of the policy against SFT now (see `WinRateProtocol`).
    pub async fn evaluate(&self, labeler: &Labeler, protocol: WinRateProtocol) -> Result<CurvePoint> {
        let _turn = crate::turns::take().await;
        let mut tr = self.trainer()?;
        evaluate(&mut tr, labeler, protocol).await
    }
}

/// Indices of the batch's groups of K answers (those of `rest_k` are not ranked) in the order to
/// offer them.
async fn offer_order<E: Engine>(tr: &mut Trainer<E>) -> Result<Vec<usize>> {
    let full: Vec<usize> = (0..tr.batch.len()).filter(|&i| tr.batch[i].outs.len() == tr.cfg.k).collect();
    if tr.cfg.label_selection == Selection::First || tr.fitted_on == 0 {
        return Ok(full);
    }
    let mut key = vec![f32::NEG_INFINITY; tr.batch.len()];
    for &i in &full {
        let g = &tr.batch[i];
        let seqs: Vec<Vec<u32>> = g.outs.iter().map(|o| crate::rollout::dialogue_of(&g.prompt_ids, o, tr.tok.end, tr.model.n_ctx)).collect();
        let all = tr.reward.member_scores(&seqs, tr.tok.end).await?;
        key[i] = match tr.cfg.label_selection {
            Selection::TopReward => crate::reward_ensemble::conservative(&all, tr.cfg.rm.penalty).into_iter().fold(f32::NEG_INFINITY, f32::max),
            Selection::Spread => crate::reward_ensemble::score_range(&all, tr.cfg.rm.penalty),
            _ => crate::reward_ensemble::disagreement(&all),
        };
    }
    let mut order = full;
    order.sort_by(|&a, &b| key[b].total_cmp(&key[a]));
    Ok(order)
}

async fn evaluate<E: Engine>(tr: &mut Trainer<E>, labeler: &Labeler, protocol: WinRateProtocol) -> Result<CurvePoint> {
    let t0 = now_ms();
    let prompts: Vec<String> = crate::corpus::prompt_split().1.into_iter().take(protocol.prompts).collect();
    let (sc, seed) = (tr.sample_cfg(), tr.cfg.seed ^ SALT_EVAL);
    // `curve::win_rate`, with the reference's answers kept from the last point
    let aligned = answers_to(&mut tr.policy, &tr.tok, &prompts, protocol.samples, &sc, seed).await?;
    let sft = tr.reference_answers(&prompts, protocol.samples, seed + B_SEEDS).await?;
    let win = win_rate_of(labeler, &prompts, &aligned, &sft);
    let ptx = tr.ptx_loglik(Prose::HeldOut, false).await?;
    let ptx_seen = tr.ptx_loglik(Prose::Seen, false).await?;
    Ok(CurvePoint {
        labeler: labeler.name(),
        rankings: tr.data_len(),
        iterations: tr.iteration,
        win_rate_vs_sft: win,
        kl: tr.last_kl,
        ptx_loglik: ptx,
        ptx_loglik_seen: ptx_seen,
        seconds: (now_ms() - t0) / 1e3,
    })
}
