//! The browser's entry points (wasm-bindgen). The page issue grows this into the full lab;
//! for now: load a checkpoint, sample from it, and check the GPU kernels against the CPU reference.

use wasm_bindgen::prelude::*;

use crate::checkpoint::{from_safetensors, parse_config};
use crate::config::ModelConfig;
use crate::corpus::format_prompt;
use crate::cpu::gpt::CpuGpt;
use crate::engine::run_ready;
use crate::error::Error;
use crate::gpu::kernels::Mm;
use crate::gpu::{Gpu, MatmulKind};
use crate::rng::Rng;
use crate::sample::{generate, SampleConfig};
use crate::tokenizer::Tokenizer;

fn js(e: Error) -> JsValue {
    JsValue::from_str(&e.0)
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// A model loaded from `config.json`, `model.safetensors` and `tokenizer.json`, run on the CPU reference.
#[wasm_bindgen]
pub struct Model {
    cfg: ModelConfig,
    engine: CpuGpt,
    tok: Tokenizer,
}

#[wasm_bindgen]
impl Model {
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, safetensors: &[u8], tokenizer_json: &str) -> Result<Model, JsValue> {
        let cfg = parse_config(config_json).map_err(js)?;
        let (params, _) = from_safetensors(&cfg, safetensors).map_err(js)?;
        let tok = Tokenizer::from_json(tokenizer_json).map_err(js)?;
        let engine = CpuGpt::new(cfg, params, 4, cfg.n_ctx).map_err(js)?;
        Ok(Model { cfg, engine, tok })
    }

    #[wasm_bindgen(getter)]
    pub fn parameters(&self) -> usize {
        crate::params::ParamLayout::new(&self.cfg).total
    }

    /// K responses to a prompt, as plain strings.
    pub fn generate(&mut self, prompt: &str, k: usize, temperature: f32, seed: u32) -> Result<Vec<String>, JsValue> {
        let ids = self.tok.encode(&format_prompt(prompt)).map_err(js)?;
        if ids.len() >= self.cfg.n_ctx {
            return Err(JsValue::from_str("the prompt is longer than the model's context"));
        }
        let sc = SampleConfig { temperature, ..Default::default() };
        // the CPU reference never waits, so its future completes in one poll
        let outs = run_ready(generate(&mut self.engine, &ids, k.clamp(1, 9), self.tok.end, &sc, seed as u64)).map_err(js)?;
        outs.iter().map(|o| self.tok.decode(o).map_err(js)).collect()
    }
}

/// Opens the browser's WebGPU device, runs one matrix product with each kernel and compares it with
/// the CPU reference. Resolves to a short report; rejects with a readable message when there is no WebGPU.
#[wasm_bindgen]
pub async fn gpu_self_test() -> Result<String, JsValue> {
    let gpu = Gpu::new(None).await.map_err(js)?;
    let (m, k, n) = (37, 29, 41);
    let mut rng = Rng::new(1);
    let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
    let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
    let mut want = vec![0.0; m * n];
    crate::cpu::matmul::gemm_naive(m, k, n, &a, k, 1, &b, n, 1, 0.0, &mut want);
    let mut report = format!("chosen matmul kernel: {:?}", gpu.kernels.matmul_kind);
    for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
        let (ga, gb, gc) = (gpu.buffer_from("a", &a), gpu.buffer_from("b", &b), gpu.buffer("c", m * n));
        let mut enc = gpu.encoder();
        gpu.kernels.matmul_with(&gpu, &mut enc, kind, &Mm::plain(m, k, n), &ga, &gb, None, &gc);
        gpu.submit(enc);
        let got: Vec<f32> = gpu.read(&gc, 0, m * n).await.map_err(js)?;
        let err = got.iter().zip(&want).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        report += &format!("; {kind:?}: max error {err:.2e}");
        if err > 1e-3 {
            return Err(JsValue::from_str(&format!("GPU result differs from the CPU reference: {report}")));
        }
    }
    Ok(report)
}
