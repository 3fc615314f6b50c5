//! The command line: pretrain the base model, sample from it, print logits, benchmark the engines.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use rlhf_lab::align::{win_rate, AlignConfig, Aligner};
use rlhf_lab::bail;
use rlhf_lab::corpus::prompt_split;
use rlhf_lab::labelers::Labeler;
use rlhf_lab::ppo::PpoConfig;
use rlhf_lab::bench;
use rlhf_lab::checkpoint::{hf_config, Checkpoint};
use rlhf_lab::config::{preset, ModelConfig};
use rlhf_lab::corpus::format_prompt;
use pollster::block_on;
use rlhf_lab::engine::{AnyEngine, Engine};
use rlhf_lab::error::{Error, Result};
use rlhf_lab::gpu::{Gpu, MatmulKind};
use rlhf_lab::params::ParamLayout;
use rlhf_lab::sample::{generate, SampleConfig};
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
  align --model DIR --labeler polite|concise|on_topic|cheerful [--iterations N]
        [--rankings-per-iteration M] [--k K] [--beta B] [--gamma G] [--lr LR] [--target-kl KL] [--kl-horizon N]
        [--rollouts R] [--max-tokens N] [--seed S] [--out DIR] [--json] [--engine cpu|gpu]
        [--eval-prompts N] [--eval-samples S]
      the InstructGPT loop: rank K samples, train the reward model, run PPO-ptx, repeat;
      then the labeler's win-rate of the aligned policy against SFT on held-out prompts
  eval --model DIR --reference DIR --labeler L [--prompts N] [--samples S] [--seed S] [--engine cpu|gpu]
      the labeler's win-rate of one checkpoint against another on held-out prompts
  bench [--presets tiny,demo] [--engines cpu,gpu]
      forward+backward tokens/s and matrix-product GFLOP/s, as a table";

/// Options that take no value.
const FLAGS: [&str; 1] = ["json"];

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
            if FLAGS.contains(&key) {
                map.insert(key.to_string(), "true".to_string());
                continue;
            }
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

    eprintln!("corpus: {} dialogues (seed {seed}); model: {cfg:?}, {} parameters, engine {engine_kind}", tc.corpus_dialogues, ParamLayout::new(&cfg).total);
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
        mean(&losses[..losses.len().min(20)]), tail(&losses), mean(&sft_losses[..sft_losses.len().min(20)]), tail(&sft_losses)
    );
    let meta = serde_json::json!({ "rlhf_lab": { "preset": p.name, "seed": seed, "pretrain_steps": steps, "sft_steps": sft_steps,
        "final_pretrain_loss": tail(&losses), "final_sft_loss": tail(&sft_losses) } });
    let ck = Checkpoint {
        cfg,
        params: base.params,
        extra: Vec::new(),
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
    let outs = block_on(generate(&mut engine, &prompt, k, tok.end, &sc, seed))?;
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
    let logits = block_on(engine.logits())?;
    let rows: Vec<&[f32]> = logits.chunks(ck.cfg.vocab_size).collect();
    let out = serde_json::json!({ "tokens": ids, "logits": rows });
    println!("{out}");
    Ok(())
}

fn align_cmd(a: &Args) -> Result<()> {
    let (ck, tok) = load(a)?;
    let labeler = Labeler::parse(a.req("labeler")?)?;
    let d = AlignConfig::default();
    let mut ppo = PpoConfig::default();
    ppo.beta = a.num("beta", ppo.beta)?;
    ppo.gamma = a.num("gamma", ppo.gamma)?;
    ppo.lr = a.num("lr", ppo.lr)?;
    ppo.value_lr = ppo.lr;
    ppo.temperature = a.num("temperature", ppo.temperature)?;
    ppo.epochs = a.num("ppo-epochs", ppo.epochs)?;
    ppo.kl_horizon = a.num("kl-horizon", ppo.kl_horizon)?;
    if let Some(kl) = a.str("target-kl") {
        ppo.target_kl = Some(kl.parse().map_err(|_| Error(format!("--target-kl: '{kl}' is not a number")))?);
    }
    let cfg = AlignConfig {
        iterations: a.num("iterations", d.iterations)?,
        rankings_per_iteration: a.num("rankings-per-iteration", d.rankings_per_iteration)?,
        k: a.num("k", d.k)?,
        rollouts: a.num("rollouts", d.rollouts)?,
        max_new_tokens: a.num("max-tokens", d.max_new_tokens)?,
        rm_epochs: a.num("rm-epochs", d.rm_epochs)?,
        rm_lr: a.num("rm-lr", d.rm_lr)?,
        seed: a.num("seed", d.seed)?,
        ppo,
        ..d
    };
    let json = a.str("json").is_some_and(|v| v != "false");
    let eval_n = a.num("eval-prompts", 24usize)?;
    let eval_samples = a.num("eval-samples", 4usize)?;
    let engines = Engines::new(a.str("engine").unwrap_or("cpu"), ck.cfg)?;
    let make = |p: Vec<f32>, b: usize, t: usize| engines.make(p, b, t);
    let t0 = rlhf_lab::gpu::context::now_ms();
    let mut al = Aligner::new(ck.params.clone(), ck.cfg, tok, labeler, cfg, &make)?;
    for _ in 0..cfg.iterations {
        let m = block_on(al.iterate(&make))?;
        if m.ppo.skipped_steps > 0 || m.rm_skipped_steps > 0 {
            eprintln!(
                "warning: iteration {}: skipped {} PPO step(s) and {} reward-model step(s) so far with a non-finite loss or gradient; the weights were left as they were",
                m.iteration, m.ppo.skipped_steps, m.rm_skipped_steps
            );
        }
        if json {
            println!("{}", serde_json::to_string(&m).map_err(|e| Error(e.to_string()))?);
        } else {
            eprintln!(
                "iter {:>3}  rankings {:>4}  rm acc {:.2} (held-out {:.2})  reward {:+.3}  kl {:.3}/{:.3}  ptx {:.3}  entropy {:.2}  clip {:.2}  {:.1}s",
                m.iteration, m.rankings, m.rm_accuracy, m.rm_heldout_accuracy, m.ppo.reward, m.ppo.kl_k1, m.ppo.kl_k3,
                m.ppo.ptx_loglik, m.ppo.entropy, m.ppo.clip_frac,
                m.seconds_labeling + m.seconds_reward_model + m.seconds_generation + m.seconds_scoring + m.seconds_update
            );
        }
    }
    let sc = SampleConfig { temperature: cfg.ppo.temperature, top_k: 0, top_p: 1.0, max_new_tokens: cfg.max_new_tokens };
    let prompts: Vec<String> = al.eval_prompts.iter().take(eval_n).cloned().collect();
    let win = block_on(win_rate(&mut al.policy, &mut al.reference, &al.tok, labeler, &prompts, eval_samples, &sc, cfg.seed ^ 0xE7))?;
    let held = block_on(al.evaluate_heldout())?.accuracy;
    let last_kl = al.last_kl;
    let ptx_batch = al.ptx_eval_batch();
    let ptx_sft = block_on(Aligner::ptx_loglik(&mut al.reference, &ptx_batch))?;
    let ptx_aligned = block_on(Aligner::ptx_loglik(&mut al.policy, &ptx_batch))?;
    let seconds = (rlhf_lab::gpu::context::now_ms() - t0) / 1e3;
    let summary = serde_json::json!({ "summary": {
        "labeler": labeler.name(), "win_rate_vs_sft": win, "rm_accuracy": held, "kl": last_kl,
        "ptx_loglik_sft": ptx_sft, "ptx_loglik_aligned": ptx_aligned, "seconds": seconds,
        "rankings": al.rankings.len() + al.heldout.len(), "iterations": cfg.iterations,
        "beta": al.beta, "gamma": cfg.ppo.gamma, "eval_prompts": prompts.len(), "eval_samples": eval_samples,
    }});
    if json {
        println!("{summary}");
    } else {
        eprintln!("{}", serde_json::to_string_pretty(&summary).map_err(|e| Error(e.to_string()))?);
    }
    if let Some(out) = a.str("out") {
        let out = PathBuf::from(out);
        let meta = serde_json::json!({ "rlhf_lab": { "aligned_from": a.req("model")?, "labeler": labeler.name(), "align": cfg } });
        Checkpoint { cfg: ck.cfg, params: block_on(al.policy.params())?, extra: Vec::new(), tokenizer_json: ck.tokenizer_json.clone(), config_json: hf_config(&ck.cfg, al.tok.end, Some(meta)) }
            .save(&out.join("policy"))?;
        let rm_meta = serde_json::json!({
            "architectures": ["GPT2ForSequenceClassification"], "num_labels": 1,
            "rlhf_lab": { "reward_bias": al.reward.head.bias, "normalization": "bias set so the SFT demonstrations score mean 0; reward = score(h_last) + reward_bias, read at the last token (<|end|>)" },
        });
        let head = ("score.weight".to_string(), vec![1, ck.cfg.n_embd], al.reward.head.w.clone());
        Checkpoint { cfg: ck.cfg, params: block_on(al.reward.engine.params())?, extra: vec![head], tokenizer_json: ck.tokenizer_json.clone(), config_json: hf_config(&ck.cfg, al.tok.end, Some(rm_meta)) }
            .save(&out.join("reward_model"))?;
        eprintln!("wrote {}/policy and {}/reward_model", out.display(), out.display());
    }
    Ok(())
}

fn eval_cmd(a: &Args) -> Result<()> {
    let (ck, tok) = load(a)?;
    let reference = Checkpoint::load(&PathBuf::from(a.req("reference")?))?;
    if reference.cfg != ck.cfg {
        bail!("the two checkpoints have different shapes: {:?} and {:?}", ck.cfg, reference.cfg);
    }
    let labeler = Labeler::parse(a.req("labeler")?)?;
    let n = a.num("prompts", 24usize)?;
    let samples = a.num("samples", 4usize)?;
    let engines = Engines::new(a.str("engine").unwrap_or("cpu"), ck.cfg)?;
    let mut ea = engines.make(ck.params, samples.min(16), ck.cfg.n_ctx)?;
    let mut eb = engines.make(reference.params, samples.min(16), ck.cfg.n_ctx)?;
    let prompts: Vec<String> = prompt_split().1.into_iter().take(n).collect();
    let sc = SampleConfig { temperature: a.num("temperature", 1.0f32)?, top_k: 0, top_p: 1.0, max_new_tokens: a.num("max-tokens", 48usize)? };
    let win = block_on(win_rate(&mut ea, &mut eb, &tok, labeler, &prompts, samples, &sc, a.num("seed", 7u64)?))?;
    println!("{}", serde_json::json!({ "labeler": labeler.name(), "win_rate": win, "prompts": prompts.len(), "samples": samples }));
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
        "align" => align_cmd(&a),
        "eval" => eval_cmd(&a),
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
