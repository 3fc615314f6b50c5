// The watch panel's trust note (www/watch.js) against hand-computed cases; plain Node, no browser.
import test from "node:test";
import assert from "node:assert/strict";
import { trustNote, verdictNote } from "../../www/watch.js";

// A history of iteration records as History (www/history.js) returns them: at(i), negative from the end.
const history = (records) => ({ length: records.length, at: (i) => records[i < 0 ? i + records.length : i] });

test("the note averages the last four iterations that measured the reward model, and counts their rankings", () => {
  const h = history([
    { rankings: 1, rm_new_accuracy: 0.5 },
    { rankings: 2, rm_new_accuracy: null }, // all ties: no measure
    { rankings: 4, rm_new_accuracy: 0.9 }, // an iteration that took two rankings
    { rankings: 5, rm_new_accuracy: 0.8 },
    { rankings: 6, rm_new_accuracy: 1.0 },
    { rankings: 7, rm_new_accuracy: 0.7 },
  ]);
  // (0.7 + 1.0 + 0.8 + 0.9) / 4 = 0.85, over rankings 3 to 7
  assert.equal(trustNote(h), "How far to trust these scores: before learning them, the reward model ordered 85% of the pairs of the last 5 rankings as they were ranked (50% is chance).");
  // as of the second record: 0.5 over rankings 1 and 2 (the tie-only one counts as a ranking, not a measure)
  assert.match(trustNote(h, 1), /ordered 50% of the pairs of the last 2 rankings .* It has not learned this preference yet/);
  assert.match(trustNote(h, 0), /of the last ranking as/);
});

test("under 60% the note says the scores are close to guesses, under 70% rough; without a measure there is no note", () => {
  const at = (a) => trustNote(history([{ rankings: 1, rm_new_accuracy: a }]));
  assert.match(at(0.59), /close to guesses/);
  assert.match(at(0.6), /ordered 60% .* Better than chance, not by much: its scores of new answers are rough\.$/);
  assert.match(at(0.69), /rough\.$/);
  assert.doesNotMatch(at(0.7), /rough|guesses/);
  assert.equal(trustNote(history([{ rankings: 1, rm_new_accuracy: null }])), "");
  assert.equal(trustNote(history([])), "");
});

test("past the 8th ranking a guessing reward model is said to miss the latest rankings, not to know nothing", () => {
  const at = (rankings) => trustNote(history([{ rankings, rm_new_accuracy: 0.54 }]));
  assert.match(at(8), /It has not learned this preference yet: its scores of new answers are close to guesses\.$/);
  assert.match(at(9), /It does not predict your latest rankings from your earlier ones .*: its scores of new answers are close to guesses\.$/);
  assert.doesNotMatch(at(48), /not learned/);
  assert.doesNotMatch(trustNote(history([{ rankings: 48, rm_new_accuracy: 0.95 }])), /guesses/);
});

test("the verdict note sums the last four rankings that held the original's answers, and says when the model started again", () => {
  const h = history([
    { rankings: 8, ranked_vs_sft: null, ranked_vs_sft_pairs: 0 },
    { rankings: 9, ranked_vs_sft: 0.25, ranked_vs_sft_pairs: 12 }, // outside the last four
    { rankings: 10, ranked_vs_sft: 0.5, ranked_vs_sft_pairs: 12 },
    { rankings: 12, ranked_vs_sft: 0.75, ranked_vs_sft_pairs: 24 }, // an iteration of two rankings
    { rankings: 13, ranked_vs_sft: null, ranked_vs_sft_pairs: 0 }, // a group without the original's answers
    { rankings: 14, ranked_vs_sft: 1.0, ranked_vs_sft_pairs: 12 },
    { rankings: 15, ranked_vs_sft: 0.0, ranked_vs_sft_pairs: 12, restarted: true },
  ]);
  // (6 + 18 + 12 + 0) / 60 = 60%
  assert.match(verdictNote(h), /^Your own verdict: in the last 4 rankings you put .* in 60% of their 60 pairs .* Your rankings preferred the original model's answers, so the model in training started again/);
  assert.match(verdictNote(h, 2), /in the last 2 rankings .* in 38% of their 24 pairs/);
  assert.doesNotMatch(verdictNote(h, 5), /started again/);
  assert.equal(verdictNote(h, 0), "");
  assert.equal(verdictNote(history([])), "");
});

test("the verdict note adds the reward model's share of the same pairs when it had one for each", () => {
  const h = history([
    { rankings: 9, ranked_vs_sft: 0.5, ranked_vs_sft_pairs: 12, rm_vs_sft: 0.75 },
    { rankings: 10, ranked_vs_sft: 0.75, ranked_vs_sft_pairs: 12, rm_vs_sft: 1.0 },
  ]);
  // person (6 + 9) / 24 = 63%; reward model (9 + 12) / 24 = 88%
  assert.match(verdictNote(h), /in 63% of their 24 pairs .* The reward model, before learning them, put 88% of those pairs that way: it rates the trained model's answers higher than you do\.$/);
  const near = history([{ rankings: 9, ranked_vs_sft: 0.75, ranked_vs_sft_pairs: 12, rm_vs_sft: 0.8 }]);
  assert.match(verdictNote(near), /put 80% of those pairs that way: about as you do\.$/);
  const under = history([{ rankings: 9, ranked_vs_sft: 0.9, ranked_vs_sft_pairs: 12, rm_vs_sft: 0.6 }]);
  assert.match(verdictNote(under), /put 60% of those pairs that way: it rates them lower than you do/);
  // a record without the reward model's share (before its first fit): no comparison
  const early = history([{ rankings: 9, ranked_vs_sft: 0.5, ranked_vs_sft_pairs: 12, rm_vs_sft: null }, { rankings: 10, ranked_vs_sft: 1, ranked_vs_sft_pairs: 12, rm_vs_sft: 1 }]);
  assert.doesNotMatch(verdictNote(early), /reward model/);
});
