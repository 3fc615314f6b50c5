//! The page's shards: Web Workers (www/shard-worker.js), each with its own wasm instance, that hold
//! copies of the lab's CPU engines and run the rows of a batch they are given (see `shard.rs`).
//! `RemoteShard` is the engine worker's side of one copy; `ShardEngine` is the copy inside a shard
//! Worker. Messages to a Worker are handled in order and its replies come back in order, so a
//! request and its reply pair up without ids.

use js_sys::{Array, BigUint64Array, Float32Array, Float64Array, Int32Array, Object, Promise, Reflect, Uint32Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::checkpoint::parse_config;
use crate::config::SampleConfig;
use crate::cpu::gpt::CpuGpt;
use crate::engine::{Engine, TokenLosses};
use crate::error::{Error, ErrorKind, Result};
use crate::shard::Shard;

#[wasm_bindgen]
extern "C" {
    /// The pool of shard Workers (www/shards.js).
    #[derive(Clone)]
    pub type ShardPool;
    /// Posts `msg` to Worker `worker`, handing over the buffers in `transfer`.
    #[wasm_bindgen(method)]
    fn send(this: &ShardPool, worker: u32, msg: &JsValue, transfer: &Array);
    /// The next reply of Worker `worker`.
    #[wasm_bindgen(method)]
    fn receive(this: &ShardPool, worker: u32) -> Promise;
    /// Shard Workers in the pool (the engine's own Worker is one more shard).
    #[wasm_bindgen(method, getter)]
    pub fn size(this: &ShardPool) -> u32;
    /// A new engine id.
    #[wasm_bindgen(method, js_name = nextEngine)]
    fn next_engine(this: &ShardPool) -> u32;
    /// A Float32Array of `n` values to fill and transfer (one that came back when there is one).
    #[wasm_bindgen(method)]
    fn buffer(this: &ShardPool, n: u32) -> Float32Array;
    /// Hands Worker `worker` back a buffer it sent.
    #[wasm_bindgen(method)]
    fn recycle(this: &ShardPool, worker: u32, buffer: &Float32Array);
}

fn shard_error(e: JsValue) -> Error {
    let msg = Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()).or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}"));
    Error::new(ErrorKind::Internal, format!("a shard Worker failed: {msg}"))
}

/// A message: `op` on `engine`, with fields.
fn message(op: &str, engine: u32, fields: &[(&str, &JsValue)]) -> JsValue {
    let m = Object::new();
    let _ = Reflect::set(&m, &"op".into(), &op.into());
    let _ = Reflect::set(&m, &"engine".into(), &engine.into());
    for (k, v) in fields {
        let _ = Reflect::set(&m, &(*k).into(), v);
    }
    m.into()
}

/// One engine's copy in one shard Worker.
pub struct RemoteShard {
    pool: ShardPool,
    worker: u32,
    engine: u32,
}

impl RemoteShard {
    /// A copy of the model with `params` for up to (b, t) rows in Worker `worker`.
    pub fn new(pool: &ShardPool, worker: u32, params: &[f32], b: usize, t: usize) -> RemoteShard {
        let engine = pool.next_engine();
        let p = Float32Array::from(params);
        let msg = message("create", engine, &[("params", &p), ("b", &JsValue::from(b as u32)), ("t", &JsValue::from(t as u32))]);
        pool.send(worker, &msg, &Array::of1(&p.buffer()));
        RemoteShard { pool: pool.clone(), worker, engine }
    }

    fn post(&self, op: &str, fields: &[(&str, &JsValue)], transfer: &[&JsValue]) {
        let t = Array::new();
        for x in transfer {
            t.push(x);
        }
        self.pool.send(self.worker, &message(op, self.engine, fields), &t);
    }

    async fn reply(&self) -> Result<JsValue> {
        let v = JsFuture::from(self.pool.receive(self.worker)).await.map_err(shard_error)?;
        if let Ok(e) = Reflect::get(&v, &"error".into()) {
            if !e.is_undefined() {
                return Err(shard_error(e));
            }
        }
        Ok(v)
    }

    async fn floats(&self, key: &str) -> Result<Vec<f32>> {
        let v = self.reply().await?;
        Ok(Float32Array::from(Reflect::get(&v, &key.into()).map_err(shard_error)?).to_vec())
    }

    fn floats_field(x: Option<&[f32]>) -> JsValue {
        x.map_or(JsValue::UNDEFINED, |v| Float32Array::from(v).into())
    }
}

impl Drop for RemoteShard {
    fn drop(&mut self) {
        self.post("drop", &[], &[]);
    }
}

impl Shard for RemoteShard {
    fn forward(&mut self, tokens: &[u32], b: usize, t: usize, lens: &[usize]) -> Result<()> {
        let tk = Uint32Array::from(tokens);
        let ln = Uint32Array::from(&lens.iter().map(|&l| l as u32).collect::<Vec<u32>>()[..]);
        let (b, t) = (JsValue::from(b as u32), JsValue::from(t as u32));
        self.post("forward", &[("tokens", &tk), ("b", &b), ("t", &t), ("lens", &ln)], &[&tk.buffer(), &ln.buffer()]);
        Ok(())
    }
    fn request_token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<()> {
        let tg = Int32Array::from(targets);
        self.post("token_losses", &[("targets", &tg), ("temperature", &JsValue::from(temperature))], &[&tg.buffer()]);
        Ok(())
    }
    async fn token_losses(&mut self) -> Result<TokenLosses> {
        let v = self.reply().await?;
        let get = |k: &str| Reflect::get(&v, &k.into()).map(|x| Float32Array::from(x).to_vec()).map_err(shard_error);
        Ok(TokenLosses { losses: get("losses")?, entropy: get("entropy")? })
    }
    fn request_hidden(&mut self) -> Result<()> {
        self.post("hidden", &[], &[]);
        Ok(())
    }
    async fn hidden(&mut self) -> Result<Vec<f32>> {
        self.floats("data").await
    }
    fn request_logits(&mut self) -> Result<()> {
        self.post("logits", &[], &[]);
        Ok(())
    }
    async fn logits(&mut self) -> Result<Vec<f32>> {
        self.floats("data").await
    }
    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        let (w, d) = (Self::floats_field(weights), Self::floats_field(dhidden));
        self.post("backward", &[("weights", &w), ("dhidden", &d)], &[]);
        Ok(())
    }
    fn zero_grad(&mut self) -> Result<()> {
        self.post("zero_grad", &[], &[]);
        Ok(())
    }
    fn request_grads(&mut self) -> Result<()> {
        self.post("grads", &[], &[]);
        Ok(())
    }
    async fn grads(&mut self) -> Result<Vec<f32>> {
        let v = self.reply().await?;
        let g = Float32Array::from(Reflect::get(&v, &"data".into()).map_err(shard_error)?);
        let out = g.to_vec();
        self.pool.recycle(self.worker, &g);
        Ok(out)
    }
    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        let p = self.pool.buffer(params.len() as u32);
        p.copy_from(params);
        self.post("set_params", &[("params", &p)], &[&p.buffer()]);
        Ok(())
    }
    fn freeze(&mut self) {
        self.post("freeze", &[], &[]);
    }
    fn request_generate(&mut self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, cfg: &SampleConfig) -> Result<()> {
        let p = Uint32Array::from(&groups.iter().flat_map(|(p, _)| p.iter().copied()).collect::<Vec<_>>()[..]);
        let lens = Uint32Array::from(&groups.iter().map(|(p, _)| p.len() as u32).collect::<Vec<_>>()[..]);
        let seeds = BigUint64Array::from(&groups.iter().map(|&(_, s)| s).collect::<Vec<_>>()[..]);
        // every field named: a new one must be sent too (ShardEngine::generate reads them back)
        let SampleConfig { temperature, top_k, top_p, max_new_tokens } = *cfg;
        let sc = Float64Array::from(&[k as f64, stop as f64, temperature as f64, top_k as f64, top_p as f64, max_new_tokens as f64][..]);
        self.post("generate", &[("prompts", &p), ("prompt_lens", &lens), ("sample", &sc), ("seeds", &seeds)], &[&p.buffer()]);
        Ok(())
    }
    async fn generated(&mut self) -> Result<Vec<Vec<Vec<u32>>>> {
        let v = self.reply().await?;
        let k = Reflect::get(&v, &"k".into()).ok().and_then(|k| k.as_f64()).unwrap_or(1.0).max(1.0) as usize;
        let get = |k: &str| Reflect::get(&v, &k.into()).map(|x| Uint32Array::from(x).to_vec()).map_err(shard_error);
        let (lens, tokens) = (get("lens")?, get("tokens")?);
        let mut rest = &tokens[..];
        let answers: Vec<Vec<u32>> = lens
            .iter()
            .map(|&n| {
                let (answer, tail) = rest.split_at((n as usize).min(rest.len()));
                rest = tail;
                answer.to_vec()
            })
            .collect();
        Ok(answers.chunks(k).map(<[Vec<u32>]>::to_vec).collect())
    }
}

/// A copy of one of the lab's CPU engines inside a shard Worker: the rows it is given.
#[wasm_bindgen]
pub struct ShardEngine {
    engine: CpuGpt,
}

fn js(e: Error) -> JsValue {
    JsValue::from_str(&e.message)
}

fn floats(v: &[f32]) -> JsValue {
    Float32Array::from(v).into()
}

#[wasm_bindgen]
impl ShardEngine {
    /// A copy of the model of `config_json` (HF config.json) with `params`, for up to (b, t) rows;
    /// it computes gradients and takes no optimizer steps.
    pub fn create(config_json: &str, params: Vec<f32>, b: usize, t: usize) -> std::result::Result<ShardEngine, JsValue> {
        let cfg = parse_config(config_json).map_err(js)?;
        Ok(ShardEngine { engine: CpuGpt::new(cfg, params, b, t).map_err(js)?.without_moments() })
    }

    /// Row i of the (b, t) batch holds lens[i] tokens, then padding (`Engine::forward_rows`).
    pub fn forward(&mut self, tokens: Vec<u32>, b: usize, t: usize, lens: Vec<u32>) -> std::result::Result<(), JsValue> {
        let lens: Vec<usize> = lens.into_iter().map(|l| l as usize).collect();
        self.engine.forward_rows(&tokens, b, t, &lens).map_err(js)
    }

    /// {losses, entropy} as Float32Arrays.
    pub fn token_losses(&mut self, targets: Vec<i32>, temperature: f32) -> std::result::Result<JsValue, JsValue> {
        let tl = crate::engine::run_ready(self.engine.token_losses(&targets, temperature)).map_err(js)?;
        let out = Object::new();
        Reflect::set(&out, &"losses".into(), &floats(&tl.losses))?;
        Reflect::set(&out, &"entropy".into(), &floats(&tl.entropy))?;
        Ok(out.into())
    }

    pub fn hidden(&mut self) -> std::result::Result<JsValue, JsValue> {
        Ok(floats(&crate::engine::run_ready(self.engine.hidden()).map_err(js)?))
    }

    pub fn logits(&mut self) -> std::result::Result<JsValue, JsValue> {
        Ok(floats(&crate::engine::run_ready(self.engine.logits()).map_err(js)?))
    }

    pub fn backward(&mut self, weights: Option<Vec<f32>>, dhidden: Option<Vec<f32>>) -> std::result::Result<(), JsValue> {
        self.engine.backward(weights.as_deref(), dhidden.as_deref()).map_err(js)
    }

    pub fn zero_grad(&mut self) -> std::result::Result<(), JsValue> {
        self.engine.zero_grad().map_err(js)
    }

    pub fn n_params(&self) -> usize {
        self.engine.params.len()
    }

    /// Copies the gradients into `out` (a buffer of `n_params` values that crosses to the engine's
    /// Worker and comes back: see www/shards.js).
    pub fn grads_into(&self, out: &Float32Array) -> std::result::Result<(), JsValue> {
        if out.length() as usize != self.engine.grads.len() {
            return Err(js(Error::new(
                ErrorKind::Internal,
                format!("expected a buffer of {} gradients, got {}", self.engine.grads.len(), out.length()),
            )));
        }
        out.copy_from(&self.engine.grads);
        Ok(())
    }

    /// Copies `params` into the model, straight from the buffer the engine's Worker sent.
    pub fn set_params(&mut self, params: &Float32Array) -> std::result::Result<(), JsValue> {
        if params.length() as usize != self.engine.params.len() {
            return Err(js(Error::new(ErrorKind::Internal, format!("expected {} parameters, got {}", self.engine.params.len(), params.length()))));
        }
        params.copy_to(&mut self.engine.params);
        Ok(())
    }

    pub fn freeze(&mut self) {
        self.engine.freeze();
    }

    /// K continuations of each group's prompt (`prompts` one after another, `prompt_lens` long, each
    /// group with its seed; `sample`: k, stop, temperature, top_k, top_p, max_new_tokens), decoding
    /// in step, as {lens, tokens}: each answer's length and the answers one after another, group by
    /// group, as Uint32Arrays, and k.
    pub fn generate(&mut self, prompts: Vec<u32>, prompt_lens: Vec<u32>, sample: Vec<f64>, seeds: Vec<u64>) -> std::result::Result<JsValue, JsValue> {
        let [k, stop, temperature, top_k, top_p, max_new_tokens] = sample[..] else {
            return Err(js(Error::new(ErrorKind::Internal, "expected six sampling settings")));
        };
        let sc =
            SampleConfig { temperature: temperature as f32, top_k: top_k as usize, top_p: top_p as f32, max_new_tokens: max_new_tokens as usize };
        if prompt_lens.len() != seeds.len() || prompt_lens.iter().map(|&n| n as usize).sum::<usize>() != prompts.len() {
            return Err(js(Error::new(ErrorKind::Internal, "the prompts, their lengths and their seeds do not match")));
        }
        let mut rest = &prompts[..];
        let groups: Vec<(Vec<u32>, u64)> = prompt_lens
            .iter()
            .zip(&seeds)
            .map(|(&n, &seed)| {
                let (p, tail) = rest.split_at(n as usize);
                rest = tail;
                (p.to_vec(), seed)
            })
            .collect();
        let outs = self.engine.generate_cached_groups(&groups, k as usize, stop as u32, &sc).map_err(js)?.concat();
        let lens: Vec<u32> = outs.iter().map(|o| o.len() as u32).collect();
        let out = Object::new();
        Reflect::set(&out, &"lens".into(), &Uint32Array::from(&lens[..]))?;
        Reflect::set(&out, &"tokens".into(), &Uint32Array::from(&outs.concat()[..]))?;
        Reflect::set(&out, &"k".into(), &JsValue::from(k))?;
        Ok(out.into())
    }
}
