//! What the page shows of the models beside the curves: an answer of the policy and of the SFT model
//! with the reward model's scores, a blind pair to judge, and a token-by-token view of how far the
//! policy moved from SFT on an answer and what the reward model would score at each of its prefixes.

use serde::Serialize;

use super::trainer::Trainer;
use crate::bail;
use crate::corpus::format_dialogue;
use crate::engine::Engine;
use crate::error::Result;
use crate::reward_ensemble::member_stats;
use crate::rollout::{action_targets, Rollout};
use crate::sample::answers;

/// One prompt answered by the current policy and by the SFT model with the same seed, scored.
#[derive(Clone, Debug, Serialize)]
pub struct Watched {
    pub prompt: String,
    pub policy: String,
    pub sft: String,
    /// The reward the policy optimizes: the reward models' (conservative) score, or their weights'
    /// moving average's (`RmFit::average`), and the relevance gate's penalty, where there is a gate.
    pub policy_score: f32,
    pub sft_score: f32,
    /// The reward models' disagreement on each score: their spread (0 with one reward model).
    pub policy_spread: f32,
    pub sft_spread: f32,
}

/// An answer token by token: each token's text, its log-probability under the policy and under the
/// SFT model (at the sampling temperature, as the KL penalty sees them), and the reward model's
/// score had the answer ended right after it (the first reward model's, without a relevance gate's
/// penalty).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Inspection {
    pub tokens: Vec<String>,
    pub logp_policy: Vec<f32>,
    pub logp_sft: Vec<f32>,
    pub prefix_scores: Vec<f32>,
    /// The reward model's score of the whole answer (ended with the end token).
    pub score: f32,
}

impl<E: Engine> Trainer<E> {
    /// One answer from the policy (or the SFT model) to a prompt with a given seed.
    pub async fn answer(&mut self, prompt: &str, seed: u64, sft: bool) -> Result<String> {
        let ids = self.tok.prompt_ids(prompt, self.model.n_ctx)?;
        let sc = self.sample_cfg();
        let engine = if sft { &mut self.reference } else { &mut self.policy };
        Ok(answers(engine, &self.tok, &ids, 1, &sc, seed).await?.remove(0))
    }

    /// The reward model's scores of answers to a prompt.
    pub async fn score_answers(&mut self, prompt: &str, answers: &[String]) -> Result<Vec<f32>> {
        let seqs: Vec<Vec<u32>> = answers.iter().map(|a| self.dialogue(prompt, a)).collect::<Result<_>>()?;
        self.policy_rewards(&seqs).await
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
            let seqs: Vec<Vec<u32>> = [&policy, &sft].iter().map(|a| self.dialogue(p, a)).collect::<Result<_>>()?;
            let all = self.reward.member_scores(&seqs, self.tok.end).await?;
            // the score the policy optimizes: the gate's penalty too, where there is a gate
            let scores = self.rewards_given(&all, &seqs).await?;
            let spread: Vec<f32> = member_stats(&all).into_iter().map(|(_, std)| std).collect();
            out.push(Watched {
                prompt: p.clone(),
                policy,
                sft,
                policy_score: scores[0],
                sft_score: scores[1],
                policy_spread: spread[0],
                sft_spread: spread[1],
            });
            crate::turns::pass().await;
        }
        Ok(out)
    }

    /// An answer token by token (see `Inspection`): one forward pass per model.
    pub async fn inspect(&mut self, prompt: &str, answer: &str) -> Result<Inspection> {
        let prompt_ids = self.tok.prompt_ids(prompt, self.model.n_ctx)?;
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
        let rm = self.reward.first_mut();
        rm.engine.forward(&full, 1, t)?;
        let h = rm.engine.hidden().await?;
        let c = self.model.n_embd;
        let head = &self.reward.members[0].head;
        let prefix_scores: Vec<f32> = (prompt_ids.len()..t).map(|s| head.apply(&h[s * c..][..c])).collect();
        let end = self.tok.end;
        let tokens =
            full[prompt_ids.len()..].iter().map(|&id| if id == end { Ok("⏎".to_string()) } else { self.tok.decode(&[id]) }).collect::<Result<_>>()?;
        Ok(Inspection { tokens, logp_policy, logp_sft, score: prefix_scores.last().copied().unwrap_or(0.0), prefix_scores })
    }
}

impl<E: Engine> Trainer<E> {
    /// The policy's and SFT's log-probability of each answer token by definition: one forward pass
    /// per prefix, the log-softmax of its last logits at the sampling temperature. Slow; for checking
    /// `inspect` against.
    pub async fn direct_logprobs(&mut self, prompt: &str, answer: &str) -> Result<(Vec<f32>, Vec<f32>)> {
        let p = self.tok.prompt_ids(prompt, self.model.n_ctx)?.len();
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

#[cfg(test)]
mod tests {
    //! The page's views of the models against direct computations on the CPU reference: the token
    //! view's log-probabilities and per-prefix scores, and the watched answers' scores.
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::cpu::gpt::CpuGpt;
    use crate::lab::AlignConfig;
    use crate::labelers::{Labeler, Rule};
    use crate::tokenizer::Tokenizer;
    use pollster::block_on;

    #[test]
    fn the_token_view_matches_a_direct_computation() {
        let ck = Checkpoint::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/assets/tiny")).unwrap();
        let model = ck.cfg;
        let make = move |p: Vec<f32>, b: usize, t: usize| CpuGpt::new(model, p, b, t);
        let tok = std::rc::Rc::new(Tokenizer::from_json(&ck.tokenizer_json).unwrap());
        let mut tr = Trainer::new(ck.params.clone(), ck.cfg, tok.clone(), AlignConfig::default(), &make).unwrap();
        block_on(tr.sample_batch(&[])).unwrap();
        for _ in 0..2 {
            let g = &tr.batch[0];
            let responses: Vec<String> = g.outs.iter().map(|o| tok.decode(o).unwrap()).collect();
            let r = crate::reward::Ranking { ranks: Labeler::new(Rule::Cheerful).rank(&g.prompt, &responses), prompt: g.prompt.clone(), responses };
            block_on(tr.iterate(&[r], &[], &[], &make)).unwrap();
        }
        let prompt = tr.train_prompts[0].clone();
        let answer = block_on(tr.answer(&prompt, 5, false)).unwrap();
        let view = block_on(tr.inspect(&prompt, &answer)).unwrap();
        let mut ids = tok.encode(&format_dialogue(&prompt, &answer)).unwrap();
        ids.truncate(model.n_ctx);
        let p = tok.prompt_ids(&prompt, model.n_ctx).unwrap().len();
        assert_eq!(view.tokens.len(), ids.len() - p, "one entry per answer token, the end token included");
        // log π of each token from the full softmax of the logits at the sampling temperature
        let temp = tr.cfg.ppo.temperature as f64;
        let v = model.vocab_size;
        for (engine, got) in [(&mut tr.policy, &view.logp_policy), (&mut tr.reference, &view.logp_sft)] {
            engine.forward(&ids, 1, ids.len()).unwrap();
            let logits = block_on(engine.logits()).unwrap();
            for (j, s) in (p - 1..ids.len() - 1).enumerate() {
                let row: Vec<f64> = logits[s * v..][..v].iter().map(|&x| x as f64 / temp).collect();
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                let want = row[ids[s + 1] as usize] - lse;
                assert!((got[j] as f64 - want).abs() < 1e-4, "token {j}: {} vs {want}", got[j]);
            }
        }
        // the score of each prefix, as if the answer ended there: the reward model read at its last token
        for (j, end) in (p + 1..=ids.len()).enumerate() {
            let direct = block_on(tr.reward.first_mut().score(&[ids[..end].to_vec()], tok.end)).unwrap()[0];
            assert!((view.prefix_scores[j] - direct).abs() < 1e-4, "prefix {j}: {} vs {direct}", view.prefix_scores[j]);
        }
        assert_eq!(view.score, *view.prefix_scores.last().unwrap());
        // watched answers: the policy's and SFT's for one seed, each with its score
        let w = block_on(tr.watch(std::slice::from_ref(&prompt), 5)).unwrap();
        assert_eq!(w[0].policy, answer);
        let scores = block_on(tr.score_answers(&prompt, &[w[0].policy.clone(), w[0].sft.clone()])).unwrap();
        assert_eq!((w[0].policy_score, w[0].sft_score), (scores[0], scores[1]));
    }
}
