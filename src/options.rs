//! The one path from a person's options to an `AlignConfig`, and the one list of them: the page
//! sends options as JSON (camelCase) and builds its settings from `settings`, the command line
//! takes them as `--kebab-case` flags, and both go through `Options::apply`, which checks every
//! value before any work starts and names the bad one.

use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::methods::ppo::Baseline;
use crate::methods::MethodKind;
use crate::reward::{PairWeight, RewardRead, RmMode, K_MAX, K_MIN};
use crate::settings::{AlignConfig, Selection};

/// The range a value must lie in.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Range {
    /// A whole number from `min` to `max`.
    Count { min: usize, max: usize },
    /// A finite number in (min, max] when `open`, else in [min, max].
    Real { min: f32, max: f32, open: bool },
    /// One of an enum's names.
    Choice { names: &'static [&'static str] },
    /// Any value of its type.
    Any,
}

/// A value an option can take: read from a flag, checked against its range.
pub trait OptionValue: Copy + Sized {
    fn check(self, label: &str, range: Range) -> Result<Self>;
    fn parse(s: &str) -> std::result::Result<Self, String>;
}

/// A number from a flag.
fn number<T: std::str::FromStr>(s: &str) -> std::result::Result<T, String> {
    s.parse().map_err(|_| format!("'{s}' is not a valid number"))
}

fn bad(msg: String) -> Error {
    Error::new(ErrorKind::BadInput, msg)
}

impl OptionValue for usize {
    fn check(self, label: &str, range: Range) -> Result<Self> {
        match range {
            Range::Count { min, max } if !(min..=max).contains(&self) => Err(bad(format!("{label} must be {min} to {max}, got {self}"))),
            _ => Ok(self),
        }
    }
    fn parse(s: &str) -> std::result::Result<Self, String> {
        number(s)
    }
}

impl OptionValue for f32 {
    fn check(self, label: &str, range: Range) -> Result<Self> {
        if let Range::Real { min, max, open } = range {
            let ok = self.is_finite() && (if open { self > min } else { self >= min }) && self <= max;
            if !ok {
                let o = if open { "(" } else { "[" };
                return Err(bad(format!("{label} must be a number in {o}{min}, {max}], got {self}")));
            }
        }
        Ok(self)
    }
    fn parse(s: &str) -> std::result::Result<Self, String> {
        number(s)
    }
}

impl OptionValue for u64 {
    fn check(self, _: &str, _: Range) -> Result<Self> {
        Ok(self)
    }
    fn parse(s: &str) -> std::result::Result<Self, String> {
        number(s)
    }
}

/// Choices are read by the snake_case names their serde form uses.
macro_rules! choice_values {
    ($($t:ty: $names:expr),*) => {$(
        impl OptionValue for $t {
            fn check(self, _: &str, _: Range) -> Result<Self> {
                Ok(self)
            }
            fn parse(s: &str) -> std::result::Result<Self, String> {
                serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| format!("must be {}, not '{s}'", $names.join(" or ")))
            }
        }
    )*};
}
choice_values!(Selection: SELECTIONS, Baseline: BASELINES, MethodKind: crate::methods::METHOD_NAMES, RmMode: RM_MODES, PairWeight: PAIR_WEIGHTS, RewardRead: REWARD_READS);

/// One setting as the page shows it: its key in `Options` (camelCase), its flag, label, help,
/// range, current value, and whether the page's settings panel lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Setting {
    pub key: String,
    pub flag: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub range: Range,
    pub value: serde_json::Value,
    pub page: bool,
}

/// The list of options: field, type, flag, label, help, range (of the model), whether the page
/// shows it, and how it reads and writes the config.
macro_rules! options {
    ($($field:ident: $ty:ty, $flag:literal, $label:literal, $help:literal, |$m:ident| $range:expr, page $page:literal,
        get |$g:ident| $get:expr, set |$s:ident, $v:ident| $set:expr;)*) => {
        /// What a person may set; a missing field keeps the config's value.
        #[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        #[cfg_attr(not(target_arch = "wasm32"), derive(clap::Args))]
        pub struct Options {
            $(
                #[cfg_attr(not(target_arch = "wasm32"), arg(long = $flag, help = $help, allow_negative_numbers = true, value_parser = <$ty as OptionValue>::parse))]
                pub $field: Option<$ty>,
            )*
        }

        impl Options {
            /// Checks every value (range, finite, fit to the model) and writes it into `cfg`; on an
            /// error `cfg` is left as it was.
            #[allow(unused_variables)]
            pub fn apply(&self, cfg: &mut AlignConfig, model: &ModelConfig) -> Result<()> {
                let mut c = *cfg;
                $(
                    if let Some(v) = self.$field {
                        let $m = model;
                        let $v: $ty = v.check($label, $range)?;
                        let $s = &mut c;
                        $set;
                    }
                )*
                gamma_rows_fit(&c)?;
                *cfg = c;
                Ok(())
            }
        }

        /// Every setting with its range and its value in `cfg`.
        #[allow(unused_variables)]
        pub fn settings(cfg: &AlignConfig, model: &ModelConfig) -> Vec<Setting> {
            let mut out = Vec::new();
            $(
                let $m = model;
                let $g = cfg;
                let value: $ty = $get;
                out.push(Setting {
                    key: camel(stringify!($field)),
                    flag: $flag,
                    label: $label,
                    help: $help,
                    range: $range,
                    value: serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
                    page: $page,
                });
            )*
            out
        }
    };
}

/// The γ term's batch, prose and the three kinds of favourites together, must fit the engines' rows
/// (at least K_MAX whatever the batch). Checked with the options and again by the lab, whatever
/// built its config.
pub fn gamma_rows_fit(c: &AlignConfig) -> Result<()> {
    let (prose, favourites, sft_best, own_best) = (c.ppo.ptx_rows, c.ppo.favourites, c.ppo.sft_best, c.ppo.own_best);
    if prose + favourites + sft_best + own_best > K_MAX {
        return Err(bad(format!(
            "prose rows per step ({prose}), favourite answers per step ({favourites}), SFT favourites per step ({sft_best}) and own favourites per step ({own_best}) must add up to at most {K_MAX}: lower one of them"
        )));
    }
    Ok(())
}

/// The camelCase key of a snake_case field name (as serde writes it).
fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for ch in snake.chars() {
        if ch == '_' {
            up = true;
        } else if up {
            out.push(ch.to_ascii_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
    }
    out
}

const SELECTIONS: &[&str] = &["first", "top_reward", "spread", "disagreement"];
const BASELINES: &[&str] = &["value", "group"];
const RM_MODES: &[&str] = &["refit", "warm"];
const PAIR_WEIGHTS: &[&str] = &["uniform", "rank_distance"];
const REWARD_READS: &[&str] = &["last", "answer"];

options! {
    method: MethodKind, "method", "the method", "Which method moves the policy: PPO-ptx (InstructGPT's), DPO, RLOO or best-of-K.",
        |m| Range::Choice { names: crate::methods::METHOD_NAMES }, page false,
        get |c| c.method, set |c, v| c.method = v;
    k: usize, "k", "K (answers per ranking)", "Answers per question: one ranking gives K·(K−1)/2 pairs.",
        |m| Range::Count { min: K_MIN, max: K_MAX }, page true,
        get |c| c.k, set |c, v| c.k = v;
    beta: f32, "beta", "β (the KL coefficient)", "KL penalty per token: how far the policy may move from SFT.",
        |m| Range::Real { min: 0.0, max: 10.0, open: false }, page true,
        get |c| c.ppo.beta, set |c, v| c.ppo.beta = v;
    gamma: f32, "gamma", "γ (the pretraining coefficient)", "Weight of the pretraining log-likelihood (PPO-ptx): keeps the alignment tax small.",
        |m| Range::Real { min: 0.0, max: 1000.0, open: false }, page true,
        get |c| c.ppo.gamma, set |c, v| c.ppo.gamma = v;
    lr: f32, "lr", "the learning rate", "AdamW step size for the policy.",
        |m| Range::Real { min: 0.0, max: 0.01, open: true }, page true,
        get |c| c.ppo.lr, set |c, v| { c.ppo.lr = v; c.ppo.value_lr = v };
    temperature: f32, "temperature", "the temperature", "Sampling temperature; log-probabilities use the same scaled logits.",
        |m| Range::Real { min: 0.0, max: 10.0, open: true }, page true,
        get |c| c.ppo.temperature, set |c, v| c.ppo.temperature = v;
    rankings_per_iteration: usize, "rankings-per-iteration", "rankings per iteration", "Groups the command line's labeler ranks per iteration.",
        |m| Range::Count { min: 1, max: 64 }, page false,
        get |c| c.rankings_per_iteration, set |c, v| c.rankings_per_iteration = v;
    min_rankings: usize, "min-rankings", "rankings before PPO starts", "Rankings the reward model needs before the policy moves.",
        |m| Range::Count { min: 0, max: 1000 }, page false,
        get |c| c.min_rankings, set |c, v| c.min_rankings = v;
    catch_up: usize, "catch-up", "updates when PPO starts", "Policy updates in the iteration where the policy starts moving (one per ranking so far, at most this many).",
        |m| Range::Count { min: 1, max: 16 }, page false,
        get |c| c.catch_up, set |c, v| c.catch_up = v;
    max_updates: usize, "max-updates", "updates per iteration", "New rankings an iteration trains for at most (the reward model's steps and a policy update each): those that came in during the last.",
        |m| Range::Count { min: 1, max: 16 }, page false,
        get |c| c.max_updates, set |c, v| c.max_updates = v;
    label_selection: Selection, "label-selection", "the label selection", "The order in which a batch's groups are offered for ranking.",
        |m| Range::Choice { names: SELECTIONS }, page false,
        get |c| c.label_selection, set |c, v| c.label_selection = v;
    offer_sft: usize, "offer-sft", "SFT's answers in a group", "Answers of each group offered for ranking drawn from the original (SFT) model instead of the policy, at most K − 1 (in the groups an iteration trains on: the first of each batch).",
        |m| Range::Count { min: 0, max: K_MAX - 1 }, page false,
        get |c| c.offer_sft, set |c, v| c.offer_sft = v;
    offer_sft_from: usize, "offer-sft-from", "rankings before SFT's answers are offered", "Rankings learned from before SFT's answers (--offer-sft) join the offered groups.",
        |m| Range::Count { min: 0, max: 100000 }, page false,
        get |c| c.offer_sft_from, set |c, v| c.offer_sft_from = v;
    restart_below: f32, "restart-below", "the share that starts the policy again", "The policy starts again from SFT, once, keeping the rankings and the reward model, when over the last --restart-window rankings its answers won less than this share of their pairs with SFT's answers in the same groups (--offer-sft); 0: never.",
        |m| Range::Real { min: 0.0, max: 1.0, open: false }, page false,
        get |c| c.restart_below, set |c, v| c.restart_below = v;
    restart_window: usize, "restart-window", "rankings the restart reads", "Rankings with SFT's answers that --restart-below reads, the newest.",
        |m| Range::Count { min: 1, max: 1000 }, page false,
        get |c| c.restart_window, set |c, v| c.restart_window = v;
    rm_lr: f32, "rm-lr", "the reward model's learning rate", "AdamW step size for the reward model.",
        |m| Range::Real { min: 0.0, max: 0.01, open: true }, page false,
        get |c| c.rm.lr, set |c, v| c.rm.lr = v;
    rm_mode: RmMode, "rm-mode", "the reward model's fit", "Refit the reward model from SFT to every ranking each iteration, or go on from the last fit with a few steps.",
        |m| Range::Choice { names: RM_MODES }, page false,
        get |c| c.rm.mode, set |c, v| c.rm.mode = v;
    rm_refit_until: usize, "rm-refit-until", "refits up to this many rankings", "A warm-started reward model is refitted afresh while there are at most this many rankings.",
        |m| Range::Count { min: 0, max: 100000 }, page false,
        get |c| c.rm.refit_until, set |c, v| c.rm.refit_until = v;
    rm_head_lr_scale: f32, "rm-head-lr-scale", "the reward head's step size", "The reward head's learning rate as a multiple of the reward model's.",
        |m| Range::Real { min: 0.0, max: 1000.0, open: true }, page false,
        get |c| c.rm.head_lr_scale, set |c, v| c.rm.head_lr_scale = v;
    rm_label_smoothing: f32, "rm-label-smoothing", "the ranking loss's label smoothing", "Each ranked pair counts as the winner preferred with probability 1 − ε: a reversed label costs the reward model less.",
        |m| Range::Real { min: 0.0, max: 0.49, open: false }, page false,
        get |c| c.rm.label_smoothing, set |c, v| c.rm.label_smoothing = v;
    rm_pair_weight: PairWeight, "rm-pair-weight", "the ranking loss's pair weights", "Every pair of a ranking alike (InstructGPT's), or each by how far apart the ranking put its answers: a person who ranks with noise reverses neighbours more often than answers far apart.",
        |m| Range::Choice { names: PAIR_WEIGHTS }, page false,
        get |c| c.rm.pair_weight, set |c, v| c.rm.pair_weight = v;
    rm_read: RewardRead, "rm-read", "where the reward head reads", "The reward head reads the trunk at the last token (InstructGPT's), or sums what it reads at every token of the answer.",
        |m| Range::Choice { names: REWARD_READS }, page false,
        get |c| c.rm.read, set |c, v| c.rm.read = v;
    rm_others: usize, "rm-others", "answers to other questions", "Each ranking's favourite also learns to beat the favourites of this many other questions' rankings, put after its question: rankings of one question's answers cannot teach the reward model whether an answer is to the question.",
        |m| Range::Count { min: 0, max: 4 }, page false,
        get |c| c.rm.others, set |c, v| c.rm.others = v;
    rm_pretrain: usize, "rm-pretrain", "relevance pretraining steps", "Steps the reward model takes, each time it starts from SFT, on rankings that put an SFT demonstration above answers to other questions, before it learns from the person's.",
        |m| Range::Count { min: 0, max: 10000 }, page false,
        get |c| c.rm.pretrain, set |c, v| c.rm.pretrain = v;
    rm_gate: usize, "rm-gate", "relevance gate pretraining steps", "Steps of a second, frozen reward model pretrained once on rankings that put an SFT demonstration above answers to other questions; it lowers the reward of answers it finds far less relevant than the demonstrations (0: no gate).",
        |m| Range::Count { min: 0, max: 10000 }, page false,
        get |c| c.rm.gate, set |c, v| c.rm.gate = v;
    rm_gate_from: usize, "rm-gate-from", "the relevance gate's first ranking", "The ranking from which the relevance gate (--rm-gate) trains and lowers rewards; the rankings before it learn as without a gate.",
        |m| Range::Count { min: 1, max: 1000 }, page false,
        get |c| c.rm.gate_from, set |c, v| c.rm.gate_from = v;
    rm_gate_margin: f32, "rm-gate-margin", "the relevance gate's margin", "How far under the demonstrations' mean relevance, in their spreads, an answer must fall before the relevance gate (--rm-gate) lowers its reward, by one unit per spread further.",
        |m| Range::Real { min: 0.0, max: 100.0, open: false }, page false,
        get |c| c.rm.gate_margin, set |c, v| c.rm.gate_margin = v;
    rm_average: f32, "rm-average", "the reward model's weight average", "The policy optimizes a moving average of the reward model's weights: after each fit, this much of the last average and the rest the new fit's (0: the last fit alone). One reward model only.",
        |m| Range::Real { min: 0.0, max: 0.99, open: false }, page false,
        get |c| c.rm.average, set |c, v| c.rm.average = v;
    rm_steps: usize, "rm-steps", "the reward model's steps", "Steps of a warm-started fit per new ranking.",
        |m| Range::Count { min: 1, max: 1000 }, page false,
        get |c| c.rm.steps, set |c, v| c.rm.steps = v;
    rm_sure_steps: usize, "rm-sure-steps", "the reward model's steps when it agrees", "Steps per new ranking, instead of --rm-steps, while the reward model ordered the last rankings' pairs as ranked before learning from them at least --rm-sure-accuracy of the time (0: always --rm-steps).",
        |m| Range::Count { min: 0, max: 1000 }, page false,
        get |c| c.rm.sure_steps, set |c, v| c.rm.sure_steps = v;
    rm_sure_accuracy: f32, "rm-sure-accuracy", "the agreement for fewer steps", "The reward model's agreement with the newest rankings from which --rm-sure-steps applies.",
        |m| Range::Real { min: 0.0, max: 1.0, open: false }, page false,
        get |c| c.rm.sure_accuracy, set |c, v| c.rm.sure_accuracy = v;
    rm_epochs: usize, "rm-epochs", "the reward model's epochs", "Passes over the rankings in each refit.",
        |m| Range::Count { min: 1, max: 100 }, page false,
        get |c| c.rm.epochs, set |c, v| c.rm.epochs = v;
    rm_members: usize, "rm-members", "reward models in the ensemble", "Reward models fitted to the same rankings.",
        |m| Range::Count { min: 1, max: 8 }, page false,
        get |c| c.rm.members, set |c, v| c.rm.members = v;
    rm_penalty: f32, "rm-penalty", "the ensemble's spread penalty", "The policy optimizes the reward models' mean less this many spreads.",
        |m| Range::Real { min: 0.0, max: 10.0, open: false }, page false,
        get |c| c.rm.penalty, set |c, v| c.rm.penalty = v;
    rest_k: usize, "rest-k", "answers per unranked question", "Answers per question in the groups of a batch that are not offered for ranking (0: K): the same rollouts over more questions.",
        |m| Range::Count { min: 0, max: K_MAX }, page false,
        get |c| c.rest_k, set |c, v| c.rest_k = v;
    rollouts: usize, "rollouts", "rollouts per iteration", "Answers the policy samples per iteration.",
        |m| Range::Count { min: 1, max: 1024 }, page false,
        get |c| c.rollouts, set |c, v| c.rollouts = v;
    max_new_tokens: usize, "max-tokens", "the answer length in tokens", "Longest answer; a longer one is cut off and scores the fixed penalty.",
        |m| Range::Count { min: 1, max: m.n_ctx.saturating_sub(2).max(1) }, page false,
        get |c| c.max_new_tokens, set |c, v| c.max_new_tokens = v;
    ppo_epochs: usize, "ppo-epochs", "PPO epochs", "Passes over each batch of rollouts.",
        |m| Range::Count { min: 1, max: 64 }, page false,
        get |c| c.ppo.epochs, set |c, v| c.ppo.epochs = v;
    gae_lambda: f32, "gae-lambda", "GAE's λ", "λ of generalized advantage estimation (with the value baseline).",
        |m| Range::Real { min: 0.0, max: 1.0, open: false }, page false,
        get |c| c.ppo.lam, set |c, v| c.ppo.lam = v;
    baseline: Baseline, "baseline", "the baseline", "What an answer's return is measured against: the group's other answers, or a value model.",
        |m| Range::Choice { names: BASELINES }, page false,
        get |c| c.ppo.baseline, set |c, v| c.ppo.baseline = v;
    target_kl: f32, "target-kl", "the target KL", "Adaptive KL controller's target, in nats per answer (unset: β stays fixed).",
        |m| Range::Real { min: 0.0, max: 1000.0, open: true }, page false,
        get |c| c.ppo.target_kl.unwrap_or(f32::NAN), set |c, v| c.ppo.target_kl = Some(v);
    kl_horizon: f32, "kl-horizon", "the KL horizon", "Answers over which the adaptive controller moves β by ±20%.",
        |m| Range::Real { min: 1.0, max: 1e9, open: false }, page false,
        get |c| c.ppo.kl_horizon, set |c, v| c.ppo.kl_horizon = v;
    kl_ceiling: f32, "kl-ceiling", "the KL ceiling", "The KL brake: above this KL to SFT (nats per answer) β rises in proportion, below it β returns to its setting.",
        |m| Range::Real { min: 0.0, max: 1000.0, open: true }, page false,
        get |c| c.ppo.kl_ceiling.unwrap_or(f32::NAN), set |c, v| c.ppo.kl_ceiling = Some(v);
    kl_limit: f32, "kl-limit", "the KL limit", "A batch whose KL to SFT (nats per answer) is above this undoes the update that took the policy there, and is sampled again.",
        |m| Range::Real { min: 0.0, max: 1000.0, open: true }, page false,
        get |c| c.ppo.kl_limit.unwrap_or(f32::NAN), set |c, v| c.ppo.kl_limit = Some(v);
    kl_per_ranking: f32, "kl-per-ranking", "the KL allowed per ranking", "The brake's ceiling grows by this many nats per ranking the policy has learned from, up to the KL ceiling.",
        |m| Range::Real { min: 0.0, max: 1000.0, open: true }, page false,
        get |c| c.ppo.kl_per_ranking.unwrap_or(f32::NAN), set |c, v| c.ppo.kl_per_ranking = Some(v);
    favourites: usize, "favourites", "favourite answers per step", "Rows of each PPO-ptx step's γ term taken from the answers the rankings put first (loss on the answer), beside the pretraining prose.",
        // with the prose rows, at most K_MAX (`gamma_rows_fit`)
        |m| Range::Count { min: 0, max: K_MAX - 1 }, page false,
        get |c| c.ppo.favourites, set |c, v| c.ppo.favourites = v;
    favourite_within: usize, "favourite-within", "the reward model's places a favourite must be within", "A ranking's first answer joins the γ term (--favourites) only where the reward model, scoring the ranking before it learned it, put it among its own first this many of the group (0: always).",
        |m| Range::Count { min: 0, max: K_MAX }, page false,
        get |c| c.ppo.favourite_within, set |c, v| c.ppo.favourite_within = v;
    favourite_check_below: f32, "favourite-check-below", "the agreement under which favourites are checked", "The check of --favourite-within applies only while the reward model's agreement with the newest rankings, measured before it learned them, is under this share (1: always).",
        |m| Range::Real { min: 0.0, max: 1.0, open: false }, page false,
        get |c| c.ppo.favourite_check_below, set |c, v| c.ppo.favourite_check_below = v;
    favourite_margin: f32, "favourite-margin", "how far above a favourite the reward model's first must be", "A first answer --favourite-within would doubt is doubted only where the reward model scores its own first more than this above it, in spreads of the SFT demonstrations' scores (0: any gap).",
        |m| Range::Real { min: 0.0, max: 10.0, open: false }, page false,
        get |c| c.ppo.favourite_margin, set |c, v| c.ppo.favourite_margin = v;
    sft_best: usize, "sft-best", "SFT favourites per step", "Rows of each PPO-ptx step's γ term taken from the reward model's favourite of K fresh SFT answers to each of the batch's questions (best-of-K distillation, loss on the answer).",
        // with the prose rows and favourites, at most K_MAX (`gamma_rows_fit`)
        |m| Range::Count { min: 0, max: K_MAX - 1 }, page false,
        get |c| c.ppo.sft_best, set |c, v| c.ppo.sft_best = v;
    sft_best_of: usize, "sft-best-of", "SFT answers per favourite", "SFT answers per question the reward model picks each SFT favourite from (--sft-best), drawn in whole groups of K (0: K).",
        |m| Range::Count { min: 0, max: 64 }, page false,
        get |c| c.ppo.sft_best_of, set |c, v| c.ppo.sft_best_of = v;
    sft_best_until: usize, "sft-best-until", "SFT favourites until", "Rankings up to which the SFT favourites (--sft-best) join the γ term (0: always).",
        |m| Range::Count { min: 0, max: 100_000 }, page false,
        get |c| c.ppo.sft_best_until, set |c, v| c.ppo.sft_best_until = v;
    own_best: usize, "own-best", "own favourites per step", "Rows of each PPO-ptx step's γ term taken from the reward model's favourite of each group of the iteration's own rollouts (loss on the answer).",
        // with the prose rows and the other favourites, at most K_MAX (`gamma_rows_fit`)
        |m| Range::Count { min: 0, max: K_MAX - 1 }, page false,
        get |c| c.ppo.own_best, set |c, v| c.ppo.own_best = v;
    own_best_kl: f32, "own-best-kl", "the KL's weight in the own favourite", "The own favourite (--own-best) is the answer of best score less this many β of its KL to SFT (1: PPO's per-answer objective; 0: the score alone).",
        |m| Range::Real { min: 0.0, max: 1000.0, open: false }, page false,
        get |c| c.ppo.own_best_kl, set |c, v| c.ppo.own_best_kl = v;
    own_best_until: usize, "own-best-until", "own favourites until", "Rankings up to which the own favourites (--own-best) join the γ term (0: always).",
        |m| Range::Count { min: 0, max: 100_000 }, page false,
        get |c| c.ppo.own_best_until, set |c, v| c.ppo.own_best_until = v;
    ptx_rows: usize, "ptx-rows", "prose rows per step", "Rows of pretraining prose (64 tokens each) in each PPO-ptx step's γ term; the term is a mean over its tokens, so more rows weigh the prose more.",
        |m| Range::Count { min: 1, max: K_MAX }, page false,
        get |c| c.ppo.ptx_rows, set |c, v| c.ppo.ptx_rows = v;
    dpo_beta: f32, "dpo-beta", "DPO's β", "β of DPO's implicit reward β·log(π/π_SFT).",
        |m| Range::Real { min: 0.0, max: 10.0, open: true }, page false,
        get |c| c.dpo.beta, set |c, v| c.dpo.beta = v;
    seed: u64, "seed", "the seed", "Seed of every random stream of a run.",
        |m| Range::Any, page false,
        get |c| c.seed, set |c, v| c.seed = v;
}
