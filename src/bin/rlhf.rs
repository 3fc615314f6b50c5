//! The command line: pretrain the base model, sample from it, print logits, align it with a
//! scripted labeler (one method, or the methods side by side on the same rankings), evaluate,
//! benchmark the engines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use pollster::block_on;
use rlhf_lab::any_engine::AnyEngine;
use rlhf_lab::bail;
use rlhf_lab::bench;
use rlhf_lab::checkpoint::{hf_config, Checkpoint, OutDir};
use rlhf_lab::config::{preset, ModelConfig, SampleConfig};
use rlhf_lab::corpus::prompt_split;
use rlhf_lab::engine::Engine;
use rlhf_lab::error::{Error, ErrorKind, Result};
use rlhf_lab::gpu::{Gpu, MatmulKind};
use rlhf_lab::lab::{answers_to, best_of_n, AlignConfig, Cadence, CurvePoint, IterationMetrics, Lab, Offer, Prose, WinRateProtocol};
use rlhf_lab::labelers::Labeler;
use rlhf_lab::methods::MethodKind;
use rlhf_lab::options::{OptionValue, Options};
use rlhf_lab::params::ParamLayout;
use rlhf_lab::reward::{dialogue_ids, Ranking, RewardModel};
use rlhf_lab::sample::generate;
use rlhf_lab::settings::{SALT_EVAL, SALT_LABELER};
use rlhf_lab::tokenizer::Tokenizer;
use rlhf_lab::train::{build_base_model, Phase};

#[derive(Parser)]
#[command(name = "rlhf", version, about = "InstructGPT-style RLHF on a compact GPT: the lab's command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the corpus, train the tokenizer, pretrain and SFT; writes tokenizer.json,
    /// model.safetensors and config.json to DIR
    Pretrain(PretrainArgs),
    /// Print K answers to a prompt
    Generate(GenerateArgs),
    /// Print {"tokens": [...], "logits": [[...], ...]} as JSON
    Logits(LogitsArgs),
    /// The InstructGPT loop until the labeler has given N rankings: the labeler ranks a group of
    /// each batch the policy samples, the reward model learns, the method moves the policy; then the
    /// labeler's win-rate of the aligned policy against SFT on held-out prompts
    Align(AlignArgs),
    /// The methods side by side on the same rankings: the first method's loop collects them, the
    /// others learn from them in the same order; one table of win-rate, KL, pretraining
    /// log-likelihood and seconds
    Compare(CompareArgs),
    /// The labeler's win-rate of one checkpoint against another on held-out prompts
    Eval(EvalArgs),
    /// Rank groups of answers as the labeler would: a line of JSON {"prompt", "responses"} in, a
    /// line {"ranks"} out (the simulated person of bench/person.mjs)
    Rank(RankArgs),
    /// Score answers with a reward model written by `align --out`: a line of JSON {"prompt",
    /// "responses"} in, a line {"scores"} out; or, with --answers-of, a model's answers to the
    /// held-out prompts, each line {"prompt", "answer", "reward", "rule"} (the labeler's noiseless score).
    /// The reward model's bias is left at 0: compare scores within one reward model
    Score(ScoreArgs),
    /// Forward+backward tokens/s and matrix-product GFLOP/s, as a table
    Bench(BenchArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum EngineKind {
    Cpu,
    Gpu,
}

/// Which engine, and on how many threads the CPU engine runs.
#[derive(Args, Clone, Copy)]
struct EngineArgs {
    #[arg(long, value_enum, default_value = "cpu")]
    engine: EngineKind,
    #[arg(long, value_parser = at_least_one,
        help = "the CPU engine's threads, each running a share of a batch's rows (default: the machine's cores, at most 4)")]
    threads: Option<usize>,
}

impl EngineArgs {
    fn threads(&self) -> usize {
        self.threads.unwrap_or_else(rlhf_lab::thread_shard::default_threads)
    }
}

/// An option that must be a whole number of at least 1.
fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    let v: usize = s.parse().map_err(|_| format!("'{s}' is not a valid number"))?;
    if v < 1 {
        return Err(format!("must be at least 1, got {v}"));
    }
    Ok(v)
}

fn labeler(s: &str) -> std::result::Result<Labeler, String> {
    Labeler::parse(s).map_err(|e| e.message)
}

#[derive(Args)]
struct PretrainArgs {
    #[arg(long, default_value = "demo", help = "tiny or demo")]
    preset: String,
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    #[arg(long, help = "pretraining steps (the preset's by default)")]
    steps: Option<usize>,
    #[arg(long, help = "SFT steps (the preset's by default)")]
    sft_steps: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct GenerateArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value = "4", value_parser = at_least_one)]
    samples: usize,
    #[arg(long, default_value = "1.0", value_parser = temperature, help = "0 is greedy")]
    temperature: f32,
    #[arg(long, default_value = "0")]
    top_k: usize,
    #[arg(long, default_value = "1.0", value_parser = top_p)]
    top_p: f32,
    #[arg(long, default_value = "64", value_parser = at_least_one)]
    max_tokens: usize,
    #[arg(long, default_value = "0")]
    seed: u64,
    #[command(flatten)]
    engine: EngineArgs,
}

fn temperature(s: &str) -> std::result::Result<f32, String> {
    let t: f32 = s.parse().map_err(|_| format!("'{s}' is not a valid number"))?;
    if !(t >= 0.0 && t.is_finite()) {
        return Err(format!("must be a number of at least 0 (0 is greedy), got {t}"));
    }
    Ok(t)
}

fn top_p(s: &str) -> std::result::Result<f32, String> {
    let p: f32 = s.parse().map_err(|_| format!("'{s}' is not a valid number"))?;
    if !(p > 0.0 && p <= 1.0) {
        return Err(format!("must be in (0, 1], got {p}"));
    }
    Ok(p)
}

#[derive(Args)]
struct LogitsArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    text: String,
    #[command(flatten)]
    engine: EngineArgs,
}

/// How the scripted labeler stands in for a person, shared by align and compare.
#[derive(Args, Clone)]
struct LabelerArgs {
    #[arg(long, value_parser = labeler, help = "polite, concise, on_topic, cheerful, practical or gloomy")]
    labeler: Labeler,
    #[arg(long, default_value = "0", value_parser = noise, help = "share of the pairs the labeler ranks reversed (0 to 0.5); win-rates judge by its noiseless rule")]
    noise: f32,
    #[arg(long, default_value = "16", value_parser = at_least_one)]
    rankings: usize,
    #[arg(long, default_value = "0", help = "measure the win-rate against SFT every N rankings (0: at the end only)")]
    eval_every: usize,
    #[arg(long, default_value = "24", value_parser = at_least_one, help = "held-out prompts of each win-rate")]
    eval_prompts: usize,
    #[arg(long, default_value = "4", value_parser = at_least_one, help = "answers of each model to each held-out prompt")]
    eval_samples: usize,
    #[arg(long, help = "one JSON object per line: each iteration, each evaluation, the summary")]
    json: bool,
    #[arg(long, default_value = "1", value_parser = lag,
        help = "1: the labeler ranks as a person in the page does, the group it was shown while the last iteration ran; 0: the newest group, at once (the autopilot)")]
    lag: usize,
    #[command(flatten)]
    engine: EngineArgs,
}

fn lag(s: &str) -> std::result::Result<usize, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("must be 0 or 1, not '{s}'")),
    }
}

/// The scripted labeler in the person's place: it ranks the group the lab offers, at once (lag 0)
/// or, as a person who reads while the engine works, the group it was shown before the last
/// iteration (lag 1).
struct Ranker {
    labeler: Labeler,
    lag: usize,
    reading: Option<Offer>,
    /// With noise and lag 1, each ranking's best noiseless place (0: truly first) among the answers
    /// it put first: how often a noisy first answer is wrong, for the record, never for the lab
    /// (with lag 0 the lab ranks the group itself, and none is kept).
    firsts: Vec<usize>,
}

impl Ranker {
    fn new(r: &LabelerArgs, seed: u64) -> Result<Ranker> {
        Ok(Ranker { labeler: r.labeler.clone().with_noise(r.noise, seed ^ SALT_LABELER)?, lag: r.lag, reading: None, firsts: Vec::new() })
    }

    /// One ranking submitted.
    fn rank(&mut self, lab: &Lab<AnyEngine>) -> Result<()> {
        if self.lag == 0 {
            lab.rank_offered(&mut self.labeler)?;
            return Ok(());
        }
        let Some(o) = self.reading.take().or_else(|| lab.offered()) else { bail!(kind: ErrorKind::Internal, "the lab offers no group to rank") };
        let ranks = self.labeler.rank(&o.prompt, &o.responses);
        if self.labeler.noise() > 0.0 {
            let truth = rlhf_lab::reward::ranks_of(&o.responses.iter().map(|a| self.labeler.score(&o.prompt, a)).collect::<Vec<_>>());
            self.firsts.push(ranks.iter().zip(&truth).filter(|(&r, _)| r == 0).map(|(_, &t)| t).min().unwrap_or(0));
        }
        lab.submit(Ranking { prompt: o.prompt, responses: o.responses, ranks }, Some(o.id))?;
        self.reading = lab.offered();
        Ok(())
    }
}

fn noise(s: &str) -> std::result::Result<f32, String> {
    let q: f32 = s.parse().map_err(|_| format!("'{s}' is not a valid number"))?;
    if !(0.0..0.5).contains(&q) {
        return Err(format!("must be in [0, 0.5), got {q}"));
    }
    Ok(q)
}

#[derive(Args)]
struct AlignArgs {
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    run: LabelerArgs,
    #[arg(long, help = "write DIR/policy and DIR/reward_model (checked writable first, written whole)")]
    out: Option<PathBuf>,
    #[command(flatten)]
    options: Options,
}

#[derive(Args)]
struct CompareArgs {
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    run: LabelerArgs,
    #[arg(long, default_value = "ppo,dpo,rloo,bok", value_delimiter = ',', value_parser = <MethodKind as OptionValue>::parse,
        help = "the methods; the first one's loop collects the rankings, then each learns from them from the base model")]
    methods: Vec<MethodKind>,
    #[command(flatten)]
    options: Options,
}

#[derive(Args)]
struct EvalArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    reference: PathBuf,
    #[arg(long, value_parser = labeler)]
    labeler: Labeler,
    #[arg(long, default_value = "24", value_parser = at_least_one)]
    prompts: usize,
    #[arg(long, default_value = "4", value_parser = at_least_one)]
    samples: usize,
    #[arg(long, help = "the answers' seed (by default the one the alignment loop's win-rates use)")]
    seed: Option<u64>,
    #[arg(long, help = "the sampling temperature (the alignment loop's by default)")]
    temperature: Option<f32>,
    #[arg(long, value_parser = at_least_one, help = "the answer length (the alignment loop's by default)")]
    max_tokens: Option<usize>,
    #[arg(long, default_value = "1", value_parser = at_least_one,
        help = "each of the model's answers is the favourite of N drawn: by the labeler's own rule (a ceiling, not a policy), or by --judge")]
    best_of: usize,
    #[arg(
        long,
        help = "a reward model (DIR/reward_model of `align --out DIR`) that picks the best of --best-of answers instead of the labeler's rule"
    )]
    judge: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct RankArgs {
    #[arg(long, value_parser = labeler)]
    labeler: Labeler,
    #[arg(long, default_value = "0", value_parser = noise, help = "share of the pairs ranked reversed (0 to 0.5)")]
    noise: f32,
    #[arg(long, default_value = "1")]
    seed: u64,
}

#[derive(Args)]
struct ScoreArgs {
    #[arg(long, help = "DIR/reward_model of `align --out DIR`")]
    reward_model: PathBuf,
    #[arg(long, help = "score this model's answers to the held-out prompts instead of stdin's (needs --labeler)")]
    answers_of: Option<PathBuf>,
    #[arg(long, value_parser = labeler, requires = "answers_of", help = "the rule each answer is also scored by")]
    labeler: Option<Labeler>,
    #[arg(long, default_value = "16", value_parser = at_least_one, help = "answers per held-out prompt")]
    samples: usize,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, default_value = "tiny,demo", value_delimiter = ',')]
    presets: Vec<String>,
    #[arg(long, default_value = "cpu,gpu", value_delimiter = ',')]
    engines: Vec<String>,
    #[arg(long, value_parser = at_least_one, help = "the CPU engine's threads (default: the machine's cores, at most 4)")]
    threads: Option<usize>,
}

/// Builds engines of one kind; GPU engines share one device.
struct Engines {
    cfg: ModelConfig,
    gpu: Option<Gpu>,
    threads: usize,
}

impl Engines {
    fn new(a: EngineArgs, cfg: ModelConfig) -> Result<Engines> {
        let gpu = match a.engine {
            EngineKind::Cpu => None,
            EngineKind::Gpu => {
                let forced = std::env::var("RLHF_MATMUL").ok().and_then(|s| MatmulKind::parse(&s));
                let gpu = Gpu::new_blocking(forced)?;
                eprintln!("GPU: {} (matmul: {:?})", gpu.adapter_name(), gpu.kernels.matmul_kind);
                Some(gpu)
            }
        };
        Ok(Engines { cfg, gpu, threads: a.threads() })
    }

    fn make(&self, params: Vec<f32>, b: usize, t: usize) -> Result<AnyEngine> {
        match self.gpu {
            Some(_) => AnyEngine::new(self.cfg, self.gpu.as_ref(), params, b, t),
            None => AnyEngine::threaded(self.cfg, params, b, t, self.threads),
        }
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
    if pb.is_hidden() && (step + 1).is_multiple_of((total / 10).max(1)) {
        eprintln!("{} {}/{total} {msg}", pb.prefix(), step + 1);
    }
    pb.set_message(msg);
}

fn pretrain(a: PretrainArgs) -> Result<()> {
    let p = preset(&a.preset)?;
    let seed = a.seed.unwrap_or(p.train.seed);
    let steps = a.steps.unwrap_or(p.train.pretrain_steps);
    let sft_steps = a.sft_steps.unwrap_or(p.train.sft_steps);
    let (cfg, tc) = (p.model, p.train);
    eprintln!("corpus: {} dialogues (seed {seed}); model: {cfg:?}, {} parameters", tc.corpus_dialogues, ParamLayout::new(&cfg).total);
    let engines = Engines::new(a.engine, cfg)?;
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
    ck.save(&a.out)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

fn load(dir: &std::path::Path) -> Result<(Checkpoint, Tokenizer)> {
    let ck = Checkpoint::load(dir)?;
    let tok = Tokenizer::from_json(&ck.tokenizer_json)?;
    if tok.vocab_size() > ck.cfg.vocab_size {
        bail!("tokenizer.json has {} tokens but the model only {}", tok.vocab_size(), ck.cfg.vocab_size);
    }
    Ok((ck, tok))
}

fn generate_cmd(a: GenerateArgs) -> Result<()> {
    let (ck, tok) = load(&a.model)?;
    let sc = SampleConfig { temperature: a.temperature, top_k: a.top_k, top_p: a.top_p, max_new_tokens: a.max_tokens };
    let prompt = tok.prompt_ids(&a.prompt, ck.cfg.n_ctx)?;
    let mut engine = Engines::new(a.engine, ck.cfg)?.make(ck.params, a.samples.min(16), ck.cfg.n_ctx)?;
    let outs = block_on(generate(&mut engine, &prompt, a.samples, tok.end, &sc, a.seed))?;
    for (i, ids) in outs.iter().enumerate() {
        emit(format!("[{}] {}", i + 1, tok.answer_text(ids)?))?;
    }
    Ok(())
}

fn logits_cmd(a: LogitsArgs) -> Result<()> {
    let (ck, tok) = load(&a.model)?;
    let ids = tok.encode(&a.text)?;
    if ids.is_empty() || ids.len() > ck.cfg.n_ctx {
        bail!("the text is {} tokens; it must be 1 to {}", ids.len(), ck.cfg.n_ctx);
    }
    let mut engine = Engines::new(a.engine, ck.cfg)?.make(ck.params, 1, ids.len())?;
    engine.forward(&ids, 1, ids.len())?;
    let logits = block_on(engine.logits())?;
    let rows: Vec<&[f32]> = logits.chunks(ck.cfg.vocab_size).collect();
    emit(serde_json::json!({ "tokens": ids, "logits": rows }))
}

/// A lab on a checkpoint for one run: the options applied, no watched answers, the learning curve
/// measured every `eval_every` rankings.
fn lab_for(ck: &Checkpoint, tok: Tokenizer, cfg: AlignConfig, r: &LabelerArgs) -> Result<Lab<AnyEngine>> {
    let engines = Engines::new(r.engine, ck.cfg)?;
    let lab = Lab::new(ck.params.clone(), ck.cfg, tok, cfg, Box::new(move |p, b, t| engines.make(p, b, t)))?;
    lab.set_watch_prompts(Vec::new())?;
    lab.set_cadence(Cadence { labeler: (r.eval_every > 0).then(|| r.labeler.clone()), every: r.eval_every, protocol: protocol(r) });
    block_on(lab.start())?;
    Ok(lab)
}

fn protocol(r: &LabelerArgs) -> WinRateProtocol {
    WinRateProtocol { prompts: r.eval_prompts, samples: r.eval_samples }
}

/// One iteration's output: its metrics and, when one was measured, its learning-curve point.
fn report(m: &IterationMetrics, curve: Option<&CurvePoint>, json: bool) -> Result<()> {
    if m.update.skipped_steps > 0 || m.rm_skipped_steps > 0 {
        eprintln!(
            "warning: iteration {}: skipped {} policy step(s) and {} reward-model step(s) so far with a non-finite loss or gradient; the weights were left as they were",
            m.iteration, m.update.skipped_steps, m.rm_skipped_steps
        );
    }
    if json {
        emit(serde_json::to_string(m).map_err(|e| Error::from(e.to_string()))?)?;
    } else {
        let r = &m.rollouts;
        eprintln!(
            "iter {:>3}  rankings {:>4}  rm acc {:.2} (new {:.2})  reward {:+.3}  kl {:.3}/{:.3}  ptx {:.3}  entropy {:.2}  clip {:.2}  cut {:.2}  {:.1}s",
            m.iteration, m.rankings, m.rm_accuracy, m.rm_new_accuracy, r.reward, r.kl_k1, r.kl_k3,
            m.ptx_loglik, r.entropy, m.update.clip_frac, r.truncated, seconds(m)
        );
    }
    if let Some(c) = curve {
        let point = serde_json::to_value(c).map_err(|e| Error::from(e.to_string()))?;
        if json {
            emit(serde_json::json!({ "eval": point }))?
        } else {
            eprintln!("eval: {point}")
        }
    }
    Ok(())
}

fn seconds(m: &IterationMetrics) -> f64 {
    m.seconds_reward_model + m.seconds_scoring + m.seconds_update + m.seconds_generation
}

/// What a run ends with: the summary, with the last learning-curve point (measured now if the last
/// iteration had none).
fn finish(lab: &Lab<AnyEngine>, r: &LabelerArgs, last: Option<CurvePoint>, train_s: f64) -> Result<serde_json::Value> {
    let n = lab.rankings().len();
    let last = match last {
        Some(c) if c.rankings == n => c,
        _ => block_on(lab.evaluate(&r.labeler, protocol(r)))?,
    };
    let progress = lab.progress()?;
    let cfg = lab.config();
    let summary = serde_json::json!({
        "labeler": r.labeler.name(), "noise": r.noise, "lag": r.lag, "method": cfg.method.info().name, "win_rate_vs_sft": last.win_rate_vs_sft, "kl": progress.kl,
        "ptx_loglik_sft": block_on(lab.ptx_loglik(Prose::HeldOut, true))?, "ptx_loglik_aligned": last.ptx_loglik,
        "ptx_loglik_seen_sft": block_on(lab.ptx_loglik(Prose::Seen, true))?, "ptx_loglik_seen_aligned": last.ptx_loglik_seen, "seconds_training": train_s,
        "rankings": n, "iterations": progress.iterations, "beta": progress.beta, "gamma": cfg.ppo.gamma,
        "eval_prompts": r.eval_prompts, "eval_samples": r.eval_samples, "config": cfg,
    });
    Ok(summary)
}

fn align_cmd(a: AlignArgs) -> Result<()> {
    let (ck, tok) = load(&a.model)?;
    let r = a.run;
    let mut cfg = AlignConfig::default();
    a.options.apply(&mut cfg, &ck.cfg)?;
    if a.out.is_some() {
        cfg.rm.read.check_exportable()?;
    }
    let out = a.out.map(OutDir::prepare).transpose()?;
    let lab = lab_for(&ck, tok, cfg, &r)?;
    let mut ranker = Ranker::new(&r, cfg.seed)?;
    let (mut train_s, mut last) = (0.0, None);
    while lab.rankings().len() < r.rankings {
        for _ in 0..cfg.rankings_per_iteration {
            ranker.rank(&lab)?;
        }
        let record = block_on(lab.iterate())?;
        train_s += seconds(&record.metrics);
        report(&record.metrics, record.curve.as_ref(), r.json)?;
        last = record.curve.or(last);
    }
    let summary = finish(&lab, &r, last, train_s)?;
    if r.json && !ranker.firsts.is_empty() {
        emit(serde_json::json!({ "noiseless_place_of_firsts": ranker.firsts }))?
    }
    if r.json {
        emit(serde_json::json!({ "summary": summary }))?
    } else {
        eprintln!("{}", serde_json::to_string_pretty(&summary).map_err(|e| Error::from(e.to_string()))?)
    }
    if let Some(out) = out {
        let meta = serde_json::json!({ "aligned_from": a.model, "labeler": r.labeler.name(), "align": cfg });
        let ex = block_on(lab.export(meta))?;
        out.write(&[("policy", &ex.policy), ("reward_model", &ex.reward)])?;
        eprintln!("wrote {}/policy and {}/reward_model", out.path.display(), out.path.display());
    }
    Ok(())
}

/// The first method's loop collects the rankings, as `align` does; every method (the first
/// included) then learns from them from the base model in the same order (`Lab::replay`).
fn compare_cmd(a: CompareArgs) -> Result<()> {
    let (ck, tok) = load(&a.model)?;
    let r = a.run;
    let mut cfg = AlignConfig::default();
    a.options.apply(&mut cfg, &ck.cfg)?;
    let Some(&first) = a.methods.first() else { bail!("--methods names no method") };
    let lab = lab_for(&ck, tok, AlignConfig { method: first, ..cfg }, &LabelerArgs { eval_every: 0, ..r.clone() })?;
    let mut ranker = Ranker::new(&r, cfg.seed)?;
    while lab.rankings().len() < r.rankings {
        ranker.rank(&lab)?;
        let record = block_on(lab.iterate())?;
        if r.json {
            report(&record.metrics, None, true)?;
        }
    }
    // --json: JSON lines only; otherwise the table
    if !r.json {
        emit(
            "| method | rankings | win-rate vs SFT | KL (nats per answer) | pretraining log-lik. | seconds of training |\n|---|---:|---:|---:|---:|---:|",
        )?;
    }
    for &m in &a.methods {
        let every = if r.eval_every > 0 { r.eval_every } else { r.rankings };
        let run = block_on(lab.replay(m, &r.labeler, every, protocol(&r)))?;
        if r.json {
            emit(serde_json::json!({ "replay": run }))?;
            continue;
        }
        let n = run.curve.last().map_or(1, |c| c.rankings.max(1));
        for c in &run.curve {
            let secs = run.seconds * c.rankings as f64 / n as f64;
            emit(format!("| {} | {} | {:.3} | {:.2} | {:.4} | {secs:.0} |", run.title, c.rankings, c.win_rate_vs_sft, c.kl, c.ptx_loglik))?;
        }
    }
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let (ck, tok) = load(&a.model)?;
    let reference = Checkpoint::load(&a.reference)?;
    if reference.cfg != ck.cfg {
        bail!("the two checkpoints have different shapes: {:?} and {:?}", ck.cfg, reference.cfg);
    }
    let engines = Engines::new(a.engine, ck.cfg)?;
    let mut ea = engines.make(ck.params, a.samples.min(16), ck.cfg.n_ctx)?;
    let mut eb = engines.make(reference.params, a.samples.min(16), ck.cfg.n_ctx)?;
    let prompts: Vec<String> = prompt_split().1.into_iter().take(a.prompts).collect();
    // answers drawn as the alignment loop draws them, unless told otherwise (and checked the same way)
    let mut cfg = AlignConfig::default();
    Options { temperature: a.temperature, max_new_tokens: a.max_tokens, ..Default::default() }.apply(&mut cfg, &ck.cfg)?;
    let seed = a.seed.unwrap_or(cfg.seed ^ SALT_EVAL);
    let mut judge = a.judge.as_deref().map(|dir| reward_model(dir, &ck.cfg, &engines)).transpose()?;
    let got = block_on(best_of_n(&mut ea, &mut eb, &tok, &a.labeler, judge.as_mut(), &prompts, a.samples, a.best_of, &cfg.sample(), seed))?;
    // the picks' mean score by the judge (a reward model's reward, or the labeler's rule without one)
    let judged = judge.is_some().then_some(got.mean_score);
    let judge = a.judge.map(|d| d.display().to_string());
    emit(serde_json::json!({
        "labeler": a.labeler.name(), "win_rate": got.win_rate, "judge_mean_score": judged,
        "prompts": prompts.len(), "samples": a.samples, "best_of": a.best_of, "judge": judge,
    }))
}

/// A reward model written by `align --out`: the trunk and its `score.weight` head (the bias, which
/// no choice among answers depends on, is left at 0).
fn reward_model(dir: &std::path::Path, cfg: &ModelConfig, engines: &Engines) -> Result<RewardModel<AnyEngine>> {
    let ck = Checkpoint::load(dir)?;
    if ck.cfg != *cfg {
        bail!("the reward model in {} has another shape than the model: {:?}", dir.display(), ck.cfg);
    }
    let Some((_, _, w)) = ck.extra.iter().find(|(name, _, _)| name == "score.weight") else {
        bail!("{} holds no score.weight: not a reward model written by `align --out`", dir.display())
    };
    let mut rm = RewardModel::new(engines.make(ck.params, 8, cfg.n_ctx)?, 0);
    rm.head.w = w.clone();
    Ok(rm)
}

/// A line of `rank`'s and `score`'s input: one prompt's answers.
#[derive(serde::Deserialize)]
struct Group {
    prompt: String,
    responses: Vec<String>,
}

/// `f` of each line of stdin, a `Group` each; blank lines are skipped.
fn each_group(mut f: impl FnMut(Group) -> Result<()>) -> Result<()> {
    for line in std::io::stdin().lines() {
        let line = line.map_err(|e| Error::new(ErrorKind::Io, format!("reading stdin: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        f(serde_json::from_str(&line).map_err(|e| Error::from(format!("a line of stdin: {e}")))?)?;
    }
    Ok(())
}

fn rank_cmd(a: RankArgs) -> Result<()> {
    let mut labeler = a.labeler.with_noise(a.noise, a.seed)?;
    each_group(|g| emit(serde_json::json!({ "ranks": labeler.rank(&g.prompt, &g.responses) })))
}

fn score_cmd(a: ScoreArgs) -> Result<()> {
    let (ck, tok) = load(&a.reward_model)?;
    let engines = Engines::new(a.engine, ck.cfg)?;
    let mut rm = reward_model(&a.reward_model, &ck.cfg, &engines)?;
    let mut score = |prompt: &str, answers: &[String]| {
        let seqs: Vec<Vec<u32>> = answers.iter().map(|y| dialogue_ids(&tok, prompt, y, ck.cfg.n_ctx)).collect::<Result<_>>()?;
        block_on(rm.score(&seqs, tok.end))
    };
    if let Some(dir) = &a.answers_of {
        let Some(labeler) = &a.labeler else { bail!("--answers-of needs --labeler: the rule each answer is set beside") };
        let model = Checkpoint::load(dir)?;
        if model.cfg != ck.cfg {
            bail!("{} has another shape than the reward model: {:?}", dir.display(), model.cfg);
        }
        let mut e = engines.make(model.params, a.samples.min(16), ck.cfg.n_ctx)?;
        // drawn as the alignment loop's win-rates draw them
        let cfg = AlignConfig::default();
        let prompts = prompt_split().1;
        let answers = block_on(answers_to(&mut e, &tok, &prompts, a.samples, &cfg.sample(), cfg.seed ^ SALT_EVAL))?;
        for (p, ys) in prompts.iter().zip(&answers) {
            for (y, r) in ys.iter().zip(score(p, ys)?) {
                emit(serde_json::json!({ "prompt": p, "answer": y, "reward": r, "rule": labeler.score(p, y) }))?;
            }
        }
        return Ok(());
    }
    each_group(|g| emit(serde_json::json!({ "scores": score(&g.prompt, &g.responses)? })))
}

fn bench_cmd(a: BenchArgs) -> Result<()> {
    emit(bench::header())?;
    let threads = a.threads.unwrap_or_else(rlhf_lab::thread_shard::default_threads);
    for name in &a.presets {
        let p = preset(name)?;
        for e in &a.engines {
            for row in bench::run(&p, e, threads)? {
                emit(&row)?;
            }
        }
    }
    if a.engines.iter().any(|e| e == "gpu") {
        emit(format!("\n{}", bench::counts_header()))?;
        for name in &a.presets {
            for row in bench::counts(&preset(name)?)? {
                emit(&row)?;
            }
        }
        emit("")?;
        for name in &a.presets {
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

fn main() -> ExitCode {
    // The CPU engine's parallelism is its shards (--threads): a matrix product's own threads only
    // contend with them (measured: a 2-thread product made an iteration 5% faster and generation
    // twice as slow; README, "The engine").
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pretrain(a) => pretrain(a),
        Command::Generate(a) => generate_cmd(a),
        Command::Logits(a) => logits_cmd(a),
        Command::Align(a) => align_cmd(a),
        Command::Compare(a) => compare_cmd(a),
        Command::Eval(a) => eval_cmd(a),
        Command::Rank(a) => rank_cmd(a),
        Command::Score(a) => score_cmd(a),
        Command::Bench(a) => bench_cmd(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
