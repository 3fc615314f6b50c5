// The rankings' JSONL export and import (www/store.js) against hand-written cases; plain Node, no browser.
import test from "node:test";
import assert from "node:assert/strict";
import { toJsonl, fromJsonl } from "../../www/store.js";

test("an exported file imports whole: ties and answers of the same text ranked apart make no line", () => {
  // the small model can sample the same answer twice; a person may rank the two apart
  const r = { prompt: "Tea?", responses: ["Boil water.", "Boil water.", "Whatever.", "Steep it."], ranks: [0, 1, 2, 2] };
  const lines = toJsonl([r]).trim().split("\n").map((l) => JSON.parse(l));
  const pairs = lines.map((l) => [l.chosen[0].content, l.rejected[0].content]);
  // 0 and 1 are the same text, 2 and 3 a tie: (0,2) (0,3) (1,2) (1,3)
  assert.deepEqual(pairs, [["Boil water.", "Whatever."], ["Boil water.", "Steep it."], ["Boil water.", "Whatever."], ["Boil water.", "Steep it."]]);
  const back = fromJsonl(toJsonl([r]));
  assert.deepEqual(back.errors, []);
  // the two answers of the same text state the same pairs: each imports once
  assert.equal(back.rankings.length, 2);
  assert.equal(back.duplicates, 2);
  // and everything exported counts as already stored against the ranking it came from
  const again = fromJsonl(toJsonl([r]), [r]);
  assert.deepEqual([again.rankings.length, again.errors.length, again.duplicates], [0, 0, 4]);
});

test("the import names the line of a pair of one text", () => {
  const line = JSON.stringify({ prompt: "Tea?", chosen: "Boil water.", rejected: "Boil water." });
  assert.deepEqual(fromJsonl(`${line}\n`).errors, ['line 1: "chosen" and "rejected" are the same text']);
});
