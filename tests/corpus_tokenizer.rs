//! The generated corpus and the tokenizer trained on it.

use rlhf_lab::corpus::*;
use rlhf_lab::rng::Rng;
use rlhf_lab::tokenizer::Tokenizer;

#[test]
fn the_corpus_is_reproducible_and_covers_every_style_and_topic() {
    let a = Corpus::generate(2000, 7);
    let b = Corpus::generate(2000, 7);
    assert_eq!(a.all_text(), b.all_text());
    assert_ne!(a.all_text(), Corpus::generate(2000, 8).all_text());
    for s in STYLES {
        assert!(a.dialogues.iter().filter(|d| d.style == s).count() > 100, "{s:?} is rare");
    }
    for t in 0..TOPICS.len() {
        assert!(a.dialogues.iter().any(|d| d.topic == t));
    }
    assert!(a.demonstrations.iter().all(|d| DEMONSTRATION_STYLES.contains(&d.style)));
    assert!(a.demonstrations.iter().any(|d| d.style == Style::Helpful));
    assert!(!a.prose.is_empty() && a.prose.iter().all(|p| !p.contains(USER)));
}

fn has_any(text: &str, words: &[&str]) -> bool {
    let t = text.to_lowercase();
    words.iter().any(|w| t.contains(w))
}

#[test]
fn styles_differ_in_ways_a_person_sees() {
    let mut rng = Rng::new(3);
    for topic in &TOPICS {
        let r = |s, rng: &mut Rng| respond(topic, s, rng);
        let helpful = r(Style::Helpful, &mut rng);
        assert!(has_any(&helpful, &POLITE_WORDS) && !has_any(&helpful, &RUDE_WORDS), "{helpful}");
        assert!(has_any(&r(Style::Rude, &mut rng), &RUDE_WORDS));
        assert!(has_any(&r(Style::Cheerful, &mut rng), &CHEERFUL_WORDS));
        assert!(has_any(&r(Style::Gloomy, &mut rng), &GLOOMY_WORDS));
        let curt = r(Style::Curt, &mut rng);
        let long = r(Style::Long, &mut rng);
        assert!(curt.len() * 2 < long.len(), "{curt} / {long}");
        assert!(!r(Style::OffTopic, &mut rng).to_lowercase().contains(topic.name));
        let ramble = r(Style::Rambling, &mut rng);
        assert!(ramble.matches(topic.name).count() >= 3, "{ramble}");
    }
}

#[test]
fn the_tokenizer_round_trips_text_and_keeps_special_tokens_whole() {
    let corpus = Corpus::generate(300, 1);
    let tok = Tokenizer::train(&corpus.all_text(), 400).unwrap();
    assert!(tok.vocab_size() <= 400);
    let text = format_dialogue("How do I bake bread at home?", "Sure! Bread needs flour, water, salt and yeast. Émile says: ok?");
    let ids = tok.encode(&text).unwrap();
    assert_eq!(ids[0], tok.user);
    assert_eq!(*ids.last().unwrap(), tok.end);
    assert!(ids.contains(&tok.assistant));
    assert_eq!(tok.decode(&ids).unwrap(), text, "decoding must give back the exact text");
    // saved and reloaded, the same ids
    let again = Tokenizer::from_json(&tok.to_json().unwrap()).unwrap();
    assert_eq!(again.encode(&text).unwrap(), ids);
    assert!(Tokenizer::from_json("{}").is_err());
    assert!(tok.decode(&[100_000]).is_err());
}
