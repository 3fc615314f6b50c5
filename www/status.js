// The training status line: what the last iteration learned from, and when the KL brake or the KL
// limit held the model back. Plain functions of an iteration's record, tested in Node.

export const ordinal = (n) => `${n}${[, "st", "nd", "rd"][n % 100 > 10 && n % 100 < 14 ? 0 : n % 10] || "th"}`;

// why the answers do not change yet: the policy moves once the reward model has a few rankings
export const beforeMoving = (taken, first) =>
  `The answers start to change at your ${ordinal(first)} ranking (${first - taken} to go): a reward model fitted to fewer would send the model wherever chance points.`;

const rankingsText = (n) => `${n} ranking${n === 1 ? "" : "s"}`;

// The line after iteration record `m`; `first` is the ranking the policy starts moving at, and
// `klCeiling`, `klLimit` the lab's settings (undefined or NaN where off).
export function trainStatus(m, { first = 0, klCeiling, klLimit } = {}) {
  let s = m.rankings < first
    ? `Learned from ${rankingsText(m.rankings)}: the reward model only. ${beforeMoving(m.rankings, first)}`
    : `Learned from ${rankingsText(m.rankings)} (iteration ${m.iteration + 1}): reward ${m.reward.toFixed(2)}, KL ${m.kl_k1.toFixed(2)} nats.`;
  if (m.skipped_steps > 0) s += ` (${m.skipped_steps} non-finite steps skipped)`;
  if (Number.isFinite(klCeiling) && m.kl_k1 > klCeiling) {
    s += ` The answers have moved ${m.kl_k1.toFixed(1)} nats from the original model's, more than the brake's ${klCeiling}: β rises, holding the model near the answers the reward model has learned from.`;
  }
  if (m.kl_undone > 0) {
    const limit = Number.isFinite(klLimit) ? ` of ${klLimit}` : "";
    s += ` An update had taken the answers ${m.kl_undone.toFixed(1)} nats from the original model's, past the limit${limit}: it was undone, and the answers were drawn again from the model before it.`;
  }
  return s;
}
