//! The person's side of the lab, which never waits on training: the rankings given so far, the
//! groups of answers waiting to be ranked, the person's own questions, and the history of
//! iterations. Everything here is plain data, changed in calls that return at once.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::{ErrorKind, Result};
use crate::reward::Ranking;

/// A group of answers offered for ranking.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Offer {
    pub id: u64,
    pub prompt: String,
    pub responses: Vec<String>,
    /// The person's own question (answered by the policy as it stands), not a training question.
    pub yours: bool,
    /// What the person should know before ranking: a question outside what the model knows,
    /// answers that read the same.
    pub notes: Vec<String>,
    /// Which answers are the original (SFT) model's, at random places: the page stores them with
    /// the ranking (`Kept`) and never shows them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sft: Vec<usize>,
}

/// A ranking as the browser keeps it: with the places of SFT's answers in the group it ranks, so
/// that its verdict outlives a reload (none for most rankings, and for those kept before places were).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    #[serde(flatten)]
    pub ranking: Ranking,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sft: Vec<usize>,
}

impl From<Ranking> for Kept {
    fn from(ranking: Ranking) -> Kept {
        Kept { ranking, sft: Vec::new() }
    }
}

impl Kept {
    pub fn validate(&self) -> Result<()> {
        self.ranking.validate()?;
        let k = self.ranking.responses.len();
        for (i, &p) in self.sft.iter().enumerate() {
            if p >= k || self.sft[..i].contains(&p) {
                bail!("the places of the original model's answers ({:?}) are not distinct answers of the {k}", self.sft);
            }
        }
        Ok(())
    }
}

/// A ranking's verdict on the policy against SFT: over the pairs of one policy answer and one
/// SFT answer, how many the policy's won (a tie counts half).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Verdict {
    pub wins: f32,
    pub pairs: usize,
}

impl Verdict {
    /// The verdict of `ranks` (lower is better) on a group whose answers `sft` are SFT's.
    pub fn of(ranks: &[usize], sft: &[usize]) -> Verdict {
        let mut v = Verdict::default();
        let theirs: Vec<usize> = sft.iter().filter_map(|&j| ranks.get(j).copied()).collect();
        for (_, &mine) in ranks.iter().enumerate().filter(|(i, _)| !sft.contains(i)) {
            for &rank in &theirs {
                v.wins += match mine.cmp(&rank) {
                    std::cmp::Ordering::Less => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Greater => 0.0,
                };
                v.pairs += 1;
            }
        }
        v
    }

    /// Verdicts added up.
    pub fn sum(vs: impl IntoIterator<Item = Verdict>) -> Verdict {
        vs.into_iter().fold(Verdict::default(), |a, v| Verdict { wins: a.wins + v.wins, pairs: a.pairs + v.pairs })
    }

    /// The policy's share of the pairs (NaN without any).
    pub fn share(&self) -> f32 {
        if self.pairs == 0 {
            f32::NAN
        } else {
            self.wins / self.pairs as f32
        }
    }
}

#[derive(Default)]
pub struct Desk {
    pub rankings: Vec<Ranking>,
    /// Where SFT's answers were in the rankings no iteration has taken yet, of groups that had
    /// some, by the ranking's index (over a reload, from the rankings the browser kept).
    pub sft_places: Vec<(usize, Vec<usize>)>,
    /// Rankings that iterations have taken (the reward model has seen them).
    pub used: usize,
    /// The group handed out and not ranked yet.
    current: Option<Offer>,
    /// The newest batch's other groups, in the order to offer them.
    queue: VecDeque<Offer>,
    next_id: u64,
    /// The person's own questions, for the next batch to include.
    pub asked: Vec<String>,
    /// One record per iteration (metrics, the watched answers, a learning-curve point now and then),
    /// kept as compact JSON text: a third of the memory of parsed values over a long session.
    pub history: Vec<String>,
}

impl Desk {
    fn issue(&mut self, prompt: String, responses: Vec<String>, yours: bool, notes: Vec<String>) -> Offer {
        self.next_id += 1;
        Offer { id: self.next_id, prompt, responses, yours, notes, sft: Vec::new() }
    }

    /// How many groups have been offered so far.
    pub fn issued(&self) -> u64 {
        self.next_id
    }

    /// The group to rank now: the one handed out already, or the next of the newest batch.
    pub fn offered(&mut self) -> Option<Offer> {
        if self.current.is_none() {
            self.current = self.queue.pop_front();
        }
        self.current.clone()
    }

    /// A new batch's groups (offers without their ids, which are given here), in the order to
    /// offer them, replace those not handed out yet; the one in the person's hands stays theirs.
    pub fn publish(&mut self, groups: Vec<Offer>) {
        self.queue = groups.into_iter().map(|o| Offer { sft: o.sft, ..self.issue(o.prompt, o.responses, false, o.notes) }).collect::<Vec<_>>().into();
    }

    /// A group answered on the spot (the person's own question when `yours`): the group to rank now.
    pub fn hand_out(&mut self, prompt: String, responses: Vec<String>, yours: bool, notes: Vec<String>) -> Offer {
        let offer = self.issue(prompt, responses, yours, notes);
        self.current = Some(offer.clone());
        offer
    }

    /// Adds a ranking; when it ranks the group handed out (`offer`), the next group becomes current
    /// and SFT's places are that group's, else the ranking's own (a kept one, or none).
    pub fn submit(&mut self, k: Kept, offer: Option<u64>) -> Result<()> {
        k.validate()?;
        let Kept { ranking: r, mut sft } = k;
        if let Some(id) = offer {
            match &self.current {
                Some(c) if c.id == id => {
                    if c.prompt != r.prompt || c.responses != r.responses {
                        bail!("the ranking is of other answers than the group offered as {id}");
                    }
                    sft = c.sft.clone();
                    self.current = None;
                }
                _ => bail!(kind: ErrorKind::BadInput, "group {id} is not the one waiting to be ranked (it was ranked already, or replaced)"),
            }
        }
        if !sft.is_empty() {
            self.sft_places.push((self.rankings.len(), sft));
        }
        self.rankings.push(r);
        Ok(())
    }

    /// Puts kept rankings in place, the first `used` of them taken already (their verdicts are in
    /// the history): the places of SFT's answers are kept for the rest.
    pub fn restore(&mut self, kept: Vec<Kept>, used: usize) {
        self.sft_places = kept.iter().enumerate().skip(used).filter(|(_, k)| !k.sft.is_empty()).map(|(i, k)| (i, k.sft.clone())).collect();
        self.rankings = kept.into_iter().map(|k| k.ranking).collect();
        self.used = used.min(self.rankings.len());
    }

    /// The rankings no iteration has taken yet, each with the places of SFT's answers in it (none
    /// for most); from now on they count as taken.
    pub fn take_fresh(&mut self) -> (Vec<Ranking>, Vec<Vec<usize>>) {
        let fresh = self.rankings[self.used..].to_vec();
        // every place kept is of a ranking taken now: none is needed after
        let mut places = vec![Vec::new(); fresh.len()];
        for (i, p) in std::mem::take(&mut self.sft_places) {
            if let Some(slot) = i.checked_sub(self.used).and_then(|k| places.get_mut(k)) {
                *slot = p;
            }
        }
        self.used = self.rankings.len();
        (fresh, places)
    }

    /// Whether a ranking waits that no iteration has taken.
    pub fn has_fresh(&self) -> bool {
        self.rankings.len() > self.used
    }
}
