// Live plots of every term of the objective, one uPlot chart per group, x = training iteration.
import uPlot from "./vendor/uPlot.esm.js";

export const PLOTS = [
  { id: "reward", title: "Reward r(x, y)", y: "score", series: [["reward", "mean reward"]],
    help: "What PPO maximizes: the reward model's score of the policy's answers, in spreads of SFT's answers (0 = an average SFT demonstration)." },
  { id: "kl", title: "KL(π ‖ π_SFT)", y: "nats per answer", series: [["kl_k1", "k1"], ["kl_k3", "k3"]],
    help: "The per-token penalty β·log(π/π_SFT) keeps the policy near SFT. k1 is the plain estimator, k3 the never-negative one; a blow-up means the policy left what the reward model knows." },
  { id: "ptx", title: "Pretraining log-likelihood", y: "nats per token", series: [["ptx_loglik", "log π(x)"]],
    help: "γ·E[log π(x)] on pretraining text: the term that keeps the alignment tax small. It should stay flat." },
  { id: "loss", title: "PPO losses", y: "loss", series: [["policy_loss", "policy (clipped surrogate)"], ["value_loss", "value"]],
    help: "The clipped surrogate moves the policy toward answers with positive advantage; the value model learns to predict returns." },
  { id: "entropy", title: "Entropy", y: "nats per token", series: [["entropy", "entropy"]],
    help: "How spread the policy's choices are. A fall toward 0 warns of collapse to one answer." },
  { id: "objective", title: "Objective", y: "value", series: [["objective", "r − β·KL + γ·ptx"]],
    help: "The whole PPO-ptx objective: reward minus the KL penalty plus γ times the pretraining log-likelihood." },
  { id: "rm", title: "Reward model", y: "loss / accuracy", series: [["rm_loss", "ranking loss"], ["rm_accuracy", "pair accuracy"], ["rm_new_accuracy", "accuracy on new rankings"]],
    help: "−log σ(r_w − r_l) over all pairs of each ranking (a tie counts half each way), how often the reward model orders a pair as the labeler did, and how often it did so on each new ranking before training on it." },
];

const COLORS = ["#2f5bd3", "#d3542f", "#2f9d5b", "#8a3fd3"];

export class Plots {
  constructor(container) {
    this.data = {};
    this.charts = {};
    for (const p of PLOTS) {
      const box = document.createElement("figure");
      box.className = "plot";
      box.dataset.plot = p.id;
      const cap = document.createElement("figcaption");
      const h = document.createElement("strong");
      h.textContent = p.title;
      const help = document.createElement("span");
      help.className = "help";
      help.textContent = p.help;
      cap.append(h, help);
      const area = document.createElement("div");
      box.append(cap, area);
      container.append(box);
      this.data[p.id] = [[], ...p.series.map(() => [])];
      this.charts[p.id] = new uPlot({
        width: 340, height: 180,
        scales: { x: { time: false } },
        axes: [{ label: "iteration" }, { label: p.y, size: 60 }],
        series: [{ label: "iteration" }, ...p.series.map(([, label], i) => ({ label, stroke: COLORS[i], width: 2, points: { size: 5 } }))],
      }, this.data[p.id], area);
    }
    this.points = 0;
  }

  add(m) {
    for (const p of PLOTS) {
      const d = this.data[p.id];
      d[0].push(m.iteration);
      p.series.forEach(([key], i) => d[i + 1].push(Number.isFinite(m[key]) ? m[key] : null));
      this.charts[p.id].setData(d);
    }
    this.points += 1;
  }
}
