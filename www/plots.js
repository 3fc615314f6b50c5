// Live plots of every term of the objective, one uPlot chart per group, x = training iteration,
// and the learning curve: win-rate against the number of rankings. Charts fit their container.
import uPlot from "./vendor/uPlot.esm.js";

export const PLOTS = [
  { id: "reward", title: "Reward r(x, y)", y: "score", series: [["reward", "mean reward"]],
    help: "What PPO maximizes: the reward model's score of the policy's answers, in spreads of the original model's answers (0 = an average original answer)." },
  { id: "kl", title: "KL(π ‖ π_SFT)", y: "nats per answer", series: [["kl_k1", "k1"], ["kl_k3", "k3"]],
    help: "How far the policy moved from the original model. The penalty β·log(π/π_SFT) holds it back; a blow-up means it left what the reward model knows." },
  { id: "ptx", title: "Pretraining log-likelihood", y: "nats per token", series: [["ptx_loglik", "log π(x)"]],
    help: "γ·E[log π(x)], the term that keeps the model's language intact: each step trains it on plain prose and, by default, one answer you ranked first and the reward model's favourite of the model's latest answers (its score less its KL cost); plotted on plain text never trained on. It should stay near where it started." },
  { id: "loss", title: "PPO loss", y: "loss", series: [["policy_loss", "clipped surrogate"], ["value_loss", "value"]],
    help: "The clipped surrogate moves the policy toward answers that beat the other answers to the same question." },
  { id: "entropy", title: "Entropy", y: "nats per token", series: [["entropy", "entropy"], ["truncated", "answers cut off"]],
    help: "How spread the policy's choices are; a fall toward 0 warns of collapse to one answer. Also the share of answers cut off at the length limit." },
  { id: "objective", title: "Objective", y: "value", series: [["objective", "r − β·KL + γ·ptx"]],
    help: "The whole PPO-ptx objective: reward minus the KL penalty plus γ times the pretraining log-likelihood." },
  { id: "rm", title: "Reward model", y: "loss / accuracy", series: [["rm_loss", "ranking loss"], ["rm_accuracy", "pair accuracy"], ["rm_new_accuracy", "on new rankings"]],
    help: "The ranking loss over all pairs (a tie counts half each way), how often the reward model orders a pair as you did, and how often it got each new ranking right before learning from it." },
];

const NO_ITERATIONS = "No iterations yet: a point per iteration, from your first ranking on.";

const COLORS = ["#2f5bd3", "#d3542f", "#2f9d5b", "#8a3fd3"];

/// The width a chart may take in `box` (its container's), within a phone's screen.
export function plotWidth(box) {
  return Math.max(240, Math.min(560, Math.floor(box.clientWidth || box.parentElement.clientWidth || 320) - 8));
}

// An empty chart is a note of what fills it, not a blank frame: a visitor who has not trained yet
// scrolls past a line each, not eleven empty axes (most of a phone's screen each).
function chart(container, id, title, help, empty, xLabel, yLabel, series) {
  const box = document.createElement("figure");
  box.className = "plot empty";
  box.dataset.plot = id;
  const cap = document.createElement("figcaption");
  const h = document.createElement("strong");
  h.textContent = title;
  const text = document.createElement("span");
  text.className = "help";
  text.textContent = help;
  cap.append(h, text);
  const note = document.createElement("p");
  note.className = "empty-note help";
  note.textContent = empty;
  const area = document.createElement("div");
  box.append(cap, note, area);
  container.append(box);
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot({
    width: plotWidth(area), height: 180,
    scales: { x: { time: false } },
    axes: [{ label: xLabel }, { label: yLabel, size: 55 }],
    series: [{ label: xLabel }, ...series.map((label, i) => ({ label, stroke: COLORS[i], width: 2, points: { size: 5 } }))],
  }, data, area);
  new ResizeObserver(() => plot.setSize({ width: plotWidth(area), height: 180 })).observe(area);
  // A chart off screen (scrolled away, or in a closed section) is redrawn when it comes into view,
  // not at every iteration: a redraw costs the whole series.
  const c = { plot, data, onScreen: false, stale: false };
  c.draw = () => {
    box.classList.toggle("empty", data[0].length === 0);
    c.stale = !c.onScreen;
    if (c.onScreen) plot.setData(data);
  };
  new IntersectionObserver(([e]) => {
    c.onScreen = e.isIntersecting;
    if (c.onScreen && c.stale) c.draw();
  }).observe(box);
  return c;
}

export class Plots {
  constructor(container) {
    this.charts = {};
    for (const p of PLOTS) this.charts[p.id] = chart(container, p.id, p.title, p.help, NO_ITERATIONS, "iteration", p.y, p.series.map(([, l]) => l));
    this.points = 0;
  }

  add(m) {
    for (const p of PLOTS) {
      const c = this.charts[p.id];
      c.data[0].push(m.iteration);
      p.series.forEach(([key], i) => c.data[i + 1].push(Number.isFinite(m[key]) ? m[key] : null));
      c.draw();
    }
    this.points += 1;
  }
}

/// Win-rate against SFT by rankings so far: the autopilot labeler's measurements and the visitor's
/// own blind judgements (their running win-rate).
export class LearningCurve {
  constructor(container) {
    const help = "How often the trained model's answer wins against the original's on questions never trained on (ties count half), against the rankings given so far: measured for the autopilot's labeler every few rankings, and from your blind judgements.";
    const empty = "No points yet: turn the autopilot on, measure a labeler's win-rate, or judge pairs blind.";
    this.c = chart(container, "curve", "Learning curve", help, empty, "rankings", "win-rate", ["labeler", "you"]);
    this.labeler = new Map();
    this.you = new Map();
  }

  addLabeler(rankings, win) {
    this.labeler.set(rankings, win);
    this.redraw();
  }

  // judgements: [{rankings, pick}] in order; the running mean at each ranking count
  setYou(judgements) {
    this.you.clear();
    let sum = 0;
    judgements.forEach((j, i) => {
      sum += j.pick === "policy" ? 1 : j.pick === "tie" ? 0.5 : 0;
      this.you.set(j.rankings ?? 0, sum / (i + 1));
    });
    this.redraw();
  }

  redraw() {
    const xs = [...new Set([...this.labeler.keys(), ...this.you.keys()])].sort((a, b) => a - b);
    const d = this.c.data;
    d[0] = xs;
    d[1] = xs.map((x) => this.labeler.get(x) ?? null);
    d[2] = xs.map((x) => this.you.get(x) ?? null);
    this.c.draw();
  }
}

/// The methods side by side on the same rankings: the labeler's win-rate and the KL to SFT against
/// the rankings, a series per method on shared axes.
export class MethodsChart {
  constructor(container, methods) {
    this.methods = methods; // [{name, title}]
    const titles = methods.map((m) => m.title);
    const empty = "Nothing yet: press \"Compare methods on my rankings\".";
    this.win = chart(container, "methods-win", "Win-rate by method", "The chosen labeler's win-rate against the original model, for each method trained on the same rankings.", empty, "rankings", "win-rate", titles);
    this.kl = chart(container, "methods-kl", "KL by method", "How far each method moved the model from the original one (nats per answer).", empty, "rankings", "KL", titles);
    this.runs = new Map();
  }

  // run: {method, curve: [{rankings, win_rate_vs_sft, kl}]}
  add(run) {
    this.runs.set(run.method, run.curve);
    const xs = [...new Set([...this.runs.values()].flat().map((c) => c.rankings))].sort((a, b) => a - b);
    for (const [c, key] of [[this.win, "win_rate_vs_sft"], [this.kl, "kl"]]) {
      c.data[0] = xs;
      this.methods.forEach((m, i) => {
        const curve = this.runs.get(m.name) || [];
        c.data[i + 1] = xs.map((x) => curve.find((p) => p.rankings === x)?.[key] ?? null);
      });
      c.draw();
    }
  }
}
