#!/usr/bin/env python3
"""The reward model's share of what the defaults miss: each run of the defaults beside the same
preference and seed with the labeler's noiseless rule as the policy's reward (the diagnostic patch
bench/ablation/gold/gold-reward.patch), win-rate at 8 / 16 / 32 / 64 rankings, and the seed's
ceiling, the best of 256 of SFT's answers by the rule (bench/ceiling; seed 1's from LABELER.jsonl,
seeds 2 to 6 from best256-per-seed.jsonl; concise and on topic have best of 64 for seed 1 only).
usage: python3 bench/gold_split.py bench/ablation kll10/ob1k1 gold   (defaults' prefix, gold's prefix;
       "/" as in targets.py)"""
import json
import os
import statistics as st
import sys

from align_table import ORDER, filled

POINTS = (8, 16, 32, 64)


def ceilings(folder=os.path.join(os.path.dirname(os.path.abspath(__file__)), "ceiling")):
    out = {}
    for line in open(os.path.join(folder, "best256-per-seed.jsonl")):
        d = json.loads(line)
        out[(d["labeler"], d["run_seed"])] = d["win_rate"]
    for name in [l.split("~")[0] for l in ORDER]:
        best = {}
        for line in open(os.path.join(folder, f"{name}.jsonl")):
            d = json.loads(line)
            if "run_seed" not in d and d.get("judge") is None and d.get("best_of", 0) >= 64:
                best[d["best_of"]] = d["win_rate"]
        if best:
            out[(name, 1)] = best[max(best)]
    return out


def row(run):
    e = run["evals"]
    return [e[k]["win_rate_vs_sft"] if k in e else float("nan") for k in POINTS]


def main(folder, base, gold):
    (a, _), (b, _), ceil = filled(folder, base), filled(folder, gold), ceilings()
    print("| preference | seed | the defaults at 8 / 16 / 32 / 64 | the rule as reward at 8 / 16 / 32 / 64 | largest KL of an iteration (the rule) | best of 256 by the rule |")
    print("|---|---|---|---|---|---|")
    diffs = {k: [] for k in POINTS}
    for l in ORDER:
        gold_runs = {r["seed"]: r for r in b.get(l, [])}
        for r in sorted(a.get(l, []), key=lambda r: r["seed"]):
            g = gold_runs.get(r["seed"])
            if g is None:
                continue
            x, y = row(r), row(g)
            for k, u, v in zip(POINTS, x, y):
                if u == u and v == v:
                    diffs[k].append(v - u)
            c = ceil.get((l.split("~")[0], r["seed"]))
            fmt = lambda w: " / ".join(f"{v:.2f}" for v in w)
            print(f"| {l} | {r['seed']} | {fmt(x)} | {fmt(y)} | {g['max_kl']:.1f} | {'' if c is None else f'{c:.3f}'} |")
    for k in POINTS:
        d = diffs[k]
        if d:
            se = st.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
            print(f"at {k}: the rule over the defaults {st.mean(d):+.3f} ± {se:.3f} over {len(d)} runs")


if __name__ == "__main__":
    main(*sys.argv[1:4])
