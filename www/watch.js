// The watch panel: the same questions answered after every iteration by SFT and by the policy, with
// the reward model's scores; a slider replays earlier iterations. Model text is always text.

export class Watch {
  // history: the session's records (history.js), one per iteration
  constructor(el, onInspect, history) {
    this.items = el.querySelector("#watch-items");
    this.slider = el.querySelector("#watch-slider");
    this.at = el.querySelector("#watch-at");
    this.onInspect = onInspect;
    this.history = history;
    this.slider.addEventListener("input", () => this.show(Number(this.slider.value)));
  }

  // Shows the history's newest record unless the visitor scrolled back.
  added() {
    const n = this.history.length;
    const following = n === 1 || Number(this.slider.value) >= n - 2;
    this.slider.max = String(n - 1);
    this.slider.disabled = n < 2;
    if (following) {
      this.slider.value = this.slider.max;
      this.show(n - 1);
    }
  }

  show(i) {
    const r = this.history.at(i);
    if (!r) return;
    this.at.value = `${r.iteration + 1} of ${this.history.length} (${r.rankings} ranking${r.rankings === 1 ? "" : "s"})`;
    this.items.replaceChildren(...r.watch.map((w) => this.item(w)));
  }

  item(w) {
    const box = document.createElement("div");
    box.className = "watched";
    const q = document.createElement("p");
    q.className = "prompt";
    q.textContent = w.prompt;
    const sides = document.createElement("div");
    sides.className = "sides";
    sides.append(this.side("Original (SFT)", w.prompt, w.sft, w.sft_score, w.sft_spread, "sft"), this.side("In training", w.prompt, w.policy, w.policy_score, w.policy_spread, "policy"));
    box.append(q, sides);
    return box;
  }

  // spread: the reward models' disagreement on the score (0 with one reward model)
  side(title, prompt, text, score, spread, who) {
    const d = document.createElement("div");
    const h = document.createElement("h4");
    h.textContent = `${title} `;
    const badge = document.createElement("span");
    badge.className = "score";
    badge.textContent = `reward ${score >= 0 ? "+" : ""}${score.toFixed(2)}${spread > 0 ? ` ± ${spread.toFixed(2)}` : ""}`;
    if (spread > 0) badge.title = "± the reward models' spread: where they disagree, the score means less";
    h.append(badge);
    const p = document.createElement("button");
    p.className = "answer-text linkish";
    p.dataset.who = who;
    p.textContent = text || "(empty answer)";
    p.title = "See this answer token by token";
    p.addEventListener("click", () => this.onInspect(prompt, text));
    d.append(h, p);
    return d;
  }
}
