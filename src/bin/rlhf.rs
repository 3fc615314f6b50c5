//! The command line: pretrain the base model, sample from it, print logits, benchmark the engines.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use pollster::block_on;
use rlhf_lab::align::{win_rate, AlignConfig, Aligner, IterationMetrics};
use rlhf_lab::any_engine::AnyEngine;
use rlhf_lab::bail;
use rlhf_lab::bench;
use rlhf_lab::checkpoint::{hf_config, hf_reward_config, Checkpoint, OutDir};
use rlhf_lab::clock::now_ms;
use rlhf_lab::config::SampleConfig;
use rlhf_lab::config::{preset, ModelConfig};
use rlhf_lab::corpus::{format_prompt, prompt_split};
use rlhf_lab::engine::Engine;
use rlhf_lab::error::{Error, ErrorKind, Result};
use rlhf_lab::gpu::{Gpu, MatmulKind};
use rlhf_lab::labelers::Labeler;
use rlhf_lab::options::{Options, CLI_NAMES};
use rlhf_lab::params::ParamLayout;
use rlhf_lab::sample::generate;
use rlhf_lab::tokenizer::Tokenizer;
use rlhf_lab::train::{build_base_model, Phase};

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
  align --model DIR --labeler polite|concise|on_topic|cheerful [--rankings N] [--eval-every N]
        [--rankings-per-iteration M] [--k K] [--beta B] [--gamma G] [--lr LR] [--rm-lr LR]
        [--rm-epochs N] [--ppo-epochs N] [--target-kl KL] [--kl-horizon N] [--temperature T]
        [--rollouts R] [--max-tokens N] [--seed S] [--out DIR] [--json] [--engine cpu|gpu]
        [--eval-prompts N] [--eval-samples S]
      the InstructGPT loop until the labeler has given N rankings (default 16): sample rollouts,
      rank M groups of K, fit the reward model, run PPO-ptx; then the labeler's win-rate of the
      aligned policy against SFT on held-out prompts (every N rankings with --eval-every N)
  eval --model DIR --reference DIR --labeler L [--prompts N] [--samples S] [--seed S] [--engine cpu|gpu]
      the labeler's win-rate of one checkpoint against another on held-out prompts
  bench [--presets tiny,demo] [--engines cpu,gpu]
      forward+backward tokens/s and matrix-product GFLOP/s, as a table";

/// Options that take no value.
const FLAGS: [&str; 1] = ["json"];

/// `--key value` pairs after the command, each one the command knows.
struct Args {
    map: HashMap<String, String>,
}

impl Args {
    /// Parses `items` for a command that takes the options `allowed` (names without `--`).
    fn parse(cmd: &str, items: &[String], allowed: &[&str]) -> Result<Args> {
        let mut map = HashMap::new();
        let mut it = items.iter();
        while let Some(k) = it.next() {
            let Some(key) = k.strip_prefix("--") else { bail!("unexpected argument '{k}' (options start with --)\n\n{}", usage_of(cmd)) };
            if !allowed.contains(&key) {
                bail!("rlhf {cmd} has no option --{key}\n\n{}", usage_of(cmd));
            }
            if FLAGS.contains(&key) {
                map.insert(key.to_string(), "true".to_string());
                continue;
            }
            let Some(v) = it.next() else { bail!("option --{key} needs a value\n\n{}", usage_of(cmd)) };
            map.insert(key.to_string(), v.clone());
        }
        Ok(Args { map })
    }

    fn str(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(|s| s.as_str())
    }

    fn req(&self, k: &str) -> Result<&str> {
        self.str(k).ok_or_else(|| Error::from(format!("missing --{k}\n\n{USAGE}")))
    }

    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T> {
        match self.str(k) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| Error::from(format!("--{k}: '{s}' is not a valid number"))),
        }
    }

    /// A count that must be at least `min`.
    fn count(&self, k: &str, default: usize, min: usize) -> Result<usize> {
        let v = self.num(k, default)?;
        if v < min {
            bail!("--{k} must be at least {min}, got {v}");
        }
        Ok(v)
    }
}

/// The part of USAGE about one command.
fn usage_of(cmd: &str) -> String {
    let mut out = String::from("usage: rlhf ");
    let mut inside = false;
    for line in USAGE.lines() {
        let starts = line.starts_with("  ") && !line.starts_with("    ");
        if starts {
            inside = line.trim_start().starts_with(cmd);
        }
        if inside {
            out.push_str(line.trim_start_matches("  "));
            out.push('\n');
        }
    }
    out
}

/// Builds engines of one kind; GPU engines share one device.
struct Engines {
    cfg: ModelConfig,
    gpu: Option<Gpu>,
}

impl Engines {
    fn new(kind: &str, cfg: ModelConfig) -> Result<Engines> {
        let gpu = match kind {
            "cpu" => None,
            "gpu" => {
                let forced = std::env::var("RLHF_MATMUL").ok().and_then(|s| MatmulKind::parse(&s));
                let gpu = Gpu::new_blocking(forced)?;
                eprintln!("GPU: {} (matmul: {:?})", gpu.adapter_name(), gpu.kernels.matmul_kind);
                Some(gpu)
            }
            other => bail!("--engine must be cpu or gpu, not '{other}'"),
        };
        Ok(Engines { cfg, gpu })
    }

    fn make(&self, params: Vec<f32>, b: usize, t: usize) -> Result<AnyEngine> {
        AnyEngine::new(self.cfg, self.gpu.as_ref(), params, b, t)
    }
}

fn make_engine(kind: &str, cfg: ModelConfig, params: Vec<f32>, b: usize, t: usize) -> Result<AnyEngine> {
    Engines::new(kind, cfg)?.make(params, b, t)
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
    if pb.is_hidden() && (step + 1).is_multiple_of((total / 10).max(1)) {
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

    eprintln!(
        "corpus: {} dialogues (seed {seed}); model: {cfg:?}, {} parameters, engine {engine_kind}",
        tc.corpus_dialogues,
        ParamLayout::new(&cfg).total
    );
    let engines = Engines::new(engine_kind, cfg)?;
    let bars = [progress(steps, "pretrain"), progress(sft_steps, "sft")];
    let base = block_on(build_base_model(&p, seed, steps, sft_steps, &|p, b, t| engines.make(p, b, t), |phase, s| {
        let (pb, total) = match phase {
            Phase::Pretrain => (&bars[0], steps),
            Phase::Sft => (&bars[1], sft_steps),
        };
        tick(pb, s.step, total, format!("loss {:.3}{}", s.loss, if s.skipped { " (skipped: non-finite gradient)" } else { "" }));
    }))?;
    bars.iter().for_each(|b| b.finish());
    let (tok, losses, sft_losses) = (base.tokenizer, base.pretrain_losses, base.sft_losses);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
    let tail = |v: &[f32]| mean(&v[v.len().saturating_sub(20)..]);
    eprintln!(
        "pretrain loss {:.3} -> {:.3}; sft loss {:.3} -> {:.3}",
        mean(&losses[..losses.len().min(20)]),
        tail(&losses),
        mean(&sft_losses[..sft_losses.len().min(20)]),
        tail(&sft_losses)
    );
    let meta = serde_json::json!({ "rlhf_lab": { "preset": p.name, "seed": seed, "pretrain_steps": steps, "sft_steps": sft_steps,
        "final_pretrain_loss": tail(&losses), "final_sft_loss": tail(&sft_losses) } });
    let ck =
        Checkpoint { cfg, params: base.params, extra: Vec::new(), tokenizer_json: tok.to_json()?, config_json: hf_config(&cfg, tok.end, Some(meta)) };
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
    let k = a.count("samples", 4, 1)?;
    let sc = SampleConfig {
        temperature: a.num("temperature", 1.0f32)?,
        top_k: a.num("top-k", 0usize)?,
        top_p: a.num("top-p", 1.0f32)?,
        max_new_tokens: a.num("max-tokens", 64usize)?,
    };
    if !(0.0..=1.0).contains(&sc.top_p) || sc.top_p == 0.0 {
        bail!("--top-p must be in (0, 1]");
    }
    if !(sc.temperature >= 0.0 && sc.temperature.is_finite()) {
        bail!("--temperature must be a number of at least 0 (0 is greedy), got {}", sc.temperature);
    }
    if sc.max_new_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    let prompt = tok.encode(&format_prompt(a.req("prompt")?))?;
    if prompt.len() >= ck.cfg.n_ctx {
        bail!("the prompt is {} tokens; the model's context is {}", prompt.len(), ck.cfg.n_ctx);
    }
    let seed = a.num("seed", 0u64)?;
    let mut engine = make_engine(a.str("engine").unwrap_or("cpu"), ck.cfg, ck.params, k.min(16), ck.cfg.n_ctx)?;
    let outs = block_on(generate(&mut engine, &prompt, k, tok.end, &sc, seed))?;
    for (i, ids) in outs.iter().enumerate() {
        emit(format!("[{}] {}", i + 1, tok.decode(ids)?))?;
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
    let logits = block_on(engine.logits())?;
    let rows: Vec<&[f32]> = logits.chunks(ck.cfg.vocab_size).collect();
    let out = serde_json::json!({ "tokens": ids, "logits": rows });
    emit(&out)?;
    Ok(())
}

/// The learning-curve evaluation: win-rate against SFT on the held-out prompts.
struct Eval {
    prompts: Vec<String>,
    samples: usize,
    sc: SampleConfig,
    seed: u64,
    labeler: Labeler,
}

impl Eval {
    fn run(&self, al: &mut Aligner<AnyEngine>) -> Result<serde_json::Value> {
        let t0 = now_ms();
        let win = block_on(win_rate(&mut al.policy, &mut al.reference, &al.tok, self.labeler, &self.prompts, self.samples, &self.sc, self.seed))?;
        let ptx = block_on(al.ptx_loglik(false))?;
        Ok(serde_json::json!({ "rankings": al.rankings.len(), "iterations": al.iteration, "win_rate_vs_sft": win, "kl": al.last_kl,
            "ptx_loglik": ptx, "seconds": (now_ms() - t0) / 1e3 }))
    }
}

fn align_cmd(a: &Args) -> Result<()> {
    let (ck, tok) = load(a)?;
    let labeler = Labeler::parse(a.req("labeler")?)?;
    let mut cfg = AlignConfig::default();
    Options::from_cli(|k| a.str(k).map(String::from))?.apply(&mut cfg, &ck.cfg)?;
    let total = a.count("rankings", 16, 1)?;
    let eval_every = a.num("eval-every", 0usize)?;
    let json = a.str("json").is_some_and(|v| v != "false");
    let eval = Eval {
        prompts: prompt_split().1.into_iter().take(a.count("eval-prompts", 24, 1)?).collect(),
        samples: a.count("eval-samples", 4, 1)?,
        sc: SampleConfig { temperature: cfg.ppo.temperature, top_k: 0, top_p: 1.0, max_new_tokens: cfg.max_new_tokens },
        seed: cfg.seed ^ 0xE7,
        labeler,
    };
    let out = a.str("out").map(|o| OutDir::prepare(PathBuf::from(o))).transpose()?;
    let engines = Engines::new(a.str("engine").unwrap_or("cpu"), ck.cfg)?;
    let make = |p: Vec<f32>, b: usize, t: usize| engines.make(p, b, t);
    let mut al = Aligner::new(ck.params.clone(), ck.cfg, tok, cfg, &make)?;
    let (mut train_s, mut curve): (f64, Vec<serde_json::Value>) = (0.0, Vec::new());
    while al.rankings.len() < total {
        let (m, _) = block_on(al.iterate(Some(labeler), &make))?;
        train_s += m.seconds_labeling + m.seconds_reward_model + m.seconds_generation + m.seconds_scoring + m.seconds_update;
        report_iteration(&m, json)?;
        if eval_every > 0 && (m.rankings / eval_every) > ((m.rankings - cfg.rankings_per_iteration.min(m.rankings)) / eval_every) {
            let e = eval.run(&mut al)?;
            if json {
                emit(serde_json::json!({ "eval": e }))?
            } else {
                eprintln!("eval: {e}")
            }
            curve.push(e);
        }
    }
    let last = match curve.last() {
        Some(e) if e["rankings"] == al.rankings.len() => e.clone(),
        _ => eval.run(&mut al)?,
    };
    let ptx_sft = block_on(al.ptx_loglik(true))?;
    let summary = serde_json::json!({ "summary": {
        "labeler": labeler.name(), "win_rate_vs_sft": last["win_rate_vs_sft"], "kl": al.last_kl,
        "ptx_loglik_sft": ptx_sft, "ptx_loglik_aligned": last["ptx_loglik"], "seconds_training": train_s,
        "rankings": al.rankings.len(), "iterations": al.iteration, "beta": al.beta, "gamma": cfg.ppo.gamma,
        "eval_prompts": eval.prompts.len(), "eval_samples": eval.samples, "config": cfg,
    }});
    if json {
        emit(&summary)?
    } else {
        eprintln!("{}", serde_json::to_string_pretty(&summary).map_err(|e| Error::from(e.to_string()))?)
    }
    if let Some(out) = out {
        save_aligned(&out, &mut al, &ck, a.req("model")?, labeler)?;
    }
    Ok(())
}

fn report_iteration(m: &IterationMetrics, json: bool) -> Result<()> {
    if m.ppo.skipped_steps > 0 || m.rm_skipped_steps > 0 {
        eprintln!(
            "warning: iteration {}: skipped {} PPO step(s) and {} reward-model step(s) so far with a non-finite loss or gradient; the weights were left as they were",
            m.iteration, m.ppo.skipped_steps, m.rm_skipped_steps
        );
    }
    if json {
        emit(serde_json::to_string(m).map_err(|e| Error::from(e.to_string()))?)?;
    } else {
        eprintln!(
            "iter {:>3}  rankings {:>4}  rm acc {:.2} (new {:.2})  reward {:+.3}  kl {:.3}/{:.3}  ptx {:.3}  entropy {:.2}  clip {:.2}  cut {:.2}  {:.1}s",
            m.iteration, m.rankings, m.rm_accuracy, m.rm_new_accuracy, m.ppo.reward, m.ppo.kl_k1, m.ppo.kl_k3,
            m.ppo.ptx_loglik, m.ppo.entropy, m.ppo.clip_frac, m.ppo.truncated,
            m.seconds_labeling + m.seconds_reward_model + m.seconds_generation + m.seconds_scoring + m.seconds_update
        );
    }
    Ok(())
}

/// Writes DIR/policy (GPT2LMHeadModel) and DIR/reward_model (GPT2ForSequenceClassification).
fn save_aligned(out: &OutDir, al: &mut Aligner<AnyEngine>, ck: &Checkpoint, from: &str, labeler: Labeler) -> Result<()> {
    let meta = serde_json::json!({ "rlhf_lab": { "aligned_from": from, "labeler": labeler.name(), "align": al.cfg } });
    let policy = Checkpoint {
        cfg: ck.cfg,
        params: block_on(al.policy.params())?,
        extra: Vec::new(),
        tokenizer_json: ck.tokenizer_json.clone(),
        config_json: hf_config(&ck.cfg, al.tok.end, Some(meta)),
    };
    let head = ("score.weight".to_string(), vec![1, ck.cfg.n_embd], al.reward.head.w.clone());
    let rm_config = hf_reward_config(&ck.cfg, al.tok.end, al.tok.user, al.reward.head.bias);
    let rm = Checkpoint {
        cfg: ck.cfg,
        params: block_on(al.reward.engine.params())?,
        extra: vec![head],
        tokenizer_json: ck.tokenizer_json.clone(),
        config_json: rm_config,
    };
    out.write(&[("policy", &policy), ("reward_model", &rm)])?;
    eprintln!("wrote {}/policy and {}/reward_model", out.path.display(), out.path.display());
    Ok(())
}

fn eval_cmd(a: &Args) -> Result<()> {
    let (ck, tok) = load(a)?;
    let reference = Checkpoint::load(&PathBuf::from(a.req("reference")?))?;
    if reference.cfg != ck.cfg {
        bail!("the two checkpoints have different shapes: {:?} and {:?}", ck.cfg, reference.cfg);
    }
    let labeler = Labeler::parse(a.req("labeler")?)?;
    let n = a.count("prompts", 24, 1)?;
    let samples = a.count("samples", 4, 1)?;
    let engines = Engines::new(a.str("engine").unwrap_or("cpu"), ck.cfg)?;
    let mut ea = engines.make(ck.params, samples.min(16), ck.cfg.n_ctx)?;
    let mut eb = engines.make(reference.params, samples.min(16), ck.cfg.n_ctx)?;
    let prompts: Vec<String> = prompt_split().1.into_iter().take(n).collect();
    // answers drawn as the alignment loop draws them, unless told otherwise (and checked the same way)
    let mut cfg = AlignConfig::default();
    Options { temperature: Some(a.num("temperature", cfg.ppo.temperature)?), ..Default::default() }.apply(&mut cfg, &ck.cfg)?;
    let sc = SampleConfig { temperature: cfg.ppo.temperature, top_k: 0, top_p: 1.0, max_new_tokens: a.count("max-tokens", cfg.max_new_tokens, 1)? };
    let win = block_on(win_rate(&mut ea, &mut eb, &tok, labeler, &prompts, samples, &sc, a.num("seed", 7u64)?))?;
    emit(serde_json::json!({ "labeler": labeler.name(), "win_rate": win, "prompts": prompts.len(), "samples": samples }))?;
    Ok(())
}

fn bench_cmd(a: &Args) -> Result<()> {
    let presets: Vec<String> = a.str("presets").unwrap_or("tiny,demo").split(',').map(String::from).collect();
    let engines: Vec<String> = a.str("engines").unwrap_or("cpu,gpu").split(',').map(String::from).collect();
    emit(bench::header())?;
    for name in &presets {
        let p = preset(name)?;
        for e in &engines {
            for row in bench::run(&p, e)? {
                emit(&row)?;
            }
        }
    }
    if engines.iter().any(|e| e == "gpu") {
        emit(format!("\n{}", bench::counts_header()))?;
        for name in &presets {
            for row in bench::counts(&preset(name)?)? {
                emit(&row)?;
            }
        }
        emit("")?;
        for name in &presets {
            emit(bench::memory(&preset(name)?)?)?;
        }
    }
    Ok(())
}

/// Prints a line to stdout; a reader that went away (`rlhf logits ... | head`) is not an error.
fn emit(line: impl std::fmt::Display) -> Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::new(ErrorKind::Io, format!("writing to stdout: {e}"))),
        _ => Ok(()),
    }
}

/// Each command, the options it takes, and what runs it.
type Command = (&'static str, &'static [&'static str], fn(&Args) -> Result<()>);

const COMMANDS: [Command; 6] = [
    ("pretrain", &["preset", "out", "engine", "steps", "sft-steps", "seed"], pretrain),
    ("generate", &["model", "prompt", "samples", "temperature", "top-k", "top-p", "max-tokens", "seed", "engine"], generate_cmd),
    ("logits", &["model", "text", "engine"], logits_cmd),
    ("align", &[], align_cmd),
    ("eval", &["model", "reference", "labeler", "prompts", "samples", "seed", "engine", "temperature", "max-tokens"], eval_cmd),
    ("bench", &["presets", "engines"], bench_cmd),
];

/// align takes the shared options (CLI_NAMES) and its own.
const ALIGN_OWN: [&str; 9] = ["model", "labeler", "rankings", "eval-every", "out", "json", "engine", "eval-prompts", "eval-samples"];

fn run(argv: &[String]) -> Result<()> {
    let Some(cmd) = argv.first() else { bail!("{USAGE}") };
    if matches!(cmd.as_str(), "help" | "--help" | "-h") {
        emit(USAGE)?;
        return Ok(());
    }
    let Some((name, allowed, f)) = COMMANDS.iter().find(|c| c.0 == cmd) else { bail!("unknown command '{cmd}'\n\n{USAGE}") };
    let rest = &argv[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        emit(usage_of(name))?;
        return Ok(());
    }
    let allowed: Vec<&str> = if *name == "align" { CLI_NAMES.iter().chain(&ALIGN_OWN).copied().collect() } else { allowed.to_vec() };
    f(&Args::parse(name, rest, &allowed)?)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if argv.is_empty() { 2 } else { 1 })
        }
    }
}
