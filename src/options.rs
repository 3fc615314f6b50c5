//! The one path from a person's options to an `AlignConfig`: the page sends them as JSON
//! (camelCase), the command line as `--kebab-case` flags, and both go through `Options::apply`,
//! which checks every value before any work starts and names the bad one.

use serde::{Deserialize, Serialize};

use crate::align::{AlignConfig, Selection};
use crate::config::ModelConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::ppo::Baseline;
use crate::reward::{K_MAX, K_MIN};

/// What a person may set; a missing field keeps the config's value.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Options {
    pub k: Option<usize>,
    pub rankings_per_iteration: Option<usize>,
    pub min_rankings: Option<usize>,
    pub label_selection: Option<Selection>,
    pub beta: Option<f32>,
    pub gamma: Option<f32>,
    pub lr: Option<f32>,
    pub rm_lr: Option<f32>,
    pub rm_epochs: Option<usize>,
    pub temperature: Option<f32>,
    pub rollouts: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub ppo_epochs: Option<usize>,
    pub gae_lambda: Option<f32>,
    pub baseline: Option<Baseline>,
    pub target_kl: Option<f32>,
    pub kl_horizon: Option<f32>,
    pub seed: Option<u64>,
}

/// Each option's command-line name, for parsing and for messages.
pub const CLI_NAMES: [&str; 18] = [
    "k",
    "rankings-per-iteration",
    "min-rankings",
    "label-selection",
    "beta",
    "gamma",
    "lr",
    "rm-lr",
    "rm-epochs",
    "temperature",
    "rollouts",
    "max-tokens",
    "ppo-epochs",
    "gae-lambda",
    "baseline",
    "target-kl",
    "kl-horizon",
    "seed",
];

fn bad(msg: String) -> Error {
    Error::new(ErrorKind::BadInput, msg)
}

fn real(name: &str, v: f32, lo: f32, hi: f32, lo_open: bool) -> Result<f32> {
    let ok = v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && v <= hi;
    if !ok {
        let open = if lo_open { "(" } else { "[" };
        return Err(bad(format!("{name} must be a number in {open}{lo}, {hi}], got {v}")));
    }
    Ok(v)
}

fn count(name: &str, v: usize, lo: usize, hi: usize) -> Result<usize> {
    if !(lo..=hi).contains(&v) {
        return Err(bad(format!("{name} must be {lo} to {hi}, got {v}")));
    }
    Ok(v)
}

impl Options {
    /// Options from `--name value` pairs, by the names in `CLI_NAMES`; other pairs are left alone.
    pub fn from_cli(get: impl Fn(&str) -> Option<String>) -> Result<Options> {
        fn parse<T: std::str::FromStr>(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<T>> {
            match get(name) {
                None => Ok(None),
                Some(s) => s.parse().map(Some).map_err(|_| bad(format!("--{name}: '{s}' is not a valid number"))),
            }
        }
        // one of an enum's values, by the snake_case names its serde form uses
        fn choice<T: serde::de::DeserializeOwned>(get: &impl Fn(&str) -> Option<String>, name: &str, names: &str) -> Result<Option<T>> {
            match get(name) {
                None => Ok(None),
                Some(s) => serde_json::from_value(serde_json::Value::String(s.clone()))
                    .map(Some)
                    .map_err(|_| bad(format!("--{name} must be {names}, not '{s}'"))),
            }
        }
        Ok(Options {
            k: parse(&get, "k")?,
            rankings_per_iteration: parse(&get, "rankings-per-iteration")?,
            min_rankings: parse(&get, "min-rankings")?,
            label_selection: choice::<Selection>(&get, "label-selection", "first or top_reward")?,
            beta: parse(&get, "beta")?,
            gamma: parse(&get, "gamma")?,
            lr: parse(&get, "lr")?,
            rm_lr: parse(&get, "rm-lr")?,
            rm_epochs: parse(&get, "rm-epochs")?,
            temperature: parse(&get, "temperature")?,
            rollouts: parse(&get, "rollouts")?,
            max_new_tokens: parse(&get, "max-tokens")?,
            ppo_epochs: parse(&get, "ppo-epochs")?,
            gae_lambda: parse(&get, "gae-lambda")?,
            baseline: choice::<Baseline>(&get, "baseline", "value or group")?,
            target_kl: parse(&get, "target-kl")?,
            kl_horizon: parse(&get, "kl-horizon")?,
            seed: parse(&get, "seed")?,
        })
    }

    /// Checks every value (range, finite, fit to the model) and writes it into `cfg`; on an error
    /// `cfg` is left as it was.
    pub fn apply(&self, cfg: &mut AlignConfig, model: &ModelConfig) -> Result<()> {
        let mut c = *cfg;
        if let Some(v) = self.k {
            c.k = count("K (answers per ranking)", v, K_MIN, K_MAX)?;
        }
        if let Some(v) = self.rankings_per_iteration {
            c.rankings_per_iteration = count("rankings per iteration", v, 1, 64)?;
        }
        if let Some(v) = self.min_rankings {
            c.min_rankings = count("rankings before PPO starts", v, 0, 1000)?;
        }
        if let Some(v) = self.label_selection {
            c.label_selection = v;
        }
        if let Some(v) = self.beta {
            c.ppo.beta = real("β (the KL coefficient)", v, 0.0, 10.0, false)?;
        }
        if let Some(v) = self.gamma {
            c.ppo.gamma = real("γ (the pretraining coefficient)", v, 0.0, 1000.0, false)?;
        }
        if let Some(v) = self.lr {
            c.ppo.lr = real("the learning rate", v, 0.0, 0.01, true)?;
            c.ppo.value_lr = c.ppo.lr;
        }
        if let Some(v) = self.rm_lr {
            c.rm.lr = real("the reward model's learning rate", v, 0.0, 0.01, true)?;
        }
        if let Some(v) = self.rm_epochs {
            c.rm.epochs = count("the reward model's epochs", v, 1, 100)?;
        }
        if let Some(v) = self.temperature {
            c.ppo.temperature = real("the temperature", v, 0.0, 10.0, true)?;
        }
        if let Some(v) = self.rollouts {
            c.rollouts = count("rollouts per iteration", v, 1, 1024)?;
        }
        if let Some(v) = self.max_new_tokens {
            c.max_new_tokens = count("the answer length in tokens", v, 1, model.n_ctx.saturating_sub(2).max(1))?;
        }
        if let Some(v) = self.ppo_epochs {
            c.ppo.epochs = count("PPO epochs", v, 1, 64)?;
        }
        if let Some(v) = self.gae_lambda {
            c.ppo.lam = real("GAE's λ", v, 0.0, 1.0, false)?;
        }
        if let Some(v) = self.baseline {
            c.ppo.baseline = v;
        }
        if let Some(v) = self.target_kl {
            c.ppo.target_kl = Some(real("the target KL", v, 0.0, 1000.0, true)?);
        }
        if let Some(v) = self.kl_horizon {
            c.ppo.kl_horizon = real("the KL horizon", v, 1.0, 1e9, false)?;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        *cfg = c;
        Ok(())
    }
}
