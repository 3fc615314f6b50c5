// IndexedDB: rankings (written before training uses them) and the lab's saved state (written by
// the Worker as training goes), and the JSONL format for export/import.

const STORE = "rankings";
const STATE = "state";

export function openStore(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 2);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { autoIncrement: true });
      if (!db.objectStoreNames.contains(STATE)) db.createObjectStore(STATE);
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

export function putState(db, bytes) {
  return tx(db, "readwrite", (s) => s.put(bytes, "latest"), STATE);
}

export function getState(db) {
  return tx(db, "readonly", (s) => s.get("latest"), STATE);
}

// A state the lab could not read is kept under its own key, out of the way of new saves.
export function setAsideState(db, bytes) {
  return tx(db, "readwrite", (s) => { s.put(bytes, `unreadable-${Date.now()}`); s.delete("latest"); }, STATE);
}

export function clearState(db) {
  return tx(db, "readwrite", (s) => s.clear(), STATE);
}

// One line per ordered pair: {prompt, chosen, rejected}. Ties make no line.
export function toJsonl(rankings) {
  const lines = [];
  for (const r of rankings) {
    for (let i = 0; i < r.responses.length; i++) {
      for (let j = 0; j < r.responses.length; j++) {
        if (r.ranks[i] < r.ranks[j]) {
          lines.push(JSON.stringify({ prompt: r.prompt, chosen: r.responses[i], rejected: r.responses[j] }));
        }
      }
    }
  }
  return lines.join("\n") + (lines.length ? "\n" : "");
}

// Parses JSONL pairs into K=2 rankings; every problem names its line.
export function fromJsonl(text) {
  const rankings = [];
  const errors = [];
  text.split(/\r?\n/).forEach((line, i) => {
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
    for (const key of ["prompt", "chosen", "rejected"]) {
      if (typeof v[key] !== "string") {
        errors.push(`line ${n}: "${key}" must be a string`);
        return;
      }
    }
    if (!v.prompt.trim()) {
      errors.push(`line ${n}: "prompt" is empty`);
      return;
    }
    if (v.chosen === v.rejected) {
      errors.push(`line ${n}: "chosen" and "rejected" are the same text`);
      return;
    }
    rankings.push({ prompt: v.prompt, responses: [v.chosen, v.rejected], ranks: [0, 1] });
  });
  return { rankings, errors };
}
