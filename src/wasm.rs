//! The browser's entry points (wasm-bindgen): the library's `Lab` behind one object the page's
//! Worker drives, every call translated and nothing decided here. Calls that compute return
//! Promises; the person's calls (`offered`, `submit`) return at once, even while an iteration runs.
//! Errors reach JS as `{kind, message}` objects (see `ErrorKind`), so the page branches on the kind.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::any_engine::AnyEngine;
use crate::checkpoint::{from_safetensors, parse_config, to_safetensors, tokenizer_config, Checkpoint, LabState};
use crate::error::{Error, ErrorKind, Result};
use crate::gpu::Gpu;
use crate::lab::{self, AlignConfig, Cadence, Kept};
use crate::labelers::Labeler;
use crate::options::Options;
use crate::tokenizer::Tokenizer;

/// An error as JS sees it.
fn js(e: Error) -> JsValue {
    #[derive(Serialize)]
    struct JsError<'a> {
        kind: ErrorKind,
        message: &'a str,
    }
    to_js(&JsError { kind: e.kind, message: &e.message }).unwrap_or_else(|_| JsValue::from_str(&e.message))
}

/// Plain JS objects and arrays (not Maps), so results survive postMessage and read as `m.reward`.
fn to_js<T: Serialize>(v: &T) -> std::result::Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&format!("serializing a result: {e}")))
}

fn from_js<T: serde::de::DeserializeOwned>(v: JsValue, what: &str) -> Result<T> {
    serde_wasm_bindgen::from_value(v).map_err(|e| Error::new(ErrorKind::BadInput, format!("{what}: {e}")))
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Runs a future on the lab inside a Promise.
fn promise<T, F>(lab: &Rc<lab::Lab<AnyEngine>>, f: impl FnOnce(Rc<lab::Lab<AnyEngine>>) -> F) -> Promise
where
    T: Serialize,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    let fut = f(lab.clone());
    future_to_promise(async move { to_js(&fut.await.map_err(js)?) })
}

/// A checkpoint's files as JS: {config, weights}.
fn checkpoint_js(ck: &Checkpoint) -> std::result::Result<JsValue, JsValue> {
    let m = js_sys::Object::new();
    let config = serde_json::to_string_pretty(&ck.config_json).map_err(|e| js(Error::new(ErrorKind::Internal, e.to_string())))?;
    js_sys::Reflect::set(&m, &"config".into(), &config.into())?;
    let weights = to_safetensors(&ck.cfg, &ck.params, &ck.extra).map_err(js)?;
    js_sys::Reflect::set(&m, &"weights".into(), &js_sys::Uint8Array::from(weights.as_slice()).into())?;
    Ok(m.into())
}

/// The lab: base model, reward models, policy; on WebGPU or the CPU reference.
#[wasm_bindgen]
pub struct Lab {
    lab: Rc<lab::Lab<AnyEngine>>,
    gpu: Option<Gpu>,
    adapter: String,
    /// The autopilot's labeler, kept between calls (a noisy one carries its random stream).
    autopilot: RefCell<Option<Labeler>>,
}

#[wasm_bindgen]
impl Lab {
    /// Times one training step of a (b, t) batch on WebGPU (when `use_gpu`) or on the CPU engine in
    /// wasm, so the page can pick the faster: resolves to milliseconds, or rejects when WebGPU is
    /// unavailable.
    pub async fn time_engine(config_json: String, weights: Vec<u8>, use_gpu: bool, b: usize, t: usize) -> std::result::Result<f64, JsValue> {
        let cfg = parse_config(&config_json).map_err(js)?;
        let (params, _) = from_safetensors(&cfg, &weights).map_err(js)?;
        let gpu = if use_gpu { Some(Gpu::new(None).await.map_err(js)?) } else { None };
        let (b, t) = (b.max(1), t.clamp(1, cfg.n_ctx));
        let mut e = AnyEngine::new(cfg, gpu.as_ref(), params, b, t).map_err(js)?;
        let ms = crate::timing::step_ms(&mut e, &crate::timing::random_batch(cfg.vocab_size, b, t, 1), 0.0).await.map_err(js)?;
        if let Some(g) = gpu {
            g.device.destroy();
        }
        Ok(ms)
    }

    /// Milliseconds of one PPO-ptx policy minibatch of the demo's shape (8 answers of 96 tokens and a
    /// 4×64 pretraining batch) on the CPU engine, its rows split across `shards` Workers (none: one
    /// thread), after a warm-up step: what the Workers buy.
    pub async fn time_policy_step(
        config_json: String,
        weights: Vec<u8>,
        shards: Option<crate::wasm_shards::ShardPool>,
    ) -> std::result::Result<f64, JsValue> {
        let cfg = parse_config(&config_json).map_err(js)?;
        let (params, _) = from_safetensors(&cfg, &weights).map_err(js)?;
        let (b, t) = (8, 96.min(cfg.n_ctx));
        let mut e = match &shards {
            Some(pool) => AnyEngine::sharded(cfg, pool, params, b, t),
            None => AnyEngine::new(cfg, None, params, b, t),
        }
        .map_err(js)?;
        // three steps first: new Workers' code tiers up and their caches fill before the timed five
        crate::timing::policy_step_ms(&mut e, b, t, 3, 5).await.map_err(js)
    }

    /// Loads a checkpoint (config.json, model.safetensors, tokenizer.json) and builds the lab on
    /// WebGPU when `use_gpu` and an adapter is there, else on the CPU reference, its batches split
    /// across the `shards` Workers when there are any (see `wasm_shards`).
    pub async fn create(
        config_json: String,
        weights: Vec<u8>,
        tokenizer_json: String,
        options: JsValue,
        use_gpu: bool,
        shards: Option<crate::wasm_shards::ShardPool>,
    ) -> std::result::Result<Lab, JsValue> {
        let opts: Options = if options.is_undefined() || options.is_null() { Options::default() } else { from_js(options, "options").map_err(js)? };
        let cfg = parse_config(&config_json).map_err(js)?;
        let (params, _) = from_safetensors(&cfg, &weights).map_err(js)?;
        let tok = Tokenizer::from_json(&tokenizer_json).map_err(js)?;
        let gpu = if use_gpu { Gpu::new(None).await.ok() } else { None };
        let shards = shards.filter(|p| gpu.is_none() && p.size() > 0);
        let adapter = match (&gpu, &shards) {
            (Some(g), _) => format!("WebGPU ({:?} matrix kernel)", g.kernels.matmul_kind),
            (None, Some(p)) => format!("CPU reference in wasm on {} Workers", p.size() + 1),
            (None, None) => "CPU reference in wasm".to_string(),
        };
        let mut acfg = AlignConfig::default();
        opts.apply(&mut acfg, &cfg).map_err(js)?;
        let g2 = gpu.clone();
        let make = Box::new(move |p: Vec<f32>, b: usize, t: usize| match &shards {
            Some(pool) => AnyEngine::sharded(cfg, pool, p, b, t),
            None => AnyEngine::new(cfg, g2.as_ref(), p, b, t),
        });
        let lab = lab::Lab::new(params, cfg, tok, acfg, make).map_err(js)?;
        Ok(Lab { lab: Rc::new(lab), gpu, adapter, autopilot: RefCell::new(None) })
    }

    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn parameters(&self) -> usize {
        crate::params::ParamLayout::new(&self.lab.model()).total
    }

    /// What the page builds its controls and texts from: the prompts (training and held-out), the
    /// watched ones, the topics the model knows, the settings with their ranges and values, K's
    /// range, the labelers and the methods.
    pub fn describe(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.lab.describe())
    }

    /// Checks and applies options ({k, beta, gamma, lr, temperature, ...}); all or none. Resolves to
    /// the settings in force.
    pub fn set_options(&self, options: JsValue) -> Promise {
        let o: Result<Options> = from_js(options, "options");
        promise(&self.lab, |l| async move {
            l.set_options(&o?).await?;
            Ok(l.config())
        })
    }

    /// Samples the first batch and offers its groups: after `load_state` and `add_rankings`.
    pub fn start(&self) -> Promise {
        promise(&self.lab, |l| async move { l.start().await })
    }

    /// The group of answers to rank now: {id, prompt, responses, yours, notes, sft (where the
    /// original model's answers are, for the page to keep with the ranking and never show)}, or null.
    pub fn offered(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.lab.offered())
    }

    /// Adds a ranking {prompt, responses, ranks, sft?} (ranks[i] = 0 is best, equal ranks are ties)
    /// of the group offered as `offer` (or of answers from elsewhere when undefined): {count, warning, next}.
    pub fn submit(&self, ranking: JsValue, offer: Option<f64>) -> std::result::Result<JsValue, JsValue> {
        let r: Kept = from_js(ranking, "ranking").map_err(js)?;
        to_js(&self.lab.submit(r, offer.map(|x| x as u64)).map_err(js)?)
    }

    /// Rankings stored in the browser or imported, each checked; all or none. Resolves to the count.
    pub fn add_rankings(&self, rankings: JsValue) -> std::result::Result<usize, JsValue> {
        let rs: Vec<Kept> = from_js(rankings, "rankings").map_err(js)?;
        self.lab.add_rankings(rs).map_err(js)
    }

    /// The group to rank now, answered on the spot by the policy that sampled the newest batch
    /// when that batch's groups are all ranked (null before the first batch).
    pub fn more(&self) -> Promise {
        promise(&self.lab, |l| async move { l.more().await })
    }

    /// The person's own question, answered K ways by the policy as it stood after the last
    /// iteration: the offer to rank now.
    pub fn ask(&self, prompt: String) -> Promise {
        promise(&self.lab, |l| async move { l.ask(&prompt).await })
    }

    /// The autopilot's labeler ranks the offered group: the ranking, or null when none is offered.
    pub fn rank_offered(&self, labeler: String) -> std::result::Result<JsValue, JsValue> {
        let mut slot = self.autopilot.borrow_mut();
        if slot.as_ref().is_none_or(|l| l.name() != labeler) {
            *slot = Some(Labeler::parse(&labeler).map_err(js)?);
        }
        let l = slot.as_mut().expect("set just above");
        to_js(&self.lab.rank_offered(l).map_err(js)?)
    }

    /// What the running iteration is doing ("" when none runs).
    pub fn phase(&self) -> String {
        self.lab.phase().to_string()
    }

    /// Rankings the iterations have taken, the running one's included.
    pub fn taken(&self) -> usize {
        self.lab.taken()
    }

    /// Whether a ranking came in that no iteration has taken yet.
    pub fn ready(&self) -> bool {
        self.lab.ready()
    }

    /// Work the next rankings will need, a short turn of it, done while the lab waits for a
    /// ranking; resolves to whether any is left.
    pub fn prepare(&self) -> Promise {
        promise(&self.lab, |l| async move { l.prepare().await })
    }

    /// One iteration; resolves to its history record, rejects with `not_ready` without a new ranking.
    pub fn iterate(&self) -> Promise {
        promise(&self.lab, |l| async move { l.iterate().await })
    }

    /// Measures the labeler's win-rate as the autopilot trains (the page's learning curve; see
    /// `lab::PAGE_CURVE`); none: never.
    pub fn set_curve(&self, labeler: Option<String>) -> std::result::Result<(), JsValue> {
        let labeler = labeler.map(|l| Labeler::parse(&l)).transpose().map_err(js)?;
        self.lab.set_cadence(Cadence { labeler, ..lab::PAGE_CURVE });
        Ok(())
    }

    /// The labeler's win-rate of the policy against SFT on held-out prompts (ties half), by the
    /// benchmark's protocol (`lab::FULL`): {win_rate_vs_sft, kl, ...}.
    pub fn win_rate(&self, labeler: String) -> Promise {
        promise(&self.lab, |l| async move { l.evaluate(&Labeler::parse(&labeler)?, lab::FULL).await })
    }

    /// `method` (a name from `describe().methods`) trained from the base model on the rankings so
    /// far, one per iteration in order, with the labeler's win-rate every few rankings (the page's
    /// learning-curve cadence): {method, title, curve: [{rankings, win_rate_vs_sft, kl, ...}], seconds}.
    pub fn replay(&self, method: String, labeler: String) -> Promise {
        promise(&self.lab, |l| async move {
            let m = crate::methods::MethodKind::parse(&method)?;
            l.replay(m, &Labeler::parse(&labeler)?, lab::PAGE_CURVE.every, lab::PAGE_CURVE.protocol).await
        })
    }

    /// Each prompt answered by the current policy and by SFT with the same seed, with the reward
    /// model's scores: {prompt, policy, sft, policy_score, sft_score}[].
    pub fn watch(&self, prompts: JsValue, seed: u32) -> Promise {
        let prompts: Result<Vec<String>> = from_js(prompts, "prompts");
        promise(&self.lab, |l| async move { l.watch(&prompts?, seed as u64).await })
    }

    /// The prompts the watch panel follows (the first three held-out prompts until changed).
    pub fn set_watch_prompts(&self, prompts: JsValue) -> std::result::Result<(), JsValue> {
        let p: Vec<String> = from_js(prompts, "prompts").map_err(js)?;
        if p.is_empty() {
            return Err(js(Error::new(ErrorKind::BadInput, "the watch panel follows at least one prompt")));
        }
        self.lab.set_watch_prompts(p).map_err(js)
    }

    /// An answer token by token: {tokens, logp_policy, logp_sft, prefix_scores, score}.
    pub fn inspect(&self, prompt: String, answer: String) -> Promise {
        promise(&self.lab, |l| async move { l.inspect(&prompt, &answer).await })
    }

    /// A blind pair for a held-out prompt (chosen by `seed`): {prompt, sft, policy}.
    pub fn blind_pair(&self, seed: u32) -> Promise {
        promise(&self.lab, |l| async move { l.blind_pair(seed as u64).await })
    }

    /// For tests: [log π, log π_SFT] of each answer token computed by definition.
    pub fn debug_direct_logprobs(&self, prompt: String, answer: String) -> Promise {
        promise(&self.lab, |l| async move { l.direct_logprobs(&prompt, &answer).await })
    }

    /// The rankings so far, as {prompt, responses, ranks}[].
    pub fn rankings(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.lab.rankings())
    }

    /// The aligned policy and the reward model as HF files, for `transformers` and TRL:
    /// {policy: {config, weights}, reward: {config, weights}, tokenizer, tokenizer_config,
    /// reward_check}; reward_check holds answers with the lab's scores, to check a loader against.
    pub fn export_models(&self) -> Promise {
        let lab = self.lab.clone();
        future_to_promise(async move {
            let rankings = lab.rankings().len();
            let meta = serde_json::json!({ "aligned_in_browser": true, "rankings": rankings, "align": lab.config() });
            let ex = lab.export(meta).await.map_err(js)?;
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"policy".into(), &checkpoint_js(&ex.policy)?)?;
            js_sys::Reflect::set(&out, &"reward".into(), &checkpoint_js(&ex.reward)?)?;
            js_sys::Reflect::set(&out, &"tokenizer".into(), &ex.policy.tokenizer_json.clone().into())?;
            let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
            js_sys::Reflect::set(&out, &"tokenizer_config".into(), &pretty(&tokenizer_config(&ex.policy.cfg)).into())?;
            js_sys::Reflect::set(&out, &"reward_check".into(), &pretty(&ex.reward_check).into())?;
            Ok(out.into())
        })
    }

    /// Everything training changed, as one file (see `LabState`).
    pub fn save_state(&self) -> Promise {
        let lab = self.lab.clone();
        future_to_promise(async move {
            let bytes = lab.snapshot().await.and_then(|s| s.to_bytes()).map_err(js)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// Restores what `save_state` wrote, with the rankings stored beside it, all or nothing: a state
    /// of another model or version, or with a missing or non-finite weight, is refused with a
    /// `bad_state` error and the lab stays as it was. Resolves to the iteration count.
    pub fn load_state(&self, bytes: Vec<u8>, rankings: JsValue) -> std::result::Result<usize, JsValue> {
        let rs: Vec<Kept> = from_js(rankings, "rankings").map_err(js)?;
        let state = LabState::from_bytes(&bytes, &self.lab.model()).map_err(js)?;
        self.lab.restore(state, rs).map_err(js)?;
        Ok(self.lab.progress().map_err(js)?.iterations)
    }

    /// Metrics of every iteration so far (restored with the state), for redrawing the plots.
    pub fn history(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.lab.history())
    }

    /// Destroys the GPU device (as a driver reset would), to exercise recovery. Nothing on the CPU engine.
    pub fn debug_lose_device(&self) {
        if let Some(g) = &self.gpu {
            g.lose_device();
        }
    }
}
