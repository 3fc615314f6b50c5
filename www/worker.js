// The engine's Worker: it owns the lab and runs the loop. One iteration per new ranking: the
// person (or the autopilot) ranks the group the lab offers, the iteration learns from it while the
// person reads the next group, and without a new ranking nothing trains. The person's calls
// (offered, submit, ask, blind pairs) go straight to the lab and never wait for an iteration; the
// calls that need the trained models wait in line behind the running iteration.
import init, { Lab } from "./pkg/rlhf_lab.js";
import { openStore, putState, getState, setAsideState, allRankings, putRanking, sessionSeed, getSettings, clearSettings } from "./store.js";
import { ShardPool, shardCount } from "./shards.js";
import { engineBuild } from "./simd.js";
import { afterForget, trainingLock } from "./forget.js";

let lab = null;
let pool = null; // the shard Workers of the CPU engine
let compiled = null; // the engine's compiled module (the build www/simd.js picks), shared with the shard Workers
let wasm = null; // the module's exports (its memory)
let model = null; // the base model's config and weights, for timing
let line = Promise.resolve(); // the trained models' calls, one at a time, iterations included
let learning = false;
let autopilot = null; // labeler name, or null for the person's rankings only
let looping = false;
let wake = null; // resolves the loop's wait for a ranking or a setting
let db = null;
let lastSave = 0;
let saving = Promise.resolve(); // the save in progress, if any
let forgotten = false; // "Forget everything" was asked: nothing is saved again in this Worker's life
const SAVE_EVERY_MS = 60_000;
// how often the loop tells the page what the running iteration is doing
const PHASE_EVERY_MS = 400;

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
    self.navigator.locks.request(trainingLock(dbName), { ifAvailable: true }, (lock) => {
      resolve(!!lock);
      return lock ? new Promise(() => {}) : null; // held until the Worker ends
    });
  });
}

// The models go to IndexedDB now and then and whenever learning pauses: one put, so a Worker
// that dies while saving leaves the last complete state in place.
function saveState(force) {
  if (forgotten || !db || !owner || (!force && Date.now() - lastSave < SAVE_EVERY_MS)) return Promise.resolve();
  lastSave = Date.now();
  saving = (async () => {
    const bytes = await inLine(() => lab.save_state());
    if (forgotten) return;
    post("saving", { bytes: bytes.length });
    await putState(db, bytes);
    post("saved", { bytes: bytes.length });
  })();
  return saving;
}

// the trained models' calls, one at a time, in order
function inLine(fn) {
  const next = line.then(fn, fn);
  line = next.catch(() => {});
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

async function fetchText(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`could not load ${url}: HTTP ${r.status}`);
  return r.text();
}

// The saved models with the rankings stored beside them, or a notice when the state cannot be read
// (it is kept aside, never saved over); rankings without a state wait for the next iteration.
async function restore(rankings) {
  const saved = await getState(db);
  if (saved) {
    try {
      const iteration = lab.load_state(saved, rankings);
      return { restored: { iteration, history: lab.history() }, notice: null };
    } catch (e) {
      if (owner) await setAsideState(db, saved);
      const notice = `The saved model could not be restored (${asError(e).message}). It was kept aside; this session starts from the base model.`;
      lab.add_rankings(rankings);
      return { restored: null, notice };
    }
  }
  lab.add_rankings(rankings);
  return { restored: null, notice: null };
}

// Streaming where the server names the type (application/wasm), else from the bytes.
async function compileWasm(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`the engine (${url}) could not be loaded: HTTP ${response.status}`);
  if (WebAssembly.compileStreaming && response.headers.get("content-type") === "application/wasm") {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

const handlers = {
  async init({ base, options, dbName, engine, workers, simd, seed: forcedSeed }) {
    post("progress", { label: "engine (wasm)", got: 0, total: 0 });
    const build = engineBuild(simd);
    // compiled once and posted to the shard Workers: one copy of the code, which V8 optimizes as
    // it runs hot in any of them
    compiled = await compileWasm(build.url);
    wasm = await init({ module_or_path: compiled });
    const [config, tokenizer] = await Promise.all([fetchText(base + "config.json"), fetchText(base + "tokenizer.json")]);
    const weights = await fetchBytes(base + "model.safetensors", "weights");
    model = { config, weights };
    post("progress", { label: "timing the engines", got: 1, total: 1 });
    // the page's ?engine= (for tests of one engine) skips the measurement
    const choice = engine ? { gpu: engine === "webgpu", gpuMs: null, cpuMs: null, forced: engine } : await chooseEngine(config, weights);
    post("progress", { label: "building the lab", got: 1, total: 1 });
    // on the CPU, every core: the batches' rows split across shard Workers (the page's ?workers=
    // is for tests of one count; a visitor gets the cores the browser reports)
    const shards = (workers || shardCount()) - 1;
    if (!choice.gpu && shards > 0) {
      pool = new ShardPool(shards);
      await pool.start(config, compiled);
    }
    // a stored session goes on with its seed; a new one takes the page's ?seed= or draws one
    let seed = forcedSeed ?? null;
    let settings = {};
    if (dbName) {
      await afterForget(dbName); // another tab may be clearing the store
      db = await openStore(dbName);
      seed = await sessionSeed(db, forcedSeed);
      settings = (await getSettings(db)) || {};
    }
    const seeded = seed === null ? {} : { seed };
    let settingsNotice = null;
    try {
      lab = await Lab.create(config, weights, tokenizer, { ...settings, ...options, ...seeded }, choice.gpu, pool || undefined);
    } catch (e) {
      if (!Object.keys(settings).length) throw e;
      // settings stored by another version of the page may not apply to this one
      await clearSettings(db);
      lab = await Lab.create(config, weights, tokenizer, { ...options, ...seeded }, choice.gpu, pool || undefined);
      settingsNotice = `Your stored settings could not be applied (${e.message}), so this session goes on with the defaults.`;
    }
    owner = await claimTraining(dbName);
    let state = { restored: null, notice: null };
    let rankings = 0;
    if (dbName) {
      const stored = await allRankings(db);
      rankings = stored.length;
      state = await restore(stored);
    }
    post("progress", { label: "sampling the first answers", got: 1, total: 1 });
    await inLine(() => lab.start());
    if (settingsNotice) state.notice = [state.notice, settingsNotice].filter(Boolean).join(" ");
    return { adapter: lab.adapter, build: { name: build.name, label: build.label }, choice, owner, seed, parameters: lab.parameters, describe: lab.describe(), rankings, offer: lab.offered(), ...state };
  },
  offered() {
    return lab.offered();
  },
  // a ranking of the offered group (or of answers from elsewhere): stored by the page first; when
  // it was the batch's last group, the next is answered on the spot rather than after the iteration
  async submit({ ranking, offer }) {
    const out = lab.submit(ranking, offer ?? undefined);
    poke();
    if (!out.next) out.next = await lab.more();
    return out;
  },
  addRankings({ rankings }) {
    const n = lab.add_rankings(rankings);
    poke();
    return n;
  },
  async ask({ prompt }) {
    const offer = await lab.ask(prompt);
    return offer;
  },
  blindPair({ seed }) {
    return lab.blind_pair(seed);
  },
  setOptions({ options }) {
    return inLine(() => lab.set_options(options));
  },
  winRate({ labeler }) {
    return inLine(() => lab.win_rate(labeler));
  },
  exportModels() {
    return inLine(() => lab.export_models());
  },
  setWatchPrompts({ prompts }) {
    return inLine(() => lab.set_watch_prompts(prompts));
  },
  inspect({ prompt, answer }) {
    return inLine(() => lab.inspect(prompt, answer));
  },
  debugDirectLogprobs({ prompt, answer }) {
    return inLine(() => lab.debug_direct_logprobs(prompt, answer));
  },
  // every method from the base model on the rankings so far, each run posted as it ends; learning
  // waits meanwhile
  async compare({ labeler, methods }) {
    for (const method of methods) {
      post("comparing", { method });
      const run = await inLine(() => lab.replay(method, labeler));
      post("compared", { run });
    }
  },
  // for the benchmarks: this Worker's wasm memory, and a policy minibatch timed on `workers` Workers
  memory() {
    return { wasm: wasm.memory.buffer.byteLength };
  },
  async timePolicyStep({ workers }) {
    const shards = workers > 1 ? new ShardPool(workers - 1) : null;
    try {
      if (shards) await shards.start(model.config, compiled);
      return await Lab.time_policy_step(model.config, model.weights, shards || undefined);
    } finally {
      shards?.stop();
    }
  },
  debugSetSavedState({ bytes }) {
    return putState(db, bytes);
  },
  debugSave() {
    return saveState(true);
  },
  rankings() {
    return lab.rankings();
  },
  debugLoseDevice() {
    return inLine(() => lab.debug_lose_device());
  },
  // Before the page clears the store: learning stops, a save in progress ends, and none follows,
  // so no state of the forgotten session is written after the clear.
  async forget() {
    forgotten = true;
    learning = false;
    poke();
    await saving.catch(() => {});
  },
  setLearning({ on, labeler }) {
    autopilot = labeler || null;
    if (on && !owner) throw Object.assign(new Error("another tab of this page is training this lab; close it (or train there) to train here"), { kind: "busy" });
    learning = !!on;
    inLine(() => lab.set_curve(autopilot || undefined));
    if (learning && !looping) loop();
    poke();
    return { learning };
  },
};

// wakes the loop when it waits for a ranking
function poke() {
  if (wake) {
    const w = wake;
    wake = null;
    w();
  }
}

// The autopilot's labeler ranks the offered group, as a person would; it is stored here, before
// any iteration uses it, and the page hears of it.
async function autopilotRanks() {
  if (!autopilot) return;
  const r = lab.rank_offered(autopilot);
  if (!r) return;
  if (db) await putRanking(db, r);
  post("ranking", { ranking: r, source: autopilot, offer: lab.offered() });
}

// One iteration, telling the page what it is doing as it goes.
async function iterateWithProgress() {
  const timer = setInterval(() => post("phase", { phase: lab.phase(), taken: lab.taken() }), PHASE_EVERY_MS);
  try {
    return await inLine(() => lab.iterate());
  } finally {
    clearInterval(timer);
  }
}

// The loop: an iteration whenever a ranking came in that none has taken, else a wait.
async function loop() {
  looping = true;
  post("training", { running: true });
  while (learning) {
    try {
      await autopilotRanks();
      if (lab.ready()) {
        const record = await iterateWithProgress();
        post("metrics", { metrics: record, offer: lab.offered() });
        await saveState(false);
        continue;
      }
      post("waiting", { offer: lab.offered(), taken: lab.taken() });
      // the wait is the engine's spare time: work the next rankings need, a short turn at a time
      while (learning && !lab.ready() && (await inLine(() => lab.prepare())));
      if (!learning || lab.ready()) continue;
      await new Promise((resolve) => { wake = resolve; });
    } catch (e) {
      const err = asError(e);
      post("error", { kind: err.kind, text: err.message });
      learning = false;
    }
  }
  looping = false;
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
