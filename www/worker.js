// The engine's Worker: it owns the GPU device and the lab, runs the training loop, and answers the
// page's messages. Calls into the lab are queued one at a time (the lab refuses overlapping calls).
import init, { Lab } from "./pkg/rlhf_lab.js";
import { openStore, putState, getState } from "./store.js";

let lab = null;
let queue = Promise.resolve();
let running = false;
let autopilot = null; // labeler name, or null for the visitor's rankings only
let rankingsPerIteration = 2;
let stopAfterIterations = Infinity; // a fixed-length run (the page's ?stopAfter=N)
let db = null;
let lastSave = 0;
const SAVE_EVERY_MS = 60_000;

// The model, reward model and value model go to IndexedDB now and then, and whenever training pauses.
async function saveState(force) {
  if (!db || (!force && Date.now() - lastSave < SAVE_EVERY_MS)) return;
  lastSave = Date.now();
  const bytes = await enqueue(() => lab.save_state());
  await putState(db, bytes);
  post("saved", { bytes: bytes.length });
}

// one lab call at a time, in order
function enqueue(fn) {
  const next = queue.then(fn, fn);
  queue = next.catch(() => {});
  return next;
}

function post(type, data) {
  postMessage({ type, ...data });
}

async function fetchBytes(url, label) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get("content-length")) || 0;
  const reader = res.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    post("progress", { label, got, total });
  }
  const out = new Uint8Array(got);
  let off = 0;
  for (const c of chunks) { out.set(c, off); off += c.length; }
  return out;
}

const handlers = {
  async init({ base, options, dbName }) {
    post("progress", { label: "engine (wasm)", got: 0, total: 0 });
    await init();
    const [config, tokenizer] = await Promise.all([
      fetch(base + "config.json").then((r) => { if (!r.ok) throw new Error(`could not load ${base}config.json`); return r.text(); }),
      fetch(base + "tokenizer.json").then((r) => { if (!r.ok) throw new Error(`could not load ${base}tokenizer.json`); return r.text(); }),
    ]);
    const weights = await fetchBytes(base + "model.safetensors", "weights");
    post("progress", { label: "building the lab", got: 1, total: 1 });
    lab = await Lab.create(config, weights, tokenizer, options || {});
    let restored = null;
    if (dbName) {
      db = await openStore(dbName);
      const saved = await getState(db);
      if (saved) {
        try {
          const iteration = await lab.load_state(saved);
          restored = { iteration, history: lab.history() };
        } catch (e) {
          post("status", { text: `the saved model could not be restored (${e}); starting from the base model` });
        }
      }
    }
    return { adapter: lab.adapter, parameters: lab.parameters, prompts: lab.prompts(), restored };
  },
  generate({ prompt, k, seed, sft }) {
    return enqueue(() => lab.generate(prompt, k, seed, !!sft));
  },
  addRanking({ ranking }) {
    return enqueue(() => lab.add_ranking(ranking));
  },
  setOptions({ options }) {
    return enqueue(() => lab.set_options(options));
  },
  winRate({ labeler, prompts, samples }) {
    return enqueue(() => lab.win_rate(labeler, prompts, samples));
  },
  exportPolicy() {
    return enqueue(() => lab.export_policy());
  },
  rankings() {
    return enqueue(() => lab.rankings());
  },
  debugLoseDevice() {
    return enqueue(() => lab.debug_lose_device());
  },
  setTraining({ on, labeler, perIteration, stopAfter }) {
    autopilot = labeler || null;
    if (perIteration) rankingsPerIteration = perIteration;
    stopAfterIterations = stopAfter || Infinity;
    if (on && !running) {
      running = true;
      loop();
    } else if (!on) {
      running = false;
    }
    return { running };
  },
};

// The training loop: (autopilot rankings) then one iteration, repeated until paused.
async function loop() {
  post("training", { running: true });
  while (running) {
    try {
      if (autopilot) {
        for (let i = 0; i < rankingsPerIteration && running; i++) {
          const r = await enqueue(() => lab.autopilot_ranking(autopilot));
          if (r) post("ranking", { ranking: r, source: autopilot });
        }
      }
      if (!running) break;
      post("status", { text: "training: reward model, rollouts, PPO-ptx…" });
      const m = await enqueue(() => lab.train_iteration());
      post("metrics", { metrics: m });
      await saveState(false);
      if (m.iteration + 1 >= stopAfterIterations) running = false;
    } catch (e) {
      const msg = String(e && e.message ? e.message : e);
      if (msg.includes("no usable rankings")) {
        post("status", { text: "waiting for rankings: rank some answers (or turn on the autopilot)" });
        running = false;
      } else {
        post("error", { text: msg });
        running = false;
      }
    }
  }
  try {
    await saveState(true);
  } catch (e) {
    post("error", { text: `saving the model failed: ${e}` });
  }
  post("training", { running: false });
}

onmessage = async (ev) => {
  const { id, type, ...args } = ev.data;
  try {
    if (!handlers[type]) throw new Error(`unknown request ${type}`);
    if (type !== "init" && !lab) throw new Error("the lab is not loaded yet");
    const result = await handlers[type](args);
    postMessage({ id, ok: true, result });
  } catch (e) {
    postMessage({ id, ok: false, error: String(e && e.message ? e.message : e) });
  }
};
