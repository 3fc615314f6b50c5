// The session's iteration records, kept compactly so that a long session's memory stays flat: a
// record arrives as a structured-clone object of some thirty fields (about 4 KB of heap each); here
// each numeric field is one slot of a growing Float64Array, each text is kept once (the watched
// answers repeat from one iteration to the next, SFT's always), and a record is rebuilt on demand.

const GROW = 64; // slots added to every column at a time

export class History {
  constructor() {
    this.length = 0;
    this.numbers = new Map(); // key -> Float64Array (NaN where the record had null)
    this.values = new Map(); // key -> array of anything else (texts interned, watch lists compacted)
    this.texts = new Map();
  }

  intern(s) {
    if (typeof s !== "string") return s;
    const kept = this.texts.get(s);
    if (kept !== undefined) return kept;
    this.texts.set(s, s);
    return s;
  }

  // The watch panel's answers, as small objects of one shape with their texts interned.
  watched(list) {
    return (list || []).map((w) => ({
      prompt: this.intern(w.prompt), policy: this.intern(w.policy), sft: this.intern(w.sft),
      policy_score: w.policy_score, sft_score: w.sft_score, policy_spread: w.policy_spread ?? 0, sft_spread: w.sft_spread ?? 0,
    }));
  }

  push(m) {
    const i = this.length;
    for (const [key, v] of Object.entries(m)) {
      if (v === null || v === undefined) continue; // a missing value reads null
      if (typeof v === "number" && !this.values.has(key)) this.setNumber(key, i, v);
      else this.valuesOf(key)[i] = key === "watch" ? this.watched(v) : this.intern(v);
    }
    this.length = i + 1;
  }

  // A key's column of other values; a number column that meets another value becomes one.
  valuesOf(key) {
    if (!this.values.has(key)) {
      const nums = this.numbers.get(key);
      this.values.set(key, nums ? Array.from(nums.subarray(0, this.length), (x) => (Number.isNaN(x) ? null : x)) : []);
      this.numbers.delete(key);
    }
    return this.values.get(key);
  }

  setNumber(key, i, v) {
    let col = this.numbers.get(key) || new Float64Array(0);
    if (i >= col.length) {
      const grown = new Float64Array(col.length + GROW).fill(NaN);
      grown.set(col);
      this.numbers.set(key, (col = grown));
    }
    col[i] = v;
  }

  /// The i-th record (negative counts from the end), rebuilt: NaN and missing values read null.
  at(i) {
    if (i < 0) i += this.length;
    if (i < 0 || i >= this.length) return undefined;
    const m = {};
    for (const [key, col] of this.numbers) m[key] = i < col.length && !Number.isNaN(col[i]) ? col[i] : null;
    for (const [key, col] of this.values) m[key] = col[i] ?? null;
    if (!m.watch) m.watch = [];
    return m;
  }

  records() {
    return Array.from({ length: this.length }, (_, i) => this.at(i));
  }
}
