//! One iteration of the loop, on the models it owns: the reward model fitted to every ranking so
//! far, the batch the policy sampled last time scored, the method's update, and the next batch
//! sampled from the updated policy (the groups offered for ranking next).

use std::rc::Rc;

use serde::Serialize;

use super::curve::answers_to;
use super::desk::Verdict;
use crate::bail;
use crate::clock::now_ms;
use crate::config::{ModelConfig, SampleConfig};
use crate::corpus::{format_prompt, prompt_split, Corpus};
use crate::engine::{lm_forward, Engine};
use crate::error::{ErrorKind, Result};
use crate::methods::ppo::{
    adapt_beta, brake_beta, brake_ceiling, checks_firsts, doubts_first, first_gap, group_favourites, sft_best_applies, AnswerRow,
};
use crate::methods::{AnyMethod, EngineFactory, Method, Pretraining, Settings, Update, UpdateMetrics};
use crate::relevance::{GateData, RelevanceGate};
use crate::reward::{
    dialogue_ids, other_answers, relevance_rankings, Agreement, FitData, Ranking, RewardModel, RmFit, RmMode, RmReport, StepOpt, TokenizedRanking,
    K_MAX,
};
use crate::reward_average::AveragedReward;
use crate::reward_ensemble::{conservative, RewardEnsemble};
use crate::rng::Rng;
use crate::rollout::{action_logprobs, rollout_metrics, rollouts_of, Group, Rollout, RolloutMetrics};
use crate::settings::{
    AlignConfig, SALT_CORPUS, SALT_HEAD, SALT_OFFER_SFT, SALT_PTX_EVAL, SALT_PTX_SEEN, SALT_RM_GATE, SALT_RM_PRETRAIN, SALT_SFT_BEST,
};
use crate::tokenizer::Tokenizer;
use crate::train::{docs_batch, lm_batch, Batch};

/// Every eighth prose document is held out for the pretraining log-likelihood metric.
const PTX_EVAL_STRIDE: usize = 8;
/// Pretraining rows: 64 tokens, as long as a dialogue of the demo's corpus.
const PTX_T: usize = 64;
/// SFT demonstrations the reward model is normalized on.
const NORMALIZE_DEMOS: usize = 64;

/// Everything the page plots for one iteration.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IterationMetrics {
    pub iteration: usize,
    pub rankings: usize,
    pub rm_loss: f32,
    pub rm_accuracy: f32,
    /// The reward model's accuracy on this iteration's new rankings before it trained on them
    /// (NaN when there were none): how well it predicts rankings it has not seen.
    pub rm_new_accuracy: f32,
    /// Reward-model steps skipped so far for a non-finite loss or gradient.
    pub rm_skipped_steps: usize,
    /// Steps of this iteration's warm fit (0: no warm fit), fewer while the reward model agrees
    /// with the newest rankings (`RmFit::steps_at`).
    pub rm_fit_steps: usize,
    #[serde(flatten)]
    pub rollouts: RolloutMetrics,
    #[serde(flatten)]
    pub update: UpdateMetrics,
    /// Mean per-token log-likelihood of a fixed held-out pretraining batch.
    pub ptx_loglik: f32,
    /// E[r − β·KL] + γ·ptx log-likelihood.
    pub objective: f32,
    pub beta: f32,
    /// The new rankings' verdict on the policy: its answers' share of the pairs they made with
    /// SFT's in the same ranked group (a tie counts half; NaN without such pairs), and the pairs.
    pub ranked_vs_sft: f32,
    pub ranked_vs_sft_pairs: usize,
    /// The reward model's share of the same pairs (its score of the policy's answer above SFT's)
    /// before it learned these rankings: above the person's, it rates the policy's answers higher
    /// than the person does (NaN before its first fit or without such pairs).
    pub rm_vs_sft: f32,
    /// Whether this iteration started the policy again from SFT (`AlignConfig::restart_below`).
    pub restarted: bool,
    /// The KL of a batch that passed the KL limit (`PpoConfig::kl_limit`), whose update was undone
    /// and batch sampled again (the rollout metrics are the new batch's); 0: none.
    pub kl_undone: f32,
    /// Rankings so far whose first answer the reward model doubted before learning them, kept out
    /// of the γ term (`PpoConfig::favourite_within`).
    pub doubted_firsts: usize,
    /// Each fresh ranking's `first_gap` before the reward model learned it, where its scores were
    /// read (NaN, null in JSON, elsewhere).
    pub first_gaps: Vec<f32>,
    pub seconds_reward_model: f64,
    pub seconds_scoring: f64,
    pub seconds_update: f64,
    pub seconds_generation: f64,
}

pub struct Trainer<E: Engine> {
    pub(super) cfg: AlignConfig,
    pub(super) model: ModelConfig,
    pub(super) tok: Rc<Tokenizer>,
    pub(super) policy: E,
    pub(super) reference: E,
    pub(super) reward: RewardEnsemble<E>,
    /// Lowers the reward of answers far less relevant to the question than the demonstrations
    /// (`RmFit::gate`; none by default).
    gate: Option<RelevanceGate<E>>,
    /// What the policy optimizes in place of the last fit once it holds one (`RmFit::average`;
    /// none by default). A restored lab scores with the restored reward model until the next fit,
    /// where the average starts again from it.
    averaged: Option<AveragedReward<E>>,
    pub(super) method: AnyMethod<E>,
    pub(super) train_prompts: Vec<String>,
    sft: Vec<f32>,
    /// The training prose, a document a row, each closed by the end token.
    prose: Vec<Vec<u32>>,
    ptx_eval: Batch,
    ptx_seen: Batch,
    demo_ids: Vec<Vec<u32>>,
    rng: Rng,
    /// Every ranking so far, tokenized, and each one's prompt length.
    data: Vec<TokenizedRanking>,
    prompt_lens: Vec<usize>,
    /// Groups the policy sampled after the last update: the next iteration trains on them.
    pub(super) batch: Vec<Group>,
    /// How many rankings the reward model was last fitted on (0: never).
    pub(super) fitted_on: usize,
    pub(super) iteration: usize,
    pub(super) beta: f32,
    /// KL (k1) of the last iteration's rollouts.
    pub(super) last_kl: f32,
    /// Reward-model steps skipped for a non-finite loss or gradient, so far.
    rm_skipped: usize,
    /// How well the reward model predicted the newest rankings before fitting them (`RmFit::steps_at`).
    pub(super) agreement: Agreement,
    /// The verdicts of the rankings since the policy last started from SFT.
    pub(super) verdicts: Vec<Verdict>,
    /// Whether the policy has started again from SFT (`AlignConfig::restart_below`): once a session.
    pub(super) restarted: bool,
    /// One flag a ranking of `data`: whether the reward model doubted its first answer before it
    /// learned it (`PpoConfig::favourite_within`), decided once, when the ranking came.
    pub(super) doubted: Vec<bool>,
    /// The policy's weights before its last update, kept with a KL limit to undo it.
    before_update: Option<Vec<f32>>,
    /// What the running iteration is doing, for whoever shows progress ("" between iterations).
    pub(super) phase: Rc<std::cell::Cell<&'static str>>,
    /// The SFT reference's answers to the learning curve's prompts, with what drew them: the
    /// reference never changes, and every point of a curve draws them with the same seeds.
    reference_answers: Option<(ReferenceDraw, Rc<Vec<Vec<String>>>)>,
}

/// Which fixed batch of prose a pretraining log-likelihood reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Prose {
    /// Documents the γ term never reads: whether the policy keeps the language.
    HeldOut,
    /// Rows of the documents the γ term reads: above the held-out figure, the policy memorizes.
    Seen,
}

/// What the reference's answers to held-out prompts depend on.
#[derive(Clone, PartialEq)]
struct ReferenceDraw {
    prompts: Vec<String>,
    samples: usize,
    sc: SampleConfig,
    seed: u64,
}

/// Policy updates in an iteration that has `n` rankings, `fresh` of them new. Each ranking earns
/// its updates: none before the `min`th; the `min`th, one per ranking so far, at most `catch_up`
/// (so that with `catch_up` ≥ `min` every ranking has moved the policy once); each after it, one.
/// An iteration spends what its new rankings earned, at most `most` (or the catch-up, when that is
/// more): a person who ranks faster than an iteration runs gets the updates the benchmark's loop
/// (one ranking per iteration) gives, and an iteration stays bounded however far ahead they are.
pub fn update_rounds(n: usize, fresh: usize, min: usize, catch_up: usize, most: usize) -> usize {
    let before = n - fresh.min(n);
    let reaching = min > 0 && before < min && min <= n;
    let catch = if reaching { min.min(catch_up).max(1) } else { 0 };
    let past = n.saturating_sub(before.max(min));
    (catch + past).min(most.max(catch))
}

/// Prose for the pretraining mix, each document closed by the end token: (training documents,
/// the held-out ones as one stream).
fn prose_docs(corpus: &Corpus, tok: &Tokenizer) -> Result<(Vec<Vec<u32>>, Vec<u32>)> {
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (i, doc) in corpus.prose.iter().enumerate() {
        let mut ids = tok.encode(doc)?;
        ids.push(tok.end);
        if i % PTX_EVAL_STRIDE == 0 {
            held.extend(ids);
        } else {
            train.push(ids);
        }
    }
    Ok((train, held))
}

impl<E: Engine> Trainer<E> {
    pub fn new(sft: Vec<f32>, model: ModelConfig, tok: Rc<Tokenizer>, cfg: AlignConfig, make: &EngineFactory<E>) -> Result<Trainer<E>> {
        // room for a ranking of the largest K in one batch, whatever K is now
        let b = cfg.batch.max(K_MAX);
        let t = model.n_ctx;
        // the pretraining mix is plain prose from the project's grammar; its held-out documents
        // give the log-likelihood metric and never enter a training batch
        let corpus = Corpus::generate(2000, cfg.seed ^ SALT_CORPUS);
        let (prose, held) = prose_docs(&corpus, &tok)?;
        let ptx_t = t.min(PTX_T);
        if prose.iter().map(Vec::len).sum::<usize>() < 4 * ptx_t || held.len() < 2 * ptx_t {
            bail!("the pretraining prose is too short for windows of {ptx_t} tokens");
        }
        let ptx_eval = lm_batch(&held, b, ptx_t, &mut Rng::new(SALT_PTX_EVAL));
        let ptx_seen = docs_batch(&prose, b, ptx_t, &mut Rng::new(SALT_PTX_SEEN));
        let demo_ids =
            corpus.demonstrations.iter().take(NORMALIZE_DEMOS).map(|d| dialogue_ids(&tok, &d.prompt, &d.response, t)).collect::<Result<_>>()?;
        let mut reference = make(sft.clone(), b, t)?;
        reference.freeze();
        // and for a ranking's answers to other questions beside it (`RmFit::others`)
        let trunks = (0..cfg.rm.members.max(1)).map(|_| make(sft.clone(), b.max(K_MAX + cfg.rm.others), t)).collect::<Result<Vec<E>>>()?;
        let gate = match cfg.rm.gate {
            0 => None,
            steps => Some(RelevanceGate::new(make(sft.clone(), b, t)?, steps, cfg.rm.gate_margin, cfg.seed ^ SALT_RM_GATE)),
        };
        let averaged = match cfg.rm.average {
            a if a <= 0.0 => None,
            _ if cfg.rm.members > 1 => bail!("--rm-average averages one reward model's weights: use it without --rm-members"),
            a => Some(AveragedReward::new(RewardModel::new(make(sft.clone(), b, t)?, 0).reading(cfg.rm.read, tok.assistant), a)),
        };
        Ok(Trainer {
            policy: make(sft.clone(), b, t)?,
            gate,
            averaged,
            reference,
            reward: RewardEnsemble::new(trunks, cfg.seed ^ SALT_HEAD).reading(cfg.rm.read, tok.assistant),
            method: AnyMethod::new(cfg.method),
            train_prompts: prompt_split().0,
            sft,
            prose,
            ptx_eval,
            ptx_seen,
            demo_ids,
            rng: Rng::new(cfg.seed),
            data: Vec::new(),
            prompt_lens: Vec::new(),
            batch: Vec::new(),
            fitted_on: 0,
            iteration: 0,
            beta: cfg.ppo.beta,
            last_kl: 0.0,
            rm_skipped: 0,
            agreement: Agreement::default(),
            verdicts: Vec::new(),
            restarted: false,
            doubted: Vec::new(),
            before_update: None,
            phase: Rc::new(std::cell::Cell::new("")),
            reference_answers: None,
            cfg,
            model,
            tok,
        })
    }

    pub fn sample_cfg(&self) -> SampleConfig {
        self.cfg.sample()
    }

    /// The SFT reference's `samples` answers to each prompt (prompt i drawn with seed `seed + i`),
    /// drawn once and kept for the next point of the curve that asks for the same.
    pub async fn reference_answers(&mut self, prompts: &[String], samples: usize, seed: u64) -> Result<Rc<Vec<Vec<String>>>> {
        let draw = ReferenceDraw { prompts: prompts.to_vec(), samples, sc: self.sample_cfg(), seed };
        if let Some((d, answers)) = &self.reference_answers {
            if *d == draw {
                return Ok(answers.clone());
            }
        }
        let answers = Rc::new(answers_to(&mut self.reference, &self.tok, prompts, samples, &draw.sc, seed).await?);
        self.reference_answers = Some((draw, answers.clone()));
        Ok(answers)
    }

    /// Rankings the trainer has taken so far.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Whether a saved state fits this trainer: its model, its method and its number of reward models.
    pub fn check_restorable(&self, s: &crate::checkpoint::LabState) -> Result<()> {
        let bad = |m: String| Err(crate::error::Error::new(ErrorKind::BadState, m));
        if s.model != self.model {
            return bad(format!("the saved state is for {:?}, not this model {:?}", s.model, self.model));
        }
        if s.method != self.cfg.method.info().name {
            return bad(format!("the saved state was trained with {}, not {}", s.method, self.cfg.method.info().name));
        }
        if s.rewards.len() != self.reward.members.len() {
            return bad(format!("the saved state has {} reward models, this lab {}", s.rewards.len(), self.reward.members.len()));
        }
        Ok(())
    }

    /// The policy, the reward models and the rankings they have seen, from a checked state.
    pub fn restore(&mut self, policy: crate::checkpoint::ModelState, rewards: Vec<crate::checkpoint::RewardState>, seen: &[Ranking]) -> Result<()> {
        let data = self.tokenized(seen)?;
        let prompt_lens = seen.iter().map(|r| Ok(self.tok.encode(&format_prompt(&r.prompt))?.len())).collect::<Result<Vec<usize>>>()?;
        self.policy.set_params(&policy.params)?;
        self.policy.set_optimizer_state(&policy.m, &policy.v)?;
        for (m, r) in self.reward.members.iter_mut().zip(rewards) {
            m.engine.set_params(&r.trunk.params)?;
            m.engine.set_optimizer_state(&r.trunk.m, &r.trunk.v)?;
            m.head = crate::reward::ScalarHead::from_state(r.head);
            m.steps = r.steps;
        }
        self.doubted = vec![false; data.len()];
        (self.data, self.prompt_lens, self.before_update) = (data, prompt_lens, None);
        Ok(())
    }

    /// Groups of answers from the current policy (`AlignConfig::group_sizes`): the person's own
    /// questions first, then random training prompts.
    pub async fn sample_batch(&mut self, asked: &[String]) -> Result<()> {
        let sizes = self.cfg.group_sizes(asked.len());
        let sc = self.sample_cfg();
        let mut prompts = Vec::with_capacity(sizes.len());
        let mut jobs = Vec::with_capacity(sizes.len());
        for i in 0..sizes.len() {
            let prompt = match asked.get(i) {
                Some(p) => p.clone(),
                None => self.rng.choose(&self.train_prompts).clone(),
            };
            let seed = self.rng.next_u64();
            jobs.push((self.tok.encode(&format_prompt(&prompt))?, seed));
            prompts.push(prompt);
        }
        // one call per run of groups of one size (the engines draw a group's answers as rows)
        let mut outs = Vec::with_capacity(sizes.len());
        let mut start = 0;
        while start < sizes.len() {
            let end = start + sizes[start..].iter().take_while(|&&n| n == sizes[start]).count();
            outs.extend(self.policy.generate_groups(&jobs[start..end], sizes[start], self.tok.end, &sc).await?);
            start = end;
        }
        self.batch = prompts
            .into_iter()
            .zip(jobs)
            .zip(outs)
            .map(|((prompt, (prompt_ids, _)), outs)| Group {
                prompt,
                prompt_ids,
                outs: outs.iter().map(|o| self.tok.answer_ids(o).to_vec()).collect(),
            })
            .collect();
        Ok(())
    }

    /// A random stream of its own for this iteration's draws of one kind (`salt`), so that they
    /// leave the policy's samples as they were.
    fn iteration_stream(&self, salt: u64) -> Rng {
        Rng::new(self.cfg.seed ^ salt ^ (self.iteration as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The answers of the batch's groups `order` as offered for ranking: the policy's, with
    /// `offer_sft` of each group's K replaced by the frozen SFT model's answers to the same question
    /// at random places once `offer_sft_from` rankings are learned from (the batch itself, which
    /// the policy learns from, keeps its own answers). Only the groups offered first get them,
    /// as many as an iteration trains on (`sft_offered_groups`): the next batch replaces the rest
    /// before anyone ranks them, and drawing for all six groups cost a tenth of the compute.
    /// Returns each group's answers and the places of SFT's among them.
    pub async fn offered_answers(&mut self, order: &[usize]) -> Result<(Vec<Vec<Vec<u32>>>, Vec<Vec<usize>>)> {
        let mut groups: Vec<Vec<Vec<u32>>> = order.iter().map(|&i| self.batch[i].outs.clone()).collect();
        let mut sft_places = vec![Vec::new(); groups.len()];
        let n = if self.data.len() < self.cfg.offer_sft_from { 0 } else { self.cfg.offer_sft.min(self.cfg.k.saturating_sub(1)) };
        if n == 0 || groups.is_empty() {
            return Ok((groups, sft_places));
        }
        // a stream of its own, so that offering SFT's answers leaves the policy's samples as they were;
        // a seed for every group, so that a group's SFT answers do not depend on how many are drawn
        let mut rng = self.iteration_stream(SALT_OFFER_SFT);
        let seeds: Vec<u64> = order.iter().map(|_| rng.next_u64()).collect();
        let drawn = order.len().min(self.cfg.sft_offered_groups());
        let jobs: Vec<(Vec<u32>, u64)> = order[..drawn].iter().zip(seeds).map(|(&i, seed)| (self.batch[i].prompt_ids.clone(), seed)).collect();
        let sft = self.reference.generate_groups(&jobs, n, self.tok.end, &self.sample_cfg()).await?;
        for ((outs, theirs), taken) in groups.iter_mut().zip(sft).zip(sft_places.iter_mut()) {
            let mut places: Vec<usize> = (0..outs.len()).collect();
            rng.shuffle(&mut places);
            for (&p, o) in places.iter().zip(theirs) {
                outs[p] = self.tok.answer_ids(&o).to_vec();
                taken.push(p);
            }
        }
        Ok((groups, sft_places))
    }

    fn tokenized(&self, rs: &[Ranking]) -> Result<Vec<TokenizedRanking>> {
        rs.iter()
            .map(|r| {
                let seqs = r.responses.iter().map(|y| dialogue_ids(&self.tok, &r.prompt, y, self.model.n_ctx)).collect::<Result<_>>()?;
                Ok((seqs, r.ranks.clone()))
            })
            .collect()
    }

    /// Takes rankings in: tokenized, with their prompts' lengths.
    fn take_in(&mut self, rs: &[Ranking], data: Vec<TokenizedRanking>) -> Result<()> {
        for r in rs {
            self.prompt_lens.push(self.tok.encode(&format_prompt(&r.prompt))?.len());
        }
        self.data.extend(data);
        Ok(())
    }

    /// The reward model's pairwise accuracy on rankings (NaN before its first fit or without
    /// pairs), kept in the agreement that sets the next fit's steps.
    async fn rm_accuracy_on(&mut self, data: &[TokenizedRanking]) -> Result<f32> {
        if self.fitted_on == 0 || data.is_empty() {
            return Ok(f32::NAN);
        }
        let r = self.reward.evaluate(data, self.tok.end).await?;
        self.agreement.push(r.accuracy, r.pairs);
        Ok(r.accuracy)
    }

    /// Fits the reward models to every ranking so far (`fresh` of them new), afresh from the SFT
    /// trunk or on from the last fit (see `RmMode`), then normalizes them on the SFT demonstrations.
    async fn fit_reward_model(&mut self, fresh: usize) -> Result<(RmReport, usize)> {
        // a warm fit's steps are earned per new ranking, as the policy's updates are (`update_rounds`)
        let steps = self.cfg.rm.steps_at(self.agreement.share()) * fresh.clamp(1, self.cfg.max_updates.max(1));
        let rm = RmFit { mode: self.cfg.rm.mode_at(self.data.len()), steps, ..self.cfg.rm };
        let step = self.rm_step();
        if rm.mode == RmMode::Refit || self.fitted_on == 0 {
            self.reward.reset(&self.sft, self.cfg.seed ^ SALT_HEAD)?;
            self.pretrain_reward_model(rm.pretrain, rm.batch, &step).await?;
        }
        if self.data.len() >= rm.gate_from {
            self.train_gate(usize::MAX).await?;
        }
        let others = other_answers(&self.data, &self.prompt_lens, rm.others, self.model.n_ctx);
        let data = FitData { rankings: &self.data, others: &others };
        let (report, skipped) = self.reward.fit(data, fresh, self.tok.end, &rm, &step, &mut self.rng).await?;
        self.rm_skipped += skipped;
        self.reward.normalize(&self.demo_ids, self.tok.end).await?;
        if let Some(avg) = self.averaged.as_mut() {
            avg.take(self.reward.first_mut(), &self.demo_ids, self.tok.end).await?;
        }
        self.fitted_on = self.data.len();
        Ok((report, if rm.mode == RmMode::Warm { steps } else { 0 }))
    }

    /// What every step of a reward model's fit shares, from the settings in force.
    fn rm_step(&self) -> StepOpt {
        let rm = &self.cfg.rm;
        StepOpt {
            lr: rm.lr,
            head_lr_scale: rm.head_lr_scale,
            label_smoothing: rm.label_smoothing,
            pair_weight: rm.pair_weight,
            adam: self.cfg.adam,
            grad_clip: self.cfg.ppo.grad_clip,
        }
    }

    /// At most `steps` more of the relevance gate's pretraining (`RelevanceGate::train_some`): all
    /// of it at the gate's first ranking (`RmFit::gate_from`), or ahead in the engine's spare time
    /// (`Lab::prepare`). Whether some is left: false without a gate.
    pub(super) async fn train_gate(&mut self, steps: usize) -> Result<bool> {
        let step = self.rm_step();
        let Some(gate) = self.gate.as_mut() else { return Ok(false) };
        let data = GateData {
            demos: &self.demo_ids,
            marker: self.tok.assistant,
            pad: self.tok.end,
            n_ctx: self.model.n_ctx,
            batch: self.cfg.rm.batch,
            step,
        };
        Ok(!gate.train_some(steps, &data).await?)
    }

    /// `steps` steps of `batch` relevance rankings of the SFT demonstrations for each reward model
    /// (`RmFit::pretrain`), the same draws each time it starts from SFT.
    async fn pretrain_reward_model(&mut self, steps: usize, batch: usize, step: &StepOpt) -> Result<()> {
        let rankings =
            relevance_rankings(&self.demo_ids, self.tok.assistant, self.model.n_ctx, steps * batch, &mut Rng::new(self.cfg.seed ^ SALT_RM_PRETRAIN));
        for m in self.reward.members.iter_mut() {
            m.train_steps(&rankings, batch, self.tok.end, step).await?;
        }
        Ok(())
    }

    /// Mean per-token log-likelihood of a fixed pretraining batch (held-out or seen prose) under
    /// the policy (or the SFT reference).
    pub async fn ptx_loglik(&mut self, prose: Prose, reference: bool) -> Result<f32> {
        let b = match prose {
            Prose::HeldOut => &self.ptx_eval,
            Prose::Seen => &self.ptx_seen,
        };
        let engine = if reference { &mut self.reference } else { &mut self.policy };
        Ok(-lm_forward(engine, &b.tokens, &b.targets, b.b, b.t).await?)
    }

    /// One iteration on the batch sampled last time: the reward model refitted when rankings were
    /// added (`fresh`, which the rankings so far end with), scoring, the method's update, and a new
    /// batch from the updated policy (`asked` prompts first). `places`: where SFT's answers are in
    /// each fresh ranking (empty, or none at all: no SFT answers).
    pub async fn iterate(
        &mut self,
        fresh: &[Ranking],
        places: &[Vec<usize>],
        asked: &[String],
        make: &EngineFactory<'_, E>,
    ) -> Result<IterationMetrics> {
        if self.batch.is_empty() {
            bail!(kind: ErrorKind::Internal, "no batch to train on: the lab samples one when it starts");
        }
        let mut m = IterationMetrics { iteration: self.iteration, ..Default::default() };
        let verdicts: Vec<Verdict> = fresh.iter().zip(places).filter(|(_, p)| !p.is_empty()).map(|(r, p)| Verdict::of(&r.ranks, p)).collect();
        let heard = Verdict::sum(verdicts.iter().copied());
        (m.ranked_vs_sft, m.ranked_vs_sft_pairs) = (heard.share(), heard.pairs);
        self.verdicts.extend(verdicts);
        let t0 = now_ms();
        let tokenized = self.tokenized(fresh)?;
        m.rm_new_accuracy = self.rm_accuracy_on(&tokenized).await?;
        let within = self.first_within();
        let scored = self.fresh_scores(&tokenized, places, within > 0).await?;
        m.rm_vs_sft = rm_verdict(&scored, places).share();
        let margin = self.cfg.ppo.favourite_margin;
        let doubts: Vec<bool> = tokenized.iter().zip(&scored).map(|((_, ranks), s)| doubts_first(ranks, s, within, margin)).collect();
        m.first_gaps = tokenized.iter().zip(&scored).map(|((_, ranks), s)| first_gap(ranks, s)).collect();
        self.take_in(fresh, tokenized)?;
        self.doubted.extend(doubts);
        m.doubted_firsts = self.doubted.iter().filter(|&&d| d).count();
        if self.data.is_empty() {
            bail!(kind: ErrorKind::NotReady, "no rankings yet: rank some answers first (or let the autopilot rank)");
        }
        let needs = self.method.needs();
        self.phase.set("fitting the reward model");
        if needs.reward_model && self.data.len() != self.fitted_on {
            let (rm, steps) = self.fit_reward_model(self.data.len() - self.fitted_on).await?;
            (m.rm_loss, m.rm_accuracy, m.rm_fit_steps) = (rm.loss, rm.accuracy, steps);
        }
        m.rankings = self.data.len();
        m.rm_skipped_steps = self.rm_skipped;
        let t1 = now_ms();
        let (mut scoring, mut updating, mut sampling) = (0.0, 0.0, 0.0);
        if self.restart_due() {
            self.restart().await?;
            m.restarted = true;
        }
        let rounds = update_rounds(self.data.len(), fresh.len(), self.cfg.min_rankings, self.cfg.catch_up, self.cfg.max_updates);
        for round in 0..rounds {
            if round > 0 {
                // each update on answers of the policy it updates
                let t = now_ms();
                self.sample_batch(&[]).await?;
                sampling += now_ms() - t;
            }
            let t = now_ms();
            self.phase.set("scoring the answers");
            let mut rollouts = self.score(needs.reward_model, &mut m).await?;
            if self.past_limit(m.rollouts.kl_k1) {
                rollouts = self.undo_update(needs.reward_model, &mut m).await?;
            }
            let t2 = now_ms();
            self.phase.set("updating the policy");
            self.update(&mut rollouts, fresh.len(), make, &mut m).await?;
            (scoring, updating) = (scoring + t2 - t, updating + now_ms() - t2);
        }
        let t3 = now_ms();
        self.phase.set("sampling the next answers");
        self.sample_batch(asked).await?;
        self.phase.set("");
        m.seconds_reward_model = (t1 - t0) / 1e3;
        m.seconds_scoring = scoring / 1e3;
        m.seconds_update = updating / 1e3;
        m.seconds_generation = (sampling + now_ms() - t3) / 1e3;
        self.iteration += 1;
        Ok(m)
    }

    /// Among how many of the reward model's first places a fresh ranking's first answer must be to
    /// join the γ term (`PpoConfig::favourite_within`), at the reward model's agreement now
    /// (`favourite_check_below`); 0: not checked, as without favourites in the γ term.
    fn first_within(&self) -> usize {
        let ppo = &self.cfg.ppo;
        let checked = ppo.favourites > 0 && checks_firsts(self.agreement.share(), ppo.favourite_check_below);
        if checked {
            ppo.favourite_within
        } else {
            0
        }
    }

    /// The scores the policy optimizes of each fresh ranking's answers, where something reads them:
    /// the verdict on rankings with SFT's answers, and with `doubting` the doubt of a first answer
    /// (`first_within`). Empty for the rest, and before the reward model's first fit.
    async fn fresh_scores(&mut self, data: &[TokenizedRanking], places: &[Vec<usize>], doubting: bool) -> Result<Vec<Vec<f32>>> {
        let mut scored = Vec::with_capacity(data.len());
        for (i, (seqs, _)) in data.iter().enumerate() {
            let read = self.fitted_on > 0 && (doubting || places.get(i).is_some_and(|p| !p.is_empty()));
            scored.push(if read { self.policy_rewards(seqs).await? } else { Vec::new() });
        }
        Ok(scored)
    }

    /// Whether the rankings say the policy has gone the wrong way: over the last `restart_window`
    /// rankings with SFT's answers since it started from SFT, its answers won less than
    /// `restart_below` of their pairs with SFT's (once a session; off at 0).
    fn restart_due(&self) -> bool {
        let (below, window) = (self.cfg.restart_below, self.cfg.restart_window.max(1));
        if below <= 0.0 || self.restarted || self.verdicts.len() < window {
            return false;
        }
        Verdict::sum(self.verdicts[self.verdicts.len() - window..].iter().copied()).share() < below
    }

    /// The policy starts again from SFT, keeping every ranking and the reward model fitted to
    /// them: its weights, AdamW's moments, the method's state and β as at the start, and a batch
    /// sampled anew, so that the update stays on its own answers.
    async fn restart(&mut self) -> Result<()> {
        self.policy.set_params(&self.sft)?;
        self.policy.reset_optimizer()?;
        self.method = AnyMethod::new(self.cfg.method);
        self.beta = self.cfg.ppo.beta;
        (self.restarted, self.verdicts, self.before_update) = (true, Vec::new(), None);
        self.sample_batch(&[]).await
    }

    /// PPO-ptx's KL limit (`PpoConfig::kl_limit`); the other methods run as they were measured.
    fn kl_limit(&self) -> Option<f32> {
        self.cfg.ppo.kl_limit.filter(|_| self.cfg.method == crate::methods::MethodKind::Ppo)
    }

    /// Whether a batch's KL to SFT is past the KL limit, with an update to undo.
    fn past_limit(&self, kl: f32) -> bool {
        self.kl_limit().is_some_and(|limit| kl > limit) && self.before_update.is_some()
    }

    /// The update that took the policy past the KL limit, undone: its weights from before it, β
    /// raised by the brake for the KL it reached (so that the next update moves less), and the
    /// batch sampled again from the restored policy; that batch's rollouts.
    async fn undo_update(&mut self, with_reward: bool, m: &mut IterationMetrics) -> Result<Vec<Rollout>> {
        let before = self.before_update.take().expect("past_limit checks it");
        m.kl_undone = m.rollouts.kl_k1;
        self.brake(m.kl_undone);
        self.policy.set_params(&before)?;
        self.sample_batch(&[]).await?;
        self.score(with_reward, m).await
    }

    /// The KL brake (`PpoConfig::kl_ceiling`) for a batch's KL to SFT: β for the next update.
    fn brake(&mut self, kl: f32) {
        let ppo = &self.cfg.ppo;
        if let Some(ceiling) = brake_ceiling(ppo.kl_ceiling, ppo.kl_per_ranking, self.data.len(), self.cfg.min_rankings) {
            self.beta = brake_beta(self.beta, ppo.beta, kl, ceiling);
        }
    }

    /// The batch as rollouts with their log-probabilities under the policy and the reference and,
    /// when the method needs them, the reward model's scores (a fixed penalty for answers cut off
    /// at the length limit); fills the rollout metrics.
    async fn score(&mut self, with_reward: bool, m: &mut IterationMetrics) -> Result<Vec<Rollout>> {
        let end = self.tok.end;
        let mut rollouts = rollouts_of(&self.batch, end, self.cfg.max_new_tokens, self.model.n_ctx);
        let refs: Vec<&Rollout> = rollouts.iter().collect();
        let temp = self.cfg.ppo.temperature;
        let (lp_old, ent) = action_logprobs(&mut self.policy, &refs, end, temp).await?;
        let (lp_ref, _) = action_logprobs(&mut self.reference, &refs, end, temp).await?;
        let finished: Vec<Vec<u32>> = rollouts.iter().filter(|r| r.finished).map(|r| r.tokens.clone()).collect();
        let scores = if with_reward { self.policy_rewards(&finished).await? } else { vec![f32::NAN; finished.len()] };
        let mut scores = scores.into_iter();
        for (i, r) in rollouts.iter_mut().enumerate() {
            r.logp_old = lp_old[i].clone();
            r.logp_ref = lp_ref[i].clone();
            r.score = if r.finished { scores.next().unwrap_or(0.0) } else { self.cfg.truncated_reward };
        }
        m.rollouts = rollout_metrics(&rollouts, &ent);
        m.beta = self.beta;
        self.last_kl = m.rollouts.kl_k1;
        Ok(rollouts)
    }

    /// The rewards the policy optimizes: the reward models' (conservative) score, or their
    /// weights' moving average's, less the relevance gate's penalty where there is a gate.
    pub(super) async fn policy_rewards(&mut self, seqs: &[Vec<u32>]) -> Result<Vec<f32>> {
        // the members' own scores are not needed where the average scores
        let all = if self.average().is_some() { Vec::new() } else { self.reward.member_scores(seqs, self.tok.end).await? };
        self.rewards_given(&all, seqs).await
    }

    /// `policy_rewards`, given the members' scores of the same sequences (members × sequences).
    pub(super) async fn rewards_given(&mut self, all: &[Vec<f32>], seqs: &[Vec<u32>]) -> Result<Vec<f32>> {
        let (pad, penalty) = (self.tok.end, self.cfg.rm.penalty);
        let scores = match self.average() {
            Some(avg) => avg.score(seqs, pad).await?,
            None => conservative(all, penalty),
        };
        let penalties = self.gate_penalties(seqs).await?;
        Ok(scores.into_iter().zip(penalties).map(|(s, p)| s + p).collect())
    }

    /// The moving average of the reward model's weights, once it holds a fit: then it scores for
    /// the policy in place of the reward models.
    fn average(&mut self) -> Option<&mut AveragedReward<E>> {
        self.averaged.as_mut().filter(|a| a.ready())
    }

    /// The relevance gate's penalty of each sequence (≤ 0): none without a gate or before its
    /// first ranking (it may be trained ahead, `prepare`).
    pub(super) async fn gate_penalties(&mut self, seqs: &[Vec<u32>]) -> Result<Vec<f32>> {
        match self.gate.as_mut().filter(|_| self.data.len() >= self.cfg.rm.gate_from) {
            Some(gate) => gate.penalties(seqs, self.tok.end).await,
            None => Ok(vec![0.0; seqs.len()]),
        }
    }

    /// The reward model's favourite of K (or `sft_best_of`, in whole groups of K) fresh answers of
    /// the frozen SFT model to each of the batch's questions, as (prompt + answer + end, prompt
    /// length): best-of-K distillation's targets for PPO-ptx's γ term (`--sft-best`). A stream of
    /// its own, so that the policy's samples stay as they were; a question whose answers were all
    /// cut off gives none.
    async fn sft_favourites(&mut self) -> Result<Vec<AnswerRow>> {
        let mut rng = self.iteration_stream(SALT_SFT_BEST);
        let k = self.cfg.k;
        // whole groups of K per question (the engines' rows), as many as the candidates take
        let draws = self.cfg.ppo.sft_best_of.max(k).div_ceil(k);
        let jobs: Vec<(Vec<u32>, u64)> =
            self.batch.iter().flat_map(|g| (0..draws).map(|_| (g.prompt_ids.clone(), rng.next_u64())).collect::<Vec<_>>()).collect();
        let outs = self.reference.generate_groups(&jobs, k, self.tok.end, &self.sample_cfg()).await?;
        let groups: Vec<Group> = self
            .batch
            .iter()
            .zip(outs.chunks(draws))
            .map(|(g, outs)| Group {
                prompt: g.prompt.clone(),
                prompt_ids: g.prompt_ids.clone(),
                outs: outs.iter().flatten().map(|o| self.tok.answer_ids(o).to_vec()).collect(),
            })
            .collect();
        let mut sft = rollouts_of(&groups, self.tok.end, self.cfg.max_new_tokens, self.model.n_ctx);
        let finished: Vec<Vec<u32>> = sft.iter().filter(|r| r.finished).map(|r| r.tokens.clone()).collect();
        let mut scores = self.policy_rewards(&finished).await?.into_iter();
        for r in sft.iter_mut().filter(|r| r.finished) {
            r.score = scores.next().unwrap_or(f32::NEG_INFINITY);
        }
        Ok(group_favourites(&sft, 0.0))
    }

    /// The method's update, then the pretraining log-likelihood, the objective and β.
    async fn update(&mut self, rollouts: &mut [Rollout], fresh: usize, make: &EngineFactory<'_, E>, m: &mut IterationMetrics) -> Result<()> {
        let wanted = sft_best_applies(&self.cfg.ppo, self.data.len()) && self.method.needs().reward_model;
        let sft_favourites = if wanted { self.sft_favourites().await? } else { Vec::new() };
        if self.kl_limit().is_some() {
            self.before_update = Some(self.policy.params().await?);
        }
        let pretraining = Pretraining { docs: &self.prose, t: self.ptx_eval.t, rng: Rng::new(self.rng.next_u64()) };
        let mut u = Update {
            policy: &mut self.policy,
            reference: &mut self.reference,
            reward: &mut self.reward,
            rollouts,
            rankings: &self.data,
            prompt_lens: &self.prompt_lens,
            fresh,
            sft_favourites: &sft_favourites,
            doubted: &self.doubted,
            beta: self.beta,
            cfg: Settings { ppo: &self.cfg.ppo, dpo: &self.cfg.dpo, bok: &self.cfg.bok, batch: self.cfg.batch },
            adam: &self.cfg.adam,
            pad: self.tok.end,
            pretraining,
            rng: &mut self.rng,
            make,
        };
        m.update = self.method.update(&mut u).await?;
        m.ptx_loglik = self.ptx_loglik(Prose::HeldOut, false).await?;
        m.objective = m.rollouts.reward - self.beta * m.rollouts.kl_k1 + self.cfg.ppo.gamma * m.ptx_loglik;
        if let Some(target) = self.cfg.ppo.target_kl {
            self.beta = adapt_beta(self.beta, m.rollouts.kl_k1, target, rollouts.len() as f32, self.cfg.ppo.kl_horizon);
        }
        self.brake(m.rollouts.kl_k1);
        Ok(())
    }
}

/// The verdict of the scores the policy optimizes (`scored`, one list a ranking, empty where none
/// was read) on rankings with SFT's answers at `places`.
fn rm_verdict(scored: &[Vec<f32>], places: &[Vec<usize>]) -> Verdict {
    let read = scored.iter().zip(places).filter(|(s, p)| !s.is_empty() && !p.is_empty());
    Verdict::sum(read.map(|(s, p)| Verdict::of(&crate::reward::ranks_of(s), p)))
}
