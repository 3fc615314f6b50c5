// The page: talks to the engine's Worker, shows answers to rank, stores rankings in IndexedDB
// before training uses them, and plots every term of the objective as metrics arrive.
import { openStore, putRanking, allRankings, clearRankings, clearState, toJsonl, fromJsonl } from "./store.js";
import { Plots } from "./plots.js";
import { Ranking } from "./ranking.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const preset = params.get("preset") === "tiny" ? "tiny" : "base";
const base = `assets/${preset}/`;

// ---- the Worker, as request/response plus events; it is restarted when the GPU is lost
let worker;
let nextId = 1;
const pending = new Map();
const listeners = {};
function startWorker() {
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (ev) => {
    const msg = ev.data;
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      msg.ok ? resolve(msg.result) : reject(new Error(msg.error));
    } else if (msg.type && listeners[msg.type]) {
      listeners[msg.type](msg);
    }
  };
  worker.onerror = (e) => recover(`the engine stopped (${e.message || "worker error"})`);
}
// Rejects with an Error carrying the lab's error kind (bad_input, busy, device, bad_state, ...).
function call(type, args = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject: (err) => reject(Object.assign(new Error(err.message), { kind: err.kind })) });
    worker.postMessage({ id, type, ...args });
  });
}
const on = (type, fn) => { listeners[type] = fn; };

function showError(text) {
  const b = $("banner");
  b.hidden = false;
  b.className = "banner error";
  b.textContent = text;
}

function warn(text) {
  const b = $("banner");
  b.hidden = false;
  b.className = "banner warn";
  b.textContent = text;
}

function log(text) {
  $("data-log").textContent = text;
}

// ---- state
let db;
let rankingCount = 0;
let plots;
let seed = 1;
const ranking = new Ranking($("answers"), () => { $("submit-ranking").disabled = !ranking.responses || ranking.allTied(); });
// for tests and the curious
window.__lab = { metrics: [], rankingsStored: () => allRankings(db), ranking, loseDevice: () => call("debugLoseDevice") };

function setCount(n) {
  rankingCount = n;
  $("ranking-count").textContent = `${n} ranking${n === 1 ? "" : "s"}`;
}

on("progress", ({ label, got, total }) => {
  $("load-progress").value = total ? got / total : 0.1;
  $("load-text").textContent = total ? `Loading ${label}: ${(got / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB` : `Loading ${label}…`;
});
on("metrics", ({ metrics }) => {
  window.__lab.metrics.push(metrics);
  plots.add(metrics);
  $("train-status").textContent = `iteration ${metrics.iteration + 1}: reward ${metrics.reward.toFixed(2)}, KL ${metrics.kl_k1.toFixed(2)}`;
  if (metrics.skipped_steps > 0) $("train-status").textContent += ` (${metrics.skipped_steps} non-finite steps skipped)`;
});
on("ranking", async ({ ranking: r }) => {
  await putRanking(db, r);
  setCount(rankingCount + 1);
});
on("status", ({ text }) => { $("train-status").textContent = text; });
on("saved", ({ bytes }) => { $("saved").textContent = `model saved in this browser (${(bytes / 1e6).toFixed(1)} MB)`; });
// a lost device or a GPU error: start a fresh engine from the last saved state
on("error", ({ kind, text }) => {
  if (kind === "device") recover(text);
  else showError(`Training stopped: ${text}`);
});
let recovering = false;
async function recover(reason) {
  if (recovering) return;
  recovering = true;
  showError(`${reason}. Recovering from the last saved state…`);
  for (const { reject } of pending.values()) reject(new Error("the engine restarted"));
  pending.clear();
  worker.terminate();
  startWorker();
  try {
    await connect(false);
    const b = $("banner");
    b.className = "banner warn";
    b.textContent = `Recovered from the last saved state after: ${reason}. Training is paused; start it again to continue.`;
    $("train-toggle").textContent = "Start training";
    $("train-toggle").dataset.running = "";
    $("spinner").hidden = true;
    $("train-status").textContent = "";
  } catch (e) {
    showError(`Could not recover (${e.message}). Reload the page: your rankings and the last saved model are kept.`);
  } finally {
    recovering = false;
  }
}
on("training", ({ running }) => {
  $("train-toggle").textContent = running ? "Pause training" : "Start training";
  $("spinner").hidden = !running;
  $("train-toggle").dataset.running = running ? "1" : "";
});

async function generate() {
  const prompt = $("prompt").value.trim();
  if (!prompt) return;
  const k = Math.min(9, Math.max(2, Number($("k").value) || 4));
  $("generate").disabled = true;
  try {
    const answers = await call("generate", { prompt, k, seed: seed++, sft: false });
    ranking.show(prompt, answers);
  } catch (e) {
    showError(`Could not generate: ${e.message}`);
  } finally {
    $("generate").disabled = false;
  }
}

async function submitRanking() {
  const r = { prompt: ranking.prompt, responses: ranking.responses, ranks: ranking.ranks() };
  await putRanking(db, r); // stored before training sees it
  await call("addRanking", { ranking: r });
  setCount(rankingCount + 1);
  log(`Ranking stored (${rankingCount} in all).`);
  $("answers").replaceChildren();
  ranking.responses = null;
  $("submit-ranking").disabled = true;
}

async function applyOptions() {
  const options = {
    beta: Number($("beta").value), gamma: Number($("gamma").value), lr: Number($("lr").value),
    temperature: Number($("temperature").value), k: Math.min(9, Math.max(2, Number($("k").value) || 4)),
  };
  try {
    await call("setOptions", { options });
  } catch (e) {
    showError(`Settings not applied: ${e.message}`);
  }
}

function download(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

let adapterName = "";

// Loads the lab in the Worker, restores the saved model and replays the stored rankings.
async function connect(first) {
  // every setting starts at the lab's defaults (the ones the README's benchmarks used)
  const options = {};
  const info = await call("init", { base, options, dbName: `rlhf-lab-${preset}` });
  adapterName = info.adapter;
  $("load-progress").value = 1;
  $("load-text").textContent = `Ready: ${(info.parameters / 1e6).toFixed(2)}M-parameter model.`;
  const c = info.choice;
  const timing = c.gpuMs === null ? `one training step: ${c.cpuMs.toFixed(0)} ms on the CPU; no WebGPU adapter`
    : `one training step: ${c.gpuMs.toFixed(0)} ms on WebGPU, ${c.cpuMs.toFixed(0)} ms on the CPU`;
  $("adapter").textContent = `Engine: ${info.adapter} (${timing}; the faster was chosen)`;
  $("adapter").dataset.engine = c.gpu ? "webgpu" : "cpu";
  if (c.gpuMs === null) {
    warn("WebGPU is not available here, so the lab runs on its CPU engine compiled to wasm: everything works, only slower. For the GPU, use a recent Chrome, Edge, Firefox or Safari with WebGPU enabled.");
  }
  if (info.notice) warn(info.notice);
  if (!info.owner) warn("Another tab of this page is training this lab. This tab can rank and look, but training and saving stay with the other tab until it closes.");
  const cfg = info.config;
  for (const [id, v] of [["beta", cfg.ppo.beta], ["gamma", cfg.ppo.gamma], ["lr", cfg.ppo.lr], ["temperature", cfg.ppo.temperature], ["k", cfg.k]]) $(id).value = String(v);
  if (navigator.gpu) {
    navigator.gpu.requestAdapter().then((a) => {
      if (a && a.info) $("adapter").textContent += ` · adapter: ${[a.info.vendor, a.info.architecture, a.info.description].filter(Boolean).join(" ")}`;
    }).catch(() => {});
  }
  if (first) {
    $("prompt-list").replaceChildren(...info.prompts.map((p) => Object.assign(document.createElement("option"), { value: p })));
    $("prompt").value = info.prompts[0];
    $("compare-prompt").value = info.prompts[1] || info.prompts[0];
    plots = new Plots($("plots"));
    window.__lab.plots = plots;
  }
  if (first && info.restored) {
    for (const m of info.restored.history) {
      window.__lab.metrics.push(m);
      plots.add(m);
    }
    $("train-status").textContent = `resumed after iteration ${info.restored.iteration}`;
  }
  $("lab").hidden = false;

  // replay stored rankings: nothing is lost on reload
  const stored = await allRankings(db);
  let replayed = 0;
  for (const r of stored) {
    try { await call("addRanking", { ranking: r }); replayed++; } catch (e) { console.warn("skipped a stored ranking:", e.message); }
  }
  setCount(replayed);
  if (replayed) log(`Restored ${replayed} ranking${replayed === 1 ? "" : "s"} from this browser.`);
  await applyOptions();

  return adapterName;
}

async function main() {
  db = await openStore(`rlhf-lab-${preset}`);
  startWorker();
  await connect(true);

  $("prompt-form").addEventListener("submit", (e) => { e.preventDefault(); generate(); });
  $("submit-ranking").addEventListener("click", () => submitRanking().catch((e) => showError(e.message)));
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (ranking.key(e)) e.preventDefault();
    if (e.key === "Enter" && !$("submit-ranking").disabled) submitRanking().catch((err) => showError(err.message));
  });
  for (const id of ["beta", "gamma", "lr", "temperature", "k"]) $(id).addEventListener("change", applyOptions);
  $("train-toggle").addEventListener("click", () => {
    const running = !!$("train-toggle").dataset.running;
    call("setTraining", { on: !running, labeler: $("autopilot").checked ? $("labeler").value : null }).catch((e) => showError(e.message));
  });
  $("measure").addEventListener("click", async () => {
    $("measure").disabled = true;
    $("win-rate").textContent = "measuring…";
    try {
      const w = await call("winRate", { labeler: $("labeler").value, prompts: 24, samples: 2 });
      $("win-rate").textContent = `${$("labeler").value} labeler prefers the current policy over SFT in ${(100 * w).toFixed(0)}% of held-out comparisons`;
      $("win-rate").dataset.value = String(w);
    } catch (e) {
      $("win-rate").textContent = `could not measure: ${e.message}`;
    } finally {
      $("measure").disabled = false;
    }
  });
  $("autopilot").addEventListener("change", () => {
    if ($("train-toggle").dataset.running) call("setTraining", { on: true, labeler: $("autopilot").checked ? $("labeler").value : null });
  });
  $("compare-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const prompt = $("compare-prompt").value.trim();
    if (!prompt) return;
    const fill = (id, xs) => $(id).replaceChildren(...xs.map((t) => Object.assign(document.createElement("li"), { textContent: t })));
    try {
      fill("before", await call("generate", { prompt, k: 2, seed: 7, sft: true }));
      fill("after", await call("generate", { prompt, k: 2, seed: 7, sft: false }));
    } catch (err) {
      showError(`Could not compare: ${err.message}`);
    }
  });
  $("export-rankings").addEventListener("click", async () => {
    const text = toJsonl(await allRankings(db));
    download("rankings.jsonl", text, "application/jsonl");
    log(`Exported ${text.split("\n").filter(Boolean).length} pairs.`);
  });
  $("import-rankings").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const { rankings, errors } = fromJsonl(await file.text());
    let added = 0;
    for (const r of rankings) {
      try {
        await putRanking(db, r);
        await call("addRanking", { ranking: r });
        added++;
      } catch (err) {
        errors.push(`a ranking of "${r.prompt}": ${err.message}`);
      }
    }
    setCount(rankingCount + added);
    log(`Imported ${added} ranking${added === 1 ? "" : "s"}.` + (errors.length ? `\n${errors.length} problem(s):\n${errors.join("\n")}` : ""));
    e.target.value = "";
  });
  $("export-model").addEventListener("click", async () => {
    try {
      const m = await call("exportPolicy");
      download("config.json", m.config, "application/json");
      download("model.safetensors", m.weights, "application/octet-stream");
      download("tokenizer.json", m.tokenizer, "application/json");
      log("Exported config.json, model.safetensors and tokenizer.json (load with transformers' GPT2LMHeadModel.from_pretrained).");
    } catch (err) {
      showError(`Export failed: ${err.message}`);
    }
  });
  $("forget").addEventListener("click", async () => {
    await clearRankings(db);
    await clearState(db);
    log("Stored rankings and model cleared; reload the page to start over from the base model.");
  });
  document.body.dataset.ready = "1";
}

main().catch((e) => {
  $("load-text").textContent = `Could not start: ${e.message || e}`;
  $("load-text").classList.add("error");
  showError(`Could not start the lab: ${e.message || e}`);
});
