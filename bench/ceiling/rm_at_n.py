"""The table of bench/ceiling/rm_at_n.sh: per run, the policy's mean win-rate over the spread
measure's answer draws (bench/eval_spread/atN), the run's reward model picking the best of 16 of
SFT's answers (mean over its draws), and the gap between the two on the same answer seeds (mean ±
its standard error); then the counts: policies under 0.80 by their mean, and how many of those
have a reward model that picks past 0.80.
usage: python3 bench/ceiling/rm_at_n.py bench/ceiling/rm-at-8-all bench/eval_spread/at8"""
import glob
import json
import os
import statistics as st
import sys


def draws(path):
    return {x["answer_seed"]: x["judged"]["win_rate"] for x in map(json.loads, open(path)) if "answer_seed" in x}


rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.jsonl"))):
    run = os.path.basename(f)[:-6]
    spread = os.path.join(sys.argv[2], run + ".jsonl")
    if not os.path.exists(spread):
        print(f"{run}: no policy draws in {spread} (bench/eval_spread.sh writes them); left out", file=sys.stderr)
        continue
    best, policy = draws(f), draws(spread)
    seeds = [s for s in best if s in policy]
    if len(seeds) < 2:
        continue
    gap = [best[s] - policy[s] for s in seeds]
    rows.append((run, st.mean(policy.values()), len(policy), st.mean(best.values()), len(best), st.mean(gap), st.stdev(gap) / len(gap) ** 0.5))
rows.sort(key=lambda r: r[1])
print("| run | the policy (mean of draws) | its reward model's best of 16 of SFT's answers | gap on the same seeds |")
print("|---|---:|---:|---:|")
for run, p, np_, b, nb, g, se in rows:
    print(f"| {run} | {p:.3f} ({np_}) | {b:.3f} ({nb}) | {g:+.3f} ± {se:.3f} |")
if not rows:
    sys.exit("no run has both the reward model's draws and the policy's: nothing to compare")
slow = [r for r in rows if r[1] < 0.8]
print(f"\nruns {len(rows)}: the policies' mean {st.mean(r[1] for r in rows):.3f}, the reward models' best of 16 {st.mean(r[3] for r in rows):.3f}, "
      f"{sum(r[3] >= 0.8 for r in rows)} of them at 0.80")
if slow:
    print(f"policies under 0.80 by their mean: {len(slow)}; of those, reward models picking past 0.80: {sum(r[3] >= 0.8 for r in slow)} "
          f"(gap {st.mean(r[5] for r in slow):+.3f} on average); picking under it: {', '.join(r[0] for r in slow if r[3] < 0.8)}")
