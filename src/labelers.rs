//! Scripted labelers: each ranks K responses by one property a person can see. They stand in for a
//! person in tests, benchmarks and the page's autopilot. Scores are read off the text alone; no
//! model and no part of the loop sees the rules. A labeler may rank with noise, as a person who
//! contradicts themselves now and then; its win-rates are judged by its noiseless rule.

use crate::corpus::{topic_of, CHEERFUL_WORDS, GLOOMY_WORDS, POLITE_WORDS, RUDE_WORDS, TOPICS};
use crate::error::{Error, ErrorKind, Result};
use crate::rng::Rng;

/// What a labeler prefers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Polite words, and no rude ones.
    Polite,
    /// Short answers that still say something.
    Concise,
    /// Answers about the question's topic.
    OnTopic,
    /// A happy tone over a gloomy one.
    Cheerful,
    /// A tip for the question's topic, said plainly: no courtesy, no mood, no insults.
    Practical,
    /// A gloomy tone over a happy one.
    Gloomy,
}

/// Each rule's name (as the command line and the page spell it) and a sentence on what it prefers.
/// The first four are the ones the defaults were measured on; the others were added to check the
/// defaults on preferences nobody tuned for.
pub const RULES: [(&str, Rule, &str); 6] = [
    ("polite", Rule::Polite, "prefers polite words and punishes rude ones"),
    ("concise", Rule::Concise, "prefers short answers that still say something"),
    ("on_topic", Rule::OnTopic, "prefers answers about the question's topic"),
    ("cheerful", Rule::Cheerful, "prefers a happy tone over a gloomy one"),
    ("practical", Rule::Practical, "prefers a tip for the question's topic, said plainly, without courtesy or mood"),
    ("gloomy", Rule::Gloomy, "prefers a gloomy tone over a happy one"),
];

/// A labeler: a rule, and how noisily it ranks.
#[derive(Clone, Debug)]
pub struct Labeler {
    pub rule: Rule,
    /// Spread of the noise added to each answer's score before ranking (0: none).
    sigma: f32,
    /// The share of pairs it was asked to reverse (see `with_noise`).
    noise: f32,
    rng: Rng,
}

fn count(text: &str, words: &[&str]) -> f32 {
    words.iter().map(|w| text.matches(w).count()).sum::<usize>() as f32
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

/// How many of the topic's tips the text gives (each known by its first three words).
fn tips_given(text: &str, topic: usize) -> f32 {
    TOPICS[topic].tips.iter().filter(|tip| text.contains(&tip.split(' ').take(3).collect::<Vec<_>>().join(" "))).count() as f32
}

impl Rule {
    /// Higher is better.
    pub fn score(self, prompt: &str, response: &str) -> f32 {
        let text = response.to_lowercase();
        let words = text.split_whitespace().count() as f32;
        match self {
            Rule::Polite => count(&text, &POLITE_WORDS) - 2.0 * count(&text, &RUDE_WORDS),
            // an empty or one-word answer says nothing: it loses to any sentence
            Rule::Concise => {
                if words < 3.0 {
                    -100.0
                } else {
                    -words
                }
            }
            Rule::OnTopic => {
                let Some(topic) = topic_of(prompt) else { return 0.0 };
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
            Rule::Cheerful => count(&text, &CHEERFUL_WORDS) - count(&text, &GLOOMY_WORDS),
            Rule::Practical => {
                let tips = topic_of(prompt).map_or(0.0, |t| tips_given(&text, t));
                let fluff = [&POLITE_WORDS, &CHEERFUL_WORDS, &GLOOMY_WORDS, &RUDE_WORDS].iter().map(|w| count(&text, &w[..])).sum::<f32>();
                3.0 * tips - fluff
            }
            Rule::Gloomy => count(&text, &GLOOMY_WORDS) - count(&text, &CHEERFUL_WORDS),
        }
    }
}

/// Standard normal CDF (Abramowitz and Stegun 7.1.26; error below 1.5e-7).
fn phi(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.3275911 * x.abs() / std::f64::consts::SQRT_2);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + y)
    } else {
        0.5 * (1.0 - y)
    }
}

impl Labeler {
    pub const fn new(rule: Rule) -> Labeler {
        Labeler { rule, sigma: 0.0, noise: 0.0, rng: Rng::from_state(0) }
    }

    pub fn parse(name: &str) -> Result<Labeler> {
        RULES.iter().find(|(n, _, _)| *n == name).map(|(_, r, _)| Labeler::new(*r)).ok_or_else(|| {
            let names: Vec<&str> = RULES.iter().map(|(n, _, _)| *n).collect();
            Error::new(ErrorKind::BadInput, format!("unknown labeler '{name}'; choose one of: {}", names.join(", ")))
        })
    }

    pub fn name(&self) -> &'static str {
        RULES.iter().find(|(_, r, _)| *r == self.rule).map(|(n, _, _)| *n).unwrap_or("?")
    }

    /// The same rule, ranking with noise: each answer's score gets Gaussian noise before ranking,
    /// its spread chosen so that of the pairs of the grammar's answers (every style, every topic)
    /// that the rule orders, a share `reversed` comes out reversed (0.25: a quarter).
    pub fn with_noise(mut self, reversed: f32, seed: u64) -> Result<Labeler> {
        if !(0.0..0.5).contains(&reversed) {
            crate::bail!("the share of reversed pairs must be in [0, 0.5), got {reversed}");
        }
        let gaps = self.score_gaps();
        // P(a pair with gap d is reversed) = Φ(−d / (σ√2)); mean over the gaps, bisected in σ
        let reversal = |sigma: f64| gaps.iter().map(|&d| phi(-d / (sigma * std::f64::consts::SQRT_2))).sum::<f64>() / gaps.len().max(1) as f64;
        let (mut lo, mut hi) = (1e-6f64, 1e4f64);
        for _ in 0..200 {
            let mid = (lo * hi).sqrt();
            if reversal(mid) < reversed as f64 {
                lo = mid
            } else {
                hi = mid
            }
        }
        self.sigma = if reversed > 0.0 { lo as f32 } else { 0.0 };
        self.noise = reversed;
        self.rng = Rng::new(seed);
        Ok(self)
    }

    /// The share of pairs `with_noise` was asked to reverse.
    pub fn noise(&self) -> f32 {
        self.noise
    }

    /// Score differences of the pairs the rule orders, among answers in every style to every topic.
    fn score_gaps(&self) -> Vec<f64> {
        let mut rng = Rng::new(0xCA1);
        let mut gaps = Vec::new();
        for t in TOPICS.iter() {
            let prompt = crate::corpus::prompt_for(t, &mut rng);
            let scores: Vec<f32> = crate::corpus::STYLES.iter().map(|&s| self.rule.score(&prompt, &crate::corpus::respond(t, s, &mut rng))).collect();
            for i in 0..scores.len() {
                for j in i + 1..scores.len() {
                    if scores[i] != scores[j] {
                        gaps.push((scores[i] - scores[j]).abs() as f64);
                    }
                }
            }
        }
        gaps
    }

    /// Higher is better (the noiseless rule).
    pub fn score(&self, prompt: &str, response: &str) -> f32 {
        self.rule.score(prompt, response)
    }

    /// Rank of each response, 0 = best; equal scores share a rank (a tie). With noise, each score
    /// is perturbed first (and ties are then broken by the noise).
    pub fn rank(&mut self, prompt: &str, responses: &[String]) -> Vec<usize> {
        let mut scores: Vec<f32> = responses.iter().map(|r| self.score(prompt, r)).collect();
        if self.sigma > 0.0 {
            for s in scores.iter_mut() {
                *s += self.sigma * self.rng.normal();
            }
        }
        crate::reward::ranks_of(&scores)
    }

    /// 1 if a is preferred, 0 if b is, 0.5 for a tie: by the noiseless rule.
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
