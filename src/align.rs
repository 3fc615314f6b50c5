//! The whole InstructGPT loop, one iteration at a time: sample rollouts in groups of K answers per
//! prompt, let a labeler rank some groups (or take a person's rankings), fit the reward model to
//! every ranking so far, score the rollouts and run PPO-ptx; and the win-rate of one policy
//! against another.

use serde::Serialize;

use crate::bail;
use crate::checkpoint::{HeadState, LabState, ModelState};
use crate::clock::now_ms;
use crate::config::SampleConfig;
use crate::config::{AdamSettings, ModelConfig};
use crate::corpus::{format_prompt, prompt_split, Corpus};
use crate::engine::{lm_forward, Engine};
use crate::error::{ErrorKind, Result};
use crate::labelers::Labeler;
use crate::ppo::{
    action_logprobs, action_values, adapt_beta, compute_advantages, group_advantages, kl_estimates, ppo_update, Baseline, Optimizers, PpoConfig,
    PpoMetrics, Rollout,
};
use crate::reward::{dialogue_ids, Ranking, RewardModel, RmFit, ScalarHead, TokenizedRanking, K_MAX, K_MIN};
use crate::rng::Rng;
use crate::sample::generate;
use crate::tokenizer::Tokenizer;
use crate::train::{lm_batch, Batch};

/// Salts that give each random stream of a run its own seed.
const SALT_CORPUS: u64 = 0xC0;
const SALT_PTX_EVAL: u64 = 0xE7A1;
const SALT_HEAD: u64 = 0x2E;
/// Every eighth prose document is held out for the pretraining log-likelihood metric.
const PTX_EVAL_STRIDE: usize = 8;
/// A pretraining batch of the ptx term: rows of tokens. 4×64 = 256 tokens, about as many as a PPO
/// minibatch's answers (8 × ~35), so neither side of a policy step dominates its cost.
const PTX_ROWS: usize = 4;
const PTX_T: usize = 64;
/// SFT demonstrations the reward model is normalized on.
const NORMALIZE_DEMOS: usize = 64;

#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
pub struct AlignConfig {
    /// Rankings a labeler gives per iteration (the command line, the page's autopilot).
    pub rankings_per_iteration: usize,
    /// Rankings the reward model needs before PPO starts moving the policy.
    pub min_rankings: usize,
    /// Which groups of answers a labeler is asked to rank.
    pub label_selection: Selection,
    /// Answers per prompt, 2 to 9: rollouts come in groups of K, and a ranking orders one group.
    pub k: usize,
    pub rm: RmFit,
    /// Responses sampled for each PPO iteration.
    pub rollouts: usize,
    pub max_new_tokens: usize,
    /// Rows per engine batch (the PPO minibatch).
    pub batch: usize,
    pub ppo: PpoConfig,
    pub adam: AdamSettings,
    /// The score of an answer cut off at the length limit, in units of the normalized reward.
    pub truncated_reward: f32,
    pub seed: u64,
}

impl Default for AlignConfig {
    fn default() -> Self {
        AlignConfig {
            rankings_per_iteration: 1,
            min_rankings: 0,
            label_selection: Selection::First,
            k: 4,
            rm: RmFit { epochs: 4, lr: 1e-4, batch: 4 },
            rollouts: 32,
            max_new_tokens: 64,
            batch: 8,
            ppo: PpoConfig::default(),
            adam: AdamSettings { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0 },
            truncated_reward: -1.0,
            seed: 1,
        }
    }
}

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
    #[serde(flatten)]
    pub ppo: PpoMetrics,
    pub seconds_labeling: f64,
    pub seconds_reward_model: f64,
    pub seconds_generation: f64,
    pub seconds_scoring: f64,
    pub seconds_update: f64,
}

/// How the groups a labeler ranks are chosen among an iteration's rollouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The first groups sampled (random prompts).
    First,
    /// The groups with the answers the current reward model scores highest.
    TopReward,
}

/// Prompt + response (+ end), cut to the context: a sequence to score.
fn dialogue_ids_from(prompt: &[u32], response: &[u32], end: u32, n_ctx: usize) -> Vec<u32> {
    let mut s: Vec<u32> = prompt.iter().chain(response).copied().collect();
    s.push(end);
    s.truncate(n_ctx);
    s
}

/// K answers of the policy to one prompt.
pub struct Group {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub outs: Vec<Vec<u32>>,
}

/// Makes an engine for (params, max batch, max sequence length): the CPU reference or the GPU.
pub type EngineFactory<'a, E> = dyn Fn(Vec<f32>, usize, usize) -> Result<E> + 'a;

pub struct Aligner<E: Engine> {
    pub cfg: AlignConfig,
    pub model: ModelConfig,
    pub tok: Tokenizer,
    pub policy: E,
    pub reference: E,
    pub reward: RewardModel<E>,
    pub value: Option<(E, ScalarHead)>,
    pub rankings: Vec<Ranking>,
    /// How many rankings the reward model was last fitted on (0: never).
    pub fitted_on: usize,
    pub train_prompts: Vec<String>,
    pub eval_prompts: Vec<String>,
    pub beta: f32,
    sft: Vec<f32>,
    stream: Vec<u32>,
    ptx_eval: Batch,
    demo_ids: Vec<Vec<u32>>,
    rng: Rng,
    pub policy_steps: u32,
    pub iteration: usize,
    /// KL (k1) of the last iteration's rollouts.
    pub last_kl: f32,
    /// Reward-model steps skipped for a non-finite loss or gradient, so far.
    pub rm_skipped: usize,
}

/// Prose for the pretraining mix, closed by the end token: (training stream, held-out stream).
fn prose_streams(corpus: &Corpus, tok: &Tokenizer) -> Result<(Vec<u32>, Vec<u32>)> {
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (i, doc) in corpus.prose.iter().enumerate() {
        let s = if i % PTX_EVAL_STRIDE == 0 { &mut held } else { &mut train };
        s.extend(tok.encode(doc)?);
        s.push(tok.end);
    }
    Ok((train, held))
}

impl<E: Engine> Aligner<E> {
    pub fn new(sft: Vec<f32>, model: ModelConfig, tok: Tokenizer, cfg: AlignConfig, make: &EngineFactory<E>) -> Result<Aligner<E>> {
        if !(K_MIN..=K_MAX).contains(&cfg.k) {
            bail!("K must be between {K_MIN} and {K_MAX}, got {}", cfg.k);
        }
        // room for a ranking of the largest K in one batch, whatever K is now
        let b = cfg.batch.max(K_MAX);
        let t = model.n_ctx;
        // the pretraining mix is plain prose from the project's grammar; its held-out documents
        // give the log-likelihood metric and never enter a training batch
        let corpus = Corpus::generate(2000, cfg.seed ^ SALT_CORPUS);
        let (stream, held) = prose_streams(&corpus, &tok)?;
        let ptx_t = t.min(PTX_T);
        if stream.len() < 4 * ptx_t || held.len() < 2 * ptx_t {
            bail!("the pretraining prose is too short for windows of {ptx_t} tokens");
        }
        let ptx_eval = lm_batch(&held, b, ptx_t, &mut Rng::new(SALT_PTX_EVAL));
        let demo_ids =
            corpus.demonstrations.iter().take(NORMALIZE_DEMOS).map(|d| dialogue_ids(&tok, &d.prompt, &d.response, t)).collect::<Result<_>>()?;
        let (train_prompts, eval_prompts) = prompt_split();
        let mut reference = make(sft.clone(), b, t)?;
        reference.freeze();
        Ok(Aligner {
            policy: make(sft.clone(), b, t)?,
            reference,
            reward: RewardModel::new(make(sft.clone(), b, t)?, cfg.seed ^ SALT_HEAD),
            value: None,
            rankings: Vec::new(),
            fitted_on: 0,
            train_prompts,
            eval_prompts,
            beta: cfg.ppo.beta,
            sft,
            stream,
            ptx_eval,
            demo_ids,
            rng: Rng::new(cfg.seed),
            policy_steps: 0,
            iteration: 0,
            last_kl: 0.0,
            rm_skipped: 0,
            cfg,
            model,
            tok,
        })
    }

    pub fn sample_cfg(&self) -> SampleConfig {
        SampleConfig { temperature: self.cfg.ppo.temperature, top_k: 0, top_p: 1.0, max_new_tokens: self.cfg.max_new_tokens }
    }

    /// Adds a ranking made elsewhere (a person in the page, an imported file).
    pub fn add_ranking(&mut self, r: Ranking) -> Result<()> {
        r.validate()?;
        self.rankings.push(r);
        Ok(())
    }

    /// Groups of K answers from the current policy to random training prompts: at least `rollouts`
    /// answers and at least `min_groups` groups.
    pub async fn sample_groups(&mut self, min_groups: usize) -> Result<Vec<Group>> {
        let k = self.cfg.k;
        let n = self.cfg.rollouts.div_ceil(k).max(min_groups).max(1);
        let sc = self.sample_cfg();
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            let prompt = self.rng.choose(&self.train_prompts).clone();
            let seed = self.rng.next_u64();
            let prompt_ids = self.tok.encode(&format_prompt(&prompt))?;
            let outs = generate(&mut self.policy, &prompt_ids, k, self.tok.end, &sc, seed).await?;
            groups.push(Group { prompt, prompt_ids, outs });
        }
        Ok(groups)
    }

    /// Which `n` groups to ask the labeler about: the first ones, or (`TopReward`, once the reward
    /// model has been fitted) those holding the answers the reward model likes best, which is where
    /// over-optimization shows first and a label corrects the most.
    pub async fn choose_groups(&mut self, groups: &[Group], n: usize) -> Result<Vec<usize>> {
        if self.cfg.label_selection == Selection::First || self.fitted_on == 0 || n >= groups.len() {
            return Ok((0..n.min(groups.len())).collect());
        }
        let mut best = Vec::with_capacity(groups.len());
        for g in groups {
            let seqs: Vec<Vec<u32>> = g.outs.iter().map(|o| dialogue_ids_from(&g.prompt_ids, o, self.tok.end, self.model.n_ctx)).collect();
            let scores = self.reward.score(&seqs, self.tok.end).await?;
            best.push(scores.into_iter().fold(f32::NEG_INFINITY, f32::max));
        }
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by(|&a, &b| best[b].total_cmp(&best[a]));
        order.truncate(n);
        order.sort();
        Ok(order)
    }

    /// The labeler ranks the chosen groups; every ranking counts, ties included.
    pub fn label(&self, groups: &[Group], chosen: &[usize], labeler: Labeler) -> Result<Vec<Ranking>> {
        chosen
            .iter()
            .map(|&i| {
                let g = &groups[i];
                let responses: Vec<String> = g.outs.iter().map(|o| self.tok.decode(o)).collect::<Result<_>>()?;
                let ranks = labeler.rank(&g.prompt, &responses);
                Ok(Ranking { prompt: g.prompt.clone(), responses, ranks })
            })
            .collect()
    }

    fn tokenized(&self, rs: &[Ranking]) -> Result<Vec<TokenizedRanking>> {
        rs.iter()
            .map(|r| {
                let seqs = r.responses.iter().map(|y| dialogue_ids(&self.tok, &r.prompt, y, self.model.n_ctx)).collect::<Result<_>>()?;
                Ok((seqs, r.ranks.clone()))
            })
            .collect()
    }

    /// The reward model's pairwise accuracy on rankings (NaN before its first fit or without pairs).
    pub async fn rm_accuracy_on(&mut self, rs: &[Ranking]) -> Result<f32> {
        if self.fitted_on == 0 || rs.is_empty() {
            return Ok(f32::NAN);
        }
        let data = self.tokenized(rs)?;
        Ok(self.reward.evaluate(&data, self.tok.end).await?.accuracy)
    }

    /// Fits the reward model afresh from the SFT trunk to every ranking so far, then normalizes it on
    /// the SFT demonstrations. A refit, not a continuation: every ranking is seen the same number of
    /// times, so early ones do not dominate, and the fit does not depend on when rankings arrived.
    pub async fn fit_reward_model(&mut self) -> Result<crate::reward::RmReport> {
        let mut data = self.tokenized(&self.rankings)?;
        self.reward.reset(&self.sft, self.cfg.seed ^ SALT_HEAD)?;
        let (report, skipped) = self.reward.fit(&mut data, self.tok.end, &self.cfg.rm, &self.cfg.adam, self.cfg.ppo.grad_clip, &mut self.rng).await?;
        self.rm_skipped += skipped;
        self.reward.normalize(&self.demo_ids, self.tok.end).await?;
        self.fitted_on = self.rankings.len();
        Ok(report)
    }

    /// Mean per-token log-likelihood of the fixed held-out pretraining batch under the policy (or
    /// the SFT reference).
    pub async fn ptx_loglik(&mut self, reference: bool) -> Result<f32> {
        let b = &self.ptx_eval;
        let engine = if reference { &mut self.reference } else { &mut self.policy };
        Ok(-lm_forward(engine, &b.tokens, &b.targets, b.b, b.t).await?)
    }

    /// One iteration: rollouts; the labeler's rankings of some of their groups, when there is a
    /// labeler; the reward model refitted when rankings were added; scoring; PPO-ptx. Returns the
    /// metrics and the rankings the labeler added.
    pub async fn iterate(&mut self, labeler: Option<Labeler>, make: &EngineFactory<'_, E>) -> Result<(IterationMetrics, Vec<Ranking>)> {
        let mut m = IterationMetrics { iteration: self.iteration, ..Default::default() };
        let per_iteration = if labeler.is_some() { self.cfg.rankings_per_iteration } else { 0 };
        let t0 = now_ms();
        let groups = self.sample_groups(per_iteration).await?;
        let t1 = now_ms();
        let new = match labeler {
            Some(l) => {
                let chosen = self.choose_groups(&groups, per_iteration).await?;
                self.label(&groups, &chosen, l)?
            }
            None => Vec::new(),
        };
        m.rm_new_accuracy = self.rm_accuracy_on(&new).await?;
        self.rankings.extend(new.iter().cloned());
        if self.rankings.is_empty() {
            bail!(kind: ErrorKind::NotReady, "no rankings yet: rank some answers first (or let the autopilot rank)");
        }
        let t2 = now_ms();
        if self.rankings.len() != self.fitted_on {
            let rm = self.fit_reward_model().await?;
            (m.rm_loss, m.rm_accuracy) = (rm.loss, rm.accuracy);
        }
        m.rankings = self.rankings.len();
        m.rm_skipped_steps = self.rm_skipped;
        self.ensure_value_model(make).await?;
        let t3 = now_ms();
        let mut t4 = t3;
        if self.rankings.len() >= self.cfg.min_rankings {
            let mut rollouts = self.score(&groups, &mut m.ppo).await?;
            t4 = now_ms();
            self.update(&mut rollouts, &mut m.ppo).await?;
        }
        let t5 = now_ms();
        m.seconds_generation = (t1 - t0) / 1e3;
        m.seconds_labeling = (t2 - t1) / 1e3;
        m.seconds_reward_model = (t3 - t2) / 1e3;
        m.seconds_scoring = (t4 - t3) / 1e3;
        m.seconds_update = (t5 - t4) / 1e3;
        self.iteration += 1;
        Ok((m, new))
    }

    /// The value model (with the value baseline) starts as a copy of the first fitted reward model,
    /// trunk and head.
    async fn ensure_value_model(&mut self, make: &EngineFactory<'_, E>) -> Result<()> {
        if self.value.is_none() && self.cfg.ppo.baseline == Baseline::Value {
            let b = self.policy.capacity().0;
            let trunk = make(self.reward.engine.params().await?, b, self.model.n_ctx)?;
            self.value = Some((trunk, self.reward.head.clone()));
        }
        Ok(())
    }

    /// Rollouts of the groups with everything PPO needs: log-probs under the policy and the
    /// reference, values, scores (a fixed penalty for answers cut off at the length limit) and
    /// advantages; fills the rollout metrics.
    async fn score(&mut self, groups: &[Group], m: &mut PpoMetrics) -> Result<Vec<Rollout>> {
        let (end, n_ctx) = (self.tok.end, self.model.n_ctx);
        let mut rollouts = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            let limit = self.cfg.max_new_tokens.min(n_ctx - g.prompt_ids.len());
            for o in &g.outs {
                let finished = o.len() < limit;
                let mut tokens = g.prompt_ids.clone();
                tokens.extend(o);
                if finished {
                    tokens.push(end);
                }
                rollouts.push(Rollout { tokens, prompt_len: g.prompt_ids.len(), finished, group: gi, ..Default::default() });
            }
        }
        let refs: Vec<&Rollout> = rollouts.iter().collect();
        let temp = self.cfg.ppo.temperature;
        let (lp_old, ent) = action_logprobs(&mut self.policy, &refs, end, temp).await?;
        let (lp_ref, _) = action_logprobs(&mut self.reference, &refs, end, temp).await?;
        let values = match (self.cfg.ppo.baseline, self.value.as_mut()) {
            (Baseline::Value, Some((value, head))) => action_values(value, head, &refs, end).await?,
            _ => refs.iter().map(|r| vec![0.0; r.actions()]).collect(),
        };
        let finished: Vec<Vec<u32>> = rollouts.iter().filter(|r| r.finished).map(|r| r.tokens.clone()).collect();
        let mut scores = self.reward.score(&finished, end).await?.into_iter();
        for (i, r) in rollouts.iter_mut().enumerate() {
            r.logp_old = lp_old[i].clone();
            r.logp_ref = lp_ref[i].clone();
            r.values = values[i].clone();
            r.score = if r.finished { scores.next().unwrap_or(0.0) } else { self.cfg.truncated_reward };
        }
        match self.cfg.ppo.baseline {
            Baseline::Value => compute_advantages(&mut rollouts, self.beta, self.cfg.ppo.lam),
            Baseline::Group => group_advantages(&mut rollouts, self.beta),
        }
        rollout_metrics(&rollouts, &ent, m);
        m.beta = self.beta;
        self.last_kl = m.kl_k1;
        Ok(rollouts)
    }

    /// PPO-ptx on scored rollouts, then the pretraining log-likelihood, the objective and β.
    async fn update(&mut self, rollouts: &mut [Rollout], m: &mut PpoMetrics) -> Result<()> {
        let ptx_t = self.ptx_eval.t;
        let stream = &self.stream;
        let mut ptx_rng = Rng::new(self.rng.next_u64());
        let ptx = || {
            let bt = lm_batch(stream, PTX_ROWS, ptx_t, &mut ptx_rng);
            Ok((bt.tokens, bt.targets, bt.b, bt.t))
        };
        let opt = Optimizers { ppo: &self.cfg.ppo, adam: &self.cfg.adam, pad: self.tok.end };
        self.policy_steps =
            ppo_update(&mut self.policy, self.value.as_mut().map(|(v, h)| (v, h)), rollouts, &opt, self.policy_steps, ptx, &mut self.rng, m).await?;
        m.ptx_loglik = self.ptx_loglik(false).await?;
        m.objective = m.reward - self.beta * m.kl_k1 + self.cfg.ppo.gamma * m.ptx_loglik;
        if let Some(target) = self.cfg.ppo.target_kl {
            self.beta = adapt_beta(self.beta, m.kl_k1, target, rollouts.len() as f32, self.cfg.ppo.kl_horizon);
        }
        Ok(())
    }
}

impl<E: Engine> Aligner<E> {
    /// Everything training changed, for saving (see `LabState`).
    pub async fn snapshot(&mut self, history: Vec<serde_json::Value>) -> Result<LabState> {
        let value = match self.value.as_mut() {
            Some((v, h)) => Some((model_state(v).await?, head_state(h))),
            None => None,
        };
        Ok(LabState {
            model: self.model,
            policy: model_state(&mut self.policy).await?,
            policy_steps: self.policy_steps,
            reward: model_state(&mut self.reward.engine).await?,
            reward_head: head_state(&self.reward.head),
            reward_steps: self.reward.steps,
            fitted_on: self.fitted_on,
            value,
            beta: self.beta,
            iteration: self.iteration,
            history,
        })
    }

    /// Puts a checked state in place, all of it: the value model is built before anything changes.
    pub fn restore(&mut self, s: LabState, make: &EngineFactory<'_, E>) -> Result<()> {
        if s.model != self.model {
            bail!(kind: ErrorKind::BadState, "the saved state is for {:?}, not this model {:?}", s.model, self.model);
        }
        let value = match s.value {
            Some((v, h)) => {
                let mut e = make(v.params, self.policy.capacity().0, self.model.n_ctx)?;
                e.set_optimizer_state(&v.m, &v.v)?;
                Some((e, head_from(h)))
            }
            None => None,
        };
        self.policy.set_params(&s.policy.params)?;
        self.policy.set_optimizer_state(&s.policy.m, &s.policy.v)?;
        self.reward.engine.set_params(&s.reward.params)?;
        self.reward.engine.set_optimizer_state(&s.reward.m, &s.reward.v)?;
        self.reward.head = head_from(s.reward_head);
        self.reward.steps = s.reward_steps;
        self.value = value;
        (self.policy_steps, self.fitted_on, self.beta, self.iteration) = (s.policy_steps, s.fitted_on, s.beta, s.iteration);
        Ok(())
    }
}

async fn model_state<E: Engine>(e: &mut E) -> Result<ModelState> {
    let (m, v) = e.optimizer_state().await?;
    Ok(ModelState { params: e.params().await?, m, v })
}

fn head_state(h: &ScalarHead) -> HeadState {
    HeadState { w: h.w.clone(), bias: h.bias, m: h.m.clone(), v: h.v.clone(), t: h.t }
}

fn head_from(h: HeadState) -> ScalarHead {
    let c = h.w.len();
    ScalarHead { w: h.w, bias: h.bias, m: h.m, v: h.v, grad: vec![0.0; c], t: h.t }
}

/// Means over the rollouts: reward, KL, entropy, length, truncation, distinct answers.
fn rollout_metrics(rollouts: &[Rollout], entropy: &[Vec<f32>], m: &mut PpoMetrics) {
    let n = rollouts.len().max(1) as f32;
    let (k1, k3) = rollouts.iter().map(kl_estimates).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    m.reward = rollouts.iter().map(|r| r.score).sum::<f32>() / n;
    m.kl_k1 = k1 / n;
    m.kl_k3 = k3 / n;
    let n_tok: usize = entropy.iter().map(|e| e.len()).sum();
    m.entropy = entropy.iter().flatten().sum::<f32>() / n_tok.max(1) as f32;
    m.response_len = rollouts.iter().map(|r| r.actions() as f32).sum::<f32>() / n;
    m.truncated = rollouts.iter().filter(|r| !r.finished).count() as f32 / n;
    let mut distinct: Vec<&[u32]> = rollouts.iter().map(|r| &r.tokens[r.prompt_len..]).collect();
    distinct.sort();
    distinct.dedup();
    m.distinct_responses = distinct.len() as f32 / n;
}

/// The labeler's preference for policy A over policy B on prompts: for each prompt, `samples`
/// responses from each, compared pairwise; ties count half.
#[allow(clippy::too_many_arguments)]
pub async fn win_rate<A: Engine, B: Engine>(
    a: &mut A,
    b: &mut B,
    tok: &Tokenizer,
    labeler: Labeler,
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
        let ids = tok.encode(&format_prompt(p))?;
        let ya = generate(a, &ids, samples, tok.end, sc, seed + i as u64).await?;
        let yb = generate(b, &ids, samples, tok.end, sc, seed + 10_000 + i as u64).await?;
        for (x, y) in ya.iter().zip(&yb) {
            total += labeler.compare(p, &tok.decode(x)?, &tok.decode(y)?);
            n += 1;
        }
    }
    Ok(total / n as f32)
}
