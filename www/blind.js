// The blind test: an SFT answer and a trained answer to a held-out question, in random order; the
// visitor picks one or a tie. Judgements are kept apart from rankings and never train the model.
// Orders come in shuffled blocks of four, two of each, so any eight judgements in a row show each
// order at least twice: a preference for the first place cannot lean the count far either way.

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
    this.orders = [];
    el.querySelector("#pick-a").addEventListener("click", () => this.pick("a"));
    el.querySelector("#pick-b").addEventListener("click", () => this.pick("b"));
    el.querySelector("#pick-tie").addEventListener("click", () => this.pick("tie"));
  }

  async show() {
    this.el.dataset.ready = "";
    const pair = await this.next();
    const first = this.nextOrder();
    const policyFirst = first === "policy";
    this.pair = { ...pair, first };
    this.el.querySelector("#blind-prompt").textContent = pair.prompt;
    this.el.querySelector("#blind-a").textContent = (policyFirst ? pair.policy : pair.sft) || "(empty answer)";
    this.el.querySelector("#blind-b").textContent = (policyFirst ? pair.sft : pair.policy) || "(empty answer)";
    this.el.hidden = false;
    this.el.dataset.ready = "1";
  }

  // Which answer goes first: the next of a shuffled block of two "policy" and two "sft".
  nextOrder() {
    if (this.orders.length === 0) {
      const block = ["policy", "policy", "sft", "sft"];
      for (let i = block.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [block[i], block[j]] = [block[j], block[i]];
      }
      this.orders = block;
    }
    return this.orders.pop();
  }

  // key: "a", "b" or "tie"
  async pick(key) {
    if (!this.pair) return;
    const p = this.pair;
    this.pair = null;
    // not ready until the next pair is on screen: a pick in between would be dropped
    this.el.dataset.ready = "";
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
