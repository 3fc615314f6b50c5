//! What leaves the lab: the aligned policy and the reward model as HF checkpoints (for
//! `transformers` and TRL), and everything training changed as one saved state.

use super::{Kept, Lab};
use crate::checkpoint::{hf_config, hf_reward_config, model_state, Checkpoint, LabState, RewardState};
use crate::engine::Engine;
use crate::error::Result;
use crate::methods::{Method, MethodState};
use crate::reward::Ranking;

/// The policy (GPT2LMHeadModel) and the reward model (GPT2ForSequenceClassification; the first of
/// the ensemble), and a few answers with the lab's own scores for a loader to check against.
pub struct Exported {
    pub policy: Checkpoint,
    pub reward: Checkpoint,
    pub reward_check: serde_json::Value,
}

/// Answers of the first rankings that `reward_check` scores.
const CHECKED_RANKINGS: usize = 3;

impl<E: Engine> Lab<E> {
    /// Both models as checkpoints; `meta` goes into the policy's config under `rlhf_lab`.
    pub async fn export(&self, meta: serde_json::Value) -> Result<Exported> {
        let _turn = crate::turns::take().await;
        let mut tr = self.trainer()?;
        let (cfg, end, user) = (self.model, self.tok.end, self.tok.user);
        let tokenizer_json = self.tok.to_json()?;
        let meta = serde_json::json!({ "rlhf_lab": meta });
        let policy = Checkpoint {
            cfg,
            params: tr.policy.params().await?,
            extra: Vec::new(),
            tokenizer_json: tokenizer_json.clone(),
            config_json: hf_config(&cfg, end, Some(meta)),
        };
        let rm = tr.reward.first_mut();
        rm.read.check_exportable()?;
        let head = ("score.weight".to_string(), vec![1, cfg.n_embd], rm.head.w.clone());
        let reward = Checkpoint {
            cfg,
            params: rm.engine.params().await?,
            extra: vec![head],
            tokenizer_json,
            config_json: hf_reward_config(&cfg, end, user, rm.head.bias),
        };
        let rankings: Vec<Ranking> = self.desk.borrow().rankings.iter().take(CHECKED_RANKINGS).cloned().collect();
        let mut check = Vec::new();
        for r in &rankings {
            let seqs: Vec<Vec<u32>> =
                r.responses.iter().map(|a| crate::reward::dialogue_ids(&self.tok, &r.prompt, a, cfg.n_ctx)).collect::<Result<_>>()?;
            let scores = tr.reward.first_mut().score(&seqs, end).await?;
            check.extend(r.responses.iter().zip(scores).map(|(a, s)| serde_json::json!({ "prompt": r.prompt, "answer": a, "score": s })));
        }
        Ok(Exported { policy, reward, reward_check: serde_json::json!(check) })
    }

    /// Everything training changed, with the history (see `LabState`).
    pub async fn snapshot(&self) -> Result<LabState> {
        let _turn = crate::turns::take().await;
        let mut tr = self.trainer()?;
        let MethodState { steps, value } = tr.method.state().await?;
        let mut rewards = Vec::with_capacity(tr.reward.members.len());
        for m in tr.reward.members.iter_mut() {
            rewards.push(RewardState { trunk: model_state(&mut m.engine).await?, head: m.head.state(), steps: m.steps });
        }
        Ok(LabState {
            model: self.model,
            method: tr.cfg.method.info().name.to_string(),
            policy: model_state(&mut tr.policy).await?,
            policy_steps: steps,
            value,
            rewards,
            rankings_taken: tr.data_len(),
            beta: tr.beta,
            iteration: tr.iteration,
            rm_agreement: tr.agreement.recent.iter().copied().collect(),
            verdicts: tr.verdicts.iter().map(|v| (v.wins, v.pairs)).collect(),
            restarted: tr.restarted,
            doubted: tr.doubted.iter().enumerate().filter(|(_, &d)| d).map(|(i, _)| i).collect(),
            history: self.desk.borrow().history.clone(),
        })
    }

    /// Puts a checked state in place, all of it or nothing, with the rankings stored beside it: the
    /// first `s.rankings_taken` of them are those its iterations have taken, the rest wait for the
    /// next iteration. Call `start` afterwards.
    pub fn restore(&self, s: LabState, kept: Vec<impl Into<Kept>>) -> Result<()> {
        let kept: Vec<Kept> = kept.into_iter().map(Into::into).collect();
        let mut tr = self.trainer()?;
        let capacity = tr.policy.capacity();
        tr.check_restorable(&s)?;
        for k in &kept {
            k.validate()?;
        }
        let used = s.rankings_taken.min(kept.len());
        let rankings: Vec<Ranking> = kept.iter().map(|k| k.ranking.clone()).collect();
        let mut method = crate::methods::AnyMethod::new(tr.cfg.method);
        method.restore(MethodState { steps: s.policy_steps, value: s.value }, &*self.make, capacity)?;
        tr.restore(s.policy, s.rewards, &rankings[..used])?;
        tr.method = method;
        tr.fitted_on = if tr.method.needs().reward_model { used } else { 0 };
        (tr.beta, tr.iteration) = (s.beta, s.iteration);
        tr.agreement = crate::reward::Agreement::default();
        for (a, n) in s.rm_agreement {
            tr.agreement.push(a, n);
        }
        tr.verdicts = s.verdicts.into_iter().map(|(wins, pairs)| super::Verdict { wins, pairs }).collect();
        tr.restarted = s.restarted;
        for &i in s.doubted.iter().filter(|&&i| i < used) {
            tr.doubted[i] = true;
        }
        let mut d = self.desk.borrow_mut();
        d.restore(kept, used);
        d.history = s.history;
        Ok(())
    }
}
