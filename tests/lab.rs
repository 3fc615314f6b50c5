//! The person's loop in the library, on `tiny`: the group on offer, the next one at once (from the
//! same batch while the engine has not sampled a new one, answered on the spot once the batch ran
//! out), an iteration only after a new ranking,
//! a question of one's own answered and taken into the next batch, and the notes a person reads.

use pollster::block_on;
use rlhf_lab::checkpoint::Checkpoint;
use rlhf_lab::checkpoint::LabState;
use rlhf_lab::cpu::gpt::CpuGpt;
use rlhf_lab::error::ErrorKind;
use rlhf_lab::lab::{AlignConfig, Kept, Lab, Verdict};
use rlhf_lab::methods::MethodKind;
use rlhf_lab::reward::Ranking;
use rlhf_lab::tokenizer::Tokenizer;

fn lab() -> Lab<CpuGpt> {
    lab_with(AlignConfig::default())
}

fn try_lab_with(cfg: AlignConfig) -> rlhf_lab::error::Result<Lab<CpuGpt>> {
    let ck = Checkpoint::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/assets/tiny")).unwrap();
    let model = ck.cfg;
    let make = move |p: Vec<f32>, b: usize, t: usize| CpuGpt::new(model, p, b, t);
    Lab::new(ck.params.clone(), ck.cfg, Tokenizer::from_json(&ck.tokenizer_json).unwrap(), cfg, Box::new(make))
}

fn lab_with(cfg: AlignConfig) -> Lab<CpuGpt> {
    try_lab_with(cfg).unwrap()
}

fn ranking(o: &rlhf_lab::lab::Offer) -> Ranking {
    Ranking { prompt: o.prompt.clone(), responses: o.responses.clone(), ranks: (0..o.responses.len()).collect() }
}

#[test]
fn the_next_group_is_ready_when_the_person_is_and_the_model_waits_for_rankings() {
    let lab = lab();
    assert!(lab.offered().is_none(), "nothing to rank before the first batch");
    block_on(lab.start()).unwrap();
    let first = lab.offered().unwrap();
    assert_eq!(first.responses.len(), AlignConfig::default().k);
    assert!(!first.yours && first.notes.is_empty(), "{first:?}");
    assert_eq!(lab.offered().unwrap().id, first.id, "the group on offer stays until it is ranked");
    // no ranking yet: no iteration
    assert_eq!(block_on(lab.iterate()).unwrap_err().kind, ErrorKind::NotReady);
    // the next group comes at once, from the same batch: the engine has not sampled another
    let next = lab.submit(ranking(&first), Some(first.id)).unwrap().next.unwrap();
    assert_ne!(next.id, first.id);
    assert!(lab.submit(ranking(&first), Some(first.id)).is_err(), "a group is ranked once");
    // one iteration learns from the ranking; the group in the person's hands stays theirs
    block_on(lab.iterate()).unwrap();
    assert_eq!(lab.offered().unwrap().id, next.id);
    assert_eq!(block_on(lab.iterate()).unwrap_err().kind, ErrorKind::NotReady, "bounded: one iteration per new ranking");
    let after = lab.submit(ranking(&next), Some(next.id)).unwrap().next.unwrap();
    assert!(after.id > next.id, "then a group of the new batch");
    block_on(lab.iterate()).unwrap();
    assert_eq!(lab.progress().unwrap().iterations, 2);
}

#[test]
fn a_person_who_ranks_the_whole_batch_gets_a_group_answered_on_the_spot() {
    // one group a batch: the person runs out of groups after every ranking
    let lab = lab_with(AlignConfig { rollouts: AlignConfig::default().k, ..AlignConfig::default() });
    assert!(block_on(lab.more()).unwrap().is_none(), "nothing to rank before the first batch");
    block_on(lab.start()).unwrap();
    let first = lab.offered().unwrap();
    assert_eq!(block_on(lab.more()).unwrap().unwrap().id, first.id, "a group on offer is the one to rank");
    assert!(lab.submit(ranking(&first), Some(first.id)).unwrap().next.is_none(), "the batch's one group is ranked");
    let extra = block_on(lab.more()).unwrap().unwrap();
    assert!(extra.id > first.id && !extra.yours, "{extra:?}");
    assert_eq!(extra.responses.len(), AlignConfig::default().k);
    assert!(lab.train_prompts().contains(&extra.prompt), "a training question: {}", extra.prompt);
    assert_eq!(lab.offered().unwrap().id, extra.id, "it is the group to rank now");
    lab.submit(ranking(&extra), Some(extra.id)).unwrap();
    let again = block_on(lab.more()).unwrap().unwrap();
    assert!(again.id > extra.id, "each answered afresh");
    // an iteration learns from both rankings, and its new batch is offered after the group in hand
    block_on(lab.iterate()).unwrap();
    assert_eq!(lab.taken(), 2);
    assert_eq!(lab.offered().unwrap().id, again.id, "the group in the person's hands stays theirs");
    lab.submit(ranking(&again), Some(again.id)).unwrap();
    assert!(lab.offered().unwrap().id > again.id, "then the new batch's group");
}

#[test]
fn a_batch_spreads_the_rollouts_nobody_ranks_over_more_questions_when_asked() {
    let d = AlignConfig::default();
    assert_eq!((d.rollouts, d.k, d.sft_offered_groups()), (32, 8, 2), "the cases below are computed for these");
    assert_eq!(d.group_sizes(0), vec![8; 4], "by default every group has K answers");
    let two = AlignConfig { rest_k: 2, ..d };
    // the two groups an iteration may offer keep K; the other 16 answers go to 8 questions
    assert_eq!(two.group_sizes(0), [vec![8, 8], vec![2; 8]].concat());
    // 16 answers in threes: 6 questions (18 answers, at least the rollouts)
    assert_eq!(AlignConfig { rest_k: 3, ..d }.group_sizes(0), [vec![8, 8], vec![3; 6]].concat());
    // the person's own three questions get K each; the 8 answers left go to 4 questions
    assert_eq!(two.group_sizes(3), [vec![8; 3], vec![2; 4]].concat());
    assert_eq!(two.group_sizes(5), vec![8; 5], "five own questions take more than the rollouts");
    assert!(try_lab_with(AlignConfig { rest_k: 1, ..d }).is_err(), "an answer alone has no group baseline");
    // in the lab only the groups of K are offered; the person then gets one answered on the spot
    let lab = lab_with(AlignConfig { min_rankings: 1, ..two });
    block_on(lab.start()).unwrap();
    let first = lab.offered().unwrap();
    let second = lab.submit(ranking(&first), Some(first.id)).unwrap().next.unwrap();
    assert_eq!(second.responses.len(), 8);
    assert!(lab.submit(ranking(&second), Some(second.id)).unwrap().next.is_none(), "the groups of two are not offered");
    assert_eq!(block_on(lab.more()).unwrap().unwrap().responses.len(), 8);
    // the policy moves on the groups of both sizes (PPO's minibatches and the group baseline)
    let record = block_on(lab.iterate()).unwrap();
    assert_eq!(lab.taken(), 2);
    assert!(record.metrics.update.policy_loss.is_finite() && record.metrics.update.approx_kl != 0.0, "{:?}", record.metrics.update);
}

#[test]
fn a_question_of_ones_own_is_answered_at_once_noted_and_trained_on_next() {
    let lab = lab();
    block_on(lab.start()).unwrap();
    let mine = block_on(lab.ask("What is the capital of France?")).unwrap();
    assert!(mine.yours);
    assert_eq!(lab.offered().unwrap().id, mine.id, "the person's question is the group to rank now");
    assert!(mine.notes.iter().any(|n| n.contains("knows only about tea, coffee")), "{:?}", mine.notes);
    assert!(mine.responses.iter().all(|a| !a.contains("<|")), "no special token inside an answer: {:?}", mine.responses);
    let on_topic = block_on(lab.ask("How do I brew better coffee?")).unwrap();
    assert!(!on_topic.notes.iter().any(|n| n.contains("knows only")), "{:?}", on_topic.notes);
    assert!(block_on(lab.ask("   ")).is_err());
    // the next batch holds both questions
    lab.submit(ranking(&on_topic), Some(on_topic.id)).unwrap();
    block_on(lab.iterate()).unwrap();
    let mut prompts = Vec::new();
    while let Some(o) = lab.offered() {
        prompts.push(o.prompt.clone());
        lab.submit(ranking(&o), Some(o.id)).unwrap();
        if prompts.len() > 16 {
            break;
        }
    }
    assert!(prompts.contains(&"What is the capital of France?".to_string()), "{prompts:?}");
    assert!(prompts.contains(&"How do I brew better coffee?".to_string()), "{prompts:?}");
}

#[test]
fn a_ranking_warns_only_when_it_was_cut_to_the_context() {
    let lab = lab();
    let short = Ranking {
        prompt: "Tell me about tea.".into(),
        responses: vec!["Tea is made from leaves.".into(), "Tea is made from leaves.".into()],
        ranks: vec![0, 0],
    };
    assert_eq!(lab.submit(short, None).unwrap().warning, None, "identical answers are no reason to call the prompt too long");
    let long =
        Ranking { prompt: "Tell me about tea.".into(), responses: vec!["tea ".repeat(200), "Tea is made from leaves.".into()], ranks: vec![1, 0] };
    assert!(lab.submit(long, None).unwrap().warning.unwrap().contains("more than this model's context of 128"));
}

#[test]
fn the_policy_moves_once_per_ranking_and_catches_up_on_those_it_waited_for() {
    use rlhf_lab::lab::update_rounds;
    // (rankings so far, new ones, rankings the policy waits for, catch-up, most per iteration) -> updates
    assert_eq!(update_rounds(3, 1, 4, 4, 2), 0, "fewer rankings than the wait: the reward model alone");
    assert_eq!(update_rounds(4, 1, 4, 4, 2), 4, "the 4th ranking: the four rankings' updates at once");
    assert_eq!(update_rounds(4, 1, 4, 2, 2), 2, "at most the catch-up");
    assert_eq!(update_rounds(4, 1, 4, 1, 2), 1, "no catch-up: one");
    assert_eq!(update_rounds(5, 1, 4, 4, 2), 1, "after: one per ranking");
    assert_eq!(update_rounds(5, 2, 4, 1, 2), 2, "two came at once and crossed the wait: the 4th's one, then the 5th's");
    assert_eq!(update_rounds(6, 3, 4, 1, 2), 2, "three: they earned three, an iteration spends at most two");
    assert_eq!(update_rounds(6, 3, 4, 4, 2), 4, "the same with a catch-up of four: the catch-up, no more");
    assert_eq!(update_rounds(8, 2, 4, 1, 2), 2, "a person who ranked twice during an iteration: two, as two iterations would give");
    assert_eq!(update_rounds(9, 3, 4, 1, 2), 2, "three during one iteration: at most two, so an iteration stays bounded");
    assert_eq!(update_rounds(9, 3, 4, 1, 1), 1, "at most one: the old rule, one per iteration");
    assert_eq!(update_rounds(1, 1, 0, 4, 2), 1, "no wait: the policy moved from the first ranking, nothing to catch up");
    assert_eq!(update_rounds(2, 5, 1, 4, 2), 2, "more new than held (a restore): the 1st's catch-up of one, then one");
    assert_eq!(update_rounds(7, 0, 4, 1, 2), 0, "no new ranking: the policy does not move");
}

#[test]
fn a_person_faster_than_an_iteration_gets_one_update_per_ranking_at_most_two() {
    // rankings that came in while an iteration ran: each moves the policy once, as when the
    // benchmark's labeler ranks one group per iteration, and the reward model fits for each; but
    // no iteration trains for more than two
    let lab = lab_with(AlignConfig { min_rankings: 1, rollouts: 8, k: 2, ..AlignConfig::default() });
    block_on(lab.start()).unwrap();
    let steps = |lab: &Lab<CpuGpt>| block_on(lab.snapshot()).unwrap().policy_steps;
    let rm_steps = |lab: &Lab<CpuGpt>| block_on(lab.snapshot()).unwrap().rewards[0].steps;
    let rank_next = |lab: &Lab<CpuGpt>, n: usize| {
        for _ in 0..n {
            let o = lab.offered().unwrap();
            lab.submit(ranking(&o), Some(o.id)).unwrap();
        }
    };
    rank_next(&lab, 1);
    block_on(lab.iterate()).unwrap();
    let (one, rm_one) = (steps(&lab), rm_steps(&lab));
    assert!(one > 0, "the first ranking moved the policy");
    assert_eq!(rm_one as usize, AlignConfig::default().rm.steps, "and fitted the reward model");
    rank_next(&lab, 2);
    block_on(lab.iterate()).unwrap();
    assert_eq!((steps(&lab), rm_steps(&lab)), (3 * one, 3 * rm_one), "two rankings during an iteration: two updates, twice the fit");
    rank_next(&lab, 3);
    block_on(lab.iterate()).unwrap();
    assert_eq!((steps(&lab), rm_steps(&lab)), (5 * one, 5 * rm_one), "three: at most two");
    assert_eq!(block_on(lab.iterate()).unwrap_err().kind, ErrorKind::NotReady, "none: no update");
}

#[test]
fn sft_answers_offered_beside_the_policys_leave_the_policys_batch_as_it_was() {
    let with = |offer_sft: usize| {
        let lab = lab_with(AlignConfig { offer_sft, offer_sft_from: 0, ..AlignConfig::default() });
        block_on(lab.start()).unwrap();
        let mut groups = Vec::new();
        while let Some(o) = lab.offered() {
            lab.submit(ranking(&o), Some(o.id)).unwrap();
            groups.push(o);
        }
        groups
    };
    let (plain, mixed) = (with(0), with(2));
    let drawn = AlignConfig::default().sft_offered_groups();
    assert!(plain.len() > drawn && plain.len() == mixed.len(), "{} groups", plain.len());
    let mut replaced = 0;
    for (g, (p, m)) in plain.iter().zip(&mixed).enumerate() {
        assert_eq!(p.prompt, m.prompt, "the same questions: SFT's answers come from a stream of their own");
        assert_eq!(m.responses.len(), AlignConfig::default().k);
        let kept = p.responses.iter().zip(&m.responses).filter(|(a, b)| a == b).count();
        assert!(kept >= 2, "two of the policy's answers stay where they were: {p:?} {m:?}");
        if g >= drawn {
            assert_eq!(p.responses, m.responses, "group {g}: only the first {drawn} groups, those an iteration trains on, get SFT's answers");
        }
        replaced += m.responses.len() - kept;
        assert!(m.responses.iter().all(|a| !a.contains("<|")), "{m:?}");
    }
    assert!(replaced >= drawn, "SFT's answers (other draws) replace some of the policy's: {replaced}");
    // more than K − 1 would leave no answer of the policy: at most K − 1 are SFT's
    let all_but_one = with(9);
    for (p, m) in plain.iter().zip(&all_but_one) {
        assert!(p.responses.iter().zip(&m.responses).any(|(a, b)| a == b), "one of the policy's answers stays: {p:?} {m:?}");
    }
}

#[test]
fn sft_answers_join_the_offered_groups_only_once_offer_sft_from_rankings_are_learned() {
    let lab = |offer_sft: usize| {
        let lab = lab_with(AlignConfig { offer_sft, offer_sft_from: 1, ..AlignConfig::default() });
        block_on(lab.start()).unwrap();
        lab
    };
    let (plain, mixed) = (lab(0), lab(2));
    let (p, m) = (plain.offered().unwrap(), mixed.offered().unwrap());
    assert_eq!(p.responses, m.responses, "before the first ranking: the policy's answers only");
    for (l, o) in [(&plain, &p), (&mixed, &m)] {
        l.submit(ranking(o), Some(o.id)).unwrap();
        block_on(l.iterate()).unwrap();
    }
    // the group in the person's hands during the iteration is still the first batch's
    let (p, m) = (plain.offered().unwrap(), mixed.offered().unwrap());
    assert_eq!(p.responses, m.responses);
    plain.submit(ranking(&p), Some(p.id)).unwrap();
    mixed.submit(ranking(&m), Some(m.id)).unwrap();
    let (p, m) = (plain.offered().unwrap(), mixed.offered().unwrap());
    assert_eq!(p.prompt, m.prompt, "the same new batch: SFT's answers come from a stream of their own");
    let kept = p.responses.iter().zip(&m.responses).filter(|(a, b)| a == b).count();
    assert!(kept >= 2 && kept < p.responses.len(), "after it, SFT's answers replace some of the policy's: {p:?} {m:?}");
}

#[test]
fn a_config_whose_gamma_term_does_not_fit_the_engines_is_refused_by_the_lab() {
    let d = AlignConfig::default();
    let cfg = AlignConfig { ppo: rlhf_lab::methods::ppo::PpoConfig { favourites: 2, ptx_rows: 8, ..d.ppo }, ..d };
    let err = try_lab_with(cfg).err().expect("refused");
    assert!(err.to_string().contains("must add up to at most 9"), "{err}");
}

#[test]
fn the_persons_favourite_answers_pull_the_policy_toward_them_when_asked() {
    // the same lab, the same ranking, with and without favourites in the γ term: the answer
    // ranked first gains more log-likelihood under the policy with them (4 rows of prose: with
    // the 5 favourites the γ term fills the engines' 9 rows)
    let gain = |favourites: usize| {
        let d = AlignConfig::default();
        let ppo = rlhf_lab::methods::ppo::PpoConfig { favourites, ptx_rows: 4, own_best: 0, ..d.ppo };
        let lab = lab_with(AlignConfig { min_rankings: 1, rollouts: 8, k: 2, ppo, ..d });
        block_on(lab.start()).unwrap();
        let o = lab.offered().unwrap();
        let (prompt, first) = (o.prompt.clone(), o.responses[1].clone());
        // the second answer first: a favourite the policy's own sampling order did not choose
        lab.submit(Ranking { prompt: o.prompt.clone(), responses: o.responses.clone(), ranks: vec![1, 0] }, Some(o.id)).unwrap();
        let loglik = |lab: &Lab<CpuGpt>| block_on(lab.direct_logprobs(&prompt, &first)).unwrap().0.iter().sum::<f32>();
        let before = loglik(&lab);
        block_on(lab.iterate()).unwrap();
        loglik(&lab) - before
    };
    let (without, with) = (gain(0), gain(5));
    assert!(with > without + 0.05, "favourite's log-likelihood gain: {with} with favourites, {without} without");
}

#[test]
fn the_reward_models_favourite_sft_and_own_answers_join_the_gamma_term_when_asked() {
    // the same lab and ranking with and without SFT's or the policy's own favourites in the γ
    // term: the update differs, and the draw of SFT's answers leaves the policy's next samples'
    // stream as it was
    let after = |sft_best: usize, own_best: usize| {
        let d = AlignConfig::default();
        let ppo = rlhf_lab::methods::ppo::PpoConfig { sft_best, own_best, ptx_rows: 4, favourites: 0, ..d.ppo };
        let lab = lab_with(AlignConfig { min_rankings: 1, rollouts: 8, k: 2, ppo, ..d });
        block_on(lab.start()).unwrap();
        let o = lab.offered().unwrap();
        let (prompt, answer) = (o.prompt.clone(), o.responses[0].clone());
        lab.submit(Ranking { prompt: o.prompt.clone(), responses: o.responses.clone(), ranks: vec![1, 0] }, Some(o.id)).unwrap();
        block_on(lab.iterate()).unwrap();
        block_on(lab.direct_logprobs(&prompt, &answer)).unwrap().0.iter().sum::<f32>()
    };
    let (without, with) = (after(0, 0), after(4, 0));
    assert!((with - without).abs() > 1e-6, "the SFT favourites changed nothing: {with} against {without}");
    let own = after(0, 4);
    assert!((own - without).abs() > 1e-6 && (own - with).abs() > 1e-6, "the own favourites changed nothing: {own} against {without}");
    // rows that do not fit the engines are refused, with the counts named
    let d = AlignConfig::default();
    let cfg = AlignConfig { ppo: rlhf_lab::methods::ppo::PpoConfig { favourites: 1, ptx_rows: 4, sft_best: 3, own_best: 2, ..d.ppo }, ..d };
    let err = try_lab_with(cfg).err().expect("refused");
    assert!(err.to_string().contains("SFT favourites per step (3) and own favourites per step (2)"), "{err}");
}

#[test]
fn a_rankings_verdict_counts_the_policys_wins_over_sfts_answers_in_its_group() {
    // answers 1 and 3 are SFT's; the order 0, 1, 2, 3: answer 0 beats both, answer 2 beats 3 only
    let v = Verdict::of(&[0, 1, 2, 3], &[1, 3]);
    assert_eq!((v.wins, v.pairs), (3.0, 4));
    // a tie counts half; pairs between two SFT answers or two of the policy's do not count
    let v = Verdict::of(&[0, 0, 1], &[1]);
    assert_eq!((v.wins, v.pairs), (0.5, 2));
    assert_eq!(Verdict::sum([Verdict::of(&[0, 1, 2, 3], &[1, 3]), v]).share(), 3.5 / 6.0);
    assert!(Verdict::of(&[0, 1], &[]).share().is_nan(), "no SFT answer, no verdict");
}

#[test]
fn the_policy_starts_again_from_sft_once_when_the_persons_rankings_prefer_sfts_answers() {
    let run = |restart_below: f32| {
        let cfg = AlignConfig { min_rankings: 1, offer_sft_from: 0, restart_below, restart_window: 2, ..AlignConfig::default() };
        let lab = lab_with(cfg);
        block_on(lab.start()).unwrap();
        let mut records = Vec::new();
        for _ in 0..4 {
            // the person ranks SFT's answers above all of the policy's
            let o = lab.offered().unwrap();
            assert_eq!(o.sft.len(), 2, "the groups an iteration trains on hold two SFT answers");
            let ranks = (0..o.responses.len()).map(|i| usize::from(!o.sft.contains(&i))).collect();
            lab.submit(Ranking { prompt: o.prompt.clone(), responses: o.responses.clone(), ranks }, Some(o.id)).unwrap();
            records.push(block_on(lab.iterate()).unwrap().metrics);
        }
        records
    };
    let (plain, restarting) = (run(0.0), run(0.5));
    for m in &restarting {
        assert_eq!((m.ranked_vs_sft, m.ranked_vs_sft_pairs), (0.0, 12), "each ranking: 6 × 2 pairs, all lost");
    }
    // the reward model's share of the same pairs: none before its first fit, a share after it
    assert!(restarting[0].rm_vs_sft.is_nan());
    assert!(restarting[1..].iter().all(|m| (0.0..=1.0).contains(&m.rm_vs_sft)), "{:?}", restarting.iter().map(|m| m.rm_vs_sft).collect::<Vec<_>>());
    let when: Vec<usize> = restarting.iter().filter(|m| m.restarted).map(|m| m.iteration).collect();
    assert_eq!(when, vec![1], "once, at the second ranking's iteration, though every later ranking prefers SFT too");
    assert!(plain.iter().all(|m| !m.restarted), "off by default");
    // the restart's update is on answers the policy sampled as SFT: no KL to SFT in them
    assert_eq!(restarting[1].rollouts.kl_k1, 0.0);
    assert!(plain[1].rollouts.kl_k1 != 0.0 && restarting[2].rollouts.kl_k1 != 0.0, "the policy moves again after it");
    assert_eq!(plain[0].rollouts.kl_k1, restarting[0].rollouts.kl_k1, "the same run until the restart");
}

#[test]
fn a_rankings_verdict_and_the_restarts_count_outlive_a_reload() {
    let cfg = AlignConfig { min_rankings: 1, offer_sft_from: 0, restart_below: 0.5, restart_window: 3, ..AlignConfig::default() };
    // the person ranks SFT's answers above all of the policy's; the browser keeps each ranking
    // with the places of SFT's answers the group had
    let rank = |lab: &Lab<CpuGpt>| {
        let o = lab.offered().unwrap();
        let ranks = (0..o.responses.len()).map(|i| usize::from(!o.sft.contains(&i))).collect();
        let kept = Kept { ranking: Ranking { prompt: o.prompt.clone(), responses: o.responses.clone(), ranks }, sft: o.sft.clone() };
        lab.submit(kept.clone(), Some(o.id)).unwrap();
        kept
    };
    let before = lab_with(cfg);
    block_on(before.start()).unwrap();
    let mut kept = vec![rank(&before)];
    block_on(before.iterate()).unwrap();
    kept.push(rank(&before)); // not taken by any iteration when the tab closes
    let state = block_on(before.snapshot()).unwrap();
    assert_eq!(state.verdicts, vec![(0.0, 12)], "the first ranking's verdict is in the state");
    let state = LabState::from_bytes(&state.to_bytes().unwrap(), &before.model()).unwrap();
    assert_eq!((state.verdicts.len(), state.restarted), (1, false));

    let plain: Vec<Ranking> = kept.iter().map(|k| k.ranking.clone()).collect();
    let reload = |rankings: Vec<Kept>| {
        let after = lab_with(cfg);
        after.restore(state.clone(), rankings).unwrap();
        block_on(after.start()).unwrap();
        let second = block_on(after.iterate()).unwrap().metrics;
        rank(&after);
        let third = block_on(after.iterate()).unwrap().metrics;
        (second, third)
    };
    let (second, third) = reload(kept);
    assert_eq!((second.ranked_vs_sft, second.ranked_vs_sft_pairs), (0.0, 12), "the untaken ranking's verdict came back with it");
    assert!(!second.restarted && third.restarted, "the third losing verdict, the one before the reload counted, starts the policy again");
    // without the places (rankings kept before they were) that ranking has no verdict
    let (second, third) = reload(plain.into_iter().map(Kept::from).collect());
    assert_eq!(second.ranked_vs_sft_pairs, 0);
    assert!(!third.restarted);

    // places that are not distinct answers of the group are refused with the ranking
    let bad = Kept { sft: vec![0, 0], ..rank(&before) };
    let e = lab_with(cfg).add_rankings(vec![bad]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput, "{}", e.message);
}

#[test]
fn a_first_answer_the_reward_model_doubted_stays_out_of_the_gamma_term_and_doubted_over_a_reload() {
    let cfg_with = |within: usize, check_below: f32, margin: f32| {
        let mut cfg = AlignConfig { min_rankings: 1, ..AlignConfig::default() };
        (cfg.ppo.favourites, cfg.ppo.favourite_within, cfg.ppo.favourite_check_below) = (1, within, check_below);
        cfg.ppo.favourite_margin = margin;
        cfg
    };
    // the person puts the first answer first: the reward model, which sees no order, often puts it lower
    let step = |lab: &Lab<CpuGpt>, kept: &mut Vec<Ranking>| {
        let o = lab.offered().unwrap();
        kept.push(ranking(&o));
        lab.submit(ranking(&o), Some(o.id)).unwrap();
        block_on(lab.iterate()).unwrap().metrics
    };
    let run = |within: usize, check_below: f32, margin: f32| {
        let (lab, mut kept) = (lab_with(cfg_with(within, check_below, margin)), Vec::new());
        block_on(lab.start()).unwrap();
        let ms: Vec<_> = (0..4).map(|_| step(&lab, &mut kept)).collect();
        (lab, kept, ms)
    };
    // checked only under an agreement of 0: never, once the reward model has measured any
    let (_, _, open) = run(1, 0.0, 0.0);
    let (lab, kept, strict) = run(1, 1.0, 0.0);
    assert!(open.iter().all(|m| m.doubted_firsts == 0), "unchecked, every first answer is kept");
    assert_eq!(strict[0].doubted_firsts, 0, "no reward model to ask before its first fit");
    let first = strict.iter().position(|m| m.doubted_firsts > 0).expect("a first answer the reward model put lower is doubted");
    for (a, b) in open.iter().zip(&strict).take(first) {
        assert_eq!(format!("{:?}", (&a.update, &a.rollouts)), format!("{:?}", (&b.update, &b.rollouts)), "the same run until a doubt");
    }
    // each fresh ranking's gap is recorded where the reward model was asked: none before its
    // first fit; the doubt's above 0. A margin of that gap keeps the same first answer.
    assert!(strict[0].first_gaps.iter().all(|g| g.is_nan()), "{:?}", strict[0].first_gaps);
    let gap = strict[first].first_gaps.iter().copied().fold(f32::NAN, f32::max);
    assert!(gap > 0.0, "{:?}", strict[first].first_gaps);
    let (_, _, wide) = run(1, 1.0, gap);
    assert_eq!(wide[first].doubted_firsts, 0, "a gap of {gap} is not more than a margin of {gap}");
    assert_eq!(wide[first].first_gaps, strict[first].first_gaps, "the same scores, read before the doubt");
    // the doubts are kept with the state and still counted after a reload
    let state = block_on(lab.snapshot()).unwrap();
    let state = LabState::from_bytes(&state.to_bytes().unwrap(), &lab.model()).unwrap();
    assert_eq!(state.doubted.len(), strict[3].doubted_firsts);
    assert!(state.doubted.iter().all(|&i| i > 0 && i < 4), "{:?}", state.doubted);
    let after = lab_with(cfg_with(1, 1.0, 0.0));
    after.restore(state.clone(), kept.clone()).unwrap();
    block_on(after.start()).unwrap();
    let next = step(&after, &mut kept.clone());
    let again = block_on(after.snapshot()).unwrap().doubted;
    assert!(again.starts_with(&state.doubted), "{again:?} after the reload, {:?} before", state.doubted);
    assert_eq!(next.doubted_firsts, again.len());
}

#[test]
fn an_update_that_takes_the_policy_past_the_kl_limit_is_undone_and_its_batch_sampled_again() {
    let run_with = |kl_limit: Option<f32>, method: MethodKind| {
        let mut cfg = AlignConfig { min_rankings: 1, method, ..AlignConfig::default() };
        cfg.ppo.kl_limit = kl_limit;
        let lab = lab_with(cfg);
        block_on(lab.start()).unwrap();
        (0..3)
            .map(|_| {
                let o = lab.offered().unwrap();
                lab.submit(ranking(&o), Some(o.id)).unwrap();
                let mut m = block_on(lab.iterate()).unwrap().metrics;
                (m.seconds_reward_model, m.seconds_generation, m.seconds_scoring, m.seconds_update) = (0.0, 0.0, 0.0, 0.0);
                m
            })
            .collect::<Vec<_>>()
    };
    let run = |kl_limit| run_with(kl_limit, MethodKind::Ppo);
    let (free, limited, loose) = (run(None), run(Some(1e-6)), run(Some(1000.0)));
    // the first update moved the policy: its next batch is past any limit above zero
    assert!(free[1].rollouts.kl_k1 > 1e-6 && free[1].kl_undone == 0.0);
    assert_eq!(limited[1].kl_undone, free[1].rollouts.kl_k1, "the same run until the limit");
    // undone, the policy is SFT again: the batch sampled again has no KL to it
    assert_eq!(limited[1].rollouts.kl_k1, 0.0);
    assert_eq!(limited[0].kl_undone, 0.0, "nothing to undo before the first update");
    // a limit never reached changes nothing
    let text = |ms: &[rlhf_lab::lab::IterationMetrics]| ms.iter().map(|m| serde_json::to_string(m).unwrap()).collect::<Vec<_>>();
    assert_eq!(text(&loose), text(&free));
    // PPO-ptx's limit: the methods compared beside it run as they were measured
    let dpo = run_with(Some(1e-6), MethodKind::Dpo);
    assert!(dpo[2].rollouts.kl_k1 > 1e-6 && dpo.iter().all(|m| m.kl_undone == 0.0));
}
