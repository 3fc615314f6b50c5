// A simulated person in the page: the visitor's page with nothing changed (the demo model, every
// default, no autopilot, the engine the start-up measurement picks), a person who reads each group
// of answers for 2.5 to 5 seconds per answer (10 to 20 s for four), ranks it by a scripted
// labeler's rule (`rlhf rank`, with noise when asked) by typing the answers' numbers and ticking
// ties, and submits. The page's export of the models after 4, 8, 12 and 16 rankings is judged
// afterwards by `rlhf eval` on the held-out prompts (the benchmark's protocol, with the answer seed
// every session shares and with the session's own). Writes one JSON
// object per line: each ranking (the wait for the next answers, the reading time, whether a save or
// an export of the models overlapped the wait), each iteration the page reported, each save (its
// times and size), each evaluation, and a summary.
//
// usage: node bench/person.mjs LABELER SEED [NOISE] > bench/person/LABELER-seedSEED.jsonl
//   (RANKINGS=N for a shorter or a longer session: past 16 the page's export is judged every 8
//   rankings; READING=group for 10 to 20 s per group whatever K; SHOTS=DIR for viewport shots of
//   the page's sections at laptop and phone widths when the session ends; KEEP=DIR keeps the
//   exports in DIR/after-N, to be judged again with other answer seeds by bench/person_spread.sh)
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { serve, launch, waitOffer, sectionShots } from "../tests/browser/helpers.mjs";

const [labeler, seedArg, noiseArg] = process.argv.slice(2);
if (!labeler || !seedArg) {
  console.error("usage: node bench/person.mjs LABELER SEED [NOISE]");
  process.exit(2);
}
const seed = Number(seedArg);
const noise = Number(noiseArg || 0);
const RANKINGS = Number(process.env.RANKINGS || 16);
// READING=group: 10 to 20 s per group however many answers it has (a person who skims six answers
// as fast as four): the engine then has less time per ranking
const PER_GROUP = process.env.READING === "group";
// the learning curve: every 4 rankings to the 16th, then every 8 (a long session)
const EXPORT_AT = [4, 8, 12, 16].filter((n) => n <= RANKINGS);
for (let n = 24; n <= RANKINGS; n += 8) EXPORT_AT.push(n);
const rlhf = process.env.RLHF || path.join(process.env.CARGO_TARGET_DIR || `${os.homedir()}/.cache/rlhf-lab/target`, "release/rlhf");
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

// reading times: seeded, uniform in [2.5, 5] seconds per answer (10 to 20 s for a group of four, 15
// to 30 s for six)
let state = seed * 2654435761 >>> 0;
const uniform = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);

// the person's rule, in the project's one implementation of it
const ranker = spawn(rlhf, ["rank", "--labeler", labeler, "--noise", String(noise), "--seed", String(seed)], { stdio: ["pipe", "pipe", "inherit"] });
const lines = readline.createInterface({ input: ranker.stdout })[Symbol.asyncIterator]();
async function rank(prompt, responses) {
  ranker.stdin.write(`${JSON.stringify({ prompt, responses })}\n`);
  return JSON.parse((await lines.next()).value).ranks;
}

// Types the answers' numbers best first, then ticks "tie" where an answer ranks as the one above.
async function enter(page, ranks) {
  const order = ranks.map((r, i) => [r, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
  await page.focus("body");
  for (const i of order) await page.keyboard.press(String(i + 1));
  for (let pos = 1; pos < order.length; pos++) {
    if (ranks[order[pos]] === ranks[order[pos - 1]]) await page.check(`#answers li:nth-child(${pos + 1}) input[type=checkbox]`);
  }
}

// The page's export once the model has learned from `n` rankings (the person reads on meanwhile).
const exportTimes = []; // [start, end] of each export of the models (the Worker serializes them in its thread)
async function exportModels(page, n, dir) {
  await page.waitForFunction((k) => (window.__lab.last()?.rankings ?? 0) >= k, n, { timeout: 1_200_000 });
  const span = [Date.now(), Infinity];
  exportTimes.push(span);
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 600_000 }), page.click("#export-model")]);
  span[1] = Date.now();
  fs.mkdirSync(dir, { recursive: true });
  const tar = path.join(dir, "export.tar");
  await download.saveAs(tar);
  execFileSync("tar", ["xf", tar, "-C", dir]);
}

const server = await serve();
const { ctx, page } = await launch(true);
const work = process.env.KEEP || fs.mkdtempSync(path.join(os.tmpdir(), "rlhf-person-"));
page.on("console", (m) => { if (m.type() === "error") console.error("page:", m.text()); });
try {
  const t0 = Date.now();
  await page.goto(`${server.base}/`);
  await page.waitForSelector("body[data-ready='1']", { timeout: 600_000 });
  await waitOffer(page, 600_000);
  const engine = await page.textContent("#adapter");
  // the seed the page drew for this session (its questions and samples), not the person's
  const labSeed = await page.evaluate(() => window.__lab.seed);
  out({ loaded_s: (Date.now() - t0) / 1e3, engine, lab_seed: labSeed });
  const sessionStart = Date.now();
  let reading = 0;
  const exports = [];
  let exporting = Promise.resolve();
  for (let n = 1; n <= RANKINGS; n++) {
    const begun = Date.now();
    const id = await page.getAttribute("#offer", "data-offer");
    const prompt = await page.textContent("#offer-prompt");
    // the answers as first shown, in the lab's order
    const responses = await page.$$eval("#answers li .text", (l) => l.map((x) => x.textContent));
    const read = (PER_GROUP ? 1 : responses.length / 4) * (10 + 10 * uniform());
    reading += read;
    const ranks = await rank(prompt, responses);
    await page.waitForTimeout(read * 1000);
    const training = await page.evaluate(() => /^Learning from/.test(document.getElementById("train-status").textContent));
    const typing = Date.now();
    await enter(page, ranks);
    const submittedPage = await page.evaluate(() => performance.now());
    const submitted = Date.now();
    await page.click("#submit-ranking");
    await page.waitForFunction((old) => { const o = document.getElementById("offer").dataset.offer; return o && o !== old; }, id, { timeout: 600_000 });
    const shown = Date.now();
    const wait = (shown - submitted) / 1e3;
    // what else held the Worker meanwhile: a save's serialization finished (or its put ran), or an
    // export of the models was under way
    const shownPage = await page.evaluate(() => performance.now());
    const saveDuring = await page.evaluate(([a, b]) => window.__lab.saves.some((s) => (s.serialized >= a && s.serialized <= b) || (s.serialized < a && !(s.stored < a))), [submittedPage, shownPage]);
    const exportDuring = exportTimes.some(([a, b]) => a <= shown && b >= submitted);
    // typing_s: the simulated person's keys and tie boxes (Playwright's round trips included), part
    // of the session's length beyond reading and waiting; other_s: the rest of the ranking's time
    // (reading the group off the page, the ranking rule, Playwright's other round trips)
    const other = (Date.now() - begun) / 1e3 - read - (submitted - typing) / 1e3 - wait;
    out({ ranking: n, prompt, read_s: read, typing_s: (submitted - typing) / 1e3, wait_s: wait, other_s: other, engine_busy_at_submit: training, save_during_wait: saveDuring, export_during_wait: exportDuring });
    if (EXPORT_AT.includes(n)) {
      const dir = path.join(work, `after-${n}`);
      exporting = exporting.then(() => exportModels(page, n, dir));
      exports.push([n, dir]);
    }
  }
  // the session: from the first answers on screen to the last ranking submitted and the next answers shown
  const session = (Date.now() - sessionStart) / 1e3;
  await exporting;
  const saves = await page.evaluate(() => window.__lab.saves.map((s) => ({ serialized_ms: s.serialized, stored_ms: s.stored ?? null, bytes: s.bytes ?? null })));
  const metrics = await page.evaluate(() => window.__lab.metrics.map((m) => ({ iteration: m.iteration, rankings: m.rankings, kl: m.kl_k1, reward: m.reward,
    kl_undone: m.kl_undone ?? 0, verdict: m.ranked_vs_sft ?? null, verdict_pairs: m.ranked_vs_sft_pairs ?? 0,
    seconds: m.seconds_reward_model + m.seconds_scoring + m.seconds_update + m.seconds_generation })));
  for (const m of metrics) out({ iteration: m });
  // how many of the original model's answers each stored ranking says its group had (kept for reloads)
  out({ stored_sft_places: await page.evaluate(async () => (await window.__lab.rankingsStored()).map((r) => r.sft?.length ?? 0)) });
  for (const s of saves) out({ save: s });
  if (process.env.SHOTS) {
    fs.mkdirSync(process.env.SHOTS, { recursive: true });
    await sectionShots(page, `${process.env.SHOTS}/`);
  }
  await ctx.close();
  server.close();
  ranker.stdin.end();
  // the protocol's draw as `rlhf eval` makes it when not told a seed (the one every session shares,
  // kept for comparison with the earlier sessions), and the draw of this session's own seed, as a
  // native run draws with its seed (s ^ 0xE7): the sessions' draws then differ as the runs' do
  const ownSeed = (BigInt(labSeed) ^ 0xE7n).toString();
  const judge = (dir, seed) => JSON.parse(execFileSync(rlhf, ["eval", "--model", path.join(dir, "policy"), "--reference", "www/assets/base", "--labeler", labeler, ...seed], { encoding: "utf8" })).win_rate;
  for (const [n, dir] of exports) {
    const kl = metrics.filter((m) => m.rankings <= n).at(-1)?.kl;
    out({ eval: { rankings: n, win_rate_vs_sft: judge(dir, []), kl, win_rate_own_seed: judge(dir, ["--seed", ownSeed]) } });
  }
  out({ summary: { labeler, noise, seed, lab_seed: labSeed, reading: PER_GROUP ? "10-20 s per group" : "2.5-5 s per answer", rankings: RANKINGS, session_s: session, reading_s: reading, iterations: metrics.length } });
} finally {
  if (!process.env.KEEP) fs.rmSync(work, { recursive: true, force: true });
}
