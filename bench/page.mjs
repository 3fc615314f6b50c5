// The page's engine against the native one, in one run: the visitor's page (the demo model, every
// default, the engine the start-up measurement picks, the Workers the browser's cores allow) with
// the autopilot for N rankings, then `rlhf align` natively with the same labeler, the seed the page drew and the same loop
// (the autopilot ranks at once: --lag 0); an iteration's seconds at the 1st, 5th, 16th and last ranking
// on both, and their ratio. Also a PPO-ptx policy minibatch of the demo's shape timed in the page
// on 1, 2, 4 and 8 Workers (and on 1 and 2 with the plain SIMD build, for browsers without relaxed
// SIMD), and the page's memory (JS heap, the engine Worker's wasm) after 10
// iterations and after the last.
//
// usage: node bench/page.mjs [RANKINGS, default 64] [LABELER, default cheerful] > bench/page/run.jsonl
//        node bench/page.mjs workers > bench/page/workers.jsonl   (the minibatch alone, three rounds)
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { serve, launch, waitOffer, pause } from "../tests/browser/helpers.mjs";

// `workers` instead of a number: only the minibatch on 1 and 2 Workers, three rounds
const workersOnly = process.argv[2] === "workers";
const rankings = workersOnly ? 0 : Number(process.argv[2] || 64);
const labeler = process.argv[3] || "cheerful";
const rlhf = process.env.RLHF || path.join(process.env.CARGO_TARGET_DIR || `${os.homedir()}/.cache/rlhf-lab/target`, "release/rlhf");
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const seconds = (m) => m.seconds_reward_model + m.seconds_scoring + m.seconds_update + m.seconds_generation;
// an iteration's seconds around a ranking: the mean over the iterations that took rankings n−1..n+1
const around = (ms, n) => {
  const near = ms.filter((m) => Math.abs(m.rankings - n) <= 1);
  return near.reduce((a, m) => a + seconds(m), 0) / Math.max(1, near.length);
};

const server = await serve();
const { ctx, page } = await launch(true);
try {
  await page.goto(`${server.base}/`);
  await page.waitForSelector("body[data-ready='1']", { timeout: 600_000 });
  await waitOffer(page, 600_000);
  // the native run below uses the seed the page drew for its session
  const labSeed = await page.evaluate(() => window.__lab.seed);
  out({ engine: await page.textContent("#adapter"), cores: await page.evaluate(() => navigator.hardwareConcurrency), lab_seed: labSeed });
  const build = await page.getAttribute("#adapter", "data-build");
  // the engine Worker answers the watched questions after start-up: let it finish before timing
  await page.waitForTimeout(15_000);
  if (workersOnly) {
    for (let round = 1; round <= 3; round++) {
      const [one, two] = [await page.evaluate(() => window.__lab.timePolicyStep(1)), await page.evaluate(() => window.__lab.timePolicyStep(2))];
      out({ round, policy_minibatch_ms: { 1: one, 2: two }, speedup: one / two, build });
    }
    await ctx.close();
    server.close();
    process.exit(0);
  }
  for (const workers of [1, 2, 4, 8]) {
    out({ policy_minibatch_ms: await page.evaluate((w) => window.__lab.timePolicyStep(w), workers), workers, build });
  }
  if (build !== "plain") {
    const plain = await ctx.newPage();
    await plain.goto(`${server.base}/?simd=plain&engine=cpu`);
    await waitOffer(plain, 600_000);
    for (const workers of [1, 2]) {
      out({ policy_minibatch_ms: await plain.evaluate((w) => window.__lab.timePolicyStep(w), workers), workers, build: "plain" });
    }
    await plain.close();
  }
  await page.selectOption("#labeler", labeler);
  await page.check("#autopilot");
  const memoryAt = async (n) => {
    await page.waitForFunction((k) => window.__lab.iterations >= k, n, { timeout: 3_600_000 });
    await page.evaluate(() => window.__lab.save());
    await page.evaluate(() => window.gc && window.gc());
    out({ memory_after: n, js_heap: await page.evaluate(() => performance.memory.usedJSHeapSize), wasm: (await page.evaluate(() => window.__lab.memory())).wasm });
  };
  await memoryAt(10);
  await memoryAt(rankings);
  await page.uncheck("#autopilot");
  await pause(page);
  const pageMs = await page.evaluate(() => window.__lab.metrics);
  for (const m of pageMs) out({ page: { rankings: m.rankings, seconds: seconds(m), reward_model: m.seconds_reward_model, scoring: m.seconds_scoring, update: m.seconds_update, generation: m.seconds_generation } });
  await ctx.close();
  server.close();
  const native = execFileSync(rlhf, ["align", "--model", "www/assets/base", "--labeler", labeler, "--seed", String(labSeed), "--lag", "0", "--rankings", String(rankings), "--json"], { encoding: "utf8", maxBuffer: 1 << 28 })
    .trim().split("\n").map((l) => JSON.parse(l)).filter((d) => d.iteration !== undefined);
  for (const m of native) out({ native: { rankings: m.rankings, seconds: seconds(m) } });
  // the 5th: the first iterations with a PPO-ptx update (the policy waits for 4 rankings)
  for (const n of [1, 5, 16, rankings]) {
    const [p, q] = [around(pageMs, n), around(native, n)];
    out({ iteration_at: n, page_s: p, native_s: q, ratio: p / q });
  }
} finally {
  server.close();
}
