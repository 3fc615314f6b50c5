//! The page's views of the models, against direct computations on the CPU reference: the token
//! view's log-probabilities and per-prefix scores, and the watched answers' scores.

use pollster::block_on;
use rlhf_lab::align::{AlignConfig, Aligner};
use rlhf_lab::checkpoint::Checkpoint;
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::engine::Engine;
use rlhf_lab::error::Result;
use rlhf_lab::labelers::Labeler;
use rlhf_lab::tokenizer::Tokenizer;

#[test]
fn the_token_view_matches_a_direct_computation() {
    let ck = Checkpoint::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/assets/tiny")).unwrap();
    let model = ck.cfg;
    let make = move |p: Vec<f32>, b: usize, t: usize| -> Result<CpuGpt> { CpuGpt::new(model, p, b, t) };
    let tok = Tokenizer::from_json(&ck.tokenizer_json).unwrap();
    let mut al = Aligner::new(ck.params.clone(), ck.cfg, tok, AlignConfig::default(), &make).unwrap();
    for _ in 0..2 {
        block_on(al.iterate(Some(Labeler::Cheerful), &make)).unwrap();
    }
    let prompt = al.train_prompts[0].clone();
    let answer = block_on(al.answer(&prompt, 5, false)).unwrap();
    let view = block_on(al.inspect(&prompt, &answer)).unwrap();
    let mut ids = al.tok.encode(&rlhf_lab::corpus::format_dialogue(&prompt, &answer)).unwrap();
    ids.truncate(model.n_ctx);
    let p = al.tok.encode(&rlhf_lab::corpus::format_prompt(&prompt)).unwrap().len();
    assert_eq!(view.tokens.len(), ids.len() - p, "one entry per answer token, the end token included");
    // log π of each token from the full softmax of the logits at the sampling temperature
    let temp = al.cfg.ppo.temperature;
    let v = model.vocab_size;
    for (engine, got) in [(&mut al.policy, &view.logp_policy), (&mut al.reference, &view.logp_sft)] {
        engine.forward(&ids, 1, ids.len()).unwrap();
        let logits = block_on(engine.logits()).unwrap();
        for (j, s) in (p - 1..ids.len() - 1).enumerate() {
            let row: Vec<f64> = logits[s * v..][..v].iter().map(|&x| x as f64 / temp as f64).collect();
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            let want = row[ids[s + 1] as usize] - lse;
            assert!((got[j] as f64 - want).abs() < 1e-4, "token {j}: {} vs {want}", got[j]);
        }
    }
    // the score of each prefix, as if the answer ended there: the reward model read at its last token
    for (j, end) in (p + 1..=ids.len()).enumerate() {
        let direct = block_on(al.reward.score(&[ids[..end].to_vec()], al.tok.end)).unwrap()[0];
        assert!((view.prefix_scores[j] - direct).abs() < 1e-4, "prefix {j}: {} vs {direct}", view.prefix_scores[j]);
    }
    assert_eq!(view.score, *view.prefix_scores.last().unwrap());
    // watched answers: the policy's and SFT's for one seed, each with its score
    let w = block_on(al.watch(std::slice::from_ref(&prompt), 5)).unwrap();
    assert_eq!(w[0].policy, answer);
    let scores = block_on(al.score_answers(&prompt, &[w[0].policy.clone(), w[0].sft.clone()])).unwrap();
    assert_eq!((w[0].policy_score, w[0].sft_score), (scores[0], scores[1]));
}
