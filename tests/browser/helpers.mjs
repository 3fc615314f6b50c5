// What the browser tests share: a static server for www/, Debian's Chromium headless with WebGPU
// on SwiftShader (or without WebGPU), and the page's own moves (wait for the offered group, rank
// it by keyboard, submit). A test that names no engine gets what a visitor gets: the engine the
// start-up measurement picks, and every default setting.
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../www");
export const artifacts = path.resolve(root, "../test-artifacts");
fs.mkdirSync(artifacts, { recursive: true });
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm" };

// --hide-scrollbars: overlay scrollbars, as on a phone. Without it the layout is 15 px narrower than
// the viewport, and a full-page screenshot (which drops the scrollbar) lays the page out at the full
// width but captures the narrower one, cutting off the right edge.
const BASE_ARGS = ["--headless=new", "--hide-scrollbars", "--no-sandbox", "--disable-gpu-sandbox", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--js-flags=--expose-gc"];
const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-angle=swiftshader"];

/// Serves www/ on localhost; resolves to its base address and a close function.
export async function serve() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const file = path.join(root, decodeURIComponent(url.pathname === "/" ? "/index.html" : url.pathname));
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream", "content-length": fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { base: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

export async function launch(webgpu, viewport = { width: 1280, height: 900 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rlhf-chromium-"));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: false, // --headless=new below: the mode that gives WebGPU
    args: [...BASE_ARGS, ...(webgpu ? WEBGPU_ARGS : [])],
    viewport,
    acceptDownloads: true,
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  watchErrors(page);
  return { ctx, page };
}

export function watchErrors(page) {
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
}

export async function open(page, base, query = "?preset=tiny") {
  await page.goto(`${base}/${query}`);
  await page.waitForSelector("body[data-ready='1']", { timeout: 180_000 });
}

// Charts off screen are redrawn when they come into view: scroll each into view first, as a reader would.
export async function shot(page, name) {
  await page.evaluate(async () => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const y = window.scrollY;
    for (const f of document.querySelectorAll("figure.plot")) {
      f.scrollIntoView();
      await frame();
    }
    window.scrollTo(0, y);
    await frame();
  });
  return page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}
// Viewport shots of the page's sections (the top with the group to rank, training, the watched
// answers, the plots), at laptop width and then at a phone's: PREFIX + "laptop-train.png" and so on.
export async function sectionShots(page, prefix) {
  for (const [tag, width, height] of [["laptop", 1280, 900], ["phone", 390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(1000);
    for (const sel of ["body", "#train", "#watch", "#plots"]) {
      await page.evaluate((s) => document.querySelector(s).scrollIntoView(), sel);
      await page.waitForTimeout(500);
      await page.screenshot({ path: `${prefix}${tag}-${sel.replace(/\W/g, "")}.png` });
    }
  }
}
export const stored = (page) => page.evaluate(() => window.__lab.rankingsStored());
export const metricsCount = (page) => page.evaluate(() => window.__lab.iterations);
export const offerId = (page) => page.getAttribute("#offer", "data-offer");

/// Waits for a group of answers to be on screen; returns its id.
export async function waitOffer(page, timeout = 120_000) {
  await page.waitForFunction(() => document.getElementById("offer").dataset.offer, null, { timeout });
  return offerId(page);
}

/// Ranks the group on screen by typing answer numbers (`order`, 1-based, best first) and submits;
/// resolves to the id of the group it ranked and the time of the click.
export async function submitRanking(page, order = [2, 1]) {
  const ranked = await waitOffer(page);
  await page.focus("body");
  for (const n of order) await page.keyboard.press(String(n));
  const at = Date.now();
  await page.click("#submit-ranking");
  return { ranked, at };
}

/// `submitRanking`, then waits for the next group; resolves to the milliseconds from the click
/// until it was on screen.
export async function rankAndSubmit(page, order = [2, 1]) {
  const { ranked, at } = await submitRanking(page, order);
  await page.waitForFunction((b) => { const o = document.getElementById("offer").dataset.offer; return o && o !== b; }, ranked, { timeout: 300_000 });
  return Date.now() - at;
}

/// Lets the autopilot's labeler rank until `n` iterations have run, then pauses learning.
export async function trainUntil(page, n, labeler) {
  await page.selectOption("#labeler", labeler);
  await page.check("#autopilot");
  const t0 = Date.now();
  await page.waitForFunction((k) => window.__lab.iterations >= k, n, { timeout: 600_000 });
  const t1 = Date.now();
  await page.uncheck("#autopilot");
  await pause(page);
  // where the time went, for a run that comes close to its limits
  const parts = await page.evaluate(() => window.__lab.metrics.map((m) =>
    [m.seconds_reward_model, m.seconds_scoring, m.seconds_update, m.seconds_generation].map((s) => s.toFixed(0)).join("/")));
  console.log(`# ${n} iterations in ${((t1 - t0) / 1e3).toFixed(0)} s, the pause ${((Date.now() - t1) / 1e3).toFixed(0)} s; ` +
    `seconds per iteration (reward model/scoring/update/sampling): ${parts.join(" ")}`);
}

export async function pause(page) {
  if (await page.getAttribute("#train-toggle", "data-running")) await page.click("#train-toggle");
  await page.waitForFunction(() => !document.getElementById("train-toggle").dataset.running, null, { timeout: 300_000 });
}

// K sits with the other settings, folded away
export async function setK(page, k) {
  await page.evaluate(() => { document.getElementById("controls").open = true; });
  await page.fill("#setting-k", String(k));
  await page.dispatchEvent("#setting-k", "change");
  // applied after any iteration that runs: groups offered from then on have k answers
  await page.waitForFunction((n) => new RegExp(`is now ${n}\\.$`).test(document.getElementById("settings-status").textContent), k, { timeout: 300_000 });
}

export async function measure(page, labeler) {
  await page.selectOption("#measure-labeler", labeler);
  await page.evaluate(() => { document.getElementById("win-rate").dataset.value = ""; });
  await page.click("#measure");
  await page.waitForFunction(() => document.getElementById("win-rate").dataset.value, null, { timeout: 600_000 });
  return Number(await page.getAttribute("#win-rate", "data-value"));
}
