//! The browser's entry points (wasm-bindgen): the whole lab behind one object the page's Worker
//! drives. Every call that touches the GPU returns a Promise; nothing blocks.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Promise;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::align::{win_rate, AlignConfig, Aligner, IterationMetrics};
use crate::checkpoint::{from_safetensors, hf_config, parse_config, to_safetensors};
use crate::config::ModelConfig;
use crate::corpus::format_prompt;
use crate::engine::{AnyEngine, Engine};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::labelers::Labeler;
use crate::ppo::PpoConfig;
use crate::reward::Ranking;
use crate::sample::{generate, SampleConfig};
use crate::tokenizer::Tokenizer;

fn js(e: Error) -> JsValue {
    JsValue::from_str(&e.0)
}

/// Plain JS objects and arrays (not Maps), so results survive postMessage and read as `m.reward`.
fn to_js<T: Serialize>(v: &T) -> std::result::Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&format!("serializing a result: {e}")))
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// What the page may set; missing fields keep their values (the paper's at the start).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    pub k: Option<usize>,
    pub beta: Option<f32>,
    pub gamma: Option<f32>,
    pub lr: Option<f32>,
    pub temperature: Option<f32>,
    pub rollouts: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub rm_lr: Option<f32>,
    pub rm_epochs: Option<usize>,
    pub seed: Option<u64>,
    /// Use the WebGPU engine when there is an adapter (default true).
    pub prefer_gpu: Option<bool>,
}

struct Inner {
    cfg: ModelConfig,
    gpu: Option<Gpu>,
    aligner: Aligner<AnyEngine>,
    config_json: String,
    tokenizer_json: String,
    /// Metrics of every iteration so far, as JSON (restored with the state).
    history: Vec<serde_json::Value>,
    seed: u64,
}

impl Inner {
    fn apply(&mut self, o: &Options) -> Result<()> {
        let c = &mut self.aligner.cfg;
        if let Some(k) = o.k {
            if !(2..=9).contains(&k) {
                return Err(Error(format!("K must be 2 to 9, got {k}")));
            }
            c.k = k;
        }
        if let Some(b) = o.beta {
            c.ppo.beta = b;
            self.aligner.beta = b;
        }
        if let Some(g) = o.gamma {
            c.ppo.gamma = g;
        }
        if let Some(lr) = o.lr {
            c.ppo.lr = lr;
            c.ppo.value_lr = lr;
        }
        if let Some(t) = o.temperature {
            if !(t > 0.0) {
                return Err(Error("the temperature must be positive".into()));
            }
            c.ppo.temperature = t;
        }
        if let Some(r) = o.rollouts {
            c.rollouts = r.max(1);
        }
        if let Some(n) = o.max_new_tokens {
            c.max_new_tokens = n.max(1);
        }
        if let Some(lr) = o.rm_lr {
            c.rm_lr = lr;
        }
        if let Some(n) = o.rm_epochs {
            c.rm_epochs = n.max(1);
        }
        Ok(())
    }

    async fn save_state(&mut self) -> Result<Vec<u8>> {
        let al = &mut self.aligner;
        let mut tensors: Vec<(String, Vec<f32>)> = Vec::new();
        for (name, engine) in [("policy", &mut al.policy), ("reward", &mut al.reward.engine)] {
            let (m, v) = engine.optimizer_state().await?;
            tensors.push((name.into(), engine.params().await?));
            tensors.push((format!("{name}.adam_m"), m));
            tensors.push((format!("{name}.adam_v"), v));
        }
        let head_tensors = |name: &str, h: &crate::reward::ScalarHead| {
            vec![(name.to_string(), h.w.clone()), (format!("{name}.adam_m"), h.m.clone()), (format!("{name}.adam_v"), h.v.clone())]
        };
        tensors.extend(head_tensors("reward_head", &al.reward.head));
        let mut value_meta = serde_json::Value::Null;
        if let Some((v, head)) = al.value.as_mut() {
            let (m, vv) = v.optimizer_state().await?;
            tensors.push(("value".into(), v.params().await?));
            tensors.push(("value.adam_m".into(), m));
            tensors.push(("value.adam_v".into(), vv));
            tensors.extend(head_tensors("value_head", head));
            value_meta = serde_json::json!({ "bias": head.bias, "head_steps": head.t });
        }
        if tensors.iter().any(|(_, v)| v.iter().any(|x| !x.is_finite())) {
            return Err(Error("refusing to save a state with NaN or infinite weights".into()));
        }
        let meta = serde_json::json!({
            "model": self.cfg, "beta": al.beta, "iteration": al.iteration, "policy_steps": al.policy_steps,
            "reward_bias": al.reward.head.bias, "reward_steps": al.reward.steps, "reward_head_steps": al.reward.head.t,
            "value": value_meta, "history": self.history,
        });
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors.iter().map(|(n, v)| (n.clone(), vec![v.len()], bytemuck::cast_slice(v).to_vec())).collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = data
            .iter()
            .map(|(n, s, b)| safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error(format!("building the state: {e}")))?;
        let meta: std::collections::HashMap<String, String> = [("rlhf_lab_state".to_string(), meta.to_string())].into();
        safetensors::serialize(views, Some(meta)).map_err(|e| Error(format!("serializing the state: {e}")))
    }

    fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| Error(format!("the saved state is corrupted: {e}")))?;
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| Error(format!("the saved state is corrupted: {e}")))?;
        let meta_text = header.metadata().as_ref().and_then(|m| m.get("rlhf_lab_state")).ok_or_else(|| Error("not a saved lab state".into()))?;
        let meta: serde_json::Value = serde_json::from_str(meta_text).map_err(|e| Error(format!("the saved state's metadata: {e}")))?;
        let model: ModelConfig = serde_json::from_value(meta["model"].clone()).map_err(|e| Error(format!("the saved state's model: {e}")))?;
        if model != self.cfg {
            return Err(Error(format!("the saved state is for {model:?}, not this model {:?}", self.cfg)));
        }
        let get = |name: &str| -> Result<Option<Vec<f32>>> {
            match st.tensor(name) {
                Ok(t) => Ok(Some(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())),
                Err(_) => Ok(None),
            }
        };
        let need = |name: &str| get(name)?.ok_or_else(|| Error(format!("the saved state lacks {name}")));
        let restore_engine = |engine: &mut AnyEngine, name: &str| -> Result<()> {
            engine.set_params(&need(name)?)?;
            engine.set_optimizer_state(&need(&format!("{name}.adam_m"))?, &need(&format!("{name}.adam_v"))?)
        };
        let restore_head = |head: &mut crate::reward::ScalarHead, name: &str| -> Result<()> {
            let w = need(name)?;
            if w.len() != self.cfg.n_embd {
                return Err(Error(format!("the saved {name} has {} values, not {}", w.len(), self.cfg.n_embd)));
            }
            head.w = w;
            head.m = need(&format!("{name}.adam_m"))?;
            head.v = need(&format!("{name}.adam_v"))?;
            Ok(())
        };
        let count = |v: &serde_json::Value| v.as_u64().unwrap_or(0) as u32;
        let al = &mut self.aligner;
        restore_engine(&mut al.policy, "policy")?;
        restore_engine(&mut al.reward.engine, "reward")?;
        restore_head(&mut al.reward.head, "reward_head")?;
        al.reward.head.bias = meta["reward_bias"].as_f64().unwrap_or(0.0) as f32;
        al.reward.steps = count(&meta["reward_steps"]);
        al.reward.head.t = count(&meta["reward_head_steps"]);
        if let Some(v) = get("value")? {
            let b = al.policy.capacity().0;
            let mut engine = AnyEngine::new(self.cfg, self.gpu.as_ref(), v, b, self.cfg.n_ctx)?;
            engine.set_optimizer_state(&need("value.adam_m")?, &need("value.adam_v")?)?;
            let mut head = crate::reward::ScalarHead::new(self.cfg.n_embd, 0);
            restore_head(&mut head, "value_head")?;
            head.bias = meta["value"]["bias"].as_f64().unwrap_or(0.0) as f32;
            head.t = count(&meta["value"]["head_steps"]);
            al.value = Some((engine, head));
        }
        al.beta = meta["beta"].as_f64().map(|x| x as f32).unwrap_or(al.beta);
        al.iteration = meta["iteration"].as_u64().unwrap_or(0) as usize;
        al.policy_steps = meta["policy_steps"].as_u64().unwrap_or(0) as u32;
        self.history = serde_json::from_value(meta["history"].clone()).unwrap_or_default();
        Ok(())
    }

    fn sample_cfg(&self) -> SampleConfig {
        let c = &self.aligner.cfg;
        SampleConfig { temperature: c.ppo.temperature, top_k: 0, top_p: 1.0, max_new_tokens: c.max_new_tokens }
    }

    async fn generate(&mut self, prompt: &str, k: usize, seed: u64, sft: bool) -> Result<Vec<String>> {
        let tok = &self.aligner.tok;
        let ids = tok.encode(&format_prompt(prompt))?;
        if ids.len() + 1 >= self.cfg.n_ctx {
            return Err(Error(format!("the prompt is {} tokens; this model's context is {}", ids.len(), self.cfg.n_ctx)));
        }
        let sc = self.sample_cfg();
        let engine = if sft { &mut self.aligner.reference } else { &mut self.aligner.policy };
        let outs = generate(engine, &ids, k.clamp(1, 9), self.aligner.tok.end, &sc, seed).await?;
        outs.iter().map(|o| self.aligner.tok.decode(o)).collect()
    }
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
        let mut guard = inner.try_borrow_mut().map_err(|_| JsValue::from_str("the lab is busy with another call"))?;
        let out = f(&mut guard).await.map_err(js)?;
        to_js(&out)
    })
}

#[wasm_bindgen]
impl Lab {
    /// Loads a checkpoint (config.json, model.safetensors, tokenizer.json) and builds the lab.
    pub async fn create(config_json: String, weights: Vec<u8>, tokenizer_json: String, options: JsValue) -> std::result::Result<Lab, JsValue> {
        let opts: Options = if options.is_undefined() || options.is_null() {
            Options::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(|e| JsValue::from_str(&format!("options: {e}")))?
        };
        let cfg = parse_config(&config_json).map_err(js)?;
        let (params, _) = from_safetensors(&cfg, &weights).map_err(js)?;
        let tok = Tokenizer::from_json(&tokenizer_json).map_err(js)?;
        let gpu = if opts.prefer_gpu.unwrap_or(true) { Gpu::new(None).await.ok() } else { None };
        let adapter = match &gpu {
            Some(g) => format!("WebGPU ({:?} matrix kernel)", g.kernels.matmul_kind),
            None => "CPU reference in wasm (no WebGPU)".to_string(),
        };
        let seed = opts.seed.unwrap_or(1);
        // small batches: four engines live on the device at once
        let acfg = AlignConfig { batch: 4, rollouts: 8, rm_epochs: 2, rm_lr: 3e-4, seed, ppo: PpoConfig::default(), ..AlignConfig::default() };
        let g2 = gpu.clone();
        let make = move |p: Vec<f32>, b: usize, t: usize| AnyEngine::new(cfg, g2.as_ref(), p, b, t);
        let aligner = Aligner::new(params, cfg, tok, Labeler::Polite, acfg, &make).map_err(js)?;
        let mut inner = Inner { cfg, gpu, aligner, config_json, tokenizer_json, history: Vec::new(), seed };
        inner.apply(&opts).map_err(js)?;
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

    pub fn set_options(&self, options: JsValue) -> std::result::Result<(), JsValue> {
        let o: Options = serde_wasm_bindgen::from_value(options).map_err(|e| JsValue::from_str(&format!("options: {e}")))?;
        self.inner.try_borrow_mut().map_err(|_| JsValue::from_str("the lab is busy"))?.apply(&o).map_err(js)
    }

    /// K answers from the current policy (or, with `sft`, from the frozen SFT model): string[].
    pub fn generate(&self, prompt: String, k: usize, seed: u32, sft: bool) -> Promise {
        with_inner(&self.inner, move |i| Box::pin(async move { i.generate(&prompt, k, seed as u64, sft).await }))
    }

    /// Adds a ranking {prompt, responses, ranks}; ranks[i] = 0 is best, equal ranks are ties.
    pub fn add_ranking(&self, ranking: JsValue) -> std::result::Result<usize, JsValue> {
        let r: Ranking = serde_wasm_bindgen::from_value(ranking).map_err(|e| JsValue::from_str(&format!("ranking: {e}")))?;
        let mut i = self.inner.try_borrow_mut().map_err(|_| JsValue::from_str("the lab is busy"))?;
        i.aligner.add_ranking(r).map_err(js)?;
        Ok(i.aligner.rankings.len() + i.aligner.heldout.len())
    }

    /// The autopilot: a scripted labeler ranks K fresh answers to a training prompt. Resolves to
    /// the ranking it added, or null when the labeler tied every answer.
    pub fn autopilot_ranking(&self, labeler: String) -> Promise {
        with_inner(&self.inner, move |i| {
            Box::pin(async move {
                i.aligner.labeler = Labeler::parse(&labeler)?;
                let (r0, h0) = (i.aligner.rankings.len(), i.aligner.heldout.len());
                i.aligner.collect_ranking().await?;
                let al = &i.aligner;
                Ok(if al.heldout.len() > h0 {
                    al.heldout.last().cloned()
                } else if al.rankings.len() > r0 {
                    al.rankings.last().cloned()
                } else {
                    None
                })
            })
        })
    }

    /// One training iteration on the rankings so far: reward model, rollouts, PPO-ptx. Resolves to its metrics.
    pub fn train_iteration(&self) -> Promise {
        with_inner(&self.inner, move |i| {
            Box::pin(async move {
                let cfg = i.cfg;
                let gpu = i.gpu.clone();
                let make = move |p: Vec<f32>, b: usize, t: usize| AnyEngine::new(cfg, gpu.as_ref(), p, b, t);
                let m: IterationMetrics = i.aligner.train_iteration(&make).await?;
                i.history.push(serde_json::to_value(&m).map_err(|e| Error(e.to_string()))?);
                Ok(m)
            })
        })
    }

    /// The labeler's preference for the current policy over SFT on held-out prompts (ties half).
    pub fn win_rate(&self, labeler: String, prompts: usize, samples: usize) -> Promise {
        with_inner(&self.inner, move |i| {
            Box::pin(async move {
                let l = Labeler::parse(&labeler)?;
                let ps: Vec<String> = i.aligner.eval_prompts.iter().take(prompts.max(1)).cloned().collect();
                let sc = i.sample_cfg();
                let seed = i.seed ^ 0xE7;
                let al = &mut i.aligner;
                win_rate(&mut al.policy, &mut al.reference, &al.tok, l, &ps, samples.max(1), &sc, seed).await
            })
        })
    }

    /// The rankings so far, as {prompt, responses, ranks}[].
    pub fn rankings(&self) -> std::result::Result<JsValue, JsValue> {
        let i = self.inner.borrow();
        let all: Vec<&Ranking> = i.aligner.rankings.iter().chain(&i.aligner.heldout).collect();
        to_js(&all)
    }

    /// The current policy as HF files: {config: string, weights: Uint8Array, tokenizer: string}.
    pub fn export_policy(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| JsValue::from_str("the lab is busy with another call"))?;
            let params = i.aligner.policy.params().await.map_err(js)?;
            let bytes = to_safetensors(&i.cfg, &params, &[]).map_err(js)?;
            let meta = serde_json::json!({ "rlhf_lab": { "aligned_in_browser": true, "rankings": i.aligner.rankings.len() + i.aligner.heldout.len() } });
            let config = serde_json::to_string_pretty(&hf_config(&i.cfg, i.aligner.tok.end, Some(meta))).map_err(|e| JsValue::from_str(&e.to_string()))?;
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"config".into(), &config.into())?;
            js_sys::Reflect::set(&out, &"weights".into(), &js_sys::Uint8Array::from(bytes.as_slice()).into())?;
            js_sys::Reflect::set(&out, &"tokenizer".into(), &i.tokenizer_json.clone().into())?;
            Ok(out.into())
        })
    }

    /// Everything training changed, as one safetensors file: policy, reward model and value model
    /// (trunks and heads, each with its AdamW moments), β and the step counters.
    pub fn save_state(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| JsValue::from_str("the lab is busy with another call"))?;
            let bytes = i.save_state().await.map_err(js)?;
            Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// Restores what `save_state` wrote; refuses a state from a different model.
    pub fn load_state(&self, bytes: Vec<u8>) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| JsValue::from_str("the lab is busy with another call"))?;
            i.load_state(&bytes).map_err(js)?;
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

    /// The base model's config.json, as loaded.
    pub fn base_config(&self) -> String {
        self.inner.borrow().config_json.clone()
    }
}
