// The page: talks to the engine's Worker, shows answers to rank, stores rankings in IndexedDB
// before training uses them, watches the answers change, runs the blind test, and plots every term
// of the objective as it trains.
import { openStore, putRanking, allRankings, clearRankings, clearState, toJsonl, fromJsonl, putJudgement, allJudgements, clearJudgements, judgementsJsonl, putSetting } from "./store.js";
import { Plots, LearningCurve, MethodsChart } from "./plots.js";
import { Ranking } from "./ranking.js";
import { LabClient } from "./lab-client.js";
import { Watch, trustNote } from "./watch.js";
import { trainStatus, beforeMoving, ordinal } from "./status.js";
import { History } from "./history.js";
import { TokenView } from "./tokens.js";
import { BlindTest, winRate } from "./blind.js";
import { tar } from "./tar.js";
import { forgetEverything, listenForForget } from "./forget.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const preset = params.get("preset") === "tiny" ? "tiny" : "base";
// tests of one engine may name it; a visitor gets the one the start-up measurement picks
const forcedEngine = ["webgpu", "cpu"].includes(params.get("engine")) ? params.get("engine") : null;
// tests of one Worker count may name it; a visitor's CPU engine uses every core the browser reports
const forcedWorkers = Math.max(0, Math.min(8, Number(params.get("workers")) || 0)) || null;
// tests of the plain SIMD build may name it; a visitor gets the fastest build the browser runs
const forcedSimd = ["plain", "relaxed"].includes(params.get("simd")) ? params.get("simd") : null;
// tests that compare two pages name one seed for both; a visitor's session draws its own
const forcedSeed = /^\d{1,9}$/.test(params.get("seed") ?? "") ? Number(params.get("seed")) : null;
const base = `assets/${preset}/`;
const lab = new LabClient((reason) => recover(reason));
const dbName = `rlhf-lab-${preset}`;
const call = (type, args) => lab.call(type, args);

// ---- state
let db;
let rankingCount = 0;
let plots;
let curve;
let heldout = [];
let info = null; // what the lab described of itself: prompts, topics, settings, labelers, methods
let offer = null; // the group of answers on screen, as the lab offered it
let methodsChart = null;
let compareLog = [];
let forgetting = false; // this session is being forgotten (here or in another tab): nothing more is stored
const ranking = new Ranking($("answers"), () => { $("submit-ranking").disabled = !ranking.responses; });
const tokens = new TokenView($("tokens"));
const iterations = new History(); // not `history`: that is the browser's
const watch = new Watch($("watch"), (prompt, answer) => inspect(prompt, answer), iterations);
const blind = new BlindTest($("blind"), () => call("blindPair", { seed: Math.floor(Math.random() * 1e9) }), recordJudgement);
// for tests and the curious
window.__lab = {
  get metrics() { return iterations.records(); }, get iterations() { return iterations.length; }, last: () => iterations.at(-1), offers: [], saves: [], seed: null, rankingsStored: () => allRankings(db), judgementsStored: () => allJudgements(db), ranking, watch, winRate,
  save: () => call("debugSave"), crash: () => lab.stop(),
  memory: () => call("memory"), timePolicyStep: (workers) => call("timePolicyStep", { workers }),
  loseDevice: () => call("debugLoseDevice"),
  directLogprobs: (prompt, answer) => call("debugDirectLogprobs", { prompt, answer }),
  setSavedState: (bytes) => call("debugSetSavedState", { bytes }),
};

function banner(kind, text) {
  const b = $("banner");
  b.hidden = false;
  b.className = `banner ${kind}`;
  b.textContent = text;
}
// (not while the session is being forgotten: the engine's calls then fail on purpose)
const showError = (text) => { if (!forgetting) banner("error", text); };
const warn = (text) => banner("warn", text);
// a success clears an error the visitor has already read
function clearError() {
  if ($("banner").classList.contains("error")) $("banner").hidden = true;
}

function log(text) {
  $("data-log").textContent = text;
}

function setCount(n) {
  rankingCount = n;
  $("ranking-count").textContent = `${n} ranking${n === 1 ? "" : "s"}`;
}

// ---- events from the Worker
lab.on("progress", ({ label, got, total }) => {
  $("load-progress").value = total ? got / total : 0.1;
  $("load-text").textContent = total ? `Loading ${label}: ${(got / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB` : `Loading ${label}…`;
});
// Before the policy moves (the first rankings) an iteration fits the reward model alone: the policy's
// terms were not measured, and plot as gaps rather than zeros.
const POLICY_TERMS = ["reward", "kl_k1", "kl_k3", "ptx_loglik", "policy_loss", "value_loss", "entropy", "truncated", "objective"];
// An iteration's record goes to the compact history, the plots and the learning curve; the
// structured-clone object is dropped.
function record(m) {
  iterations.push(m);
  plots.add(m.rankings < firstMoving() ? { ...m, ...Object.fromEntries(POLICY_TERMS.map((k) => [k, null])) } : m);
  watch.added();
  if (Number.isFinite(m.win_rate)) curve.addLabeler(m.rankings, m.win_rate);
}

// a lab setting's value as the engine reported it (undefined if it has none of that name)
const setting = (key) => info.settings.find((x) => x.key === key)?.value;
// the ranking from which PPO moves the policy (the lab's min-rankings setting)
const firstMoving = () => setting("minRankings") ?? 0;
// the original model's answers among those ranked (the lab's offer-sft settings), said once in the guide
function sftOffered() {
  const n = setting("offerSft") ?? 0;
  const from = setting("offerSftFrom") ?? 0;
  if (!n) return "";
  const when = from > 0 ? `From your ${ordinal(from + 1)} ranking on, most groups have ${n}` : `Most groups have ${n}`;
  return ` ${when} answers from the original model, at random places and unmarked: your rankings keep comparing the trained model with the one it started from.`;
}

lab.on("metrics", ({ metrics: m, offer: next }) => {
  record(m);
  $("train-status").textContent = trainStatus(m, { first: firstMoving(), klCeiling: setting("klCeiling"), klLimit: setting("klLimit") });
  if (!offer) showOffer(next);
  clearError();
});
lab.on("phase", ({ phase, taken }) => {
  if (phase) $("train-status").textContent = `Learning from ${taken} ranking${taken === 1 ? "" : "s"}: ${phase}…`;
  $("spinner").hidden = !phase;
});
lab.on("waiting", ({ offer: next, taken }) => {
  if (!offer) showOffer(next);
  $("spinner").hidden = true;
  const first = firstMoving();
  $("train-status").textContent = taken === 0 ? `Rank the answers in section 1: the reward model learns from your first ranking on${first > 1 ? `, the answers change from your ${ordinal(first)}` : ""}.`
    : `Waiting for your next ranking: the model has learned from all ${taken}. Rank the answers in section 1.${taken < first ? ` ${beforeMoving(taken, first)}` : ""}`;
});
lab.on("ranking", ({ offer: next }) => {
  setCount(rankingCount + 1);
  showOffer(next); // the autopilot ranked what was on screen
});
lab.on("status", ({ text }) => { $("train-status").textContent = text; });
lab.on("comparing", ({ method }) => {
  $("compare-status").textContent = `Training ${info.methods.find((m) => m.name === method).title} on your ${rankingCount} rankings…`;
});
lab.on("compared", ({ run }) => {
  methodsChart.add(run);
  const last = run.curve.at(-1);
  compareLog.push(`${run.title}: win-rate ${(100 * last.win_rate_vs_sft).toFixed(0)}% at KL ${last.kl.toFixed(1)} nats, ${run.seconds.toFixed(0)} s of training`);
  $("compare-status").textContent = compareLog.join(" · ");
});
// for the test of a Worker that dies while it saves; the times, for the simulated person's bench
// (the models were serialized in the Worker's one thread when "saving" comes)
lab.on("saving", () => {
  window.__lab.saves.push({ serialized: performance.now() });
  if (window.__lab.crashOnSave) {
    lab.stop();
    window.__lab.crashed = true;
  }
});
lab.on("saved", ({ bytes }) => {
  const last = window.__lab.saves.at(-1);
  if (last) Object.assign(last, { stored: performance.now(), bytes });
  $("saved").textContent = `Model saved in this browser (${(bytes / 1e6).toFixed(1)} MB).`;
});
// a lost device or a GPU error: start a fresh engine from the last saved state
lab.on("error", ({ kind, text }) => {
  if (kind === "device") recover(text);
  else showError(`Learning stopped: ${text}`);
});
lab.on("training", ({ running }) => {
  $("train-toggle").textContent = running ? "Pause learning" : "Resume learning";
  if (!running) $("spinner").hidden = true;
  $("train-toggle").dataset.running = running ? "1" : "";
  if (!running) $("train-status").textContent = "Paused: your rankings are kept, and the model learns from them when you resume.";
});

let recovering = false;
async function recover(reason) {
  if (recovering) return;
  recovering = true;
  showError(`${reason}. Recovering from the last saved state…`);
  lab.stop();
  lab.start();
  try {
    await connect(false);
    warn(`Recovered from the last saved state after: ${reason}. Learning is paused; resume it to continue.`);
    $("train-toggle").textContent = "Resume learning";
    $("train-toggle").dataset.running = "";
    $("spinner").hidden = true;
  } catch (e) {
    showError(`Could not recover (${e.message}). Reload the page: your rankings and the last saved model are kept.`);
  } finally {
    recovering = false;
  }
}

// ---- ranking
// The group to rank, as the lab offered it: its question, notes, answers. None: the lab is still
// sampling (the first answers, or a person faster than the engine).
function showOffer(next) {
  offer = next || null;
  const waiting = !offer;
  $("offer-wait").hidden = !waiting;
  $("offer-wait").textContent = waiting ? "Sampling the next answers…" : "";
  $("offer-kind").textContent = offer ? (offer.yours ? "Your question:" : "A question it trains on:") : "";
  $("offer-prompt").textContent = offer ? offer.prompt : "";
  $("offer-notes").replaceChildren(...(offer ? offer.notes : []).map((n) => Object.assign(document.createElement("li"), { textContent: n })));
  if (offer) ranking.show(offer.prompt, offer.responses);
  else { $("answers").replaceChildren(); ranking.responses = null; }
  $("offer").dataset.offer = offer ? String(offer.id) : "";
  if (offer) window.__lab.offers.push({ id: offer.id, at: performance.now() });
}

async function ask() {
  const prompt = $("prompt").value.trim();
  if (!prompt) {
    showError("Type a question first (or pick one from the list).");
    return;
  }
  $("generate").disabled = true;
  try {
    showOffer(await call("ask", { prompt }));
    clearError();
  } catch (e) {
    showError(`Could not answer: ${e.message}`);
  } finally {
    $("generate").disabled = false;
  }
}

// One submit at a time: a second click or Enter while the next group is being answered would
// store the same ranking twice.
let submitting = false;

async function submitRanking() {
  if (!offer || !ranking.responses || forgetting || submitting) return;
  submitting = true;
  $("submit-ranking").disabled = true;
  try {
    const r = { prompt: ranking.prompt, responses: ranking.responses, ranks: ranking.ranks() };
    // where the original model's answers are, kept with the ranking (never shown) so that the
    // person's verdict on them outlives a reload
    if (offer.sft?.length) r.sft = offer.sft;
    const id = offer.id;
    await putRanking(db, r); // stored before training sees it
    let res;
    try {
      res = await call("submit", { ranking: r, offer: id });
    } catch (e) {
      // the group was replaced meanwhile (the autopilot ranked it): keep the ranking as one of its own
      res = await call("submit", { ranking: r, offer: null });
    }
    setCount(res.count);
    log(`Ranking stored (${res.count} in all).${res.warning ? ` Note: ${res.warning}.` : ""}`);
    showOffer(res.next);
  } finally {
    submitting = false;
    $("submit-ranking").disabled = !ranking.responses;
  }
}

const capital = (s) => `${s[0].toUpperCase()}${s.slice(1)}`;

// A setting takes effect after the iteration that runs (if one does); the page says when it has.
async function applyOptions(key, label, value) {
  const status = $("settings-status");
  status.textContent = `Setting ${label} to ${value}…`;
  try {
    await call("setOptions", { options: { [key]: value } });
    // kept over a reload, cleared by "forget"
    if (!forgetting) await putSetting(db, key, value).catch((e) => warn(`${capital(label)} applies, but could not be stored (${e.message}): a reload will go back to the default.`));
    status.textContent = `${capital(label)} is now ${value}.`;
    clearError();
  } catch (e) {
    status.textContent = "";
    showError(`Settings not applied: ${e.message}`);
  }
}

// ---- watching and judging
async function inspect(prompt, answer) {
  try {
    tokens.show(await call("inspect", { prompt, answer }), trustNote(iterations));
    $("tokens").scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (e) {
    showError(`Could not show the tokens: ${e.message}`);
  }
}

async function recordJudgement(j) {
  if (forgetting) return;
  await putJudgement(db, { ...j, rankings: rankingCount });
  await showJudgements();
}

async function showJudgements() {
  const js = await allJudgements(db);
  const w = winRate(js);
  const pct = (x) => `${(100 * x).toFixed(0)}%`;
  $("blind-stats").textContent = !w ? "No judgements yet."
    : `You preferred the trained model in ${pct(w.mean)} of ${w.n} judgement${w.n === 1 ? "" : "s"} (ties count half)` +
      (w.lo === null ? "." : `; 95% interval ${pct(w.lo)} to ${pct(w.hi)}.`);
  $("blind-stats").dataset.value = w ? String(w.mean) : "";
  curve.setYou(js);
}

function download(name, data, type) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---- loading
function describeEngine(info) {
  const c = info.choice;
  const timing = c.forced ? `chosen by the page's address, not measured` : c.gpuMs === null ? `a training step took ${c.cpuMs.toFixed(0)} ms on the CPU; no WebGPU adapter`
    : c.probe ? `a training step took ${c.cpuMs.toFixed(0)} ms on the CPU; WebGPU needed ${c.gpuMs.toFixed(0)} ms for one 32 times smaller`
      : `a training step took ${c.gpuMs.toFixed(0)} ms on WebGPU, ${c.cpuMs.toFixed(0)} ms on the CPU`;
  $("adapter").textContent = `Engine: ${info.adapter} (${timing}${c.forced ? "" : "; the faster was chosen"})`;
  $("adapter").dataset.engine = c.gpu ? "webgpu" : "cpu";
  $("adapter").dataset.build = info.build.name;
  if (!c.gpu) $("adapter").textContent += ` · ${info.build.label}`;
  if (c.gpuMs === null && !c.forced) warn("WebGPU is not available here, so the lab runs on its CPU engine compiled to wasm: everything works, only slower. For the GPU, use a recent Chrome, Edge, Firefox or Safari with WebGPU enabled.");
  if (info.notice) warn(info.notice);
  if (!info.owner) warn("Another tab of this page is training this lab. This tab can rank and look, but training and saving stay with the other tab until it closes.");
  if (navigator.gpu) {
    navigator.gpu.requestAdapter().then((a) => {
      if (a && a.info) $("adapter").textContent += ` · adapter: ${[a.info.vendor, a.info.architecture, a.info.description].filter(Boolean).join(" ")}`;
    }).catch(() => {});
  }
}

// Options of a select: [value, text, title] triples.
function fillSelect(el, items) {
  el.replaceChildren(...items.map(([value, text, title]) => Object.assign(document.createElement("option"), { value, textContent: text, title: title || "" })));
}

// The settings the page shows, as the lab describes them: label, help, range and value.
function buildSettings(settings) {
  $("settings").replaceChildren(...settings.filter((s) => s.page).map((s) => {
    const label = document.createElement("label");
    const input = Object.assign(document.createElement("input"), { type: "number", id: `setting-${s.key}`, value: String(s.value) });
    if (s.range.kind === "count") Object.assign(input, { min: s.range.min, max: s.range.max, step: 1 });
    if (s.range.kind === "real") Object.assign(input, { min: s.range.min, max: s.range.max, step: "any" });
    input.addEventListener("change", () => applyOptions(s.key, s.label, Number(input.value)));
    const help = Object.assign(document.createElement("span"), { className: "help", textContent: s.help });
    label.append(`${capital(s.label)} `, input, help);
    return label;
  }));
}

function fillFirstVisit(start) {
  info = start.describe;
  $("guide-first").textContent = `from your ${ordinal(Math.max(1, firstMoving()))} ranking on`;
  $("guide-sft").textContent = sftOffered();
  $("knows").textContent = `This small model knows about ${info.topics.length} topics: ${info.topics.join(", ")}. Its answers to anything else are about those.`;
  $("prompt-list").replaceChildren(...info.prompts.map((p) => Object.assign(document.createElement("option"), { value: p })));
  heldout = info.heldout;
  $("prompt").placeholder = `for example: ${info.prompts[0]}`;
  $("watch-edit").value = info.watch_prompts[0];
  const labelers = info.labelers.map(([name, what]) => [name, name.replace("_", " "), what]);
  fillSelect($("labeler"), labelers);
  fillSelect($("measure-labeler"), labelers);
  buildSettings(info.settings);
  plots = new Plots($("plots"));
  curve = new LearningCurve($("curve"));
  methodsChart = new MethodsChart($("methods"), info.methods);
  $("methods-list").replaceChildren(...info.methods.map((m) => {
    const li = document.createElement("li");
    li.append(Object.assign(document.createElement("strong"), { textContent: `${m.title}. ` }), m.summary);
    return li;
  }));
  window.__lab.plots = plots;
  for (const m of start.restored?.history || []) record(m);
  if (start.restored) $("train-status").textContent = `Resumed after iteration ${start.restored.iteration}.`;
}

// Loads the lab in the Worker, which restores the saved model and the stored rankings; then learning
// starts (when this tab may train).
async function connect(first) {
  const start = await call("init", { base, options: {}, dbName, engine: forcedEngine, workers: forcedWorkers, simd: forcedSimd, seed: forcedSeed });
  window.__lab.seed = start.seed;
  $("load-progress").value = 1;
  $("load-text").textContent = `Ready: a ${(start.parameters / 1e6).toFixed(2)}M-parameter model.`;
  describeEngine(start);
  if (first) fillFirstVisit(start);
  $("lab").hidden = false;
  setCount(start.rankings);
  // in the log as well as the status line, which the resumed learning overwrites within seconds
  const model = start.restored ? ` and the model as it was after iteration ${start.restored.iteration}` : "";
  if (start.rankings || start.restored) log(`Restored ${start.rankings} ranking${start.rankings === 1 ? "" : "s"}${model} from this browser.`);
  showOffer(start.offer);
  if (start.owner) await call("setLearning", { on: true, labeler: null });
}

// ---- wiring
function wireRanking() {
  $("prompt-form").addEventListener("submit", (e) => { e.preventDefault(); ask(); });
  $("submit-ranking").addEventListener("click", () => submitRanking().catch((e) => showError(e.message)));
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = (t instanceof HTMLInputElement && !["checkbox", "range", "file"].includes(t.type)) || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (blind.key(e) || ranking.key(e)) e.preventDefault();
    else if (e.key === "Enter" && !(t instanceof HTMLButtonElement) && !$("submit-ranking").disabled) submitRanking().catch((err) => showError(err.message));
  });
}

function wireTraining() {
  const labeler = () => ($("autopilot").checked ? $("labeler").value : null);
  const set = (on) => call("setLearning", { on, labeler: labeler() }).then(clearError, (e) => showError(e.message));
  $("train-toggle").addEventListener("click", () => set(!$("train-toggle").dataset.running));
  $("autopilot").addEventListener("change", () => set(true));
  $("labeler").addEventListener("change", () => { if ($("autopilot").checked) set(true); });
  $("watch-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const p = $("watch-edit").value.trim();
    try {
      await call("setWatchPrompts", { prompts: [p, ...heldout.slice(1, 3)] });
      log(`The watch panel follows “${p}” from the next iteration on.`);
    } catch (err) {
      showError(`Cannot follow that question: ${err.message}`);
    }
  });
}

function wireJudging() {
  $("blind-next").addEventListener("click", () => blind.show().catch((e) => showError(e.message)));
  $("compare").addEventListener("click", () => compareMethods());
  $("measure").addEventListener("click", async () => {
    const name = $("measure-labeler").value;
    $("measure").disabled = true;
    $("win-rate").textContent = "measuring: 96 answers of each model to questions never trained on…";
    try {
      const w = (await call("winRate", { labeler: name })).win_rate_vs_sft;
      $("win-rate").textContent = `The ${name.replace("_", " ")} labeler prefers the trained model over the original in ${(100 * w).toFixed(0)}% of held-out comparisons.`;
      $("win-rate").dataset.value = String(w);
      curve.addLabeler(rankingCount, w);
    } catch (e) {
      $("win-rate").textContent = `could not measure: ${e.message}`;
    } finally {
      $("measure").disabled = false;
    }
  });
}

async function compareMethods() {
  if (rankingCount < 1) {
    $("compare-status").textContent = "Rank some answers first: the methods learn from your rankings.";
    return;
  }
  $("compare").disabled = true;
  compareLog = [];
  const labeler = $("measure-labeler").value;
  try {
    await call("compare", { labeler, methods: info.methods.map((m) => m.name) });
    $("compare-status").textContent = `The ${labeler.replace("_", " ")} labeler judged: ${compareLog.join(" · ")}`;
    $("compare-status").dataset.done = "1";
  } catch (e) {
    $("compare-status").textContent = `Could not compare: ${e.message}`;
  } finally {
    $("compare").disabled = false;
  }
}

function wireData() {
  $("export-rankings").addEventListener("click", async () => {
    const text = toJsonl(await allRankings(db));
    download("rankings.jsonl", text, "application/jsonl");
    log(`Exported ${text.split("\n").filter(Boolean).length} pairs (TRL's conversational preference format).`);
  });
  $("export-judgements").addEventListener("click", async () => {
    const js = await allJudgements(db);
    download("judgements.jsonl", judgementsJsonl(js), "application/jsonl");
    log(`Exported ${js.length} blind judgements.`);
  });
  $("import-rankings").addEventListener("change", (e) => importRankings(e.target).catch((err) => showError(err.message)));
  $("export-model").addEventListener("click", () => exportModels().catch((err) => showError(`Export failed: ${err.message}`)));
  $("forget").addEventListener("click", async () => {
    forgetting = true;
    log("Forgetting everything: stopping the engine, here and in this lab's other tabs…");
    // every engine of this lab stops saving first, in this tab and the others; then the store is cleared
    await forgetEverything(dbName, lab, async () => {
      await clearRankings(db);
      await clearState(db);
      await clearJudgements(db);
    });
    log("Stored rankings, judgements and models cleared; starting a new session from the base model.");
    location.reload();
  });
}

async function importRankings(input) {
  const file = input.files[0];
  if (!file) return;
  const { rankings, errors, duplicates } = fromJsonl(await file.text(), await allRankings(db));
  let added = 0;
  const notes = [];
  for (const r of rankings) {
    if (forgetting) return; // the store is being cleared: storing more would bring the session back
    try {
      await putRanking(db, r);
      const { warning } = await call("submit", { ranking: r, offer: null });
      added++;
      if (warning) notes.push(`a pair for "${r.prompt}": ${warning}`);
    } catch (err) {
      errors.push(`a ranking of "${r.prompt}": ${err.message}`);
    }
  }
  setCount(rankingCount + added);
  let text = `Imported ${added} ranking${added === 1 ? "" : "s"}.`;
  if (duplicates) text += ` Skipped ${duplicates} pair${duplicates === 1 ? "" : "s"} already stored.`;
  if (errors.length) text += `\n${errors.length} problem(s):\n${errors.join("\n")}`;
  if (notes.length) text += `\nWarnings:\n${notes.join("\n")}`;
  log(text);
  input.value = "";
}

// One archive: policy/ (GPT2LMHeadModel) and reward_model/ (GPT2ForSequenceClassification), each
// with the tokenizer and its chat template, the rankings in TRL's format and the lab's own scores
// of a few answers (reward_check.json), for `transformers` and TRL to take over.
async function exportModels() {
  const m = await call("exportModels");
  const files = [];
  for (const [dir, model] of [["policy", m.policy], ["reward_model", m.reward]]) {
    files.push([`${dir}/config.json`, model.config], [`${dir}/model.safetensors`, model.weights], [`${dir}/tokenizer.json`, m.tokenizer], [`${dir}/tokenizer_config.json`, m.tokenizer_config]);
  }
  files.push(["rankings.jsonl", toJsonl(await allRankings(db))], ["reward_check.json", m.reward_check]);
  download("rlhf-lab-export.tar", tar(files), "application/x-tar");
  log("Exported rlhf-lab-export.tar: policy/ and reward_model/ (load them with transformers' from_pretrained), rankings.jsonl and reward_check.json. scripts/trl_continue.py takes it on to TRL; see the README for many GPUs.");
}

async function main() {
  db = await openStore(dbName);
  listenForForget(dbName, lab, () => {
    forgetting = true;
    warn("Everything this page stored was forgotten in another tab. Starting a new session from the base model…");
  });
  if (localStorage.getItem("rlhf-lab-guide") === "closed") $("guide").hidden = true;
  $("guide-close").addEventListener("click", () => {
    $("guide").hidden = true;
    localStorage.setItem("rlhf-lab-guide", "closed");
  });
  lab.start();
  await connect(true);
  await showJudgements();
  wireRanking();
  wireTraining();
  wireJudging();
  wireData();
  document.body.dataset.ready = "1";
}

main().catch((e) => {
  $("load-text").textContent = `Could not start: ${e.message || e}`;
  $("load-text").classList.add("error");
  showError(`Could not start the lab: ${e.message || e}`);
});
