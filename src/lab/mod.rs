//! The lab: one object that the page (through `wasm.rs`) and the command line both drive.
//!
//! Two sides that never wait on each other. The person's side (`Desk`) holds the rankings, the
//! group of answers to rank now and the history; its calls return at once. The engine's side
//! (`Trainer`) runs one iteration at a time: the reward model fitted to every ranking so far, the
//! method's update on the batch the policy sampled last, and the next batch sampled from the
//! updated policy, whose groups the desk then offers. A third part answers the person's own
//! questions from a copy of the policy as it stood after the last iteration, so a question never
//! waits for an iteration to finish.
//!
//! An iteration starts only when a ranking has come in since the last one: without a new ranking
//! the policy does not move.
//!
//! A borrow of the trainer (or of the serving engines) held across awaits is the lock on those
//! models: a call that needs them while an iteration runs is refused as `Busy`, never run on a
//! model halfway through a step.
#![allow(clippy::await_holding_refcell_ref)]

mod compare;
mod curve;
mod desk;
mod export;
mod record;
mod trainer;
mod views;

use std::cell::RefCell;
use std::rc::Rc;

pub use crate::settings::{AlignConfig, Selection};
pub use compare::Replay;
pub use curve::{answers_to, best_of_n, best_of_n_win_rate, win_rate, BestOf, Cadence, CurvePoint, WinRateProtocol, FULL, PAGE_CURVE, QUICK};
pub use desk::{Kept, Offer, Verdict};
pub use export::Exported;
pub use record::Record;
pub use trainer::{update_rounds, IterationMetrics, Prose};
pub use views::{Inspection, Watched};

use crate::bail;
use crate::config::ModelConfig;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::labelers::Labeler;
use crate::methods::EngineFactory;
use crate::options::Options;
use crate::reward::{Ranking, K_MAX};
use crate::sample::answers;
use crate::tokenizer::Tokenizer;
use desk::Desk;
use trainer::Trainer;

/// Engines that only generate: the policy as it stood after the last iteration, and SFT.
struct Serving<E: Engine> {
    policy: E,
    sft: E,
}

pub struct Lab<E: Engine> {
    model: ModelConfig,
    tok: Rc<Tokenizer>,
    make: Rc<EngineFactory<'static, E>>,
    /// The base model's weights, for `replay`.
    sft: Rc<Vec<f32>>,
    trainer: RefCell<Trainer<E>>,
    desk: RefCell<Desk>,
    serving: RefCell<Serving<E>>,
    /// The prompts the watch panel follows, and when to measure the learning curve.
    watch_prompts: RefCell<Vec<String>>,
    cadence: RefCell<Cadence>,
    /// The settings in force, readable while an iteration holds the trainer.
    settings: std::cell::Cell<AlignConfig>,
    phase: Rc<std::cell::Cell<&'static str>>,
}

/// What `submit` answers: how many rankings there are, why this one may teach less than it seems,
/// and the group to rank next.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Submitted {
    pub count: usize,
    pub warning: Option<String>,
    pub next: Option<Offer>,
}

fn busy() -> Error {
    Error::new(ErrorKind::Busy, "the lab is busy with an iteration; try again when it is done")
}

/// Reward-model steps per `prepare` call: a turn short enough that a ranking submitted during it
/// starts its iteration soon after, long enough that a wait of a few seconds does a share.
const PREPARE_STEPS: usize = 10;

/// The prompts the watch panel follows at first: the first three held-out prompts.
const WATCH_PROMPTS: usize = 3;

impl<E: Engine> Lab<E> {
    /// A lab on a base (SFT) model. `make` builds every engine: the CPU reference or the GPU.
    pub fn new(sft: Vec<f32>, model: ModelConfig, tok: Tokenizer, cfg: AlignConfig, make: Box<EngineFactory<'static, E>>) -> Result<Lab<E>> {
        Lab::with(Rc::new(sft), model, Rc::new(tok), cfg, Rc::from(make))
    }

    fn with(sft: Rc<Vec<f32>>, model: ModelConfig, tok: Rc<Tokenizer>, cfg: AlignConfig, make: Rc<EngineFactory<'static, E>>) -> Result<Lab<E>> {
        if !(crate::reward::K_MIN..=K_MAX).contains(&cfg.k) {
            bail!("K must be between {} and {K_MAX}, got {}", crate::reward::K_MIN, cfg.k);
        }
        if cfg.rest_k == 1 {
            bail!("--rest-k must be 0 (K) or at least 2: an answer alone to its question has no group baseline");
        }
        crate::options::gamma_rows_fit(&cfg)?;
        let mut sft_engine = make(sft.to_vec(), K_MAX, model.n_ctx)?;
        sft_engine.freeze();
        let mut policy_copy = make(sft.to_vec(), K_MAX, model.n_ctx)?;
        policy_copy.freeze();
        let trainer = Trainer::new(sft.to_vec(), model, tok.clone(), cfg, &*make)?;
        let settings = std::cell::Cell::new(cfg);
        let phase = trainer.phase.clone();
        let (_, eval) = crate::corpus::prompt_split();
        Ok(Lab {
            model,
            tok,
            trainer: RefCell::new(trainer),
            desk: RefCell::new(Desk::default()),
            serving: RefCell::new(Serving { policy: policy_copy, sft: sft_engine }),
            watch_prompts: RefCell::new(eval.into_iter().take(WATCH_PROMPTS).collect()),
            cadence: RefCell::new(Cadence { labeler: None, every: 0, protocol: QUICK }),
            settings,
            phase,
            make,
            sft,
        })
    }

    fn trainer(&self) -> Result<std::cell::RefMut<'_, Trainer<E>>> {
        self.trainer.try_borrow_mut().map_err(|_| busy())
    }

    pub fn model(&self) -> ModelConfig {
        self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tok
    }

    pub fn config(&self) -> AlignConfig {
        self.settings.get()
    }

    /// Checks and applies options; all or none. A new β takes over from the adaptive controller's;
    /// a new K, temperature or answer length samples a new batch, so the groups offered next follow it.
    pub async fn set_options(&self, o: &Options) -> Result<()> {
        let _turn = crate::turns::take().await;
        let mut tr = self.trainer()?;
        let old = tr.cfg;
        o.apply(&mut tr.cfg, &self.model)?;
        if tr.cfg.ppo.beta != old.ppo.beta {
            tr.beta = tr.cfg.ppo.beta;
        }
        self.settings.set(tr.cfg);
        let drawn_differently = (tr.cfg.k, tr.cfg.ppo.temperature, tr.cfg.max_new_tokens) != (old.k, old.ppo.temperature, old.max_new_tokens);
        if drawn_differently && !tr.batch.is_empty() {
            tr.sample_batch(&[]).await?;
            self.publish(&mut tr).await?;
        }
        Ok(())
    }

    /// The prompts the lab trains on; the held-out ones are kept for the win-rate and the watch panel.
    pub fn train_prompts(&self) -> Vec<String> {
        crate::corpus::prompt_split().0
    }

    pub fn eval_prompts(&self) -> Vec<String> {
        crate::corpus::prompt_split().1
    }

    /// When to measure the learning curve (a labeler's win-rate every `every` rankings).
    pub fn set_cadence(&self, c: Cadence) {
        *self.cadence.borrow_mut() = c;
    }

    pub fn watch_prompts(&self) -> Vec<String> {
        self.watch_prompts.borrow().clone()
    }

    /// The prompts the watch panel follows: up to 8, each one this model can answer (none: the
    /// iterations' records carry no watched answers).
    pub fn set_watch_prompts(&self, prompts: Vec<String>) -> Result<()> {
        if prompts.len() > 8 {
            bail!("the watch panel follows at most 8 prompts, not {}", prompts.len());
        }
        for p in &prompts {
            self.tok.prompt_ids(p, self.model.n_ctx)?;
        }
        *self.watch_prompts.borrow_mut() = prompts;
        Ok(())
    }

    /// Samples the first batch from the policy as it stands (SFT, or a restored policy) and offers
    /// its groups. Call once, after any `restore`.
    pub async fn start(&self) -> Result<()> {
        let _turn = crate::turns::take().await;
        let mut tr = self.trainer()?;
        tr.sample_batch(&[]).await?;
        self.publish(&mut tr).await
    }

    /// Work the next rankings will need, done in the engine's spare time while the lab waits for
    /// a ranking, a short turn per call (`PREPARE_STEPS`): the relevance gate's pretraining, when
    /// there is a gate. Whether any is left. `Busy` while an iteration runs.
    pub async fn prepare(&self) -> Result<bool> {
        let _turn = crate::turns::take().await;
        self.trainer()?.train_gate(PREPARE_STEPS).await
    }

    // ---- the person's side: calls that return at once

    /// The group of answers to rank now (None while the first batch is being sampled).
    pub fn offered(&self) -> Option<Offer> {
        self.desk.borrow_mut().offered()
    }

    /// Adds a ranking: of the group offered as `offer`, or made elsewhere (an import, a ranking
    /// kept with its places) when None.
    pub fn submit(&self, r: impl Into<Kept>, offer: Option<u64>) -> Result<Submitted> {
        let k = r.into();
        let warning = self.ranking_warning(&k.ranking)?;
        let mut d = self.desk.borrow_mut();
        d.submit(k, offer)?;
        Ok(Submitted { count: d.rankings.len(), warning, next: d.offered() })
    }

    /// Rankings made elsewhere (kept in the browser, imported), each checked; all or none.
    pub fn add_rankings(&self, ks: Vec<Kept>) -> Result<usize> {
        for k in &ks {
            k.validate()?;
        }
        let mut d = self.desk.borrow_mut();
        for k in ks {
            d.submit(k, None)?;
        }
        Ok(d.rankings.len())
    }

    /// A scripted labeler ranks the group offered now, as a person would (the autopilot, the
    /// command line): the ranking as the browser keeps it. None when no group is offered.
    pub fn rank_offered(&self, labeler: &mut Labeler) -> Result<Option<Kept>> {
        let Some(o) = self.offered() else { return Ok(None) };
        let r = Ranking { ranks: labeler.rank(&o.prompt, &o.responses), prompt: o.prompt, responses: o.responses };
        let k = Kept { ranking: r, sft: o.sft };
        self.desk.borrow_mut().submit(k.clone(), Some(o.id))?;
        Ok(Some(k))
    }

    pub fn rankings(&self) -> Vec<Ranking> {
        self.desk.borrow().rankings.clone()
    }

    /// What the running iteration is doing ("" when none runs).
    pub fn phase(&self) -> &'static str {
        self.phase.get()
    }

    /// Rankings the iterations have taken, the running one's included.
    pub fn taken(&self) -> usize {
        self.desk.borrow().used
    }

    /// Whether an iteration can start: a ranking has come in since the last one.
    pub fn ready(&self) -> bool {
        self.desk.borrow().has_fresh()
    }

    /// The person's own question, answered K ways by the policy as it stood after the last
    /// iteration: the group to rank now. The next batch includes the question too.
    pub async fn ask(&self, prompt: &str) -> Result<Offer> {
        let ids = self.tok.prompt_ids(prompt, self.model.n_ctx)?;
        let seed = crate::settings::SALT_ASK ^ self.desk.borrow().issued();
        let responses = self.served_answers(&ids, seed).await?;
        let notes = self.notes(prompt, &responses);
        let mut d = self.desk.borrow_mut();
        if !d.asked.iter().any(|p| p == prompt) {
            d.asked.push(prompt.to_string());
        }
        Ok(d.hand_out(prompt.to_string(), responses, true, notes))
    }

    /// The group to rank now; when the newest batch's groups are all ranked, a training question
    /// answered K ways on the spot by the serving copy, the policy that sampled the batch: a
    /// person who ranks faster than an iteration runs gets another group of that policy's at
    /// once instead of waiting for the next batch. None before the first batch.
    pub async fn more(&self) -> Result<Option<Offer>> {
        let issued = {
            let mut d = self.desk.borrow_mut();
            if let Some(offer) = d.offered() {
                return Ok(Some(offer));
            }
            d.issued()
        };
        if issued == 0 {
            return Ok(None);
        }
        let mut rng = crate::rng::Rng::new(self.settings.get().seed ^ crate::settings::SALT_MORE ^ issued);
        let prompt = rng.choose(&self.train_prompts()).clone();
        let ids = self.tok.prompt_ids(&prompt, self.model.n_ctx)?;
        let responses = self.served_answers(&ids, rng.next_u64()).await?;
        let notes = self.notes(&prompt, &responses);
        let mut d = self.desk.borrow_mut();
        // a new batch came while these were sampled: its groups are the newer policy's
        if let Some(offer) = d.offered() {
            return Ok(Some(offer));
        }
        Ok(Some(d.hand_out(prompt, responses, false, notes)))
    }

    /// K answers to a prompt by the serving copy (the policy as it stood after the last
    /// iteration), sampled between an iteration's steps rather than after it.
    async fn served_answers(&self, ids: &[u32], seed: u64) -> Result<Vec<String>> {
        let cfg = self.settings.get();
        let _turn = crate::turns::take().await;
        let mut s = self.serving.borrow_mut();
        answers(&mut s.policy, &self.tok, ids, cfg.k, &cfg.sample(), seed).await
    }
}

/// What the page builds its controls and texts from (nothing of it is written again in the page).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Description {
    /// Training prompts (suggested to the person) and held-out ones (the watch panel, the blind test).
    pub prompts: Vec<String>,
    pub heldout: Vec<String>,
    pub watch_prompts: Vec<String>,
    /// What this model knows about.
    pub topics: Vec<&'static str>,
    pub settings: Vec<crate::options::Setting>,
    /// The smallest and largest K.
    pub k_range: (usize, usize),
    /// Each scripted labeler: (name, what it prefers).
    pub labelers: Vec<(&'static str, &'static str)>,
    pub methods: Vec<crate::methods::MethodInfo>,
}

/// How far training has gone: iterations, the rankings they took, the last rollouts' KL to SFT and
/// the KL coefficient in force.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Progress {
    pub iterations: usize,
    pub rankings_taken: usize,
    pub kl: f32,
    pub beta: f32,
}

/// A blind pair: a held-out prompt answered by the policy and by SFT; the page shows the two in
/// random order.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlindPair {
    pub prompt: String,
    pub policy: String,
    pub sft: String,
}

// ---- views of the models
impl<E: Engine> Lab<E> {
    /// A blind pair for the held-out prompt `seed` picks, from the serving copies: it never waits
    /// for an iteration.
    pub async fn blind_pair(&self, seed: u64) -> Result<BlindPair> {
        let prompts = self.eval_prompts();
        let prompt = prompts[(seed % prompts.len() as u64) as usize].clone();
        let ids = self.tok.prompt_ids(&prompt, self.model.n_ctx)?;
        let sc = self.settings.get().sample();
        let _turn = crate::turns::take().await;
        let mut s = self.serving.borrow_mut();
        let policy = answers(&mut s.policy, &self.tok, &ids, 1, &sc, seed).await?.remove(0);
        let sft = answers(&mut s.sft, &self.tok, &ids, 1, &sc, seed ^ crate::settings::SALT_BLIND_SFT).await?.remove(0);
        Ok(BlindPair { prompt, policy, sft })
    }

    /// Each prompt answered by the policy and by SFT with the same seed, both scored.
    pub async fn watch(&self, prompts: &[String], seed: u64) -> Result<Vec<Watched>> {
        let _turn = crate::turns::take().await;
        self.trainer()?.watch(prompts, seed).await
    }

    /// An answer token by token (see `Inspection`).
    pub async fn inspect(&self, prompt: &str, answer: &str) -> Result<Inspection> {
        let _turn = crate::turns::take().await;
        self.trainer()?.inspect(prompt, answer).await
    }

    /// For tests: [log π, log π_SFT] of each answer token computed by definition.
    pub async fn direct_logprobs(&self, prompt: &str, answer: &str) -> Result<(Vec<f32>, Vec<f32>)> {
        let _turn = crate::turns::take().await;
        self.trainer()?.direct_logprobs(prompt, answer).await
    }

    /// The reward model's scores of answers to a prompt.
    pub async fn score_answers(&self, prompt: &str, answers: &[String]) -> Result<Vec<f32>> {
        let _turn = crate::turns::take().await;
        self.trainer()?.score_answers(prompt, answers).await
    }

    /// One record per iteration so far (restored with the state).
    pub fn history(&self) -> Vec<serde_json::Value> {
        self.desk.borrow().history.iter().filter_map(|h| serde_json::from_str(h).ok()).collect()
    }

    pub fn describe(&self) -> Description {
        Description {
            prompts: self.train_prompts(),
            heldout: self.eval_prompts(),
            watch_prompts: self.watch_prompts(),
            topics: crate::corpus::topic_names(),
            settings: crate::options::settings(&self.config(), &self.model),
            k_range: (crate::reward::K_MIN, K_MAX),
            labelers: crate::labelers::RULES.iter().map(|(n, _, what)| (*n, *what)).collect(),
            methods: crate::methods::METHODS.iter().map(|(_, i)| *i).collect(),
        }
    }

    /// How far training has gone.
    pub fn progress(&self) -> Result<Progress> {
        let tr = self.trainer()?;
        Ok(Progress { iterations: tr.iteration, rankings_taken: tr.data_len(), kl: tr.last_kl, beta: tr.beta })
    }

    /// Mean per-token log-likelihood of a fixed pretraining batch under the policy (or SFT).
    pub async fn ptx_loglik(&self, prose: Prose, reference: bool) -> Result<f32> {
        let _turn = crate::turns::take().await;
        self.trainer()?.ptx_loglik(prose, reference).await
    }
}
