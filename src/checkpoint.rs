//! Checkpoints in the ecosystem's formats: `model.safetensors` with GPT-2 tensor names and layouts,
//! `config.json` (model_type gpt2) and `tokenizer.json`, so HF transformers' GPT2LMHeadModel loads them.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::json;

use crate::bail;
use crate::config::ModelConfig;
use crate::corpus::{END, USER};
use crate::error::{Error, ErrorKind, Result};
use crate::params::*;

/// A named tensor outside the GPT-2 set: (name, shape, values).
pub type Tensor = (String, Vec<usize>, Vec<f32>);

/// One GPT-2 tensor: its name, its shape, and where it comes from in our flat layout.
struct Entry {
    name: String,
    /// HF shape.
    shape: Vec<usize>,
    /// Offset and (rows, cols) in our layout; HF's Conv1D stores the transpose of our (OC, C) matrices.
    off: usize,
    ours: (usize, usize),
    transpose: bool,
}

fn entries(cfg: &ModelConfig) -> Vec<Entry> {
    let lay = ParamLayout::new(cfg);
    let c = cfg.n_embd;
    let mut v = vec![
        Entry {
            name: "transformer.wte.weight".into(),
            shape: vec![cfg.vocab_size, c],
            off: lay.offsets[WTE],
            ours: (cfg.vocab_size, c),
            transpose: false,
        },
        Entry { name: "transformer.wpe.weight".into(), shape: vec![cfg.n_ctx, c], off: lay.offsets[WPE], ours: (cfg.n_ctx, c), transpose: false },
    ];
    for l in 0..cfg.n_layer {
        let vec1 = |name: &str, kind: usize, n: usize| Entry {
            name: format!("transformer.h.{l}.{name}"),
            shape: vec![n],
            off: lay.layer_offset(kind, l),
            ours: (1, n),
            transpose: false,
        };
        // ours (OC, C) -> HF (C, OC)
        let mat = |name: &str, kind: usize, oc: usize, ic: usize| Entry {
            name: format!("transformer.h.{l}.{name}"),
            shape: vec![ic, oc],
            off: lay.layer_offset(kind, l),
            ours: (oc, ic),
            transpose: true,
        };
        v.push(vec1("ln_1.weight", LN1W, c));
        v.push(vec1("ln_1.bias", LN1B, c));
        v.push(mat("attn.c_attn.weight", QKVW, 3 * c, c));
        v.push(vec1("attn.c_attn.bias", QKVB, 3 * c));
        v.push(mat("attn.c_proj.weight", ATTPROJW, c, c));
        v.push(vec1("attn.c_proj.bias", ATTPROJB, c));
        v.push(vec1("ln_2.weight", LN2W, c));
        v.push(vec1("ln_2.bias", LN2B, c));
        v.push(mat("mlp.c_fc.weight", FCW, 4 * c, c));
        v.push(vec1("mlp.c_fc.bias", FCB, 4 * c));
        v.push(mat("mlp.c_proj.weight", FCPROJW, c, 4 * c));
        v.push(vec1("mlp.c_proj.bias", FCPROJB, c));
    }
    v.push(Entry { name: "transformer.ln_f.weight".into(), shape: vec![c], off: lay.offsets[LNFW], ours: (1, c), transpose: false });
    v.push(Entry { name: "transformer.ln_f.bias".into(), shape: vec![c], off: lay.offsets[LNFB], ours: (1, c), transpose: false });
    v
}

/// HF's config.json for a GPT-2 of this shape. `extra` adds keys (e.g. the reward model's normalization).
pub fn hf_config(cfg: &ModelConfig, end_token: u32, extra: Option<serde_json::Value>) -> serde_json::Value {
    let mut v = json!({
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.n_ctx,
        "n_ctx": cfg.n_ctx,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": null,
        "activation_function": "gelu_new",
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "bos_token_id": end_token,
        "eos_token_id": end_token,
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
    });
    if let (Some(obj), Some(serde_json::Value::Object(more))) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

/// The chat format the model was trained on, as a Jinja template HF tokenizers apply:
/// `<|user|>prompt<|assistant|>answer<|end|>`.
pub const CHAT_TEMPLATE: &str = "{% for m in messages %}{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}{% elif m['role'] == 'assistant' %}<|assistant|>{{ m['content'] }}<|end|>{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

/// HF's tokenizer_config.json: the fast tokenizer in tokenizer.json, the end token as end of
/// sequence, `<|user|>` (which only ever starts a sequence) as padding so a sequence-classification
/// head reads the end token, and the chat template, so TRL and `transformers` read our format unchanged.
pub fn tokenizer_config(cfg: &ModelConfig) -> serde_json::Value {
    json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": END,
        "eos_token": END,
        "pad_token": USER,
        "model_max_length": cfg.n_ctx,
        "padding_side": "right",
        "clean_up_tokenization_spaces": false,
        "chat_template": CHAT_TEMPLATE,
    })
}

/// HF's config.json for the reward model: `GPT2ForSequenceClassification` with one label; the
/// normalization's shift goes in `rlhf_lab.reward_bias` (HF's score layer has no bias).
pub fn hf_reward_config(cfg: &ModelConfig, end_token: u32, pad_token: u32, bias: f32) -> serde_json::Value {
    let meta = json!({
        "architectures": ["GPT2ForSequenceClassification"], "num_labels": 1, "pad_token_id": pad_token,
        "rlhf_lab": { "reward_bias": bias, "normalization": "the SFT demonstrations score mean 0 and standard deviation 1; reward = score(h at the end token) + reward_bias" },
    });
    hf_config(cfg, end_token, Some(meta))
}

/// Reads our model shape back from an HF GPT-2 config.
pub fn parse_config(text: &str) -> Result<ModelConfig> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::new(ErrorKind::BadInput, format!("config.json is not valid JSON: {e}")))?;
    if v.get("model_type").and_then(|m| m.as_str()) != Some("gpt2") {
        bail!("config.json: model_type must be \"gpt2\"");
    }
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_u64())
            .map(|x| x as usize)
            .ok_or_else(|| Error::new(ErrorKind::BadInput, format!("config.json: missing or non-integer \"{k}\"")))
    };
    let cfg = ModelConfig {
        vocab_size: field("vocab_size")?,
        n_ctx: field("n_positions")?,
        n_layer: field("n_layer")?,
        n_head: field("n_head")?,
        n_embd: field("n_embd")?,
    };
    cfg.validate().map_err(|e| Error::new(ErrorKind::BadInput, format!("config.json: {}", e.message)))?;
    Ok(cfg)
}

/// Serializes parameters as GPT-2 safetensors. Refuses non-finite weights: a NaN checkpoint is never written.
pub fn to_safetensors(cfg: &ModelConfig, params: &[f32], extra: &[Tensor]) -> Result<Vec<u8>> {
    if params.len() != ParamLayout::new(cfg).total {
        bail!("parameter count {} does not match the config", params.len());
    }
    if params.iter().chain(extra.iter().flat_map(|e| e.2.iter())).any(|x| !x.is_finite()) {
        bail!("refusing to save: the weights contain NaN or infinity");
    }
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for e in entries(cfg) {
        let (r, c) = e.ours;
        let src = &params[e.off..e.off + r * c];
        let vals: Vec<f32> = if e.transpose { (0..c).flat_map(|j| (0..r).map(move |i| src[i * c + j])).collect() } else { src.to_vec() };
        data.push((e.name, e.shape, bytemuck::cast_slice(&vals).to_vec()));
    }
    for (name, shape, vals) in extra {
        data.push((name.clone(), shape.clone(), bytemuck::cast_slice(vals).to_vec()));
    }
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::new(ErrorKind::BadInput, format!("building a tensor view: {e}")))?;
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::new(ErrorKind::BadInput, format!("serializing safetensors: {e}")))
}

/// Reads GPT-2 safetensors into our flat layout, checking every name, shape and dtype.
/// Returns the parameters and any F32 tensors outside the GPT-2 set (e.g. a reward head): name, shape, values.
pub fn from_safetensors(cfg: &ModelConfig, bytes: &[u8]) -> Result<(Vec<f32>, Vec<Tensor>)> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| Error::new(ErrorKind::BadInput, format!("model.safetensors is truncated or corrupted: {e}")))?;
    let lay = ParamLayout::new(cfg);
    let mut params = vec![0.0f32; lay.total];
    let expected = entries(cfg);
    for e in &expected {
        let t = st
            .tensor(&e.name)
            .map_err(|_| Error::new(ErrorKind::BadInput, format!("model.safetensors lacks tensor {} (does it match config.json?)", e.name)))?;
        if t.dtype() != Dtype::F32 {
            bail!("tensor {} has dtype {:?}; only F32 is supported", e.name, t.dtype());
        }
        if t.shape() != e.shape.as_slice() {
            bail!("tensor {} has shape {:?}, config.json implies {:?}", e.name, t.shape(), e.shape);
        }
        let vals = f32s(t.data());
        let (r, c) = e.ours;
        let dst = &mut params[e.off..e.off + r * c];
        if e.transpose {
            for i in 0..r {
                for j in 0..c {
                    dst[i * c + j] = vals[j * r + i];
                }
            }
        } else {
            dst.copy_from_slice(&vals);
        }
    }
    if let Some(bad) = params.iter().position(|x| !x.is_finite()) {
        bail!("model.safetensors holds a non-finite weight (at flat index {bad})");
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|e| e.name.as_str()).collect();
    let mut extra: Vec<Tensor> = Vec::new();
    for (name, t) in st.tensors() {
        if !known.contains(name.as_str()) && t.dtype() == Dtype::F32 {
            extra.push((name, t.shape().to_vec(), f32s(t.data())));
        }
    }
    extra.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((params, extra))
}

/// Little-endian f32s from bytes that may not be 4-aligned.
fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// A model on disk: config, weights and tokenizer.
pub struct Checkpoint {
    pub cfg: ModelConfig,
    pub params: Vec<f32>,
    pub extra: Vec<Tensor>,
    pub tokenizer_json: String,
    pub config_json: serde_json::Value,
}

#[cfg(not(target_arch = "wasm32"))]
impl Checkpoint {
    pub fn load(dir: &std::path::Path) -> Result<Checkpoint> {
        let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| Error::new(ErrorKind::Io, format!("cannot read {}: {e}", dir.join(f).display())));
        let config_text = String::from_utf8(read("config.json")?).map_err(|_| Error::new(ErrorKind::BadInput, "config.json is not UTF-8"))?;
        let cfg = parse_config(&config_text)?;
        let (params, extra) = from_safetensors(&cfg, &read("model.safetensors")?)?;
        let tokenizer_json =
            String::from_utf8(read("tokenizer.json")?).map_err(|_| Error::new(ErrorKind::BadInput, "tokenizer.json is not UTF-8"))?;
        let config_json = serde_json::from_str(&config_text).map_err(|e| Error::new(ErrorKind::BadInput, format!("config.json: {e}")))?;
        Ok(Checkpoint { cfg, params, extra, tokenizer_json, config_json })
    }

    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        let bytes = to_safetensors(&self.cfg, &self.params, &self.extra)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::new(ErrorKind::Io, format!("cannot create {}: {e}", dir.display())))?;
        let write = |f: &str, data: &[u8]| {
            std::fs::write(dir.join(f), data).map_err(|e| Error::new(ErrorKind::Io, format!("cannot write {}: {e}", dir.join(f).display())))
        };
        write("model.safetensors", &bytes)?;
        let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).map_err(|e| Error::new(ErrorKind::Io, e.to_string()));
        write("config.json", pretty(&self.config_json)?.as_bytes())?;
        write("tokenizer_config.json", pretty(&tokenizer_config(&self.cfg))?.as_bytes())?;
        write("tokenizer.json", self.tokenizer_json.as_bytes())
    }
}

/// An output folder, checked before a long run and written all at once: everything goes to a
/// temporary folder beside it, which then takes its place, so a failure never leaves half a result
/// and never loses the run to a path that could not be written.
#[cfg(not(target_arch = "wasm32"))]
pub struct OutDir {
    pub path: std::path::PathBuf,
}

#[cfg(not(target_arch = "wasm32"))]
impl OutDir {
    /// Checks that `path` can be made or replaced (it must not be a file), by making and removing
    /// the temporary folder the final write will use.
    pub fn prepare(path: std::path::PathBuf) -> Result<OutDir> {
        if path.exists() && !path.is_dir() {
            bail!(kind: ErrorKind::Io, "--out {} is a file, not a folder", path.display());
        }
        let out = OutDir { path };
        let tmp = out.temp()?;
        std::fs::remove_dir_all(&tmp).map_err(|e| io_error("remove", &tmp, e))?;
        Ok(out)
    }

    /// A fresh temporary folder beside the output.
    fn temp(&self) -> Result<std::path::PathBuf> {
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let parent = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io_error("remove", &tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| io_error("create", &tmp, e))?;
        Ok(tmp)
    }

    /// Writes each checkpoint into a subfolder of its name, then swaps the whole folder in.
    pub fn write(&self, items: &[(&str, &Checkpoint)]) -> Result<()> {
        let tmp = self.temp()?;
        for (name, ck) in items {
            ck.save(&tmp.join(name))?;
        }
        if self.path.exists() {
            let old = tmp.with_extension("old");
            std::fs::rename(&self.path, &old).map_err(|e| io_error("replace", &self.path, e))?;
            std::fs::rename(&tmp, &self.path).map_err(|e| io_error("write", &self.path, e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&tmp, &self.path).map_err(|e| io_error("write", &self.path, e))?;
        }
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("cannot {what} {}: {e}", path.display()))
}

/// One model's trainable state: weights and AdamW moments, laid out like the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelState {
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// A scalar head's state (reward or value): weights, bias, moments and step count.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadState {
    pub w: Vec<f32>,
    pub bias: f32,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub t: u32,
}

/// One reward model of the ensemble: trunk and head, with moments and step counts.
#[derive(Clone, Debug, PartialEq)]
pub struct RewardState {
    pub trunk: ModelState,
    pub head: HeadState,
    /// AdamW steps the trunk has taken.
    pub steps: u32,
}

/// Everything alignment changed, saved as one safetensors file with a JSON header: the policy, the
/// reward models and the value model (trunks and heads, with moments), β, the counters and the
/// page's history. Loaded all or nothing: a file of another version or model, with a missing or
/// misshapen tensor, or with one non-finite weight is refused whole.
#[derive(Clone, Debug, PartialEq)]
pub struct LabState {
    pub model: ModelConfig,
    /// The method that trained the policy (its name in `methods::METHODS`).
    pub method: String,
    pub policy: ModelState,
    pub policy_steps: u32,
    pub value: Option<(ModelState, HeadState)>,
    pub rewards: Vec<RewardState>,
    /// How many rankings the iterations have taken (the first ones stored).
    pub rankings_taken: usize,
    pub beta: f32,
    pub iteration: usize,
    /// The reward model's agreement with the newest rankings, (accuracy, untied pairs) per
    /// measure, oldest first (`reward::Agreement`; a state saved before it kept none reads empty).
    pub rm_agreement: Vec<(f32, usize)>,
    /// The person's verdicts since the policy last started from SFT, (wins, pairs) per ranking,
    /// and whether it has (`AlignConfig::restart_below`; a state saved before kept none, false).
    pub verdicts: Vec<(f32, usize)>,
    pub restarted: bool,
    /// The rankings (indices among those taken) whose first answer the reward model doubted before
    /// learning them (`PpoConfig::favourite_within`; a state saved before kept none: reads empty).
    pub doubted: Vec<usize>,
    /// The page's per-iteration records (metrics, watched answers), one JSON object's text each,
    /// kept as given: a save copies them once instead of building a tree of every value.
    pub history: Vec<String>,
}

/// An engine's weights and AdamW moments, as a saved lab keeps them.
pub async fn model_state<E: crate::engine::Engine>(e: &mut E) -> Result<ModelState> {
    let (m, v) = e.optimizer_state().await?;
    Ok(ModelState { params: e.params().await?, m, v })
}

/// Bumped whenever the layout of a saved state changes; older states are refused, not misread.
pub const LAB_STATE_VERSION: u32 = 3;
const LAB_STATE_KEY: &str = "rlhf_lab_state";

fn bad_state(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadState, msg)
}

/// The state's metadata object with `"history": [..]` appended from the records' texts as they are
/// (each is one JSON object, written by `serde_json`).
fn with_history(meta: serde_json::Value, history: &[String]) -> String {
    let mut text = meta.to_string();
    text.pop(); // the object's closing brace
    text.reserve(history.iter().map(|h| h.len() + 1).sum::<usize>() + 16);
    text.push_str(",\"history\":[");
    for (i, h) in history.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(h);
    }
    text.push_str("]}");
    text
}

/// The saved history: a list of objects, each kept as its JSON text.
fn history(v: &serde_json::Value) -> Result<Vec<String>> {
    let list = v.as_array().ok_or_else(|| bad_state("the saved state's history is not a list"))?;
    list.iter()
        .map(|h| if h.is_object() { Ok(h.to_string()) } else { Err(bad_state("the saved state's history holds something other than records")) })
        .collect()
}

/// A saved list of (value, count) pairs, each value in 0..=`top(count)` (a state saved before the
/// list existed reads empty); `what` names the list in the error.
fn counted(v: &serde_json::Value, what: &str, top: impl Fn(u64) -> f64) -> Result<Vec<(f32, usize)>> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    let bad = || bad_state(format!("the saved state's {what}"));
    let list = v.as_array().ok_or_else(bad)?;
    list.iter()
        .map(|m| {
            let n = m.get(1).and_then(|n| n.as_u64()).ok_or_else(bad)?;
            let x = m.get(0).and_then(|x| x.as_f64()).filter(|x| (0.0..=top(n)).contains(x)).ok_or_else(bad)?;
            Ok((x as f32, n as usize))
        })
        .collect()
}

/// The reward model's agreement: (share, pairs) per measure.
fn agreement(v: &serde_json::Value) -> Result<Vec<(f32, usize)>> {
    counted(v, "reward-model agreement is not a list of (share, pairs)", |_| 1.0)
}

/// The person's verdicts: (wins, pairs) per ranking.
fn verdicts(v: &serde_json::Value) -> Result<Vec<(f32, usize)>> {
    counted(v, "verdicts are not a list of (wins, pairs)", |n| n as f64)
}

/// The rankings whose first answer the reward model doubted: indices (a state saved before the
/// list existed reads empty).
fn doubted(v: &serde_json::Value) -> Result<Vec<usize>> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    let bad = || bad_state("the saved state's doubted rankings are not a list of indices");
    v.as_array().ok_or_else(bad)?.iter().map(|i| i.as_u64().map(|i| i as usize).ok_or_else(bad)).collect()
}

impl LabState {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        fn model<'a>(name: &str, s: &'a ModelState) -> [(String, &'a [f32]); 3] {
            [(name.to_string(), &s.params), (format!("{name}.adam_m"), &s.m), (format!("{name}.adam_v"), &s.v)]
        }
        fn head<'a>(name: &str, h: &'a HeadState) -> [(String, &'a [f32]); 3] {
            [(name.to_string(), &h.w), (format!("{name}.adam_m"), &h.m), (format!("{name}.adam_v"), &h.v)]
        }
        let mut tensors: Vec<(String, &[f32])> = Vec::new();
        tensors.extend(model("policy", &self.policy));
        let names: Vec<(String, String)> = (0..self.rewards.len()).map(|i| (format!("reward.{i}"), format!("reward_head.{i}"))).collect();
        for (r, (trunk, hd)) in self.rewards.iter().zip(&names) {
            tensors.extend(model(trunk, &r.trunk));
            tensors.extend(head(hd, &r.head));
        }
        if let Some((v, h)) = &self.value {
            tensors.extend(model("value", v));
            tensors.extend(head("value_head", h));
        }
        if let Some((name, _)) = tensors.iter().find(|(_, v)| v.iter().any(|x| !x.is_finite())) {
            return Err(bad_state(format!("refusing to save a state whose {name} holds NaN or infinity")));
        }
        let meta = json!({
            "version": LAB_STATE_VERSION, "model": self.model, "method": self.method, "policy_steps": self.policy_steps,
            "rewards": self.rewards.iter().map(|r| json!({ "bias": r.head.bias, "head_steps": r.head.t, "steps": r.steps })).collect::<Vec<_>>(),
            "rankings_taken": self.rankings_taken,
            "value": self.value.as_ref().map(|(_, h)| json!({ "bias": h.bias, "head_steps": h.t })),
            "beta": self.beta, "iteration": self.iteration, "rm_agreement": self.rm_agreement,
            "verdicts": self.verdicts, "restarted": self.restarted, "doubted": self.doubted,
        });
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, v)| TensorView::new(Dtype::F32, vec![v.len()], bytemuck::cast_slice(v)).map(|t| (n.clone(), t)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad_state(format!("building the state: {e}")))?;
        let meta: HashMap<String, String> = [(LAB_STATE_KEY.to_string(), with_history(meta, &self.history))].into();
        safetensors::serialize(views, Some(meta)).map_err(|e| bad_state(format!("serializing the state: {e}")))
    }

    /// Reads a state saved for `model`, checking everything before returning any of it.
    pub fn from_bytes(bytes: &[u8], model: &ModelConfig) -> Result<LabState> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad_state(format!("the saved state is corrupted: {e}")))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad_state(format!("the saved state is corrupted: {e}")))?;
        let text = header.metadata().as_ref().and_then(|m| m.get(LAB_STATE_KEY)).ok_or_else(|| bad_state("this file is not a saved lab state"))?;
        let meta: serde_json::Value = serde_json::from_str(text).map_err(|e| bad_state(format!("the saved state's header: {e}")))?;
        let version = meta["version"].as_u64().unwrap_or(1);
        if version != LAB_STATE_VERSION as u64 {
            return Err(bad_state(format!("the saved state has version {version}; this lab reads version {LAB_STATE_VERSION}")));
        }
        let saved: ModelConfig = serde_json::from_value(meta["model"].clone()).map_err(|e| bad_state(format!("the saved state's model: {e}")))?;
        if &saved != model {
            return Err(bad_state(format!("the saved state is for {saved:?}, not this model {model:?}")));
        }
        let (n, c) = (ParamLayout::new(model).total, model.n_embd);
        let get = |name: &str, len: usize| -> Result<Vec<f32>> {
            let t = st.tensor(name).map_err(|_| bad_state(format!("the saved state lacks {name}")))?;
            if t.dtype() != Dtype::F32 || t.data().len() != len * 4 {
                return Err(bad_state(format!("the saved {name} has the wrong size or type")));
            }
            let v = f32s(t.data());
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad_state(format!("the saved {name} holds NaN or infinity")));
            }
            Ok(v)
        };
        let model_state = |name: &str| -> Result<ModelState> {
            Ok(ModelState { params: get(name, n)?, m: get(&format!("{name}.adam_m"), n)?, v: get(&format!("{name}.adam_v"), n)? })
        };
        let number = |v: &serde_json::Value, what: &str| {
            v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| bad_state(format!("the saved state's {what} is missing or not a number")))
        };
        let count =
            |v: &serde_json::Value, what: &str| v.as_u64().ok_or_else(|| bad_state(format!("the saved state's {what} is missing or not a count")));
        let head = |name: &str, bias: &serde_json::Value, t: &serde_json::Value| -> Result<HeadState> {
            Ok(HeadState {
                w: get(name, c)?,
                bias: number(bias, &format!("{name} bias"))? as f32,
                m: get(&format!("{name}.adam_m"), c)?,
                v: get(&format!("{name}.adam_v"), c)?,
                t: count(t, &format!("{name} step count"))? as u32,
            })
        };
        let value = match &meta["value"] {
            serde_json::Value::Null => None,
            v => Some((model_state("value")?, head("value_head", &v["bias"], &v["head_steps"])?)),
        };
        let members = meta["rewards"].as_array().filter(|a| !a.is_empty()).ok_or_else(|| bad_state("the saved state lists no reward model"))?;
        let rewards = members
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(RewardState {
                    trunk: model_state(&format!("reward.{i}"))?,
                    head: head(&format!("reward_head.{i}"), &r["bias"], &r["head_steps"])?,
                    steps: count(&r["steps"], "reward step count")? as u32,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LabState {
            model: saved,
            method: meta["method"].as_str().ok_or_else(|| bad_state("the saved state does not name its method"))?.to_string(),
            policy: model_state("policy")?,
            policy_steps: count(&meta["policy_steps"], "policy step count")? as u32,
            rewards,
            rankings_taken: count(&meta["rankings_taken"], "ranking count")? as usize,
            value,
            beta: number(&meta["beta"], "β")? as f32,
            iteration: count(&meta["iteration"], "iteration")? as usize,
            rm_agreement: agreement(&meta["rm_agreement"])?,
            verdicts: verdicts(&meta["verdicts"])?,
            restarted: meta["restarted"].as_bool().unwrap_or(false),
            doubted: doubted(&meta["doubted"])?,
            history: history(&meta["history"])?,
        })
    }
}
