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
use crate::checkpoint::{from_safetensors, hf_config, parse_config, to_safetensors, LabState};
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
    /// Metrics of every iteration so far, as JSON (restored with the state).
    history: Vec<serde_json::Value>,
}

impl Inner {
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

/// What one training iteration returns to the page.
#[derive(Serialize)]
struct IterationResult {
    metrics: IterationMetrics,
    /// Rankings the autopilot's labeler added this iteration (to store with the person's).
    rankings: Vec<Ranking>,
}

/// The lab: base model, reward model, policy and value function, on WebGPU or the CPU reference.
#[wasm_bindgen]
pub struct Lab {
    inner: Rc<RefCell<Inner>>,
    adapter: String,
}

/// Runs `f` on the lab inside a Promise; a call made while another is running is refused, not queued.
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

/// Milliseconds of one training step (forward, backward, AdamW) of a (4, 64) batch on an engine,
/// after one warm-up step (which compiles the GPU pipelines).
async fn time_step(cfg: ModelConfig, gpu: Option<&Gpu>, params: Vec<f32>) -> Result<f64> {
    let (b, t) = (4, cfg.n_ctx.min(64));
    let mut e = AnyEngine::new(cfg, gpu, params, b, t)?;
    let tokens: Vec<u32> = (0..b * t).map(|i| (i * 7 % cfg.vocab_size) as u32).collect();
    let targets: Vec<i32> = tokens.iter().map(|&x| x as i32).collect();
    let opt = AlignConfig::default().adam.at(1e-6, 1);
    let mut step = async || -> Result<()> {
        crate::engine::lm_forward(&mut e, &tokens, &targets, b, t).await?;
        e.zero_grad()?;
        crate::engine::lm_backward(&mut e, &targets, 1.0)?;
        e.update(&opt, 1.0).await.map(|_| ())
    };
    step().await?;
    let t0 = crate::clock::now_ms();
    step().await?;
    Ok(crate::clock::now_ms() - t0)
}

#[wasm_bindgen]
impl Lab {
    /// Times one small training step on WebGPU (when `use_gpu`) or on the CPU engine in wasm, so the
    /// page can pick the faster: resolves to milliseconds, or rejects when WebGPU is unavailable.
    pub async fn time_engine(config_json: String, weights: Vec<u8>, use_gpu: bool) -> std::result::Result<f64, JsValue> {
        let cfg = parse_config(&config_json).map_err(js)?;
        let (params, _) = from_safetensors(&cfg, &weights).map_err(js)?;
        let gpu = if use_gpu { Some(Gpu::new(None).await.map_err(js)?) } else { None };
        let ms = time_step(cfg, gpu.as_ref(), params).await.map_err(js)?;
        if let Some(g) = gpu {
            g.device.destroy();
        }
        Ok(ms)
    }

    /// Loads a checkpoint (config.json, model.safetensors, tokenizer.json) and builds the lab on
    /// WebGPU when `use_gpu` and an adapter is there, else on the CPU reference.
    pub async fn create(config_json: String, weights: Vec<u8>, tokenizer_json: String, options: JsValue, use_gpu: bool) -> std::result::Result<Lab, JsValue> {
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
        let inner = Inner { cfg, gpu, aligner, tokenizer_json, history: Vec::new() };
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
    pub fn add_ranking(&self, ranking: JsValue) -> std::result::Result<usize, JsValue> {
        let r: Ranking = from_js(ranking, "ranking")?;
        let mut i = self.inner.try_borrow_mut().map_err(|_| busy())?;
        i.aligner.add_ranking(r).map_err(js)?;
        Ok(i.aligner.rankings.len())
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
                i.history.push(serde_json::to_value(&metrics).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?);
                Ok(IterationResult { metrics, rankings })
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

    /// The rankings so far, as {prompt, responses, ranks}[].
    pub fn rankings(&self) -> std::result::Result<JsValue, JsValue> {
        to_js(&self.inner.borrow().aligner.rankings)
    }

    /// The current policy as HF files: {config: string, weights: Uint8Array, tokenizer: string}.
    pub fn export_policy(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| busy())?;
            let params = i.aligner.policy.params().await.map_err(js)?;
            let bytes = to_safetensors(&i.cfg, &params, &[]).map_err(js)?;
            let meta = serde_json::json!({ "rlhf_lab": { "aligned_in_browser": true, "rankings": i.aligner.rankings.len() } });
            let config = serde_json::to_string_pretty(&hf_config(&i.cfg, i.aligner.tok.end, Some(meta))).map_err(|e| JsValue::from_str(&e.to_string()))?;
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"config".into(), &config.into())?;
            js_sys::Reflect::set(&out, &"weights".into(), &js_sys::Uint8Array::from(bytes.as_slice()).into())?;
            js_sys::Reflect::set(&out, &"tokenizer".into(), &i.tokenizer_json.clone().into())?;
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
