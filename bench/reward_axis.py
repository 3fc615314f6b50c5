#!/usr/bin/env python3
"""Per run of gloomy with noise: the win-rate at its last evaluation beside what its reward model learned.

For each seed, reads DIR/align{seed}.jsonl (`rlhf align --json --out`), DIR/sft{seed}.jsonl and
DIR/policy{seed}.jsonl (`rlhf score --answers-of` SFT and that run's policy, with its reward model)
and prints: the win-rate at the last evaluation; within a question, the reward model's mean score
of SFT's gloomy answers over its courteous, plain and cheerful ones (in spreads of SFT's answers,
as the lab normalizes them); and the share of the policy's answers in the gloomy style. Then the
correlation of the win-rate with each gap over the runs.
usage: python3 bench/reward_axis.py DIR SEED...
"""
import json
import statistics
import sys

from answer_styles import style


def last_win(path):
    evals = [json.loads(l)["eval"] for l in open(path) if '"eval"' in l]
    return evals[-1]["win_rate_vs_sft"]


def gaps(path):
    by_prompt = {}
    for line in open(path):
        r = json.loads(line)
        by_prompt.setdefault(r["prompt"], []).append((style(r["answer"]), r["reward"]))
    out = {}
    for other in ["courteous", "plain", "cheerful"]:
        ds = []
        for group in by_prompt.values():
            gl = [x for s, x in group if s == "gloomy"]
            ot = [x for s, x in group if s == other]
            if gl and ot:
                ds.append(statistics.mean(gl) - statistics.mean(ot))
        out[other] = statistics.mean(ds) if ds else float("nan")
    return out


def gloomy_share(path):
    rows = [json.loads(l) for l in open(path)]
    return sum(style(r["answer"]) == "gloomy" for r in rows) / len(rows)


def corr(xs, ys):
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy / ((sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys)) ** 0.5)


d, seeds = sys.argv[1], sys.argv[2:]
print("| seed | win-rate at the last evaluation | gloomy over courteous | over plain | over cheerful | the policy's answers gloomy |")
print("|---|---|---|---|---|---|")
rows = []
for s in seeds:
    w, g, share = last_win(f"{d}/align{s}.jsonl"), gaps(f"{d}/sft{s}.jsonl"), gloomy_share(f"{d}/policy{s}.jsonl")
    rows.append((w, g, share))
    print(f"| {s} | {w:.3f} | {g['courteous']:+.2f} | {g['plain']:+.2f} | {g['cheerful']:+.2f} | {share:.0%} |")
wins = [r[0] for r in rows]
for k in ["courteous", "plain", "cheerful"]:
    print(f"correlation of the win-rate with gloomy over {k}: {corr(wins, [r[1][k] for r in rows]):+.2f}")
print(f"correlation of the win-rate with the policy's gloomy share: {corr(wins, [r[2] for r in rows]):+.2f}")
