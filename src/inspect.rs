//! What the page shows of the models beside the curves: an answer of the policy and of the SFT model
//! with the reward model's scores, a blind pair to judge, and a token-by-token view of how far the
//! policy moved from SFT on an answer and what the reward model would score at each of its prefixes.

use serde::Serialize;

use crate::align::Aligner;
use crate::bail;
use crate::corpus::{format_dialogue, format_prompt};
use crate::engine::Engine;
use crate::error::Result;
use crate::ppo::{action_targets, Rollout};
use crate::sample::generate;

/// One prompt answered by the current policy and by the SFT model with the same seed, scored.
#[derive(Clone, Debug, Serialize)]
pub struct Watched {
    pub prompt: String,
    pub policy: String,
    pub sft: String,
    pub policy_score: f32,
    pub sft_score: f32,
}

/// An answer token by token: each token's text, its log-probability under the policy and under the
/// SFT model (at the sampling temperature, as the KL penalty sees them), and the reward model's
/// score had the answer ended right after it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Inspection {
    pub tokens: Vec<String>,
    pub logp_policy: Vec<f32>,
    pub logp_sft: Vec<f32>,
    pub prefix_scores: Vec<f32>,
    /// The reward model's score of the whole answer (ended with the end token).
    pub score: f32,
}

impl<E: Engine> Aligner<E> {
    /// One answer from the policy (or the SFT model) to a prompt with a given seed.
    pub async fn answer(&mut self, prompt: &str, seed: u64, sft: bool) -> Result<String> {
        let ids = self.prompt_ids(prompt)?;
        let sc = self.sample_cfg();
        let engine = if sft { &mut self.reference } else { &mut self.policy };
        let out = generate(engine, &ids, 1, self.tok.end, &sc, seed).await?;
        self.tok.decode(&out[0])
    }

    /// A prompt this model can answer: not blank, and leaving room for an answer in the context.
    pub fn check_prompt(&self, prompt: &str) -> Result<()> {
        if prompt.trim().is_empty() {
            bail!("the prompt is empty");
        }
        self.prompt_ids(prompt).map(|_| ())
    }

    /// Why a ranking may teach less than it seems: an empty answer, or answers that read the same
    /// once cut to the context (a prompt too long for the model).
    pub fn ranking_warning(&self, r: &crate::reward::Ranking) -> Result<Option<String>> {
        if r.responses.iter().any(|a| a.trim().is_empty()) {
            return Ok(Some("an answer is empty".into()));
        }
        let seqs: Vec<Vec<u32>> = r.responses.iter().map(|a| self.dialogue(&r.prompt, a)).collect::<Result<_>>()?;
        let mut distinct = seqs.clone();
        distinct.sort();
        distinct.dedup();
        Ok((distinct.len() < seqs.len())
            .then(|| format!("cut to this model's context of {} tokens, some answers read the same: the prompt is too long", self.model.n_ctx)))
    }

    fn prompt_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        let ids = self.tok.encode(&format_prompt(prompt))?;
        if ids.len() + 2 >= self.model.n_ctx {
            bail!("the prompt is {} tokens; this model's context is {}", ids.len(), self.model.n_ctx);
        }
        Ok(ids)
    }

    /// The reward model's scores of answers to a prompt.
    pub async fn score_answers(&mut self, prompt: &str, answers: &[String]) -> Result<Vec<f32>> {
        let seqs: Vec<Vec<u32>> = answers.iter().map(|a| self.dialogue(prompt, a)).collect::<Result<_>>()?;
        self.reward.score(&seqs, self.tok.end).await
    }

    fn dialogue(&self, prompt: &str, answer: &str) -> Result<Vec<u32>> {
        let mut ids = self.tok.encode(&format_dialogue(prompt, answer))?;
        ids.truncate(self.model.n_ctx);
        Ok(ids)
    }

    /// Each prompt answered by the policy and by SFT with the same seed, both scored.
    pub async fn watch(&mut self, prompts: &[String], seed: u64) -> Result<Vec<Watched>> {
        let mut out = Vec::with_capacity(prompts.len());
        for (i, p) in prompts.iter().enumerate() {
            let s = seed.wrapping_add(i as u64);
            let (policy, sft) = (self.answer(p, s, false).await?, self.answer(p, s, true).await?);
            let scores = self.score_answers(p, &[policy.clone(), sft.clone()]).await?;
            out.push(Watched { prompt: p.clone(), policy, sft, policy_score: scores[0], sft_score: scores[1] });
        }
        Ok(out)
    }

    /// An answer token by token (see `Inspection`): one forward pass per model.
    pub async fn inspect(&mut self, prompt: &str, answer: &str) -> Result<Inspection> {
        let prompt_ids = self.prompt_ids(prompt)?;
        let full = self.dialogue(prompt, answer)?;
        if full.len() <= prompt_ids.len() {
            bail!("the answer does not fit in this model's context after the prompt");
        }
        let r = Rollout { tokens: full.clone(), prompt_len: prompt_ids.len(), ..Default::default() };
        let t = full.len();
        let targets = action_targets(&[&r], t);
        let temp = self.cfg.ppo.temperature;
        let logp_policy = action_logp(&mut self.policy, &full, &targets, temp).await?;
        let logp_sft = action_logp(&mut self.reference, &full, &targets, temp).await?;
        self.reward.engine.forward(&full, 1, t)?;
        let h = self.reward.engine.hidden().await?;
        let c = self.model.n_embd;
        let head = &self.reward.head;
        let prefix_scores: Vec<f32> = (prompt_ids.len()..t).map(|s| head.apply(&h[s * c..][..c])).collect();
        let end = self.tok.end;
        let tokens =
            full[prompt_ids.len()..].iter().map(|&id| if id == end { Ok("⏎".to_string()) } else { self.tok.decode(&[id]) }).collect::<Result<_>>()?;
        Ok(Inspection { tokens, logp_policy, logp_sft, score: prefix_scores.last().copied().unwrap_or(0.0), prefix_scores })
    }
}

impl<E: Engine> Aligner<E> {
    /// The policy's and SFT's log-probability of each answer token by definition: one forward pass
    /// per prefix, the log-softmax of its last logits at the sampling temperature. Slow; for checking
    /// `inspect` against.
    pub async fn direct_logprobs(&mut self, prompt: &str, answer: &str) -> Result<(Vec<f32>, Vec<f32>)> {
        let p = self.prompt_ids(prompt)?.len();
        let full = self.dialogue(prompt, answer)?;
        let (v, temp) = (self.model.vocab_size, self.cfg.ppo.temperature as f64);
        let mut out = (Vec::new(), Vec::new());
        for (engine, into) in [(&mut self.policy, &mut out.0), (&mut self.reference, &mut out.1)] {
            for end in p..full.len() {
                engine.forward(&full[..end], 1, end)?;
                let logits = engine.logits().await?;
                let row: Vec<f64> = logits[(end - 1) * v..][..v].iter().map(|&x| x as f64 / temp).collect();
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                into.push((row[full[end] as usize] - lse) as f32);
            }
        }
        Ok(out)
    }
}

/// log π of each action of one sequence at a temperature.
async fn action_logp<E: Engine>(e: &mut E, tokens: &[u32], targets: &[i32], temperature: f32) -> Result<Vec<f32>> {
    e.forward(tokens, 1, tokens.len())?;
    let tl = e.token_losses(targets, temperature).await?;
    Ok(tl.losses.iter().zip(targets).filter(|(_, &tg)| tg >= 0).map(|(l, _)| -l).collect())
}
