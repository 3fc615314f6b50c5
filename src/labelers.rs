//! Scripted labelers: each ranks K responses by one property a person can see. They stand in for a
//! person in tests, benchmarks and the page's autopilot. Scores are read off the text alone.

use crate::corpus::{CHEERFUL_WORDS, GLOOMY_WORDS, POLITE_WORDS, RUDE_WORDS, TOPICS};
use crate::error::{Error, ErrorKind, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labeler {
    /// Prefers polite words and punishes rude ones.
    Polite,
    /// Prefers short answers that still say something.
    Concise,
    /// Prefers answers about the prompt's topic.
    OnTopic,
    /// Prefers a happy tone over a gloomy one.
    Cheerful,
}

pub const LABELERS: [(&str, Labeler); 4] =
    [("polite", Labeler::Polite), ("concise", Labeler::Concise), ("on_topic", Labeler::OnTopic), ("cheerful", Labeler::Cheerful)];

fn count(text: &str, words: &[&str]) -> f32 {
    words.iter().map(|w| text.matches(w).count()).sum::<usize>() as f32
}

/// The topic a prompt asks about, if the corpus knows it.
pub fn prompt_topic(prompt: &str) -> Option<usize> {
    let p = prompt.to_lowercase();
    TOPICS.iter().position(|t| p.contains(t.name) || p.contains(t.activity))
}

/// Content words of a topic (its name, facts and tips), four letters or more.
fn topic_words(i: usize) -> Vec<String> {
    let t = &TOPICS[i];
    let mut words: Vec<String> = std::iter::once(t.name)
        .chain(t.facts.iter().copied())
        .chain(t.tips.iter().copied())
        .flat_map(|s| s.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.len() >= 4)
        .map(|w| w.to_lowercase())
        .collect();
    words.sort();
    words.dedup();
    words
}

impl Labeler {
    pub fn parse(name: &str) -> Result<Labeler> {
        LABELERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l).ok_or_else(|| {
            let names: Vec<&str> = LABELERS.iter().map(|(n, _)| *n).collect();
            Error::new(ErrorKind::BadInput, format!("unknown labeler '{name}'; choose one of: {}", names.join(", ")))
        })
    }

    pub fn name(&self) -> &'static str {
        LABELERS.iter().find(|(_, l)| l == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// Higher is better.
    pub fn score(&self, prompt: &str, response: &str) -> f32 {
        let text = response.to_lowercase();
        let words = text.split_whitespace().count() as f32;
        match self {
            Labeler::Polite => count(&text, &POLITE_WORDS) - 2.0 * count(&text, &RUDE_WORDS),
            // an empty or one-word answer says nothing: it loses to any sentence
            Labeler::Concise => {
                if words < 3.0 {
                    -100.0
                } else {
                    -words
                }
            }
            Labeler::OnTopic => {
                let Some(topic) = prompt_topic(prompt) else { return 0.0 };
                let own = topic_words(topic);
                let mut score = 0.0;
                for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 4) {
                    if own.iter().any(|o| o == w) {
                        score += 1.0;
                    } else if (0..TOPICS.len()).any(|j| j != topic && topic_words(j).iter().any(|o| o == w)) {
                        score -= 1.0;
                    }
                }
                score
            }
            Labeler::Cheerful => count(&text, &CHEERFUL_WORDS) - count(&text, &GLOOMY_WORDS),
        }
    }

    /// Rank of each response, 0 = best; equal scores share a rank (a tie).
    pub fn rank(&self, prompt: &str, responses: &[String]) -> Vec<usize> {
        let scores: Vec<f32> = responses.iter().map(|r| self.score(prompt, r)).collect();
        scores.iter().map(|s| scores.iter().filter(|&&o| o > *s).count()).collect()
    }

    /// 1 if a is preferred, 0 if b is, 0.5 for a tie.
    pub fn compare(&self, prompt: &str, a: &str, b: &str) -> f32 {
        let (sa, sb) = (self.score(prompt, a), self.score(prompt, b));
        if sa > sb {
            1.0
        } else if sa < sb {
            0.0
        } else {
            0.5
        }
    }
}
