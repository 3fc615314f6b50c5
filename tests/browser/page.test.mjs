// Browser tests: Debian's Chromium, headless, WebGPU on SwiftShader, driven by playwright-core.
// The page is served from www/ by a static server started here; ?preset=tiny keeps it fast.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../www");
const artifacts = path.resolve(root, "../test-artifacts");
fs.mkdirSync(artifacts, { recursive: true });
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm" };

let server, base;
const BASE_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu-sandbox", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-angle=swiftshader"];

async function launch(webgpu) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rlhf-chromium-"));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: false, // --headless=new below: the mode that gives WebGPU
    args: [...BASE_ARGS, ...(webgpu ? WEBGPU_ARGS : [])],
    viewport: { width: 1300, height: 1000 },
    acceptDownloads: true,
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
  return { ctx, page };
}

async function open(page) {
  await page.goto(`${base}/?preset=tiny`);
  await page.waitForSelector("body[data-ready='1']", { timeout: 180_000 });
}

const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
const stored = (page) => page.evaluate(() => window.__lab.rankingsStored());

before(async () => {
  server = http.createServer((req, res) => {
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
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

test("the lab on WebGPU: load, rank by keyboard and by drag, train with plots, reload, text safety, export and import", { timeout: 900_000 }, async (t) => {
  const { ctx, page } = await launch(true);
  try {
    await t.test("the page loads and reports a WebGPU adapter", async () => {
      const t0 = Date.now();
      await open(page);
      const adapter = await page.textContent("#adapter");
      assert.match(adapter, /WebGPU/, adapter);
      assert.ok(await page.isHidden("#banner"), "no warning on WebGPU");
      console.log(`# loaded in ${Date.now() - t0} ms: ${adapter}`);
      await shot(page, "01-loaded");
    });

    await t.test("K answers appear and a ranking typed on the keyboard is stored", async () => {
      await page.fill("#k", "4");
      await page.click("#generate");
      await page.waitForSelector("#answers li", { timeout: 120_000 });
      assert.equal(await page.locator("#answers li").count(), 4);
      await page.focus("body");
      await page.keyboard.press("3");
      await page.keyboard.press("1");
      assert.deepEqual(await page.$$eval("#answers li", (l) => l.map((x) => x.dataset.idx)), ["2", "0", "1", "3"]);
      await shot(page, "02-ranking");
      await page.click("#submit-ranking");
      await page.waitForFunction(() => document.getElementById("ranking-count").textContent.startsWith("1 "));
      const rs = await stored(page);
      assert.equal(rs.length, 1);
      assert.deepEqual(rs[0].ranks, [1, 2, 0, 3]);
    });

    await t.test("a ranking made by drag and drop, with a tie, is stored", async () => {
      await page.click("#generate");
      await page.waitForSelector("#answers li", { timeout: 120_000 });
      await page.dragAndDrop("#answers li:nth-child(4)", "#answers li:nth-child(1)");
      assert.equal(await page.getAttribute("#answers li:nth-child(1)", "data-idx"), "3");
      await page.check("#answers li:nth-child(3) input[type=checkbox]");
      await page.click("#submit-ranking");
      await page.waitForFunction(() => document.getElementById("ranking-count").textContent.startsWith("2 "));
      const rs = await stored(page);
      assert.equal(rs.length, 2);
      // order 3,0,1,2 with answer 1 tied to answer 0
      assert.deepEqual(rs[1].ranks, [1, 1, 2, 0]);
    });

    await t.test("model text is shown as text, never as HTML", async () => {
      await page.evaluate(() => {
        window.__xss = 0;
        window.__lab.ranking.show("p", ["<script>window.__xss = 1<\/script>", "<img src=x onerror=\"window.__xss = 2\">"]);
      });
      await page.waitForTimeout(300);
      assert.equal(await page.evaluate(() => window.__xss), 0);
      assert.equal(await page.textContent("#answers li:nth-child(2) .text"), "<img src=x onerror=\"window.__xss = 2\">");
      assert.equal(await page.locator("#answers img").count(), 0);
      await page.evaluate(() => { window.__lab.ranking.responses = null; document.getElementById("answers").replaceChildren(); });
    });

    await t.test("training runs in the background and the plots receive points", async () => {
      // watch the main thread for long tasks while the Worker trains
      await page.evaluate(() => {
        window.__longTasks = [];
        new PerformanceObserver((list) => window.__longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: "longtask" });
      });
      await page.check("#autopilot");
      await page.click("#train-toggle");
      await page.waitForFunction(() => window.__lab.metrics.length >= 2, null, { timeout: 400_000 });
      await page.click("#train-toggle");
      const m = await page.evaluate(() => window.__lab.metrics.at(-1));
      for (const key of ["reward", "kl_k1", "kl_k3", "ptx_loglik", "policy_loss", "value_loss", "entropy", "objective", "rm_loss", "rm_accuracy"]) {
        assert.ok(Number.isFinite(m[key]), `${key}: ${m[key]}`);
      }
      assert.ok((await page.evaluate(() => window.__lab.plots.points)) >= 2);
      // the page stayed responsive: no main-thread task of 200 ms or more while the Worker trained
      const longest = Math.max(0, ...(await page.evaluate(() => window.__longTasks)));
      console.log(`# longest main-thread task during training: ${longest.toFixed(0)} ms`);
      assert.ok(longest < 200, `a ${longest} ms task blocked the page`);
      await shot(page, "03-training");
      assert.ok((await stored(page)).length > 2, "autopilot rankings are stored too");
    });

    await t.test("before and after: SFT and the current policy side by side", async () => {
      await page.waitForFunction(() => !document.getElementById("train-toggle").dataset.running, null, { timeout: 300_000 });
      await page.click("#compare button");
      await page.waitForSelector("#after li", { timeout: 120_000 });
      assert.equal(await page.locator("#before li").count(), 2);
      await shot(page, "04-compare");
    });

    await t.test("a reload restores the rankings and the trained model", async () => {
      const before = (await stored(page)).length;
      await page.reload();
      await page.waitForSelector("body[data-ready='1']", { timeout: 180_000 });
      await page.waitForFunction((n) => document.getElementById("ranking-count").textContent.startsWith(`${n} `), before);
      assert.match(await page.textContent("#data-log"), /Restored/);
      // the trained model came back too, with its plots
      assert.match(await page.textContent("#train-status"), /resumed after iteration [1-9]/);
      assert.ok((await page.evaluate(() => window.__lab.plots.points)) >= 2);
    });

    await t.test("rankings export as JSONL pairs and import back; bad lines are named", async () => {
      const before = (await stored(page)).length;
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-rankings")]);
      const file = path.join(artifacts, "rankings.jsonl");
      await download.saveAs(file);
      const lines = fs.readFileSync(file, "utf8").trim().split("\n");
      assert.ok(lines.length >= 5);
      const first = JSON.parse(lines[0]);
      assert.deepEqual(Object.keys(first).sort(), ["chosen", "prompt", "rejected"]);
      const bad = path.join(artifacts, "import.jsonl");
      fs.writeFileSync(bad, `${lines[0]}\n{not json\n{"prompt": "x", "chosen": 3, "rejected": "y"}\n`);
      await page.setInputFiles("#import-rankings", file);
      await page.waitForFunction(() => /Imported/.test(document.getElementById("data-log").textContent));
      assert.equal((await stored(page)).length, before + lines.length);
      await page.setInputFiles("#import-rankings", bad);
      await page.waitForFunction(() => /problem/.test(document.getElementById("data-log").textContent));
      const log = await page.textContent("#data-log");
      assert.match(log, /Imported 1 ranking/);
      assert.match(log, /line 2: not valid JSON/);
      assert.match(log, /line 3: "chosen" must be a string/);
      await shot(page, "05-import");
    });

    await t.test("the aligned model exports as config.json, model.safetensors and tokenizer.json", async () => {
      const dir = path.join(artifacts, "exported-model");
      fs.mkdirSync(dir, { recursive: true });
      const downloads = [];
      page.on("download", (d) => downloads.push(d));
      await page.click("#export-model");
      await page.waitForFunction(() => /Exported config.json/.test(document.getElementById("data-log").textContent), null, { timeout: 120_000 });
      await page.waitForTimeout(500);
      assert.deepEqual(downloads.map((d) => d.suggestedFilename()).sort(), ["config.json", "model.safetensors", "tokenizer.json"]);
      for (const d of downloads) await d.saveAs(path.join(dir, d.suggestedFilename()));
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
      assert.equal(cfg.model_type, "gpt2");
      // scripts/test.sh then loads this directory with HF transformers (tests/hf_check.py)
    });
    assert.deepEqual(page.errors.filter((e) => !/favicon/.test(e)), []);

    await t.test("a lost GPU device is recovered from the last saved state", async () => {
      const before = await page.evaluate(() => window.__lab.metrics.length);
      await page.evaluate(() => window.__lab.loseDevice());
      await page.click("#train-toggle");
      await page.waitForFunction(() => /Recovered from the last saved state/.test(document.getElementById("banner").textContent), null, { timeout: 300_000 });
      await shot(page, "08-recovered");
      assert.match(await page.textContent("#adapter"), /WebGPU/);
      // training goes on with the restored model
      await page.click("#train-toggle");
      await page.waitForFunction((n) => window.__lab.metrics.length > n, before, { timeout: 300_000 });
      await page.click("#train-toggle");
    });
  } finally {
    await ctx.close();
  }
});

test("without WebGPU the page says so and the CPU engine works", { timeout: 300_000 }, async () => {
  const { ctx, page } = await launch(false);
  try {
    await open(page);
    assert.match(await page.textContent("#adapter"), /CPU reference/);
    assert.ok(await page.isVisible("#banner"));
    assert.match(await page.textContent("#banner"), /WebGPU is not available/);
    await page.click("#generate");
    await page.waitForSelector("#answers li", { timeout: 120_000 });
    assert.equal(await page.locator("#answers li").count(), 4);
    await shot(page, "06-no-webgpu");
  } finally {
    await ctx.close();
  }
});

test("the autopilot on tiny raises the scripted labeler's win-rate (CPU engine in wasm)", { timeout: 900_000 }, async () => {
  // without WebGPU: the CPU reference in wasm is the faster engine for tiny on a software machine
  const { ctx, page } = await launch(false);
  try {
    await page.goto(`${base}/?preset=tiny&rollouts=32&rankings=16&gamma=0.1&lr=0.0003&rmLr=0.002&rmEpochs=4&maxNewTokens=48&stopAfter=10`);
    await page.waitForSelector("body[data-ready='1']", { timeout: 180_000 });
    await page.check("#autopilot");
    await page.selectOption("#labeler", "polite");
    await page.click("#train-toggle");
    // the run stops by itself after 10 iterations (?stopAfter=10), so it is the same run every time
    await page.waitForFunction(() => window.__lab.metrics.length >= 10 && !document.getElementById("train-toggle").dataset.running, null, { timeout: 800_000 });
    await page.click("#measure");
    await page.waitForFunction(() => document.getElementById("win-rate").dataset.value, null, { timeout: 300_000 });
    const win = Number(await page.getAttribute("#win-rate", "data-value"));
    console.log(`# win-rate after ${await page.evaluate(() => window.__lab.metrics.length)} autopilot iterations: ${win}`);
    await shot(page, "07-autopilot");
    assert.ok(win > 0.6, `win-rate ${win}`);
  } finally {
    await ctx.close();
  }
});
