// The watch panel: the same questions answered after every iteration by SFT and by the policy, with
// the reward model's scores; a slider replays earlier iterations. Model text is always text.

// The trust note averages over the last 4 iterations that measured it (a ranking each at a person's
// pace: recent enough to follow the fit, 112 pairs at K = 8, the default). 112 pairs ordered at
// chance measure 0.5 ± 0.05, so a share under 0.60 cannot be told from guessing; one under 0.70 is
// better than chance but still orders almost one new pair in three against the person.
const TRUST_SPAN = 4;
const GUESSING = 0.6;
const ROUGH = 0.7;
// Up to this many rankings a reward model that guesses has not learned the preference yet; later it
// has learned something, and what it fails on is the newest rankings (answers that now differ in
// ways the earlier rankings did not cover, or rankings that vary: seen in 48-ranking sessions).
const EARLY = 8;

// How far to trust the reward model's scores as of record i: the share of pairs in the last few
// rankings that it ordered as they were ranked before it learned from them (rm_new_accuracy; an
// iteration whose new rankings were all ties has none). With one reward model this is the page's
// measure of its uncertainty: a score it gives an answer it has not seen is worth what this share
// says, not what its size suggests.
export function trustNote(history, i = history.length - 1) {
  const shares = [];
  let j = i;
  for (; j >= 0 && shares.length < TRUST_SPAN; j--) {
    const a = history.at(j)?.rm_new_accuracy;
    if (Number.isFinite(a)) shares.push(a);
  }
  if (!shares.length) return "";
  // the rankings those iterations learned from (an iteration may take several)
  const rankings = history.at(i).rankings ?? 0;
  const n = Math.max(1, rankings - (j >= 0 ? history.at(j).rankings ?? 0 : 0));
  const share = shares.reduce((x, y) => x + y, 0) / shares.length;
  const how = `How far to trust these scores: before learning them, the reward model ordered ${Math.round(100 * share)}% of the pairs of the last ${n === 1 ? "ranking" : `${n} rankings`} as they were ranked (50% is chance).`;
  if (share >= ROUGH) return how;
  if (share >= GUESSING) return `${how} Better than chance, not by much: its scores of new answers are rough.`;
  const why = rankings <= EARLY
    ? "It has not learned this preference yet"
    : "It does not predict your latest rankings from your earlier ones (the answers may now differ in ways those did not cover, or your rankings vary)";
  return `${how} ${why}: its scores of new answers are close to guesses.`;
}

// The verdict note sums the last 4 iterations that had one: from the 9th ranking on, two of the
// eight answers of the groups a person ranks are the original model's, unmarked, so each ranking
// holds 12 pairs of an answer in training against an original one. Four rankings give 48 pairs
// but only 8 original answers, so the share moves by 10 points or more by chance.
const VERDICT_SPAN = 4;
// Points apart before the note says the reward model rates the trained answers higher or lower than
// the person: less is within what chance moves the person's share over four rankings.
const AGREE = 10;

// What the person's own rankings say of the model in training against the original, as of record
// i (ranked_vs_sft and its pairs; records without such pairs are skipped), and whether the model
// started again from the original at that iteration.
export function verdictNote(history, i = history.length - 1) {
  let wins = 0;
  let pairs = 0;
  let n = 0;
  // the reward model's share of the same pairs, before it learned them (rm_vs_sft)
  let rmWins = 0;
  let rmPairs = 0;
  for (let j = i; j >= 0 && n < VERDICT_SPAN; j--) {
    const r = history.at(j);
    if (!(r?.ranked_vs_sft_pairs > 0)) continue;
    wins += r.ranked_vs_sft * r.ranked_vs_sft_pairs;
    pairs += r.ranked_vs_sft_pairs;
    n += 1;
    if (Number.isFinite(r.rm_vs_sft)) {
      rmWins += r.rm_vs_sft * r.ranked_vs_sft_pairs;
      rmPairs += r.ranked_vs_sft_pairs;
    }
  }
  const restarted = history.at(i)?.restarted
    ? " Your rankings preferred the original model's answers, so the model in training started again from the original here, keeping your rankings and the reward model."
    : "";
  if (!pairs) return restarted.trim();
  const share = Math.round((100 * wins) / pairs);
  let rm = "";
  if (rmPairs === pairs) {
    const rmShare = Math.round((100 * rmWins) / rmPairs);
    const gap = rmShare - share;
    const reading = gap >= AGREE ? "it rates the trained model's answers higher than you do"
      : gap <= -AGREE ? "it rates them lower than you do: it has not learned all of what you see in them"
      : "about as you do";
    rm = ` The reward model, before learning them, put ${rmShare}% of those pairs that way: ${reading}.`;
  }
  return `Your own verdict: in the last ${n === 1 ? "ranking" : `${n} rankings`} you put the model in training's answers above the original model's (two of each group, unmarked) in ${share}% of their ${pairs} pairs (50%: no better than the original; over a few rankings chance moves this by 10 points or more).${rm}${restarted}`;
}

export class Watch {
  // history: the session's records (history.js), one per iteration
  constructor(el, onInspect, history) {
    this.items = el.querySelector("#watch-items");
    this.slider = el.querySelector("#watch-slider");
    this.at = el.querySelector("#watch-at");
    this.trust = el.querySelector("#watch-trust");
    this.verdict = el.querySelector("#watch-verdict");
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
    this.trust.textContent = trustNote(this.history, i);
    this.verdict.textContent = verdictNote(this.history, i);
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
