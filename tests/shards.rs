//! The CPU engine split across shards equals one engine: the same losses, hidden states and, after
//! training steps (a language-model step, a PPO-ptx policy step, a reward-model step through the
//! hidden state), the same weights within float tolerance, for 1 to 3 shards and batches with fewer
//! rows than shards; and groups of answers sampled across the shards are the ones one engine samples.
//! The same with the command line's shards, copies on their own threads (`ThreadShard`).

mod common;
use common::{assert_close, randn};
use pollster::block_on;

use rlhf_lab::config::{preset, AdamParams, SampleConfig};
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::Engine;
use rlhf_lab::params::ParamLayout;
use rlhf_lab::rng::Rng;
use rlhf_lab::shard::{shard_rows, split_rows, split_work, LocalShard, Shard, Sharded};
use rlhf_lab::surrogate::{PolicyBatch, PtxBatch};
use rlhf_lab::thread_shard::ThreadShard;

const OPT: AdamParams = AdamParams { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-6, weight_decay: 0.1, t: 1 };

fn sharded(params: &[f32], max_b: usize, t: usize, shards: usize) -> Sharded<LocalShard> {
    sharded_with(params, max_b, t, shards, LocalShard::new)
}

fn threaded(params: &[f32], max_b: usize, t: usize, shards: usize) -> Sharded<ThreadShard> {
    sharded_with(params, max_b, t, shards, |e| ThreadShard::new(e).unwrap())
}

fn sharded_with<S: Shard>(params: &[f32], max_b: usize, t: usize, shards: usize, shard: impl Fn(CpuGpt) -> S) -> Sharded<S> {
    let cfg = preset("tiny").unwrap().model;
    let rows = shard_rows(max_b, shards);
    let others = (1..shards).map(|_| shard(CpuGpt::new(cfg, params.to_vec(), rows, t).unwrap())).collect();
    Sharded::new(CpuGpt::new(cfg, params.to_vec(), rows, t).unwrap(), others, max_b)
}

/// A language-model step, a PPO-ptx policy step and a reward-model step through the hidden state,
/// on one engine; returns what each produced and the weights after.
async fn steps<E: Engine>(e: &mut E, b: usize, t: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let cfg = e.config();
    let mut rng = Rng::new(seed);
    let tokens: Vec<u32> = (0..b * t).map(|_| rng.below(cfg.vocab_size) as u32).collect();
    let targets: Vec<i32> = (0..b * t).map(|i| if i % 5 == 0 { -1 } else { rng.below(cfg.vocab_size) as i32 }).collect();
    let (loss, _) = e.lm_step(&tokens, &targets, b, t, &OPT, 1.0).await.unwrap();
    // the policy step: actions in the second half of each row
    let actions: Vec<i32> = targets.iter().enumerate().map(|(i, &x)| if i % t < t / 2 { -1 } else { x }).collect();
    let logp_old: Vec<f32> = (0..b * t).map(|_| -3.0 - rng.uniform()).collect();
    let advantages = randn(&mut rng, b * t, 1.0);
    let x = PolicyBatch {
        tokens: &tokens,
        targets: &actions,
        logp_old: &logp_old,
        advantages: &advantages,
        b,
        t,
        lens: None,
        clip: 0.2,
        temperature: 0.7,
        answers: b as f32,
    };
    let ptx = PtxBatch { tokens: &tokens[..t], targets: &targets[..t], b: 1, t, gamma: 2.0 };
    let report = e.policy_step(&x, Some(&ptx), &AdamParams { t: 2, ..OPT }, 1.0).await.unwrap();
    // the reward model's step: a gradient at the hidden state
    e.forward(&tokens, b, t).unwrap();
    let hidden = e.hidden().await.unwrap();
    let dh = randn(&mut rng, b * t * cfg.n_embd, 0.1);
    e.zero_grad().unwrap();
    e.backward(None, Some(&dh)).unwrap();
    e.update(&AdamParams { t: 3, ..OPT }, 1.0).await.unwrap();
    e.forward(&tokens, b, t).unwrap();
    let losses = e.token_losses(&targets, 0.7).await.unwrap();
    let outputs: Vec<f32> = [loss, report.sums.loss, report.ptx_loss].into_iter().chain(hidden).chain(losses.losses).chain(losses.entropy).collect();
    (outputs, e.params().await.unwrap(), e.logits().await.unwrap())
}

#[test]
fn rows_split_evenly_and_in_order() {
    assert_eq!(split_rows(9, 2), vec![(0, 5), (5, 4)]);
    assert_eq!(split_rows(2, 3), vec![(0, 1), (1, 1), (2, 0)]);
    assert_eq!(split_rows(8, 4), vec![(0, 2), (2, 2), (4, 2), (6, 2)]);
    assert_eq!(shard_rows(9, 2), 5);
}

#[test]
fn rows_split_by_their_tokens_within_each_shards_rows() {
    // the γ batch: 4 prose rows of 64 and one answer of 30; by rows 192 against 94 tokens
    let gamma = [vec![64; 4], vec![30]].concat();
    assert_eq!(split_work(&gamma, 2, 5), vec![(0, 2), (2, 3)]);
    // with 8 prose rows: by rows 320 against 222 tokens
    let gamma = [vec![64; 8], vec![30]].concat();
    assert_eq!(split_work(&gamma, 2, 5), vec![(0, 4), (4, 5)]);
    // equal rows keep the even split, the first shards the extra row
    assert_eq!(split_work(&[64; 9], 2, 5), split_rows(9, 2));
    assert_eq!(split_work(&[10; 8], 3, 3), split_rows(8, 3));
    // one long row: the others take what their rows allow (4 and 5), not 1 and 8
    assert_eq!(split_work(&[100, 1, 1, 1, 1, 1, 1, 1, 1], 2, 5), vec![(0, 4), (4, 5)]);
    // 50+10 | 10+10+40 | 40: busiest 60 (by rows 50+10 | 10+10 | 40+40, busiest 80)
    assert_eq!(split_work(&[50, 10, 10, 10, 40, 40], 3, 3), vec![(0, 2), (2, 3), (5, 1)]);
    // more shards than rows
    assert_eq!(split_work(&[7, 3], 3, 3), vec![(0, 1), (1, 1), (2, 0)]);
}

#[test]
fn a_sharded_engine_trains_as_one_engine_does() {
    let cfg = preset("tiny").unwrap().model;
    let params = ParamLayout::new(&cfg).init(31);
    for (b, t) in [(5, 12), (2, 9)] {
        let (want, want_params, want_logits) = block_on(steps(&mut CpuGpt::new(cfg, params.clone(), 5, 12).unwrap(), b, t, 7));
        for shards in 1..=3 {
            let on_threads = block_on(steps(&mut threaded(&params, 5, 12, shards), b, t, 7));
            for (how, (got, got_params, got_logits)) in
                [("in one thread", block_on(steps(&mut sharded(&params, 5, 12, shards), b, t, 7))), ("on threads", on_threads)]
            {
                let what = format!("{shards} shards {how}, batch ({b}, {t})");
                assert_close(&format!("{what}: losses, hidden states, entropy"), &got, &want, 1e-5, 1e-4);
                assert_close(&format!("{what}: weights after three steps"), &got_params, &want_params, 1e-6, 1e-4);
                assert_close(&format!("{what}: logits"), &got_logits, &want_logits, 1e-5, 1e-4);
            }
        }
    }
}

/// Five groups of three answers to random prompts of different lengths, each with its seed.
fn groups(vocab: usize) -> Vec<(Vec<u32>, u64)> {
    let mut rng = Rng::new(5);
    (0..5).map(|i| ((0..3 + 2 * i).map(|_| rng.below(vocab) as u32).collect(), 100 + i as u64)).collect()
}

#[test]
fn a_sharded_engine_samples_each_group_as_one_engine_does() {
    let cfg = preset("tiny").unwrap().model;
    let params = ParamLayout::new(&cfg).init(32);
    let sc = SampleConfig { temperature: 0.8, top_k: 0, top_p: 1.0, max_new_tokens: 10 };
    let (gs, stop) = (groups(cfg.vocab_size), 3);
    let mut one = CpuGpt::new(cfg, params.clone(), 5, 12).unwrap();
    let want: Vec<_> = gs.iter().map(|(p, seed)| block_on(one.generate(p, 3, stop, &sc, *seed)).unwrap()).collect();
    assert!(want.iter().flatten().any(|a| !a.is_empty()), "the model wrote nothing: the test would pass on empty answers");
    for shards in 1..=3 {
        assert_eq!(block_on(threaded(&params, 5, 12, shards).generate_groups(&gs, 3, stop, &sc)).unwrap(), want, "{shards} shards on threads");
        let mut e = sharded(&params, 5, 12, shards);
        assert_eq!(block_on(e.generate_groups(&gs, 3, stop, &sc)).unwrap(), want, "{shards} shards");
        // after training, every copy samples with the main copy's new weights
        block_on(steps(&mut e, 5, 12, 7));
        let main: Vec<_> = gs.iter().map(|(p, seed)| block_on(e.generate(p, 3, stop, &sc, *seed)).unwrap()).collect();
        assert_eq!(block_on(e.generate_groups(&gs, 3, stop, &sc)).unwrap(), main, "{shards} shards, after three steps");
        assert_ne!(main, want, "three steps changed no answer: the check above could not fail");
    }
}

#[test]
fn a_group_that_fails_leaves_no_reply_unread() {
    let cfg = preset("tiny").unwrap().model;
    let params = ParamLayout::new(&cfg).init(33);
    let sc = SampleConfig { temperature: 0.8, top_k: 0, top_p: 1.0, max_new_tokens: 4 };
    let mut gs = groups(cfg.vocab_size);
    // the main copy's first group: a prompt as long as the context, which generation refuses
    gs[0].0 = vec![1; cfg.n_ctx];
    let mut e = sharded(&params, 5, 12, 2);
    let err = block_on(e.generate_groups(&gs, 2, 3, &sc)).unwrap_err();
    assert!(err.message.contains("prompt"), "{}", err.message);
    // the shard's answers were all collected: the next call pairs each request with its own reply
    let ok = &gs[1..];
    let want: Vec<_> = ok.iter().map(|(p, seed)| block_on(e.generate(p, 2, 3, &sc, *seed)).unwrap()).collect();
    assert_eq!(block_on(e.generate_groups(ok, 2, 3, &sc)).unwrap(), want);
}

#[test]
fn a_thread_shard_reports_a_failed_request_at_its_next_reply() {
    let cfg = preset("tiny").unwrap().model;
    let params = ParamLayout::new(&cfg).init(34);
    let mut shard = ThreadShard::new(CpuGpt::new(cfg, params, 2, 8).unwrap()).unwrap();
    // a forward pass has no reply: a token outside the vocabulary fails it on the thread
    shard.forward(&[cfg.vocab_size as u32; 8], 1, 8, &[8]).unwrap();
    shard.request_hidden().unwrap();
    let err = block_on(shard.hidden()).unwrap_err();
    assert!(err.message.contains("token"), "{}", err.message);
    // the failure was reported once; the next request is answered as its own
    shard.forward(&[1; 16], 2, 8, &[8, 8]).unwrap();
    shard.request_hidden().unwrap();
    assert_eq!(block_on(shard.hidden()).unwrap().len(), 2 * 8 * cfg.n_embd);
}
