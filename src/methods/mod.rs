//! The ways a policy can learn from rankings, behind one interface: each iteration the lab fits the
//! reward model (when the method needs one), scores the batch of rollouts the policy sampled, and
//! hands the method everything in one `Update`. A method is one file plus one line in `methods!`.

pub mod bok;
pub mod dpo;
pub mod ppo;
pub mod rloo;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{HeadState, ModelState};
use crate::config::AdamSettings;
use crate::engine::Engine;
use crate::error::Result;
use crate::reward_ensemble::RewardEnsemble;
use crate::rng::Rng;
use crate::rollout::Rollout;
use crate::train::{docs_batch, Batch};

/// Makes an engine for (params, max batch, max sequence length): the CPU reference or the GPU.
pub type EngineFactory<'a, E> = dyn Fn(Vec<f32>, usize, usize) -> Result<E> + 'a;

/// What the iteration prepares for a method before its update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// A reward model fitted to the rankings, and the batch's rollouts scored by it (with their
    /// log-probabilities under the policy and the reference). DPO learns from the rankings alone.
    pub reward_model: bool,
}

/// Rows of the pretraining prose, its documents in a fresh order each row, for the methods that
/// keep the language model's likelihood up (PPO-ptx's γ term).
pub struct Pretraining<'a> {
    /// Tokenized documents, each closed by the end token.
    pub docs: &'a [Vec<u32>],
    pub t: usize,
    pub rng: Rng,
}

impl Pretraining<'_> {
    pub fn batch(&mut self, rows: usize) -> Batch {
        docs_batch(self.docs, rows, self.t, &mut self.rng)
    }
}

/// Everything one update may use. The rollouts are the batch the policy sampled before this
/// iteration, scored when `Needs::reward_model`; the rankings are every ranking so far, tokenized
/// as K sequences each, the last `fresh` of them new in this iteration.
pub struct Update<'a, E: Engine> {
    pub policy: &'a mut E,
    pub reference: &'a mut E,
    pub reward: &'a mut RewardEnsemble<E>,
    pub rollouts: &'a mut [Rollout],
    pub rankings: &'a [crate::reward::TokenizedRanking],
    /// Each ranking's prompt length in tokens (its answers' tokens follow).
    pub prompt_lens: &'a [usize],
    pub fresh: usize,
    /// The reward model's favourite of K fresh SFT answers to each of some of the batch's
    /// questions, as (prompt + answer + end, prompt length), when PPO-ptx asks for them
    /// (`PpoConfig::sft_best`); empty otherwise.
    pub sft_favourites: &'a [crate::methods::ppo::AnswerRow],
    /// One flag a ranking: whether the reward model doubted its first answer
    /// (`PpoConfig::favourite_within`), which then stays out of the γ term.
    pub doubted: &'a [bool],
    /// The KL coefficient in force (the adaptive controller may have moved it from the setting).
    pub beta: f32,
    pub cfg: Settings<'a>,
    pub adam: &'a AdamSettings,
    pub pad: u32,
    pub pretraining: Pretraining<'a>,
    pub rng: &'a mut Rng,
    pub make: &'a EngineFactory<'a, E>,
}

/// The settings a method reads: every method's own, and the minibatch size.
#[derive(Clone, Copy)]
pub struct Settings<'a> {
    pub ppo: &'a ppo::PpoConfig,
    pub dpo: &'a dpo::DpoConfig,
    pub bok: &'a bok::BokConfig,
    /// Rows of a minibatch.
    pub batch: usize,
}

/// What an update reports: the method's loss and how far the policy moved. A method leaves NaN in
/// what it does not measure.
#[derive(Clone, Debug, Serialize)]
pub struct UpdateMetrics {
    pub policy_loss: f32,
    pub value_loss: f32,
    pub clip_frac: f32,
    /// KL(π_old ‖ π_new) per token between the rollout policy and the updated one, over the last
    /// epoch: the mean of ρ − 1 − log ρ with ρ = π_new/π_old.
    pub approx_kl: f32,
    /// Steps skipped for a non-finite loss or gradient.
    pub skipped_steps: usize,
}

impl Default for UpdateMetrics {
    fn default() -> Self {
        UpdateMetrics { policy_loss: f32::NAN, value_loss: f32::NAN, clip_frac: f32::NAN, approx_kl: f32::NAN, skipped_steps: 0 }
    }
}

/// What a saved lab keeps of a method beyond the policy's weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodState {
    /// Optimizer steps the policy has taken (for the warm-up and AdamW's bias correction).
    pub steps: u32,
    /// PPO's value model, trunk and head, when it has one.
    pub value: Option<(ModelState, HeadState)>,
}

#[allow(async_fn_in_trait)]
pub trait Method<E: Engine> {
    fn needs(&self) -> Needs;
    /// One iteration's update of `u.policy`.
    async fn update(&mut self, u: &mut Update<'_, E>) -> Result<UpdateMetrics>;
    async fn state(&mut self) -> Result<MethodState>;
    fn restore(&mut self, s: MethodState, make: &EngineFactory<'_, E>, capacity: (usize, usize)) -> Result<()>;
}

/// A method's name (as the command line and the page spell it), its title and a sentence on what
/// it does, for the page's controls and the command line's help.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MethodInfo {
    pub name: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
}

/// The registry: one line per method, `Variant => module::Type`, where the module defines `INFO`
/// and the type implements `Method` and `Default`.
macro_rules! methods {
    ($($variant:ident => $module:ident :: $ty:ident),* $(,)?) => {
        /// Which method trains the policy.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum MethodKind { $($variant,)* }

        /// Every method, in the order the page and the command line list them.
        pub const METHODS: &[(MethodKind, MethodInfo)] = &[$((MethodKind::$variant, $module::INFO),)*];
        pub const METHOD_NAMES: &[&str] = &[$($module::INFO.name,)*];

        /// One method's state, whichever it is.
        pub enum AnyMethod<E: Engine> { $($variant($module::$ty<E>),)* }

        impl<E: Engine> AnyMethod<E> {
            pub fn new(kind: MethodKind) -> Self {
                match kind { $(MethodKind::$variant => AnyMethod::$variant(Default::default()),)* }
            }
        }

        impl<E: Engine> Method<E> for AnyMethod<E> {
            fn needs(&self) -> Needs {
                match self { $(AnyMethod::$variant(m) => m.needs(),)* }
            }
            async fn update(&mut self, u: &mut Update<'_, E>) -> Result<UpdateMetrics> {
                match self { $(AnyMethod::$variant(m) => m.update(u).await,)* }
            }
            async fn state(&mut self) -> Result<MethodState> {
                match self { $(AnyMethod::$variant(m) => m.state().await,)* }
            }
            fn restore(&mut self, s: MethodState, make: &EngineFactory<'_, E>, capacity: (usize, usize)) -> Result<()> {
                match self { $(AnyMethod::$variant(m) => m.restore(s, make, capacity),)* }
            }
        }
    };
}

methods! {
    Ppo => ppo::PpoPtx,
    Dpo => dpo::Dpo,
    Rloo => rloo::Rloo,
    Bok => bok::BestOfK,
}

impl MethodKind {
    pub fn info(self) -> MethodInfo {
        METHODS.iter().find(|(k, _)| *k == self).map(|(_, i)| *i).expect("every method is in the registry")
    }

    pub fn parse(name: &str) -> Result<MethodKind> {
        METHODS.iter().find(|(_, i)| i.name == name).map(|(k, _)| *k).ok_or_else(|| {
            let names: Vec<&str> = METHODS.iter().map(|(_, i)| i.name).collect();
            crate::error::Error::new(crate::error::ErrorKind::BadInput, format!("unknown method '{name}'; choose one of: {}", names.join(", ")))
        })
    }
}

/// One AdamW step on a minibatch of rollouts (indices `idx`) whose loss is a weighted sum of −log π
/// at their actions, the weights given by `weights` (the minibatch, T): RLOO's and best-of-K's
/// step. Returns the minibatch's loss (Σ weight·(−log π)) and whether the step was taken.
pub(crate) async fn weighted_step<E: Engine>(
    u: &mut Update<'_, E>,
    idx: &[usize],
    weights: impl Fn(&[&Rollout], usize) -> Vec<f32>,
    lr: f32,
    step: u32,
) -> Result<(f32, bool)> {
    let chunk: Vec<&Rollout> = idx.iter().map(|&i| &u.rollouts[i]).collect();
    let (tokens, t, lens) = crate::rollout::rollout_batch(&chunk, u.pad);
    u.policy.forward_rows(&tokens, chunk.len(), t, &lens)?;
    let tl = u.policy.token_losses(&crate::rollout::action_targets(&chunk, t), u.cfg.ppo.temperature).await?;
    let w = weights(&chunk, t);
    let loss = w.iter().zip(&tl.losses).map(|(w, l)| w * l).sum::<f32>();
    if !w.iter().all(|x| x.is_finite()) {
        return Ok((loss, false));
    }
    u.policy.zero_grad()?;
    u.policy.backward(Some(&w), None)?;
    let applied =
        u.policy.update(&u.adam.at(crate::methods::ppo::warmup_lr(lr, step, u.cfg.ppo.warmup_steps), step), u.cfg.ppo.grad_clip).await?.applied;
    crate::turns::pass().await;
    Ok((loss, applied))
}

/// A step count and no more: the state of the methods without a value model.
pub(crate) fn steps_only(s: &MethodState) -> Result<u32> {
    if s.value.is_some() {
        crate::bail!(kind: crate::error::ErrorKind::BadState, "the saved state holds a value model, which this method does not use");
    }
    Ok(s.steps)
}
