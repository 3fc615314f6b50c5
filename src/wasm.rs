//! The browser's entry points (wasm-bindgen): the whole lab behind one object the page's Worker
//! drives. Every call that touches the GPU returns a Promise; nothing blocks. Errors reach JS as
//! `{kind, message}` objects (see `ErrorKind`), so the page branches on the kind, not the wording.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::align::{win_rate, AlignConfig, Aligner, IterationMetrics};
use crate::any_engine::AnyEngine;
use crate::checkpoint::{from_safetensors, hf_config, hf_reward_config, parse_config, to_safetensors, tokenizer_config, LabState};
use crate::config::ModelConfig;
use crate::corpus::format_prompt;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::gpu::Gpu;
use crate::labelers::Labeler;
use crate::options::Options;
use crate::reward::Ranking;
use crate::sample::generate;
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

fn busy() -> JsValue {
    js(Error::new(ErrorKind::Busy, "the lab is busy with another call; try again when it is done"))
}

/// Plain JS objects and arrays (not Maps), so results survive postMessage and read as `m.reward`.
fn to_js<T: Serialize>(v: &T) -> std::result::Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&format!("serializing a result: {e}")))
}

fn from_js<T: serde::de::DeserializeOwned>(v: JsValue, what: &str) -> std::result::Result<T, JsValue> {
    serde_wasm_bindgen::from_value(v).map_err(|e| js(Error::new(ErrorKind::BadInput, format!("{what}: {e}"))))
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

struct Inner {
    cfg: ModelConfig,
    gpu: Option<Gpu>,
    aligner: Aligner<AnyEngine>,
    tokenizer_json: String,
    /// One record per iteration (metrics, the watched answers, a win-rate now and then), as JSON;
    /// saved and restored with the state.
    history: Vec<serde_json::Value>,
    /// The prompts the watch panel follows.
    watch_prompts: Vec<String>,
}

/// Seed of the watch panel's answers: the same every iteration, so answers change only as the policy does.
const WATCH_SEED: u64 = 0x3A7C;
/// With the autopilot, the labeler's win-rate is measured every this many rankings (the learning curve).
const CURVE_EVERY: usize = 4;
/// Answers per held-out prompt for the learning curve's win-rate (the README's benchmark takes 4).
const CURVE_SAMPLES: usize = 1;

impl Inner {
    /// An iteration's history record: its metrics, the watched answers, and with a labeler every
    /// CURVE_EVERY rankings its win-rate against SFT (a point of the learning curve).
    async fn record(&mut self, metrics: IterationMetrics, labeler: Option<Labeler>) -> Result<serde_json::Value> {
        let watch = self.aligner.watch(&self.watch_prompts.clone(), WATCH_SEED).await?;
        let win_rate = match labeler {
            Some(l) if metrics.rankings.is_multiple_of(CURVE_EVERY) => {
                let al = &mut self.aligner;
                let sc = al.sample_cfg();
                let seed = al.cfg.seed ^ 0xE7;
                Some(win_rate(&mut al.policy, &mut al.reference, &al.tok, l, &al.eval_prompts.clone(), CURVE_SAMPLES, &sc, seed).await?)
            }
            _ => None,
        };
        let mut v = serde_json::to_value(&metrics).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        v["watch"] = serde_json::to_value(&watch).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        v["win_rate"] = serde_json::json!(win_rate);
        v["labeler"] = serde_json::json!(labeler.map(|l| l.name()));
        Ok(v)
    }

    async fn generate(&mut self, prompt: &str, k: usize, seed: u64, sft: bool) -> Result<Vec<String>> {
        let tok = &self.aligner.tok;
        let ids = tok.encode(&format_prompt(prompt))?;
        if ids.len() + 1 >= self.cfg.n_ctx {
            crate::bail!("the prompt is {} tokens; this model's context is {}", ids.len(), self.cfg.n_ctx);
        }
        let sc = self.aligner.sample_cfg();
        let engine = if sft { &mut self.aligner.reference } else { &mut self.aligner.policy };
        let outs = generate(engine, &ids, k.clamp(crate::reward::K_MIN, crate::reward::K_MAX), self.aligner.tok.end, &sc, seed).await?;
        outs.iter().map(|o| self.aligner.tok.decode(o)).collect()
    }
}

/// What one training iteration returns to the page: the record kept in the history, and the
/// rankings the autopilot's labeler added (to store with the person's).
#[derive(Serialize)]
struct IterationResult {
    record: serde_json::Value,
    rankings: Vec<Ranking>,
}

/// The files `export_models` hands out.
struct Export {
    policy: (String, Vec<u8>),
    reward: (String, Vec<u8>),
    tokenizer_config: String,
    reward_check: String,
}

impl Inner {
    async fn export(&mut self) -> Result<Export> {
        let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()));
        let al = &mut self.aligner;
        let (cfg, end, user) = (self.cfg, al.tok.end, al.tok.user);
        let meta = serde_json::json!({ "rlhf_lab": { "aligned_in_browser": true, "rankings": al.rankings.len(), "align": al.cfg } });
        let policy = (pretty(&hf_config(&cfg, end, Some(meta)))?, to_safetensors(&cfg, &al.policy.params().await?, &[])?);
        let head = ("score.weight".to_string(), vec![1, cfg.n_embd], al.reward.head.w.clone());
        let reward =
            (pretty(&hf_reward_config(&cfg, end, user, al.reward.head.bias))?, to_safetensors(&cfg, &al.reward.engine.params().await?, &[head])?);
        // a few answers with the lab's own scores, for whoever loads the reward model to compare
        let mut check = Vec::new();
        for r in al.rankings.clone().iter().take(3) {
            let scores = al.score_answers(&r.prompt, &r.responses).await?;
            check.extend(r.responses.iter().zip(scores).map(|(a, s)| serde_json::json!({ "prompt": r.prompt, "answer": a, "score": s })));
        }
        Ok(Export { policy, reward, tokenizer_config: pretty(&tokenizer_config(&cfg))?, reward_check: pretty(&serde_json::json!(check))? })
    }
}

/// The lab: base model, reward model, policy and value function, on WebGPU or the CPU reference.
#[wasm_bindgen]
pub struct Lab {
    inner: Rc<RefCell<Inner>>,
    adapter: String,
}

/// Runs `f` on the lab inside a Promise; a call made while another is running is refused, not queued:
/// the mutable borrow held across the awaits is the lab's lock.
#[allow(clippy::await_holding_refcell_ref)]
fn with_inner<T, F>(inner: &Rc<RefCell<Inner>>, f: F) -> Promise
where
    T: Serialize,
    F: for<'a> FnOnce(&'a mut Inner) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + 'a>> + 'static,
{
    let inner = inner.clone();
    future_to_promise(async move {
        let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
        let out = f(&mut guard).await.map_err(js)?;
        to_js(&out)
    })
}

/// Milliseconds of one training step (forward, backward, AdamW) of a (B, T) batch on an engine,
/// after one warm-up step (which compiles the GPU pipelines).
async fn time_step(cfg: ModelConfig, gpu: Option<&Gpu>, params: Vec<f32>, b: usize, t: usize) -> Result<f64> {
    let t = t.clamp(1, cfg.n_ctx);
    let mut e = AnyEngine::new(cfg, gpu, params, b, t)?;
    let tokens: Vec<u32> = (0..b * t).map(|i| (i * 7 % cfg.vocab_size) as u32).collect();
    let targets: Vec<i32> = tokens.iter().map(|&x| x as i32).collect();
    let opt = AlignConfig::default().adam.at(1e-6, 1);
    let mut step = async || -> Result<()> { e.lm_step(&tokens, &targets, b, t, &opt, 1.0).await.map(|_| ()) };
    step().await?;
    let t0 = crate::clock::now_ms();
    step().await?;
    Ok(crate::clock::now_ms() - t0)
}

// Every call holds the lab's borrow across its awaits: that borrow is the lock that refuses a second call.
#[allow(clippy::await_holding_refcell_ref)]
#[wasm_bindgen]
impl Lab {
    /// Times one training step of a (b, t) batch on WebGPU (when `use_gpu`) or on the CPU engine in
    /// wasm, so the page can pick the faster: resolves to milliseconds, or rejects when WebGPU is
    /// unavailable.
    pub async fn time_engine(config_json: String, weights: Vec<u8>, use_gpu: bool, b: usize, t: usize) -> std::result::Result<f64, JsValue> {
        let cfg = parse_config(&config_json).map_err(js)?;
        let (params, _) = from_safetensors(&cfg, &weights).map_err(js)?;
        let gpu = if use_gpu { Some(Gpu::new(None).await.map_err(js)?) } else { None };
        let ms = time_step(cfg, gpu.as_ref(), params, b.max(1), t).await.map_err(js)?;
        if let Some(g) = gpu {
            g.device.destroy();
        }
        Ok(ms)
    }

    /// Loads a checkpoint (config.json, model.safetensors, tokenizer.json) and builds the lab on
    /// WebGPU when `use_gpu` and an adapter is there, else on the CPU reference.
    pub async fn create(
        config_json: String,
        weights: Vec<u8>,
        tokenizer_json: String,
        options: JsValue,
        use_gpu: bool,
    ) -> std::result::Result<Lab, JsValue> {
        let opts: Options = if options.is_undefined() || options.is_null() { Options::default() } else { from_js(options, "options")? };
        let cfg = parse_config(&config_json).map_err(js)?;
        let (params, _) = from_safetensors(&cfg, &weights).map_err(js)?;
        let tok = Tokenizer::from_json(&tokenizer_json).map_err(js)?;
        let gpu = if use_gpu { Gpu::new(None).await.ok() } else { None };
        let adapter = match &gpu {
            Some(g) => format!("WebGPU ({:?} matrix kernel)", g.kernels.matmul_kind),
            None => "CPU reference in wasm".to_string(),
        };
        let mut acfg = AlignConfig::default();
        opts.apply(&mut acfg, &cfg).map_err(js)?;
        let g2 = gpu.clone();
        let make = move |p: Vec<f32>, b: usize, t: usize| AnyEngine::new(cfg, g2.as_ref(), p, b, t);
        let aligner = Aligner::new(params, cfg, tok, acfg, &make).map_err(js)?;
        let watch_prompts = aligner.eval_prompts.iter().take(3).cloned().collect();
        let inner = Inner { cfg, gpu, aligner, tokenizer_json, history: Vec::new(), watch_prompts };
        Ok(Lab { inner: Rc::new(RefCell::new(inner)), adapter })
    }

    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn parameters(&self) -> usize {
        crate::params::ParamLayout::new(&self.inner.borrow().cfg).total
    }

    /// The prompts the lab trains on (the held-out ones are kept for the win-rate).
    pub fn prompts(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.inner.borrow().aligner.train_prompts)
    }

    /// The settings in force, as the page's controls show them.
    pub fn config(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.inner.borrow().aligner.cfg)
    }

    /// Checks and applies options ({k, beta, gamma, lr, temperature, ...}); all or none.
    pub fn set_options(&self, options: JsValue) -> std::result::Result<(), JsValue> {
        let o: Options = from_js(options, "options")?;
        let mut i = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let model = i.cfg;
        let al = &mut i.aligner;
        let old_beta = al.cfg.ppo.beta;
        o.apply(&mut al.cfg, &model).map_err(js)?;
        if al.cfg.ppo.beta != old_beta {
            al.beta = al.cfg.ppo.beta;
        }
        Ok(())
    }

    /// K answers from the current policy (or, with `sft`, from the frozen SFT model): string[].
    pub fn generate(&self, prompt: String, k: usize, seed: u32, sft: bool) -> Promise {
        with_inner(&self.inner, move |i| Box::pin(async move { i.generate(&prompt, k, seed as u64, sft).await }))
    }

    /// Adds a ranking {prompt, responses, ranks}; ranks[i] = 0 is best, equal ranks are ties.
    /// Resolves to {count, warning}: a warning when the answers cut to the context read the same.
    pub fn add_ranking(&self, ranking: JsValue) -> std::result::Result<JsValue, JsValue> {
        let r: Ranking = from_js(ranking, "ranking")?;
        let mut i = self.inner.try_borrow_mut().map_err(|_| busy())?;
        let warning = i.aligner.ranking_warning(&r).map_err(js)?;
        i.aligner.add_ranking(r).map_err(js)?;
        to_js(&serde_json::json!({ "count": i.aligner.rankings.len(), "warning": warning }))
    }

    /// The prompts the watch panel follows (the first three held-out prompts until changed).
    pub fn set_watch_prompts(&self, prompts: JsValue) -> std::result::Result<(), JsValue> {
        let p: Vec<String> = from_js(prompts, "prompts")?;
        if p.is_empty() || p.len() > 8 || p.iter().any(|x| x.trim().is_empty()) {
            return Err(js(Error::new(ErrorKind::BadInput, "the watch panel follows 1 to 8 prompts, none empty")));
        }
        let mut i = self.inner.try_borrow_mut().map_err(|_| busy())?;
        for x in &p {
            i.aligner.check_prompt(x).map_err(js)?;
        }
        i.watch_prompts = p;
        Ok(())
    }

    pub fn watch_prompts(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.inner.borrow().watch_prompts)
    }

    /// One training iteration: rollouts, the autopilot's rankings when `labeler` names one, the
    /// reward model refitted to new rankings, PPO-ptx. Resolves to {metrics, rankings}.
    pub fn train_iteration(&self, labeler: Option<String>) -> Promise {
        with_inner(&self.inner, move |i| {
            Box::pin(async move {
                let labeler = labeler.map(|l| Labeler::parse(&l)).transpose()?;
                let cfg = i.cfg;
                let gpu = i.gpu.clone();
                let make = move |p: Vec<f32>, b: usize, t: usize| AnyEngine::new(cfg, gpu.as_ref(), p, b, t);
                let (metrics, rankings) = i.aligner.iterate(labeler, &make).await?;
                let record = i.record(metrics, labeler).await?;
                i.history.push(record.clone());
                Ok(IterationResult { record, rankings })
            })
        })
    }

    /// The labeler's preference for the current policy over SFT on held-out prompts (ties half).
    pub fn win_rate(&self, labeler: String, prompts: usize, samples: usize) -> Promise {
        with_inner(&self.inner, move |i| {
            Box::pin(async move {
                let l = Labeler::parse(&labeler)?;
                let ps: Vec<String> = i.aligner.eval_prompts.iter().take(prompts.max(1)).cloned().collect();
                let sc = i.aligner.sample_cfg();
                let seed = i.aligner.cfg.seed ^ 0xE7;
                let al = &mut i.aligner;
                win_rate(&mut al.policy, &mut al.reference, &al.tok, l, &ps, samples.max(1), &sc, seed).await
            })
        })
    }

    /// Prompts never trained on: the watch panel's and the blind test's.
    pub fn heldout_prompts(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.inner.borrow().aligner.eval_prompts)
    }

    /// Each prompt answered by the current policy and by SFT with the same seed, with the reward
    /// model's scores: {prompt, policy, sft, policy_score, sft_score}[].
    pub fn watch(&self, prompts: JsValue, seed: u32) -> Promise {
        let prompts: std::result::Result<Vec<String>, JsValue> = from_js(prompts, "prompts");
        with_inner(&self.inner, move |i| {
            Box::pin(async move {
                let prompts = prompts.map_err(|_| Error::new(ErrorKind::BadInput, "prompts must be a list of strings"))?;
                i.aligner.watch(&prompts, seed as u64).await
            })
        })
    }

    /// An answer token by token: {tokens, logp_policy, logp_sft, prefix_scores, score}.
    pub fn inspect(&self, prompt: String, answer: String) -> Promise {
        with_inner(&self.inner, move |i| Box::pin(async move { i.aligner.inspect(&prompt, &answer).await }))
    }

    /// A blind pair for a held-out prompt (chosen by `seed`): {prompt, sft, policy}. The page shows
    /// the two in random order.
    pub fn blind_pair(&self, seed: u32) -> Promise {
        with_inner(&self.inner, move |i| {
            Box::pin(async move {
                let prompts = &i.aligner.eval_prompts;
                let prompt = prompts[seed as usize % prompts.len()].clone();
                let policy = i.aligner.answer(&prompt, seed as u64, false).await?;
                let sft = i.aligner.answer(&prompt, seed as u64 ^ 0xB11D, true).await?;
                Ok(serde_json::json!({ "prompt": prompt, "policy": policy, "sft": sft }))
            })
        })
    }

    /// For tests: [log π, log π_SFT] of each answer token computed by definition (see `direct_logprobs`).
    pub fn debug_direct_logprobs(&self, prompt: String, answer: String) -> Promise {
        with_inner(&self.inner, move |i| Box::pin(async move { i.aligner.direct_logprobs(&prompt, &answer).await }))
    }

    /// The rankings so far, as {prompt, responses, ranks}[].
    pub fn rankings(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.inner.borrow().aligner.rankings)
    }

    /// The aligned policy and the reward model as HF files, for `transformers` and TRL:
    /// {policy: {config, weights}, reward: {config, weights}, tokenizer, tokenizer_config,
    /// reward_check}; reward_check holds answers with the lab's scores, to check a loader against.
    pub fn export_models(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| busy())?;
            let v = i.export().await.map_err(js)?;
            let out = js_sys::Object::new();
            for (key, (config, weights)) in [("policy", &v.policy), ("reward", &v.reward)] {
                let m = js_sys::Object::new();
                js_sys::Reflect::set(&m, &"config".into(), &config.clone().into())?;
                js_sys::Reflect::set(&m, &"weights".into(), &js_sys::Uint8Array::from(weights.as_slice()).into())?;
                js_sys::Reflect::set(&out, &key.into(), &m)?;
            }
            js_sys::Reflect::set(&out, &"tokenizer".into(), &i.tokenizer_json.clone().into())?;
            js_sys::Reflect::set(&out, &"tokenizer_config".into(), &v.tokenizer_config.into())?;
            js_sys::Reflect::set(&out, &"reward_check".into(), &v.reward_check.into())?;
            Ok(out.into())
        })
    }

    /// Everything training changed, as one file (see `LabState`).
    pub fn save_state(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| busy())?;
            let history = i.history.clone();
            let bytes = i.aligner.snapshot(history).await.and_then(|s| s.to_bytes()).map_err(js)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// Restores what `save_state` wrote, all of it or nothing: a state of another model or version,
    /// or with a missing or non-finite weight, is refused with a `bad_state` error and the lab stays
    /// as it was.
    pub fn load_state(&self, bytes: Vec<u8>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| busy())?;
            let state = LabState::from_bytes(&bytes, &i.cfg).map_err(js)?;
            let history = state.history.clone();
            let i = &mut *i;
            let (cfg, gpu) = (i.cfg, i.gpu.clone());
            let make = move |p: Vec<f32>, b: usize, t: usize| AnyEngine::new(cfg, gpu.as_ref(), p, b, t);
            i.aligner.restore(state, &make).map_err(js)?;
            i.history = history;
            Ok(JsValue::from(i.aligner.iteration as u32))
        })
    }

    /// Metrics of every iteration so far (restored with the state), for redrawing the plots.
    pub fn history(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.inner.borrow().history)
    }

    /// Destroys the GPU device (as a driver reset would), to exercise recovery. Nothing on the CPU engine.
    pub fn debug_lose_device(&self) {
        if let Some(g) = &self.inner.borrow().gpu {
            g.lose_device();
        }
    }
}
