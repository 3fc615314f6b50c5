//! A shard on its own OS thread (native): a copy of the CPU engine that runs the rows of a batch it
//! is given while the main copy runs its own, so the command line uses the machine's cores the way
//! the page uses its shard Workers (see `shard.rs`). Requests go over a channel and are handled in
//! order; replies come back in order, so a request and its reply pair up without ids.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

use crate::config::SampleConfig;
use crate::cpu::gpt::CpuGpt;
use crate::engine::{run_ready, Engine, TokenLosses};
use crate::error::{Error, ErrorKind, Result};
use crate::shard::Shard;

/// The command line's threads when not told: one per core, at most 4 (a policy minibatch of 8 rows
/// and a γ batch of 5 (up to 9) leave a finer split little to do).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

enum Request {
    Forward { tokens: Vec<u32>, b: usize, t: usize, lens: Vec<usize> },
    TokenLosses { targets: Vec<i32>, temperature: f32 },
    Hidden,
    Logits,
    Backward { weights: Option<Vec<f32>>, dhidden: Option<Vec<f32>> },
    ZeroGrad,
    Grads,
    SetParams(Vec<f32>),
    Freeze,
    Generate { groups: Vec<(Vec<u32>, u64)>, k: usize, stop: u32, cfg: SampleConfig },
}

enum Reply {
    Losses(TokenLosses),
    Floats(Vec<f32>),
    Answers(Vec<Vec<Vec<u32>>>),
}

pub struct ThreadShard {
    requests: Option<Sender<Request>>,
    replies: Receiver<Result<Reply>>,
    thread: Option<JoinHandle<()>>,
}

fn stopped() -> Error {
    Error::new(ErrorKind::Internal, "a shard thread stopped (see the panic message above)")
}

fn unexpected() -> Error {
    Error::new(ErrorKind::Internal, "a shard thread's reply did not match its request")
}

impl ThreadShard {
    /// Moves `engine` (built for this shard's rows) to a new thread.
    pub fn new(engine: CpuGpt) -> Result<ThreadShard> {
        let (requests, inbox) = channel();
        let (outbox, replies) = channel();
        let thread = std::thread::Builder::new()
            .name("rlhf-shard".into())
            .spawn(move || serve(engine.without_moments(), inbox, outbox))
            .map_err(|e| Error::new(ErrorKind::Internal, format!("could not start a shard thread: {e}")))?;
        Ok(ThreadShard { requests: Some(requests), replies, thread: Some(thread) })
    }

    fn send(&self, r: Request) -> Result<()> {
        self.requests.as_ref().ok_or_else(stopped)?.send(r).map_err(|_| stopped())
    }

    fn reply(&self) -> Result<Reply> {
        self.replies.recv().map_err(|_| stopped())?
    }

    fn floats(&self) -> Result<Vec<f32>> {
        match self.reply()? {
            Reply::Floats(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }
}

impl Drop for ThreadShard {
    fn drop(&mut self) {
        // closing the channel ends the thread's loop
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread's loop. A request without a reply that fails (a forward pass, say) is reported by the
/// next reply, so no failure goes unseen and replies stay paired with their requests.
fn serve(mut engine: CpuGpt, inbox: Receiver<Request>, outbox: Sender<Result<Reply>>) {
    let mut failed: Option<Error> = None;
    for r in inbox {
        let reply = match r {
            Request::Forward { tokens, b, t, lens } => Err(engine.forward_rows(&tokens, b, t, &lens)),
            Request::Backward { weights, dhidden } => Err(engine.backward(weights.as_deref(), dhidden.as_deref())),
            Request::ZeroGrad => Err(engine.zero_grad()),
            Request::SetParams(p) => Err(engine.set_params(&p)),
            Request::Freeze => {
                engine.freeze();
                Err(Ok(()))
            }
            Request::TokenLosses { targets, temperature } => Ok(run_ready(engine.token_losses(&targets, temperature)).map(Reply::Losses)),
            Request::Hidden => Ok(run_ready(engine.hidden()).map(Reply::Floats)),
            Request::Logits => Ok(run_ready(engine.logits()).map(Reply::Floats)),
            Request::Grads => Ok(run_ready(engine.grads()).map(Reply::Floats)),
            Request::Generate { groups, k, stop, cfg } => Ok(engine.generate_cached_groups(&groups, k, stop, &cfg).map(Reply::Answers)),
        };
        // Ok: a reply to send; Err: the outcome of a request that has none
        match reply {
            Ok(r) => {
                let r = failed.take().map_or(r, Err);
                if outbox.send(r).is_err() {
                    return;
                }
            }
            Err(Err(e)) => {
                failed.get_or_insert(e);
            }
            Err(Ok(())) => {}
        }
    }
}

impl Shard for ThreadShard {
    fn forward(&mut self, tokens: &[u32], b: usize, t: usize, lens: &[usize]) -> Result<()> {
        self.send(Request::Forward { tokens: tokens.to_vec(), b, t, lens: lens.to_vec() })
    }
    fn request_token_losses(&mut self, targets: &[i32], temperature: f32) -> Result<()> {
        self.send(Request::TokenLosses { targets: targets.to_vec(), temperature })
    }
    async fn token_losses(&mut self) -> Result<TokenLosses> {
        match self.reply()? {
            Reply::Losses(l) => Ok(l),
            _ => Err(unexpected()),
        }
    }
    fn request_hidden(&mut self) -> Result<()> {
        self.send(Request::Hidden)
    }
    async fn hidden(&mut self) -> Result<Vec<f32>> {
        self.floats()
    }
    fn request_logits(&mut self) -> Result<()> {
        self.send(Request::Logits)
    }
    async fn logits(&mut self) -> Result<Vec<f32>> {
        self.floats()
    }
    fn backward(&mut self, weights: Option<&[f32]>, dhidden: Option<&[f32]>) -> Result<()> {
        self.send(Request::Backward { weights: weights.map(<[f32]>::to_vec), dhidden: dhidden.map(<[f32]>::to_vec) })
    }
    fn zero_grad(&mut self) -> Result<()> {
        self.send(Request::ZeroGrad)
    }
    fn request_grads(&mut self) -> Result<()> {
        self.send(Request::Grads)
    }
    async fn grads(&mut self) -> Result<Vec<f32>> {
        self.floats()
    }
    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.send(Request::SetParams(params.to_vec()))
    }
    fn freeze(&mut self) {
        // a stopped thread has nothing left to free
        let _ = self.send(Request::Freeze);
    }
    fn request_generate(&mut self, groups: &[(Vec<u32>, u64)], k: usize, stop: u32, cfg: &SampleConfig) -> Result<()> {
        self.send(Request::Generate { groups: groups.to_vec(), k, stop, cfg: *cfg })
    }
    async fn generated(&mut self) -> Result<Vec<Vec<Vec<u32>>>> {
        match self.reply()? {
            Reply::Answers(a) => Ok(a),
            _ => Err(unexpected()),
        }
    }
}
