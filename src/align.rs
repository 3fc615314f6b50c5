//! The whole InstructGPT loop: sample K responses, have a labeler rank them, train the reward model
//! on every ranking so far, run PPO-ptx, repeat; and the win-rate of one policy against another.

use serde::Serialize;

use crate::bail;
use crate::config::ModelConfig;
use crate::corpus::{format_prompt, prompt_split, Corpus};
use crate::engine::{lm_forward, Engine};
use crate::error::Result;
use crate::gpu::context::now_ms;
use crate::labelers::Labeler;
use crate::ppo::{action_logprobs, action_values, adapt_beta, compute_advantages, kl_estimates, ppo_update, PpoConfig, PpoMetrics, Rollout};
use crate::reward::{dialogue_ids, Ranking, RewardModel, RmReport, ScalarHead};
use crate::rng::Rng;
use crate::sample::{generate, SampleConfig};
use crate::tokenizer::Tokenizer;
use crate::train::{lm_batch, pretrain_stream};

#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
pub struct AlignConfig {
    pub iterations: usize,
    pub rankings_per_iteration: usize,
    /// Responses per ranking, 2 to 9.
    pub k: usize,
    /// Passes over all rankings so far, each time the reward model trains.
    pub rm_epochs: usize,
    pub rm_lr: f32,
    /// Rankings per reward-model step.
    pub rm_batch: usize,
    /// Responses sampled for each PPO iteration.
    pub rollouts: usize,
    pub max_new_tokens: usize,
    /// Rows per engine batch.
    pub batch: usize,
    pub ppo: PpoConfig,
    pub seed: u64,
}

impl Default for AlignConfig {
    fn default() -> Self {
        AlignConfig {
            iterations: 10,
            rankings_per_iteration: 8,
            k: 4,
            rm_epochs: 2,
            rm_lr: 1e-4,
            rm_batch: 4,
            rollouts: 32,
            max_new_tokens: 48,
            batch: 8,
            ppo: PpoConfig::default(),
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
    pub rm_heldout_accuracy: f32,
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

/// Makes an engine for (params, max batch, max sequence length): the CPU reference or the GPU.
pub type EngineFactory<'a, E> = dyn Fn(Vec<f32>, usize, usize) -> Result<E> + 'a;

pub struct Aligner<E: Engine> {
    pub cfg: AlignConfig,
    pub model: ModelConfig,
    pub tok: Tokenizer,
    pub labeler: Labeler,
    pub policy: E,
    pub reference: E,
    pub reward: RewardModel<E>,
    pub value: Option<(E, ScalarHead)>,
    pub rankings: Vec<Ranking>,
    pub heldout: Vec<Ranking>,
    pub train_prompts: Vec<String>,
    pub eval_prompts: Vec<String>,
    pub beta: f32,
    stream: Vec<u32>,
    ptx_eval: (Vec<u32>, Vec<i32>),
    demo_ids: Vec<Vec<u32>>,
    rng: Rng,
    pub policy_steps: u32,
    pub iteration: usize,
    /// KL (k1) of the last iteration's rollouts.
    pub last_kl: f32,
    /// Reward-model steps skipped for a non-finite loss or gradient, so far.
    pub rm_skipped: usize,
}

impl<E: Engine> Aligner<E> {
    pub fn new(sft: Vec<f32>, model: ModelConfig, tok: Tokenizer, labeler: Labeler, cfg: AlignConfig, make: &EngineFactory<E>) -> Result<Aligner<E>> {
        if !(2..=9).contains(&cfg.k) {
            bail!("K must be between 2 and 9, got {}", cfg.k);
        }
        let b = cfg.batch.max(cfg.k);
        let t = model.n_ctx;
        // the pretraining mix and the SFT demonstrations come from the corpus the base model saw
        let corpus = Corpus::generate(2000, cfg.seed ^ 0xC0);
        let stream = pretrain_stream(&corpus, &tok, cfg.seed)?;
        let ptx_t = t.min(64);
        if stream.len() < 4 * ptx_t {
            bail!("the pretraining stream is too short");
        }
        let eval_batch = lm_batch(&stream, b, ptx_t, &mut Rng::new(0xE7A1));
        let demo_ids = corpus.demonstrations.iter().take(64).map(|d| dialogue_ids(&tok, &d.prompt, &d.response, t)).collect::<Result<_>>()?;
        let (train_prompts, eval_prompts) = prompt_split();
        Ok(Aligner {
            policy: make(sft.clone(), b, t)?,
            reference: make(sft.clone(), b, t)?,
            reward: RewardModel::new(make(sft, b, t)?, cfg.seed ^ 0x2E),
            value: None,
            rankings: Vec::new(),
            heldout: Vec::new(),
            train_prompts,
            eval_prompts,
            beta: cfg.ppo.beta,
            stream,
            ptx_eval: (eval_batch.tokens, eval_batch.targets),
            demo_ids,
            rng: Rng::new(cfg.seed),
            policy_steps: 0,
            iteration: 0,
            last_kl: 0.0,
            rm_skipped: 0,
            cfg,
            model,
            tok,
            labeler,
        })
    }

    fn sample_cfg(&self) -> SampleConfig {
        SampleConfig { temperature: self.cfg.ppo.temperature, top_k: 0, top_p: 1.0, max_new_tokens: self.cfg.max_new_tokens }
    }

    /// K responses to a prompt from an engine: (response ids, whether each stopped at the end token).
    async fn sample(engine: &mut E, tok: &Tokenizer, prompt: &str, k: usize, sc: &SampleConfig, seed: u64) -> Result<(Vec<u32>, Vec<Vec<u32>>)> {
        let ids = tok.encode(&format_prompt(prompt))?;
        let outs = generate(engine, &ids, k, tok.end, sc, seed).await?;
        Ok((ids, outs))
    }

    /// Adds one labeled ranking of K fresh samples from the current policy; every fifth is held out.
    pub async fn collect_ranking(&mut self) -> Result<()> {
        let prompt = self.rng.choose(&self.train_prompts).clone();
        let seed = self.rng.next_u64();
        let sc = self.sample_cfg();
        let (_, outs) = Self::sample(&mut self.policy, &self.tok, &prompt, self.cfg.k, &sc, seed).await?;
        let responses: Vec<String> = outs.iter().map(|o| self.tok.decode(o)).collect::<Result<_>>()?;
        let ranks = self.labeler.rank(&prompt, &responses);
        let r = Ranking { prompt, responses, ranks };
        if r.validate().is_err() {
            return Ok(()); // all tied: nothing to learn
        }
        self.add_ranking(r)
    }

    fn tokenized(&self, rs: &[Ranking]) -> Result<Vec<(Vec<Vec<u32>>, Vec<usize>)>> {
        rs.iter()
            .map(|r| {
                let seqs = r.responses.iter().map(|y| dialogue_ids(&self.tok, &r.prompt, y, self.model.n_ctx)).collect::<Result<_>>()?;
                Ok((seqs, r.ranks.clone()))
            })
            .collect()
    }

    /// Trains the reward model on every ranking so far, then normalizes it on the demonstrations.
    pub async fn train_reward_model(&mut self) -> Result<(RmReport, RmReport)> {
        let mut data = self.tokenized(&self.rankings)?;
        let mut last = RmReport::default();
        for _ in 0..self.cfg.rm_epochs {
            self.rng.shuffle(&mut data);
            let (mut loss, mut acc, mut n) = (0.0, 0.0, 0);
            for chunk in data.chunks(self.cfg.rm_batch.max(1)) {
                let r = self.reward.train_step(chunk, self.tok.end, self.cfg.rm_lr, 1.0).await?;
                if r.skipped {
                    self.rm_skipped += 1;
                    continue;
                }
                loss += r.loss;
                acc += r.accuracy;
                n += 1;
            }
            last = RmReport { loss: loss / n.max(1) as f32, accuracy: acc / n.max(1) as f32, skipped: false };
        }
        self.reward.normalize(&self.demo_ids, self.tok.end).await?;
        Ok((last, self.evaluate_heldout().await?))
    }

    /// The reward model's loss and pairwise accuracy on the held-out rankings (NaN when there are none).
    pub async fn evaluate_heldout(&mut self) -> Result<RmReport> {
        let held = self.tokenized(&self.heldout)?;
        if held.is_empty() {
            return Ok(RmReport { loss: f32::NAN, accuracy: f32::NAN, skipped: false });
        }
        self.reward.evaluate(&held, self.tok.end).await
    }

    pub fn ptx_eval_batch(&self) -> (Vec<u32>, Vec<i32>) {
        self.ptx_eval.clone()
    }

    /// Mean per-token log-likelihood of the fixed held-out pretraining batch under an engine.
    pub async fn ptx_loglik(engine: &mut E, batch: &(Vec<u32>, Vec<i32>)) -> Result<f32> {
        let (b, _) = engine.capacity();
        let t = batch.0.len() / b;
        Ok(-lm_forward(engine, &batch.0, &batch.1, b, t).await?)
    }

    /// Adds a ranking made elsewhere (a person in the page, an imported file); every fifth is held out.
    pub fn add_ranking(&mut self, r: Ranking) -> Result<()> {
        r.validate()?;
        if (self.rankings.len() + self.heldout.len()) % 5 == 4 {
            self.heldout.push(r);
        } else {
            self.rankings.push(r);
        }
        Ok(())
    }

    /// One iteration: the labeler's rankings, then `train_iteration`.
    pub async fn iterate(&mut self, make: &EngineFactory<'_, E>) -> Result<IterationMetrics> {
        let t0 = now_ms();
        for _ in 0..self.cfg.rankings_per_iteration {
            self.collect_ranking().await?;
        }
        let mut m = self.train_iteration(make).await?;
        m.seconds_labeling = (now_ms() - t0) / 1e3 - m.seconds_reward_model - m.seconds_generation - m.seconds_scoring - m.seconds_update;
        Ok(m)
    }

    /// Trains on the rankings so far: the reward model, then one round of rollouts and PPO-ptx.
    pub async fn train_iteration(&mut self, make: &EngineFactory<'_, E>) -> Result<IterationMetrics> {
        let mut m = IterationMetrics { iteration: self.iteration, ..Default::default() };
        m.rankings = self.rankings.len() + self.heldout.len();
        let t1 = now_ms();
        if self.rankings.is_empty() {
            bail!("no usable rankings yet: the labeler tied every response");
        }
        let (rm, held) = self.train_reward_model().await?;
        m.rm_loss = rm.loss;
        m.rm_accuracy = rm.accuracy;
        m.rm_heldout_accuracy = held.accuracy;
        m.rm_skipped_steps = self.rm_skipped;
        if self.value.is_none() {
            // the value function starts as a copy of the reward model
            let b = self.policy.capacity().0;
            let trunk = make(self.reward.engine.params().await?, b, self.model.n_ctx)?;
            self.value = Some((trunk, self.reward.head.clone()));
        }
        let t2 = now_ms();

        // rollouts from the current policy
        let sc = self.sample_cfg();
        let mut rollouts = Vec::with_capacity(self.cfg.rollouts);
        let per_prompt = self.cfg.k.min(self.cfg.rollouts.max(1));
        while rollouts.len() < self.cfg.rollouts {
            let prompt = self.rng.choose(&self.train_prompts).clone();
            let seed = self.rng.next_u64();
            let (ids, outs) = Self::sample(&mut self.policy, &self.tok, &prompt, per_prompt, &sc, seed).await?;
            for o in outs.into_iter().take(self.cfg.rollouts - rollouts.len()) {
                let mut tokens = ids.clone();
                tokens.extend(&o);
                if o.len() < sc.max_new_tokens {
                    tokens.push(self.tok.end);
                }
                tokens.truncate(self.model.n_ctx);
                if tokens.len() > ids.len() {
                    rollouts.push(Rollout { tokens, prompt_len: ids.len(), ..Default::default() });
                }
            }
        }
        let t3 = now_ms();

        // scoring: old and reference log-probs, values, rewards
        let refs: Vec<&Rollout> = rollouts.iter().collect();
        let temp = self.cfg.ppo.temperature;
        let (lp_old, ent) = action_logprobs(&mut self.policy, &refs, self.tok.end, temp).await?;
        let (lp_ref, _) = action_logprobs(&mut self.reference, &refs, self.tok.end, temp).await?;
        let (value, head) = self.value.as_mut().expect("set above");
        let values = action_values(value, head, &refs, self.tok.end).await?;
        let scored: Vec<Vec<u32>> = rollouts.iter().map(|r| {
            let mut s = r.tokens.clone();
            if s.last() != Some(&self.tok.end) && s.len() < self.model.n_ctx {
                s.push(self.tok.end);
            }
            s
        }).collect();
        let scores = self.reward.score(&scored, self.tok.end).await?;
        for (i, r) in rollouts.iter_mut().enumerate() {
            r.logp_old = lp_old[i].clone();
            r.logp_ref = lp_ref[i].clone();
            r.values = values[i].clone();
            r.score = scores[i];
        }
        compute_advantages(&mut rollouts, self.beta, self.cfg.ppo.lam);
        let n = rollouts.len() as f32;
        let (k1, k3): (f32, f32) = rollouts.iter().map(kl_estimates).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        m.ppo.reward = scores.iter().sum::<f32>() / n;
        m.ppo.kl_k1 = k1 / n;
        m.ppo.kl_k3 = k3 / n;
        self.last_kl = m.ppo.kl_k1;
        let n_tok: usize = ent.iter().map(|e| e.len()).sum();
        m.ppo.entropy = ent.iter().flatten().sum::<f32>() / n_tok.max(1) as f32;
        m.ppo.response_len = rollouts.iter().map(|r| r.actions() as f32).sum::<f32>() / n;
        let mut distinct: Vec<&[u32]> = rollouts.iter().map(|r| &r.tokens[r.prompt_len..]).collect();
        distinct.sort();
        distinct.dedup();
        m.ppo.distinct_responses = distinct.len() as f32 / n;
        m.ppo.beta = self.beta;
        let t4 = now_ms();

        // PPO-ptx
        let b = self.policy.capacity().0;
        let ptx_t = self.ptx_eval.0.len() / b;
        let stream = &self.stream;
        let rng = &mut self.rng;
        let ptx = || {
            let bt = lm_batch(stream, b, ptx_t, rng);
            Ok((bt.tokens, bt.targets, bt.b, bt.t))
        };
        let (value, head) = self.value.as_mut().expect("set above");
        self.policy_steps = ppo_update(&mut self.policy, value, head, &rollouts, &self.cfg.ppo, self.tok.end, self.policy_steps, ptx, &mut m.ppo).await?;
        m.ppo.ptx_loglik = Self::ptx_loglik(&mut self.policy, &self.ptx_eval).await?;
        m.ppo.objective = m.ppo.reward - self.beta * m.ppo.kl_k1 + self.cfg.ppo.gamma * m.ppo.ptx_loglik;
        if let Some(target) = self.cfg.ppo.target_kl {
            self.beta = adapt_beta(self.beta, m.ppo.kl_k1, target, n, self.cfg.ppo.kl_horizon);
        }
        let t5 = now_ms();
        m.seconds_reward_model = (t2 - t1) / 1e3;
        m.seconds_generation = (t3 - t2) / 1e3;
        m.seconds_scoring = (t4 - t3) / 1e3;
        m.seconds_update = (t5 - t4) / 1e3;
        self.iteration += 1;
        Ok(m)
    }
}

/// The labeler's preference for policy A over policy B on prompts: for each prompt, `samples`
/// responses from each, compared pairwise; ties count half.
#[allow(clippy::too_many_arguments)]
pub async fn win_rate<A: Engine, B: Engine>(
    a: &mut A, b: &mut B, tok: &Tokenizer, labeler: Labeler, prompts: &[String], samples: usize, sc: &SampleConfig, seed: u64,
) -> Result<f32> {
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
    Ok(if n == 0 { 0.5 } else { total / n as f32 })
}
