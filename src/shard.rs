//! Data parallelism for the CPU engine: a batch's rows split across shards, each a copy of the
//! model that runs the forward and backward pass of its rows; the gradients summed in a fixed
//! order (shard 0, then 1, ...) on the main copy, which clips, takes the AdamW step and hands the
//! new weights to the others. In the page the other shards are Web Workers, each with its own wasm
//! instance (no threads, no cross-origin isolation); natively they are engines in the same process,
//! which the tests hold to one engine's results. Keys: B rows, T positions, C channels, S shards.

use crate::config::{AdamParams, ModelConfig, SampleConfig};
use crate::cpu::gpt::CpuGpt;
use crate::engine::{check_batch, check_lens, Engine, StepReport, TokenLosses};
use crate::error::Result;

/// What a sharded engine asks of a shard besides its own copy: each call on the rows it was given.
/// A request (`request_*`) starts work and returns at once; its result is collected later, so the
/// shards compute while the main copy does its own rows.
#[allow(async_fn_in_trait)]
pub trait Shard {
    /// `Engine::forward_rows` on the shard's rows (lens[i] = t for a row without padding).
    fn forward(&mut self, tokens: &[u32], b: usize, t: usize, lens: &[usize]) -> Result<()>;
    fn request_token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<()>;
    async fn token_losses(&mut self) -> Result<TokenLosses>;
    fn request_hidden(&mut self) -> Result<()>;
    async fn hidden(&mut self) -> Result<Vec<f32>>;
    fn request_logits(&mut self) -> Result<()>;
    async fn logits(&mut self) -> Result<Vec<f32>>;
    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()>;
    fn zero_grad(&mut self) -> Result<()>;
    fn request_grads(&mut self) -> Result<()>;
    async fn grads(&mut self) -> Result<Vec<f32>>;
    fn set_params(&mut self, params: &[f32]) -> Result<()>;
    fn freeze(&mut self);
    /// K continuations of each group's prompt, each group with its seed (see
    /// `Engine::generate_groups`), collected by `generated`.
    fn request_generate(&mut self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, cfg: &SampleConfig) -> Result<()>;
    async fn generated(&mut self) -> Result<Vec<Vec<Vec<u32>>>>;
}

/// Rows of a batch of `b` for each of `s` shards: (first row, rows), the first shards one more.
pub fn split_rows(b: usize, s: usize) -> Vec<(usize, usize)> {
    in_order(even_counts(b, s))
}

/// Rows per shard of an even split: `b / s` each, the first `b % s` shards one more.
fn even_counts(b: usize, s: usize) -> Vec<usize> {
    (0..s).map(|i| b / s + usize::from(i < b % s)).collect()
}

/// (first row, rows) of each shard given its rows, the shards taking the batch in order.
fn in_order(counts: Vec<usize>) -> Vec<(usize, usize)> {
    let mut start = 0;
    counts
        .into_iter()
        .map(|n| {
            start += n;
            (start - n, n)
        })
        .collect()
}

/// Rows of a batch for each of `s` shards, in order, as `split_rows` gives them: the split whose
/// busiest shard has the fewest tokens (`lens`, a row's length without its padding), no shard over
/// `cap` rows; among those the one nearest to equal rows. A row costs about its tokens forward and
/// backward, and the γ term's batch is full prose rows beside one short favourite answer: split by
/// rows, one core did 3 prose rows while the other did 1 and the answer, then waited.
pub fn split_work(lens: &[usize], s: usize, cap: usize) -> Vec<(usize, usize)> {
    let even = even_counts(lens.len(), s);
    let cost = |counts: &[usize]| {
        let mut start = 0;
        let busiest = counts
            .iter()
            .map(|&n| {
                start += n;
                lens[start - n..start].iter().sum::<usize>()
            })
            .max();
        let moved: usize = counts.iter().zip(&even).map(|(&n, &e)| n.abs_diff(e)).sum();
        (busiest, moved)
    };
    let best = row_counts(lens.len(), s, cap).into_iter().min_by_key(|c| cost(c));
    in_order(best.unwrap_or_else(|| even.clone()))
}

/// Every way to give `b` rows to `s` shards in order with at most `cap` each: the rows per shard
/// (none when they do not fit). The lab's batches (9 rows, 2 to 4 shards) have at most a few
/// dozen ways, a pretraining batch of 32 on 4 threads a few thousand: nothing beside its forward.
fn row_counts(b: usize, s: usize, cap: usize) -> Vec<Vec<usize>> {
    let mut ways = vec![Vec::with_capacity(s)];
    for shard in 0..s {
        let later = (s - shard - 1) * cap;
        ways = ways
            .into_iter()
            .flat_map(|w: Vec<usize>| {
                let left = b - w.iter().sum::<usize>();
                (left.saturating_sub(later)..=left.min(cap)).map(move |n| {
                    let mut w = w.clone();
                    w.push(n);
                    w
                })
            })
            .collect();
    }
    ways
}

/// One shard's part of per-row data (rows of `width` values each).
fn part<T>(x: &[T], (start, n): (usize, usize), width: usize) -> &[T] {
    &x[start * width..(start + n) * width]
}

pub struct Sharded<S: Shard> {
    main: CpuGpt,
    others: Vec<S>,
    max_b: usize,
    /// How the last forward pass split its rows, shard 0 (the main copy) first, and its T.
    split: Vec<(usize, usize)>,
    t: usize,
}

impl<S: Shard> Sharded<S> {
    /// The main copy and the others, each built for its share of `max_b` rows.
    pub fn new(main: CpuGpt, others: Vec<S>, max_b: usize) -> Self {
        Sharded { main, others, max_b, split: Vec::new(), t: 0 }
    }

    pub fn shards(&self) -> usize {
        1 + self.others.len()
    }

    /// The shards with rows in the last forward pass, with their rows (shard 0 is the main copy).
    fn busy_others(&mut self) -> impl Iterator<Item = (&mut S, (usize, usize))> {
        self.others.iter_mut().zip(self.split.iter().skip(1).copied()).filter(|(_, r)| r.1 > 0)
    }

    /// Per-row results of every shard, in row order: the main copy's and then the others' replies.
    async fn gather(&mut self, mine: Vec<f32>, mut reply: impl AsyncFnMut(&mut S) -> Result<Vec<f32>>) -> Result<Vec<f32>> {
        let mut out = mine;
        for (o, _) in self.busy_others() {
            out.extend(reply(o).await?);
        }
        Ok(out)
    }

    /// The sum of every shard's gradient, shard by shard in order, left in the main copy.
    async fn sum_grads(&mut self) -> Result<()> {
        for o in self.others.iter_mut() {
            o.request_grads()?;
        }
        for o in self.others.iter_mut() {
            let g = o.grads().await?;
            for (a, b) in self.main.grads.iter_mut().zip(&g) {
                *a += b;
            }
        }
        Ok(())
    }
}

/// Shard capacity for `max_b` rows over `shards`: the largest share.
pub fn shard_rows(max_b: usize, shards: usize) -> usize {
    max_b.div_ceil(shards.max(1)).max(1)
}

impl<S: Shard> Engine for Sharded<S> {
    fn config(&self) -> ModelConfig {
        self.main.cfg
    }

    fn capacity(&self) -> (usize, usize) {
        (self.max_b, self.main.capacity().1)
    }

    fn forward(&mut self, tokens: &[u32], b: usize, t: usize) -> Result<()> {
        self.forward_rows(tokens, b, t, &vec![t; b])
    }

    fn forward_rows(&mut self, tokens: &[u32], b: usize, t: usize, lens: &[usize]) -> Result<()> {
        check_batch(&self.main.cfg, self.capacity(), tokens, None, b, t)?;
        check_lens(lens, b, t)?;
        self.split = split_work(lens, self.shards(), shard_rows(self.max_b, self.shards()));
        self.t = t;
        let split = self.split.clone();
        for (o, r) in self.others.iter_mut().zip(split.iter().skip(1)) {
            if r.1 > 0 {
                o.forward(part(tokens, *r, t), r.1, t, part(lens, *r, 1))?;
            }
        }
        self.main.forward_rows(part(tokens, split[0], t), split[0].1, t, part(lens, split[0], 1))
    }

    async fn token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<TokenLosses> {
        let (split, t) = (self.split.clone(), self.t);
        for (o, r) in self.busy_others() {
            o.request_token_losses(part(targets, r, t), temperature)?;
        }
        let mine = self.main.token_losses(part(targets, split[0], t), temperature).await?;
        let mut out = mine;
        for (o, _) in self.busy_others() {
            let tl = o.token_losses().await?;
            out.losses.extend(tl.losses);
            out.entropy.extend(tl.entropy);
        }
        Ok(out)
    }

    async fn logits(&mut self) -> Result<Vec<f32>> {
        for (o, _) in self.busy_others() {
            o.request_logits()?;
        }
        let mine = self.main.logits().await?;
        self.gather(mine, async |o: &mut S| o.logits().await).await
    }

    async fn hidden(&mut self) -> Result<Vec<f32>> {
        for (o, _) in self.busy_others() {
            o.request_hidden()?;
        }
        let mine = self.main.hidden().await?;
        self.gather(mine, async |o: &mut S| o.hidden().await).await
    }

    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        let (split, t, c) = (self.split.clone(), self.t, self.main.cfg.n_embd);
        for (o, r) in self.others.iter_mut().zip(split.iter().skip(1)) {
            if r.1 > 0 {
                o.backward(weights.map(|w| part(w, *r, t)), dhidden.map(|d| part(d, *r, t * c)))?;
            }
        }
        self.main.backward(weights.map(|w| part(w, split[0], t)), dhidden.map(|d| part(d, split[0], t * c)))
    }

    fn zero_grad(&mut self) -> Result<()> {
        for o in self.others.iter_mut() {
            o.zero_grad()?;
        }
        self.main.zero_grad()
    }

    async fn update(&mut self, opt: &AdamParams, grad_clip: f32) -> Result<StepReport> {
        self.sum_grads().await?;
        let report = self.main.update(opt, grad_clip).await?;
        if report.applied {
            for o in self.others.iter_mut() {
                o.set_params(&self.main.params)?;
            }
        }
        Ok(report)
    }

    fn reset_optimizer(&mut self) -> Result<()> {
        self.main.reset_optimizer()
    }

    fn freeze(&mut self) {
        self.main.freeze();
        for o in self.others.iter_mut() {
            o.freeze();
        }
    }

    async fn params(&mut self) -> Result<Vec<f32>> {
        self.main.params().await
    }

    async fn grads(&mut self) -> Result<Vec<f32>> {
        self.sum_grads().await?;
        self.main.grads().await
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.main.set_params(params)?;
        for o in self.others.iter_mut() {
            o.set_params(params)?;
        }
        Ok(())
    }

    async fn optimizer_state(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.main.optimizer_state().await
    }

    fn set_optimizer_state(&mut self, m: &[f32], v: &[f32]) -> Result<()> {
        self.main.set_optimizer_state(m, v)
    }

    async fn generate(&mut self, prompt: &[u32], k: usize, stop: u32, cfg: &SampleConfig, seed: u64) -> Result<Vec<Vec<u32>>> {
        self.main.generate_cached(prompt, k, stop, cfg, seed)
    }

    /// Group i on shard i mod S, each shard's groups decoding in step (`GroupDecoder`), the
    /// others' requested first so they sample while the main copy samples its own; every copy
    /// holds the same weights and a row's arithmetic does not depend on the rows beside it, so a
    /// group's answers are those one engine gives it alone. The main copy passes the turn after
    /// every token (`CpuGpt::generate_groups`).
    async fn generate_groups(&mut self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, cfg: &SampleConfig) -> Result<Vec<Vec<Vec<u32>>>> {
        let s = self.shards();
        let of = |j: usize| groups.iter().skip(j).step_by(s).cloned().collect::<Vec<_>>();
        let mut asked = Vec::new();
        for (j, o) in self.others.iter_mut().enumerate() {
            let theirs = of(j + 1);
            if !theirs.is_empty() {
                o.request_generate(&theirs, k, stop, cfg)?;
                asked.push(j);
            }
        }
        let mine = self.main.generate_groups(&of(0), k, stop, cfg).await;
        // every requested reply is collected, failure or not: the next request's reply is its own
        let mut per_shard = vec![mine];
        for j in asked {
            per_shard.push(self.others[j].generated().await);
        }
        let mut per_shard = per_shard.into_iter().collect::<Result<Vec<_>>>()?.into_iter().map(Vec::into_iter).collect::<Vec<_>>();
        let mut out = Vec::with_capacity(groups.len());
        for i in 0..groups.len() {
            let answers = per_shard.get_mut(i % s).and_then(Iterator::next);
            out.push(
                answers
                    .ok_or_else(|| crate::error::Error::new(crate::error::ErrorKind::Internal, "a shard returned fewer groups than it was given"))?,
            );
        }
        Ok(out)
    }
}

/// A shard in the same process: what the tests shard over (natively, nothing runs in parallel).
pub struct LocalShard {
    engine: CpuGpt,
    pending: Option<TokenLosses>,
    /// Answers requested and not yet collected, in order.
    answers: std::collections::VecDeque<Vec<Vec<Vec<u32>>>>,
}

impl LocalShard {
    pub fn new(engine: CpuGpt) -> Self {
        LocalShard { engine, pending: None, answers: Default::default() }
    }
}

fn nothing_requested(what: &str) -> crate::error::Error {
    crate::error::Error::new(crate::error::ErrorKind::Internal, format!("no {what} were requested"))
}

impl Shard for LocalShard {
    fn forward(&mut self, tokens: &[u32], b: usize, t: usize, lens: &[usize]) -> Result<()> {
        self.engine.forward_rows(tokens, b, t, lens)
    }
    fn request_token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<()> {
        self.pending = Some(crate::engine::run_ready(self.engine.token_losses(targets, temperature))?);
        Ok(())
    }
    async fn token_losses(&mut self) -> Result<TokenLosses> {
        self.pending.take().ok_or_else(|| nothing_requested("token losses"))
    }
    fn request_hidden(&mut self) -> Result<()> {
        Ok(())
    }
    async fn hidden(&mut self) -> Result<Vec<f32>> {
        self.engine.hidden().await
    }
    fn request_logits(&mut self) -> Result<()> {
        Ok(())
    }
    async fn logits(&mut self) -> Result<Vec<f32>> {
        self.engine.logits().await
    }
    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        self.engine.backward(weights, dhidden)
    }
    fn zero_grad(&mut self) -> Result<()> {
        self.engine.zero_grad()
    }
    fn request_grads(&mut self) -> Result<()> {
        Ok(())
    }
    async fn grads(&mut self) -> Result<Vec<f32>> {
        self.engine.grads().await
    }
    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.engine.set_params(params)
    }
    fn freeze(&mut self) {
        self.engine.freeze()
    }
    fn request_generate(&mut self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, cfg: &SampleConfig) -> Result<()> {
        self.answers.push_back(self.engine.generate_cached_groups(groups, k, stop, cfg)?);
        Ok(())
    }
    async fn generated(&mut self) -> Result<Vec<Vec<Vec<u32>>>> {
        self.answers.pop_front().ok_or_else(|| nothing_requested("answers"))
    }
}
