// The token view: an answer token by token, each coloured by log π − log π_SFT, with the exact
// numbers on hover or focus, and the reward model's score at every prefix as a line.
import uPlot from "./vendor/uPlot.esm.js";
import { plotWidth } from "./plots.js";

const CAP = 3; // nats at which the colour saturates

function colour(delta) {
  const a = Math.min(1, Math.abs(delta) / CAP);
  return delta >= 0 ? `rgba(47, 91, 211, ${a * 0.55})` : `rgba(222, 120, 40, ${a * 0.6})`;
}

export class TokenView {
  constructor(el) {
    this.el = el;
    this.text = el.querySelector("#token-text");
    this.detail = el.querySelector("#token-detail");
    this.plotBox = el.querySelector("#token-plot");
  }

  // trust: a line on how far the reward model's scores can be trusted (watch.js's trustNote)
  show(view, trust = "") {
    this.el.hidden = false;
    this.view = view;
    const spans = view.tokens.map((tok, i) => {
      const s = document.createElement("span");
      const delta = view.logp_policy[i] - view.logp_sft[i];
      s.className = "tok";
      s.tabIndex = 0;
      s.textContent = tok;
      s.style.background = colour(delta);
      s.dataset.delta = String(delta);
      s.dataset.logp = String(view.logp_policy[i]);
      s.dataset.logpSft = String(view.logp_sft[i]);
      s.dataset.prefix = String(view.prefix_scores[i]);
      const line = this.describe(tok, i);
      s.title = line;
      const focus = () => { this.detail.textContent = line; };
      s.addEventListener("mouseenter", focus);
      s.addEventListener("focus", focus);
      return s;
    });
    this.text.replaceChildren(...spans);
    this.detail.textContent = `Whole answer: reward ${view.score.toFixed(2)}. Hover or focus a token for its numbers.${trust ? ` ${trust}` : ""}`;
    this.plot();
  }

  describe(tok, i) {
    const v = this.view;
    const d = v.logp_policy[i] - v.logp_sft[i];
    return `“${tok}”: log π = ${v.logp_policy[i].toFixed(2)}, log π_SFT = ${v.logp_sft[i].toFixed(2)}, difference ${d >= 0 ? "+" : ""}${d.toFixed(2)} nats; reward if the answer ended here ${v.prefix_scores[i].toFixed(2)}`;
  }

  plot() {
    const xs = this.view.prefix_scores.map((_, i) => i + 1);
    const data = [xs, this.view.prefix_scores];
    if (this.chart) this.chart.destroy();
    this.chart = new uPlot({
      width: plotWidth(this.plotBox), height: 160,
      scales: { x: { time: false } },
      axes: [{ label: "tokens so far" }, { label: "reward", size: 50 }],
      series: [{ label: "token" }, { label: "reward if it ended here", stroke: "#2f9d5b", width: 2, points: { size: 4 } }],
    }, data, this.plotBox);
  }
}
