//! Pretraining and SFT: batches from the corpus, a learning-rate schedule, and the loop over any engine.

use crate::config::AdamParams;
use crate::config::TrainConfig;
use crate::corpus::{format_dialogue, format_prompt, Corpus, Dialogue};
use crate::engine::Engine;
use crate::error::Result;
use crate::rng::Rng;
use crate::tokenizer::Tokenizer;

/// A batch: tokens (B,T) and targets (B,T), -1 where no loss is taken.
#[derive(Clone, Debug)]
pub struct Batch {
    pub tokens: Vec<u32>,
    pub targets: Vec<i32>,
    pub b: usize,
    pub t: usize,
}

/// The pretraining stream: every document, each closed by the end token, in a seeded shuffle.
pub fn pretrain_stream(corpus: &Corpus, tok: &Tokenizer, seed: u64) -> Result<Vec<u32>> {
    let mut docs = corpus.all_text();
    Rng::new(seed).shuffle(&mut docs);
    let mut ids = Vec::new();
    for d in docs {
        ids.extend(tok.encode(&d)?);
        if !d.ends_with(crate::corpus::END) {
            ids.push(tok.end);
        }
    }
    Ok(ids)
}

/// Rows of T+1 tokens from documents laid end to end in a fresh random order for each row
/// (each document closed by its end token), the first entered at a random token: predict every
/// next token. Unlike windows of one fixed stream, no order of documents repeats for a model
/// that reads the same few thousand tokens many times to learn by heart (the γ term over a long
/// session). (B,T)
pub fn docs_batch(docs: &[Vec<u32>], b: usize, t: usize, rng: &mut Rng) -> Batch {
    let mut batch = Batch { tokens: Vec::with_capacity(b * t), targets: Vec::with_capacity(b * t), b, t };
    for _ in 0..b {
        let first: &Vec<u32> = rng.choose(docs);
        let mut row = first[rng.below(first.len())..].to_vec();
        while row.len() < t + 1 {
            let next: &Vec<u32> = rng.choose(docs);
            row.extend_from_slice(next);
        }
        push_window(&mut batch, &row);
    }
    batch
}

/// Random windows of T+1 tokens: predict every next token.
pub fn lm_batch(stream: &[u32], b: usize, t: usize, rng: &mut Rng) -> Batch {
    let mut batch = Batch { tokens: Vec::with_capacity(b * t), targets: Vec::with_capacity(b * t), b, t };
    for _ in 0..b {
        let start = rng.below(stream.len() - t - 1);
        push_window(&mut batch, &stream[start..]);
    }
    batch
}

/// One row from a window of at least T+1 tokens: its first T in, each next token the target.
fn push_window(batch: &mut Batch, window: &[u32]) {
    let t = batch.t;
    batch.tokens.extend_from_slice(&window[..t]);
    batch.targets.extend(window[1..t + 1].iter().map(|&x| x as i32));
}

/// One SFT example: prompt and response; loss only on the response (and its end token). Padded with `end`.
pub fn sft_row(tok: &Tokenizer, d: &Dialogue, t: usize) -> Result<(Vec<u32>, Vec<i32>)> {
    let prompt = tok.encode(&format_prompt(&d.prompt))?;
    let full = tok.encode(&format_dialogue(&d.prompt, &d.response))?;
    let mut tokens: Vec<u32> = full.iter().copied().take(t).collect();
    let mut targets: Vec<i32> =
        (0..tokens.len()).map(|i| if i + 1 >= prompt.len() && i + 1 < full.len() { full[i + 1] as i32 } else { -1 }).collect();
    tokens.resize(t, tok.end);
    targets.resize(t, -1);
    Ok((tokens, targets))
}

pub fn sft_batch(tok: &Tokenizer, demos: &[Dialogue], b: usize, t: usize, rng: &mut Rng) -> Result<Batch> {
    let mut batch = Batch { tokens: Vec::new(), targets: Vec::new(), b, t };
    for _ in 0..b {
        let (x, y) = sft_row(tok, rng.choose(demos), t)?;
        batch.tokens.extend(x);
        batch.targets.extend(y);
    }
    Ok(batch)
}

/// Linear warmup, then cosine decay to a tenth of the peak.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f32) -> f32 {
    if step < warmup {
        return peak * (step + 1) as f32 / warmup as f32;
    }
    let progress = (step - warmup) as f32 / (total - warmup).max(1) as f32;
    let min = peak * 0.1;
    min + 0.5 * (peak - min) * (1.0 + (std::f32::consts::PI * progress.min(1.0)).cos())
}

/// What the base-model pipeline produced.
pub struct BaseModel {
    pub tokenizer: Tokenizer,
    pub params: Vec<f32>,
    pub pretrain_losses: Vec<f32>,
    pub sft_losses: Vec<f32>,
}

/// Which phase a progress report belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pretrain,
    Sft,
}

/// The base model from nothing: corpus, tokenizer, pretraining, then SFT with a fresh optimizer.
/// `make` builds an engine for (params, B, T); `log` sees every step.
pub async fn build_base_model<E: Engine>(
    p: &crate::config::Preset,
    seed: u64,
    steps: usize,
    sft_steps: usize,
    make: &dyn Fn(Vec<f32>, usize, usize) -> Result<E>,
    mut log: impl FnMut(Phase, &StepLog),
) -> Result<BaseModel> {
    let (cfg, tc) = (p.model, p.train);
    let corpus = Corpus::generate(tc.corpus_dialogues, seed);
    let tok = Tokenizer::train(&corpus.all_text(), cfg.vocab_size)?;
    if tok.vocab_size() > cfg.vocab_size {
        crate::bail!("the tokenizer has {} tokens but the model only {}", tok.vocab_size(), cfg.vocab_size);
    }
    let stream = pretrain_stream(&corpus, &tok, seed)?;
    let mut engine = make(crate::params::ParamLayout::new(&cfg).init(seed), tc.batch_size, tc.seq_len)?;
    let pretrain_losses = train_loop(
        &mut engine,
        &tc,
        steps,
        tc.learning_rate,
        |rng| Ok(lm_batch(&stream, tc.batch_size, tc.seq_len, rng)),
        seed + 1,
        |s| log(Phase::Pretrain, s),
    )
    .await?;
    engine.reset_optimizer()?;
    let sft_losses = train_loop(
        &mut engine,
        &tc,
        sft_steps,
        tc.sft_learning_rate,
        |rng| sft_batch(&tok, &corpus.demonstrations, tc.batch_size, tc.seq_len, rng),
        seed + 2,
        |s| log(Phase::Sft, s),
    )
    .await?;
    Ok(BaseModel { params: engine.params().await?, tokenizer: tok, pretrain_losses, sft_losses })
}

/// What one training step reports to a progress display.
#[derive(Clone, Copy, Debug)]
pub struct StepLog {
    pub step: usize,
    pub loss: f32,
    pub lr: f32,
    pub grad_norm: f32,
    pub skipped: bool,
}

/// Runs `steps` AdamW steps on batches from `next_batch`, calling `log` after each.
pub async fn train_loop<E: Engine>(
    engine: &mut E,
    tc: &TrainConfig,
    steps: usize,
    peak_lr: f32,
    mut next_batch: impl FnMut(&mut Rng) -> Result<Batch>,
    seed: u64,
    mut log: impl FnMut(&StepLog),
) -> Result<Vec<f32>> {
    let mut rng = Rng::new(seed);
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        let batch = next_batch(&mut rng)?;
        let lr = lr_at(step, steps, tc.warmup_steps.min(steps / 2), peak_lr);
        let opt = AdamParams { lr, beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps, weight_decay: tc.weight_decay, t: step as u32 + 1 };
        let (loss, rep) = engine.lm_step(&batch.tokens, &batch.targets, batch.b, batch.t, &opt, tc.grad_clip).await?;
        losses.push(loss);
        log(&StepLog { step, loss, lr, grad_norm: rep.grad_norm, skipped: !rep.applied });
    }
    Ok(losses)
}
