// A person's session in the page, as a visitor gets it (no URL options on the demo model): the
// next group is on screen when the person submits, a question of their own is answered between an
// iteration's steps instead of after it, the model learns once per ranking and then waits, and
// nothing is lost when the Worker dies while it saves.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { serve, launch, open, stored, metricsCount, waitOffer, rankAndSubmit, pause } from "./helpers.mjs";

let server;
before(async () => { server = await serve(); });
after(() => server.close());

const running = (page) => page.evaluate(() => /^Learning from/.test(document.getElementById("train-status").textContent));

test("the demo model: the next answers come at once while it learns, a question never waits for an iteration, and it learns once per ranking", { timeout: 900_000 }, async () => {
  const { ctx, page } = await launch(false);
  try {
    await open(page, server.base, "");
    await waitOffer(page, 300_000);
    const first = await rankAndSubmit(page);
    console.log(`# the second group was on screen ${first} ms after the first ranking`);
    assert.ok(first < 1000, `waited ${first} ms for the next answers`);
    // the first iteration runs now; rankings submitted meanwhile get the next group at once
    await page.waitForFunction(() => /^Learning from/.test(document.getElementById("train-status").textContent), null, { timeout: 60_000 });
    for (let i = 0; i < 3; i++) {
      const during = await rankAndSubmit(page, [1, 2]);
      console.log(`# a ranking submitted while the model learns: the next group ${during} ms later`);
      assert.ok(during < 1000, `waited ${during} ms during an iteration`);
    }
    // a question of the person's own, asked while the policy's update runs (in the iteration that
    // takes the 4th ranking: the policy moves from there), is answered before that iteration ends
    await page.waitForFunction(() => /^Learning from 4 rankings: updating the policy/.test(document.getElementById("train-status").textContent), null, { timeout: 300_000 });
    const iterations = await metricsCount(page);
    await page.fill("#prompt", "What is the capital of France?");
    const t0 = Date.now();
    await page.click("#generate");
    await page.waitForFunction(() => document.getElementById("offer-kind").textContent.startsWith("Your question"), null, { timeout: 60_000 });
    const asked = Date.now() - t0;
    const stillRunning = (await metricsCount(page)) === iterations && (await running(page));
    console.log(`# a question asked during an iteration was answered in ${asked} ms (iteration still running: ${stillRunning})`);
    assert.ok(asked < 3000, `the question waited ${asked} ms`);
    assert.ok(stillRunning, "the answers came before the iteration ended: not queued behind it");
    assert.match(await page.textContent("#offer-notes"), /knows only about tea, coffee/);
    // four rankings, then it waits for the person and says so
    await page.waitForFunction(() => window.__lab.metrics.at(-1)?.rankings === 4 && /^Waiting for your next ranking/.test(document.getElementById("train-status").textContent), null, { timeout: 300_000 });
    const done = await metricsCount(page);
    await page.waitForTimeout(5000);
    assert.equal(await metricsCount(page), done, "no iteration without a new ranking");
    assert.equal((await stored(page)).length, 4);
    assert.match(await page.textContent("#train-status"), /learned from all 4/);
    assert.ok(await page.getAttribute("#offer", "data-offer"), "the group to rank is on screen");
    // each iteration took the rankings that came in since the last one: at least one, all of them
    const taken = await page.evaluate(() => window.__lab.metrics.map((m) => m.rankings));
    assert.ok(taken[0] === 1 && taken.at(-1) === 4 && taken.every((r, i) => i === 0 || r > taken[i - 1]), `rankings taken by the iterations: ${taken}`);
  } finally {
    await ctx.close();
  }
});

test("nothing is lost when the Worker dies while it saves: the last complete state and every ranking come back", { timeout: 600_000 }, async () => {
  const { ctx, page } = await launch(false);
  try {
    await open(page, server.base);
    for (let i = 0; i < 3; i++) await rankAndSubmit(page);
    // rankings that come in during an iteration are learned from together by the next one
    await page.waitForFunction(() => window.__lab.last()?.rankings === 3, null, { timeout: 300_000 });
    await pause(page); // saves
    await page.waitForFunction(() => /Model saved/.test(document.getElementById("saved").textContent), null, { timeout: 120_000 });
    const savedAt = await metricsCount(page);
    await page.click("#train-toggle");
    for (let i = 0; i < 2; i++) await rankAndSubmit(page);
    await page.waitForFunction(() => window.__lab.last()?.rankings === 5, null, { timeout: 300_000 });
    const killedAt = await metricsCount(page);
    // the Worker is killed the moment it starts writing the new state
    await page.evaluate(() => { window.__lab.crashOnSave = true; window.__lab.save().catch(() => {}); });
    await page.waitForFunction(() => window.__lab.crashed, null, { timeout: 120_000 });
    await page.reload();
    await page.waitForSelector("body[data-ready='1']", { timeout: 180_000 });
    assert.doesNotMatch(await page.textContent("#banner"), /could not be restored/);
    // the log keeps it (the status line says it too, until the resumed learning's first phase)
    const resumed = Number((await page.textContent("#data-log")).match(/the model as it was after iteration (\d+)/)?.[1]);
    console.log(`# saved after ${savedAt} iterations, killed while saving after ${killedAt}; resumed after ${resumed}`);
    assert.ok(resumed === savedAt || resumed === killedAt, `a complete state: ${resumed}`);
    assert.equal((await stored(page)).length, 5, "every ranking is kept");
    await page.waitForFunction(() => document.getElementById("ranking-count").textContent.startsWith("5 "));
    // the rankings the state had not seen are learned from now
    await page.waitForFunction((fresh) => !fresh || window.__lab.last()?.rankings === 5, resumed !== killedAt, { timeout: 300_000 });
  } finally {
    await ctx.close();
  }
});
