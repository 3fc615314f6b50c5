// A person's session on the demo model for screenshots: six rankings by keyboard at a few seconds
// each, a question outside the model's topics, then viewport shots of each section at laptop and
// phone widths in test-artifacts/session-*.png (docs/session-*.png came from this).
// usage: node bench/session_shots.mjs
import { serve, launch, waitOffer, rankAndSubmit, sectionShots, artifacts } from "../tests/browser/helpers.mjs";
const server = await serve();
const { ctx, page } = await launch(true);
await page.goto(`${server.base}/`);
await page.waitForSelector("body[data-ready='1']", { timeout: 600_000 });
await waitOffer(page, 600_000);
const orders = [[2, 1, 3], [1, 3], [3, 1, 2], [1, 2], [2, 3, 1], [1, 4]];
for (const o of orders) { await page.waitForTimeout(3000); console.log("wait ms", await rankAndSubmit(page, o)); }
await page.fill("#prompt", "What is the capital of France?");
await page.click("#generate");
await page.waitForTimeout(3000);
for (let i = 0; i < 40; i++) {
  const st = await page.evaluate(() => [window.__lab.iterations, document.getElementById("train-status").textContent, document.getElementById("banner").textContent]);
  console.log(i, JSON.stringify(st).slice(0, 300));
  if (st[0] >= 2 && /^Waiting/.test(st[1])) break;
  await page.waitForTimeout(15000);
}
await sectionShots(page, `${artifacts}/session-`);
console.log(await page.textContent("#train-status"));
await ctx.close(); server.close();
