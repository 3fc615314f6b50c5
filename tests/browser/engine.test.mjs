// The CPU engine in the page across Workers and builds: two Workers give one Worker's results (the
// fallback) within float tolerance, the plain SIMD build (for browsers without relaxed SIMD) the
// relaxed one's, and a long session's memory stays flat.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { serve, launch, open, waitOffer, pause } from "./helpers.mjs";

let server;
before(async () => { server = await serve(); });
after(() => server.close());

/// The first `n` iterations' metrics with the autopilot on, on `workers` Workers (and the build
/// `simd` names, else the browser's fastest).
async function firstIterations(workers, n, simd = null) {
  const { ctx, page } = await launch(false);
  try {
    // one seed for every page compared: a session otherwise draws its own
    await open(page, server.base, `?preset=tiny&seed=7&workers=${workers}${simd ? `&simd=${simd}` : ""}`);
    const adapter = await page.textContent("#adapter");
    const build = await page.getAttribute("#adapter", "data-build");
    await waitOffer(page);
    await page.selectOption("#labeler", "cheerful");
    await page.check("#autopilot");
    await page.waitForFunction((k) => window.__lab.iterations >= k, n, { timeout: 300_000 });
    await page.uncheck("#autopilot");
    return { adapter, build, metrics: await page.evaluate((k) => window.__lab.metrics.slice(0, k), n) };
  } finally {
    await ctx.close();
  }
}

/// The metrics of two runs agree within float tolerance, iteration by iteration.
function assertClose(x, y, what) {
  for (let i = 0; i < x.metrics.length; i++) {
    for (const key of ["reward", "kl_k1", "policy_loss", "rm_loss", "rm_accuracy", "ptx_loglik", "entropy"]) {
      const [a, b] = [x.metrics[i][key], y.metrics[i][key]];
      assert.ok(Math.abs(a - b) <= 1e-3 + 1e-3 * Math.abs(a), `iteration ${i} ${key}: ${a} ${what[0]}, ${b} ${what[1]}`);
    }
  }
}

test("the CPU engine on two Workers learns as on one (the fallback), and the plain SIMD build as the relaxed one, within float tolerance", { timeout: 900_000 }, async () => {
  // five iterations: the policy moves from the 4th ranking on (the defaults' min-rankings), so the
  // last two hold PPO-ptx's update to the same tolerance
  const one = await firstIterations(1, 5);
  const two = await firstIterations(2, 5);
  const plain = await firstIterations(2, 5, "plain");
  assert.ok(two.metrics.at(-1).kl_k1 > 0, "the policy moved in the iterations compared");
  assert.match(one.adapter, /CPU reference in wasm \(/, one.adapter);
  assert.match(two.adapter, /CPU reference in wasm on 2 Workers/, two.adapter);
  // Chromium has relaxed SIMD: a visitor's page loads the build with the fused multiply-add
  assert.equal(two.build, "relaxed");
  assert.match(two.adapter, /wasm SIMD with fused multiply-add/, two.adapter);
  assert.equal(plain.build, "plain");
  assert.match(plain.adapter, /· wasm SIMD$/, plain.adapter);
  assertClose(one, two, ["on one Worker", "on two"]);
  assertClose(two, plain, ["with relaxed SIMD", "with plain SIMD"]);
});

test("memory stays flat: after 200 iterations within 10% of its level after 10", { timeout: 1_200_000 }, async () => {
  const { ctx, page } = await launch(false);
  try {
    await open(page, server.base);
    await waitOffer(page);
    await page.selectOption("#labeler", "polite");
    await page.check("#autopilot");
    // each level is taken right after a save, which the page makes every minute of a session: its
    // transient copies of the models are part of the working set from the first minute on
    const at = async (n) => {
      await page.waitForFunction((k) => window.__lab.iterations >= k, n, { timeout: 900_000 });
      await page.evaluate(() => window.__lab.save());
      await page.evaluate(() => window.gc && window.gc());
      const heap = await page.evaluate(() => performance.memory.usedJSHeapSize);
      const { wasm } = await page.evaluate(() => window.__lab.memory());
      return { heap, wasm };
    };
    const early = await at(10);
    const late = await at(200);
    await pause(page);
    console.log(`# after 10 iterations: JS heap ${(early.heap / 1e6).toFixed(1)} MB, wasm ${(early.wasm / 1e6).toFixed(1)} MB; after 200: ${(late.heap / 1e6).toFixed(1)} MB, ${(late.wasm / 1e6).toFixed(1)} MB`);
    assert.ok(late.heap <= 1.1 * early.heap, `the page's JS heap grew from ${early.heap} to ${late.heap}`);
    assert.ok(late.wasm <= 1.1 * early.wasm, `the engine's wasm memory grew from ${early.wasm} to ${late.wasm}`);
  } finally {
    await ctx.close();
  }
});
