// The engine's Worker: it owns the GPU device and the lab, runs the training loop, and answers the
// page's messages. Calls into the lab are queued one at a time (the lab refuses overlapping calls).
import init, { Lab } from "./pkg/rlhf_lab.js";
import { openStore, putState, getState, setAsideState } from "./store.js";

let lab = null;
let queue = Promise.resolve();
let running = false;
let autopilot = null; // labeler name, or null for the visitor's rankings only
let db = null;
let lastSave = 0;
const SAVE_EVERY_MS = 60_000;

let owner = false; // whether this tab holds the lock that lets it train and save

// WebGPU or the CPU engine in wasm, whichever runs a training step of a (4, 64) batch faster here.
// WebGPU first takes a much smaller step: when even that is slower than the CPU's whole step (a
// software adapter), it cannot win and the full step is not worth its wait.
async function chooseEngine(config, weights) {
  const cpuMs = await Lab.time_engine(config, weights, false, 4, 64);
  let gpuMs = null;
  let probe = false;
  if (self.navigator.gpu) {
    try {
      gpuMs = await Lab.time_engine(config, weights, true, 1, 8);
      probe = gpuMs > cpuMs;
      if (!probe) gpuMs = await Lab.time_engine(config, weights, true, 4, 64);
    } catch (e) {
      gpuMs = null;
    }
  }
  return { gpu: gpuMs !== null && gpuMs < cpuMs, gpuMs, cpuMs, probe };
}

// One tab trains and saves a lab at a time: the Web Lock is held for this Worker's life.
function claimTraining(dbName) {
  if (!dbName || !self.navigator.locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    self.navigator.locks.request(`${dbName}-training`, { ifAvailable: true }, (lock) => {
      resolve(!!lock);
      return lock ? new Promise(() => {}) : null; // held until the Worker ends
    });
  });
}

// The model, reward model and value model go to IndexedDB now and then, and whenever training pauses.
async function saveState(force) {
  if (!db || !owner || (!force && Date.now() - lastSave < SAVE_EVERY_MS)) return;
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

// The lab rejects with {kind, message}; anything else (a JS error) is an internal fault.
function asError(e) {
  if (e && typeof e === "object" && typeof e.kind === "string") return { kind: e.kind, message: String(e.message) };
  return { kind: "internal", message: String(e && e.message ? e.message : e) };
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
  async init({ base, options, dbName, engine }) {
    post("progress", { label: "engine (wasm)", got: 0, total: 0 });
    await init();
    const [config, tokenizer] = await Promise.all([
      fetch(base + "config.json").then((r) => { if (!r.ok) throw new Error(`could not load ${base}config.json`); return r.text(); }),
      fetch(base + "tokenizer.json").then((r) => { if (!r.ok) throw new Error(`could not load ${base}tokenizer.json`); return r.text(); }),
    ]);
    const weights = await fetchBytes(base + "model.safetensors", "weights");
    post("progress", { label: "timing the engines", got: 1, total: 1 });
    // the page's ?engine= (for tests of one engine) skips the measurement
    const choice = engine ? { gpu: engine === "webgpu", gpuMs: null, cpuMs: null, forced: engine } : await chooseEngine(config, weights);
    post("progress", { label: "building the lab", got: 1, total: 1 });
    lab = await Lab.create(config, weights, tokenizer, options || {}, choice.gpu);
    owner = await claimTraining(dbName);
    let restored = null;
    let notice = null;
    if (dbName) {
      db = await openStore(dbName);
      const saved = await getState(db);
      if (saved) {
        try {
          const iteration = await lab.load_state(saved);
          restored = { iteration, history: lab.history() };
        } catch (e) {
          // keep the unreadable state aside, never save over it, and start from the base model
          if (owner) await setAsideState(db, saved);
          notice = `The saved model could not be restored (${asError(e).message}). It was kept aside; this session starts from the base model.`;
        }
      }
    }
    return {
      adapter: lab.adapter, choice, owner, parameters: lab.parameters, prompts: lab.prompts(), heldout: lab.heldout_prompts(),
      watchPrompts: lab.watch_prompts(), config: lab.config(), restored, notice,
    };
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
  exportModels() {
    return enqueue(() => lab.export_models());
  },
  setWatchPrompts({ prompts }) {
    return enqueue(() => lab.set_watch_prompts(prompts));
  },
  inspect({ prompt, answer }) {
    return enqueue(() => lab.inspect(prompt, answer));
  },
  blindPair({ seed }) {
    return enqueue(() => lab.blind_pair(seed));
  },
  debugDirectLogprobs({ prompt, answer }) {
    return enqueue(() => lab.debug_direct_logprobs(prompt, answer));
  },
  debugSetSavedState({ bytes }) {
    return putState(db, bytes);
  },
  rankings() {
    return enqueue(() => lab.rankings());
  },
  debugLoseDevice() {
    return enqueue(() => lab.debug_lose_device());
  },
  setTraining({ on, labeler }) {
    autopilot = labeler || null;
    if (on && !owner) throw Object.assign(new Error("another tab of this page is training this lab; close it (or train there) to train here"), { kind: "busy" });
    if (on && !running) {
      running = true;
      loop();
    } else if (!on) {
      running = false;
    }
    return { running };
  },
};

// The training loop: one iteration after another (the autopilot's rankings come from each
// iteration's own rollouts) until paused.
async function loop() {
  post("training", { running: true });
  while (running) {
    // let messages in (a pause, a ranking): on the CPU engine an iteration never waits on its own
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (!running) break;
    try {
      post("status", { text: autopilot ? `training: the ${autopilot} labeler ranks, then reward model, rollouts, PPO-ptx…` : "training: reward model, rollouts, PPO-ptx…" });
      const r = await enqueue(() => lab.train_iteration(autopilot));
      for (const ranking of r.rankings) post("ranking", { ranking, source: autopilot });
      post("metrics", { metrics: r.record });
      await saveState(false);
    } catch (e) {
      const err = asError(e);
      if (err.kind === "not_ready") post("status", { text: "waiting for rankings: rank some answers (or turn on the autopilot)" });
      else post("error", { kind: err.kind, text: err.message });
      running = false;
    }
  }
  try {
    await saveState(true);
  } catch (e) {
    post("error", { kind: asError(e).kind, text: `saving the model failed: ${asError(e).message}` });
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
    postMessage({ id, ok: false, error: asError(e) });
  }
};
