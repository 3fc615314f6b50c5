// The training status line (www/status.js) against hand-written records; plain Node, no browser.
import test from "node:test";
import assert from "node:assert/strict";
import { trainStatus, ordinal } from "../../www/status.js";

const record = (over) => ({ iteration: 5, rankings: 6, reward: 1.234, kl_k1: 3.456, skipped_steps: 0, kl_undone: 0, ...over });
const settings = { first: 4, klCeiling: 5, klLimit: 10 };

test("an ordinary iteration: what it learned from, its reward and KL, nothing more", () => {
  assert.equal(trainStatus(record({}), settings), "Learned from 6 rankings (iteration 6): reward 1.23, KL 3.46 nats.");
});

test("before the policy moves, the line says the reward model alone learned and when the answers change", () => {
  assert.equal(
    trainStatus(record({ rankings: 1, kl_k1: 0 }), settings),
    "Learned from 1 ranking: the reward model only. The answers start to change at your 4th ranking (3 to go): a reward model fitted to fewer would send the model wherever chance points.",
  );
  assert.deepEqual([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 111].map(ordinal), ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "111th"]);
});

test("past the brake's ceiling the line says β rises; an undone update is named with the KL it reached and the limit", () => {
  assert.match(trainStatus(record({ kl_k1: 6.04 }), settings), /moved 6\.0 nats from the original model's, more than the brake's 5: β rises/);
  assert.doesNotMatch(trainStatus(record({ kl_k1: 4.9 }), settings), /brake/, "under the ceiling: no word of it");
  const undone = trainStatus(record({ kl_k1: 2.9, kl_undone: 34.08 }), settings);
  assert.match(undone, /An update had taken the answers 34\.1 nats from the original model's, past the limit of 10: it was undone, and the answers were drawn again from the model before it\.$/);
  assert.doesNotMatch(undone, /brake/, "the batch trained on was under the ceiling");
  // a record from before the limit existed, and a lab without a brake
  assert.equal(trainStatus(record({ kl_undone: undefined, kl_k1: 7 }), { first: 4 }), "Learned from 6 rankings (iteration 6): reward 1.23, KL 7.00 nats.");
});
