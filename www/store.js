// IndexedDB: rankings (written before training uses them), blind-test judgements (kept apart: they
// never train), the lab's saved state (written by the Worker as training goes); and the JSONL
// formats for export and import.

const STORE = "rankings";
const STATE = "state";
const JUDGEMENTS = "judgements";

export function openStore(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 3);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { autoIncrement: true });
      if (!db.objectStoreNames.contains(STATE)) db.createObjectStore(STATE);
      if (!db.objectStoreNames.contains(JUDGEMENTS)) db.createObjectStore(JUDGEMENTS, { autoIncrement: true });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new Error(`IndexedDB: ${req.error}`));
  });
}

function tx(db, mode, fn, store = STORE) {
  return new Promise((resolve, reject) => {
    const t = db.transaction(store, mode);
    const out = fn(t.objectStore(store));
    t.oncomplete = () => resolve(out && "result" in out ? out.result : undefined);
    t.onerror = () => reject(new Error(`IndexedDB: ${t.error}`));
  });
}

export function putRanking(db, ranking) {
  return tx(db, "readwrite", (s) => s.add(ranking));
}

export function allRankings(db) {
  return tx(db, "readonly", (s) => s.getAll());
}

export function clearRankings(db) {
  return tx(db, "readwrite", (s) => s.clear());
}

export function putJudgement(db, j) {
  return tx(db, "readwrite", (s) => s.add(j), JUDGEMENTS);
}

export function allJudgements(db) {
  return tx(db, "readonly", (s) => s.getAll(), JUDGEMENTS);
}

export function clearJudgements(db) {
  return tx(db, "readwrite", (s) => s.clear(), JUDGEMENTS);
}

export function putState(db, bytes) {
  return tx(db, "readwrite", (s) => s.put(bytes, "latest"), STATE);
}

export function getState(db) {
  return tx(db, "readonly", (s) => s.get("latest"), STATE);
}

// The session's seed, drawn when a session starts (none stored; `given` instead, where a test names
// one) and kept until "forget" clears the state: each session, a visitor's first and each after
// "forget", draws its own questions and answers, and a reload or a second tab goes on with the
// same. `add` fails where another tab stored one first; that one is then read.
export async function sessionSeed(db, given = null) {
  const read = () => tx(db, "readonly", (s) => s.get("seed"), STATE);
  const stored = await read();
  if (Number.isInteger(stored)) return stored;
  const seed = given ?? crypto.getRandomValues(new Uint32Array(1))[0];
  try {
    await tx(db, "readwrite", (s) => s.add(seed, "seed"), STATE);
    return seed;
  } catch {
    return await read();
  }
}

// The settings the person changed ({key: value}, the lab's option names), kept with the state so a
// reload or a second tab starts with them and "forget" clears them. Read and written in one
// transaction, so two tabs' changes do not undo each other.
export function putSetting(db, key, value) {
  return tx(db, "readwrite", (s) => {
    const r = s.get("settings");
    r.onsuccess = () => s.put({ ...(r.result || {}), [key]: value }, "settings");
  }, STATE);
}

export function getSettings(db) {
  return tx(db, "readonly", (s) => s.get("settings"), STATE);
}

export function clearSettings(db) {
  return tx(db, "readwrite", (s) => s.delete("settings"), STATE);
}

// A state the lab could not read is kept under its own key, out of the way of new saves.
export function setAsideState(db, bytes) {
  return tx(db, "readwrite", (s) => { s.put(bytes, `unreadable-${Date.now()}`); s.delete("latest"); }, STATE);
}

export function clearState(db) {
  return tx(db, "readwrite", (s) => s.clear(), STATE);
}

// One line per pair a ranking states (statedPairs), in TRL's conversational preference format, so
// the exported tokenizer's chat template renders it in the model's own format
// (<|user|>…<|assistant|>…<|end|>): {prompt: [{role: "user", content}], chosen: [{role: "assistant",
// content}], rejected: [...]}.
export function toJsonl(rankings) {
  const msg = (role, content) => [{ role, content }];
  const lines = rankings.flatMap((r) =>
    statedPairs(r).map(([i, j]) => JSON.stringify({ prompt: msg("user", r.prompt), chosen: msg("assistant", r.responses[i]), rejected: msg("assistant", r.responses[j]) })),
  );
  return lines.join("\n") + (lines.length ? "\n" : "");
}

// The pairs (better, worse) of answer indices a ranking states. Ties state none, nor do two answers
// of the same text ranked apart: such a pair states no preference, and the import refuses it, so
// an exported file always imports whole.
function statedPairs(r) {
  const pairs = [];
  for (let i = 0; i < r.responses.length; i++) {
    for (let j = 0; j < r.responses.length; j++) {
      if (r.ranks[i] < r.ranks[j] && r.responses[i] !== r.responses[j]) pairs.push([i, j]);
    }
  }
  return pairs;
}

// A field as text: a string, or the content of a one-message conversation.
function text(v, role) {
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.length === 1 && v[0] && v[0].role === role && typeof v[0].content === "string") return v[0].content;
  return null;
}

// Parses JSONL pairs (plain strings or TRL's conversational format) into K=2 rankings; every
// problem names its line, and a pair already stored (or repeated in the file) is skipped.
export function fromJsonl(input, stored = []) {
  const rankings = [];
  const errors = [];
  const seen = new Set(stored.flatMap(pairKeys));
  let duplicates = 0;
  input.split(/\r?\n/).forEach((line, i) => {
    const n = i + 1;
    if (!line.trim()) return;
    let v;
    try {
      v = JSON.parse(line);
    } catch (e) {
      errors.push(`line ${n}: not valid JSON (${e.message})`);
      return;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      errors.push(`line ${n}: expected an object {prompt, chosen, rejected}`);
      return;
    }
    const fields = { prompt: text(v.prompt, "user"), chosen: text(v.chosen, "assistant"), rejected: text(v.rejected, "assistant") };
    for (const key of ["prompt", "chosen", "rejected"]) {
      if (fields[key] === null) {
        errors.push(`line ${n}: "${key}" must be a string (or one ${key === "prompt" ? "user" : "assistant"} message)`);
        return;
      }
    }
    if (!fields.prompt.trim()) {
      errors.push(`line ${n}: "prompt" is empty`);
      return;
    }
    if (!fields.chosen.trim() || !fields.rejected.trim()) {
      errors.push(`line ${n}: an empty answer teaches nothing`);
      return;
    }
    if (fields.chosen === fields.rejected) {
      errors.push(`line ${n}: "chosen" and "rejected" are the same text`);
      return;
    }
    const r = { prompt: fields.prompt, responses: [fields.chosen, fields.rejected], ranks: [0, 1] };
    const key = pairKeys(r)[0];
    if (seen.has(key)) {
      duplicates += 1;
      return;
    }
    seen.add(key);
    rankings.push(r);
  });
  return { rankings, errors, duplicates };
}

// The pairs a ranking states, as keys: the same pair from a K-way ranking or an import matches.
function pairKeys(r) {
  return statedPairs(r).map(([i, j]) => JSON.stringify([r.prompt, r.responses[i], r.responses[j]]));
}

// Blind-test judgements, one per line, apart from the rankings: they measure and never train.
export function judgementsJsonl(js) {
  return js.map((j) => JSON.stringify(j)).join("\n") + (js.length ? "\n" : "");
}
