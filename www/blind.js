// The blind test: an SFT answer and a trained answer to a held-out question, in random order; the
// visitor picks one or a tie. Judgements are kept apart from rankings and never train the model.

// Mean and 95% interval of scores 1 (trained model preferred), 0.5 (tie), 0 (SFT preferred): the
// normal approximation with the sample's own spread, clipped to [0, 1]; no interval below 2 picks.
export function winRate(judgements) {
  const xs = judgements.map((j) => (j.pick === "policy" ? 1 : j.pick === "tie" ? 0.5 : 0));
  const n = xs.length;
  if (n === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, lo: null, hi: null };
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  const half = 1.96 * Math.sqrt(variance / n);
  return { n, mean, lo: Math.max(0, mean - half), hi: Math.min(1, mean + half) };
}

export class BlindTest {
  // next(): a promise of {prompt, sft, policy}; record(judgement): stores one.
  constructor(el, next, record) {
    this.el = el;
    this.next = next;
    this.record = record;
    this.pair = null;
    el.querySelector("#pick-a").addEventListener("click", () => this.pick("a"));
    el.querySelector("#pick-b").addEventListener("click", () => this.pick("b"));
    el.querySelector("#pick-tie").addEventListener("click", () => this.pick("tie"));
  }

  async show() {
    this.el.dataset.ready = "";
    const pair = await this.next();
    const policyFirst = Math.random() < 0.5;
    this.pair = { ...pair, first: policyFirst ? "policy" : "sft" };
    this.el.querySelector("#blind-prompt").textContent = pair.prompt;
    this.el.querySelector("#blind-a").textContent = (policyFirst ? pair.policy : pair.sft) || "(empty answer)";
    this.el.querySelector("#blind-b").textContent = (policyFirst ? pair.sft : pair.policy) || "(empty answer)";
    this.el.hidden = false;
    this.el.dataset.ready = "1";
  }

  // key: "a", "b" or "tie"
  async pick(key) {
    if (!this.pair) return;
    const p = this.pair;
    this.pair = null;
    const second = p.first === "policy" ? "sft" : "policy";
    const pick = key === "tie" ? "tie" : key === "a" ? p.first : second;
    await this.record({ prompt: p.prompt, sft: p.sft, policy: p.policy, shown_first: p.first, pick, time: Date.now() });
    await this.show();
  }

  key(e) {
    if (this.el.hidden || !this.pair) return false;
    const k = e.key.toLowerCase();
    if (k === "a" || k === "b") this.pick(k);
    else if (k === "t") this.pick("tie");
    else return false;
    return true;
  }
}
