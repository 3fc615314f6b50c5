//! The command line: pretrain the base model, sample from it, print logits, benchmark the engines.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use rlhf_lab::bail;
use rlhf_lab::bench;
use rlhf_lab::checkpoint::{hf_config, Checkpoint};
use rlhf_lab::config::{preset, ModelConfig};
use rlhf_lab::corpus::{format_prompt, Corpus};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::Engine;
use rlhf_lab::error::{Error, Result};
use rlhf_lab::gpu::gpt::GpuGpt;
use rlhf_lab::gpu::{Gpu, MatmulKind};
use rlhf_lab::params::ParamLayout;
use rlhf_lab::sample::{generate, SampleConfig};
use rlhf_lab::tokenizer::Tokenizer;
use rlhf_lab::train::{lm_batch, pretrain_stream, sft_batch, train_loop};

const USAGE: &str = "usage: rlhf <command> [options]

commands:
  pretrain --preset tiny|demo --out DIR [--engine cpu|gpu] [--steps N] [--sft-steps N] [--seed S]
      generate the corpus, train the tokenizer, pretrain and SFT; writes tokenizer.json,
      model.safetensors and config.json to DIR
  generate --model DIR --prompt TEXT [--samples K] [--temperature T] [--top-k N] [--top-p P]
           [--max-tokens N] [--seed S] [--engine cpu|gpu]
      print K responses to a prompt
  logits --model DIR --text TEXT [--engine cpu|gpu]
      print {\"tokens\": [...], \"logits\": [[...], ...]} as JSON
  bench [--presets tiny,demo] [--engines cpu,gpu]
      forward+backward tokens/s and matrix-product GFLOP/s, as a table";

/// `--key value` pairs after the command.
struct Args {
    map: HashMap<String, String>,
}

impl Args {
    fn parse(items: &[String]) -> Result<Args> {
        let mut map = HashMap::new();
        let mut it = items.iter();
        while let Some(k) = it.next() {
            let Some(key) = k.strip_prefix("--") else { bail!("unexpected argument '{k}'\n\n{USAGE}") };
            let Some(v) = it.next() else { bail!("option --{key} needs a value") };
            map.insert(key.to_string(), v.clone());
        }
        Ok(Args { map })
    }

    fn str(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(|s| s.as_str())
    }

    fn req(&self, k: &str) -> Result<&str> {
        self.str(k).ok_or_else(|| Error(format!("missing --{k}\n\n{USAGE}")))
    }

    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T> {
        match self.str(k) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| Error(format!("--{k}: '{s}' is not a valid number"))),
        }
    }
}

fn make_engine(kind: &str, cfg: ModelConfig, params: Vec<f32>, b: usize, t: usize) -> Result<Box<dyn Engine>> {
    match kind {
        "cpu" => Ok(Box::new(CpuGpt::new(cfg, params, b, t)?)),
        "gpu" => {
            let forced = std::env::var("RLHF_MATMUL").ok().and_then(|s| MatmulKind::parse(&s));
            let gpu = Gpu::new_blocking(forced)?;
            eprintln!("GPU: {} (matmul: {:?})", gpu.adapter_name(), gpu.kernels.matmul_kind);
            Ok(Box::new(GpuGpt::new(gpu, cfg, &params, b, t)?))
        }
        other => bail!("--engine must be cpu or gpu, not '{other}'"),
    }
}

fn progress(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:32}] {pos}/{len} {msg} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Moves the bar; where stderr is not a terminal (CI logs) the bar is hidden, so print a line every tenth.
fn tick(pb: &ProgressBar, step: usize, total: usize, msg: String) {
    pb.set_position(step as u64 + 1);
    if pb.is_hidden() && (step + 1) % (total / 10).max(1) == 0 {
        eprintln!("{} {}/{total} {msg}", pb.prefix(), step + 1);
    }
    pb.set_message(msg);
}

fn pretrain(a: &Args) -> Result<()> {
    let p = preset(a.str("preset").unwrap_or("demo"))?;
    let out = PathBuf::from(a.req("out")?);
    let seed = a.num("seed", p.train.seed)?;
    let steps = a.num("steps", p.train.pretrain_steps)?;
    let sft_steps = a.num("sft-steps", p.train.sft_steps)?;
    let engine_kind = a.str("engine").unwrap_or("cpu");
    let (cfg, tc) = (p.model, p.train);

    eprintln!("corpus: {} dialogues (seed {seed})", tc.corpus_dialogues);
    let corpus = Corpus::generate(tc.corpus_dialogues, seed);
    let tok = Tokenizer::train(&corpus.all_text(), cfg.vocab_size)?;
    if tok.vocab_size() > cfg.vocab_size {
        bail!("the tokenizer has {} tokens but the model only {}", tok.vocab_size(), cfg.vocab_size);
    }
    let stream = pretrain_stream(&corpus, &tok, seed)?;
    eprintln!("tokenizer: {} tokens; pretraining stream: {} tokens", tok.vocab_size(), stream.len());
    let layout = ParamLayout::new(&cfg);
    eprintln!("model: {cfg:?}, {} parameters, engine {engine_kind}", layout.total);

    let mut engine = make_engine(engine_kind, cfg, layout.init(seed), tc.batch_size, tc.seq_len)?;
    let pb = progress(steps, "pretrain");
    let losses = train_loop(engine.as_mut(), &tc, steps, tc.learning_rate, |rng| Ok(lm_batch(&stream, tc.batch_size, tc.seq_len, rng)), seed + 1, |s| {
        tick(&pb, s.step, steps, format!("loss {:.3}{}", s.loss, if s.skipped { " (skipped: non-finite gradient)" } else { "" }));
    })?;
    pb.finish();
    let params = engine.params()?;

    // SFT starts a fresh optimizer on the pretrained weights.
    let mut engine = make_engine(engine_kind, cfg, params, tc.batch_size, tc.seq_len)?;
    let pb = progress(sft_steps, "sft");
    let sft_losses = train_loop(engine.as_mut(), &tc, sft_steps, tc.sft_learning_rate, |rng| sft_batch(&tok, &corpus.demonstrations, tc.batch_size, tc.seq_len, rng), seed + 2, |s| {
        tick(&pb, s.step, sft_steps, format!("loss {:.3}", s.loss));
    })?;
    pb.finish();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
    let tail = |v: &[f32]| mean(&v[v.len().saturating_sub(20)..]);
    eprintln!(
        "pretrain loss {:.3} -> {:.3}; sft loss {:.3} -> {:.3}",
        mean(&losses[..losses.len().min(20)]), tail(&losses), mean(&sft_losses[..sft_losses.len().min(20)]), tail(&sft_losses)
    );
    let meta = serde_json::json!({ "rlhf_lab": { "preset": p.name, "seed": seed, "pretrain_steps": steps, "sft_steps": sft_steps,
        "final_pretrain_loss": tail(&losses), "final_sft_loss": tail(&sft_losses) } });
    let ck = Checkpoint {
        cfg,
        params: engine.params()?,
        extra: Default::default(),
        tokenizer_json: tok.to_json()?,
        config_json: hf_config(&cfg, tok.end, Some(meta)),
    };
    ck.save(&out)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn load(a: &Args) -> Result<(Checkpoint, Tokenizer)> {
    let ck = Checkpoint::load(&PathBuf::from(a.req("model")?))?;
    let tok = Tokenizer::from_json(&ck.tokenizer_json)?;
    if tok.vocab_size() > ck.cfg.vocab_size {
        bail!("tokenizer.json has {} tokens but the model only {}", tok.vocab_size(), ck.cfg.vocab_size);
    }
    Ok((ck, tok))
}

fn generate_cmd(a: &Args) -> Result<()> {
    let (ck, tok) = load(a)?;
    let k = a.num("samples", 4usize)?;
    if k == 0 {
        bail!("--samples must be at least 1");
    }
    let sc = SampleConfig {
        temperature: a.num("temperature", 1.0f32)?,
        top_k: a.num("top-k", 0usize)?,
        top_p: a.num("top-p", 1.0f32)?,
        max_new_tokens: a.num("max-tokens", 64usize)?,
    };
    if !(0.0..=1.0).contains(&sc.top_p) || sc.top_p == 0.0 {
        bail!("--top-p must be in (0, 1]");
    }
    if sc.temperature < 0.0 {
        bail!("--temperature must not be negative");
    }
    let prompt = tok.encode(&format_prompt(a.req("prompt")?))?;
    if prompt.len() >= ck.cfg.n_ctx {
        bail!("the prompt is {} tokens; the model's context is {}", prompt.len(), ck.cfg.n_ctx);
    }
    let seed = a.num("seed", 0u64)?;
    let mut engine = make_engine(a.str("engine").unwrap_or("cpu"), ck.cfg, ck.params, k.min(16), ck.cfg.n_ctx)?;
    let outs = generate(engine.as_mut(), &prompt, k, tok.end, &sc, seed)?;
    for (i, ids) in outs.iter().enumerate() {
        println!("[{}] {}", i + 1, tok.decode(ids)?);
    }
    Ok(())
}

fn logits_cmd(a: &Args) -> Result<()> {
    let (ck, tok) = load(a)?;
    let ids = tok.encode(a.req("text")?)?;
    if ids.is_empty() || ids.len() > ck.cfg.n_ctx {
        bail!("the text is {} tokens; it must be 1 to {}", ids.len(), ck.cfg.n_ctx);
    }
    let mut engine = make_engine(a.str("engine").unwrap_or("cpu"), ck.cfg, ck.params, 1, ids.len())?;
    engine.forward(&ids, 1, ids.len())?;
    let logits = engine.logits()?;
    let rows: Vec<&[f32]> = logits.chunks(ck.cfg.vocab_size).collect();
    let out = serde_json::json!({ "tokens": ids, "logits": rows });
    println!("{out}");
    Ok(())
}

fn bench_cmd(a: &Args) -> Result<()> {
    let presets: Vec<String> = a.str("presets").unwrap_or("tiny,demo").split(',').map(String::from).collect();
    let engines: Vec<String> = a.str("engines").unwrap_or("cpu,gpu").split(',').map(String::from).collect();
    println!("{}", bench::header());
    for name in &presets {
        let p = preset(name)?;
        for e in &engines {
            for row in bench::run(&p, e)? {
                println!("{row}");
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = Args::parse(&argv[1..]).and_then(|a| match cmd.as_str() {
        "pretrain" => pretrain(&a),
        "generate" => generate_cmd(&a),
        "logits" => logits_cmd(&a),
        "bench" => bench_cmd(&a),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(Error(format!("unknown command '{other}'\n\n{USAGE}"))),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
