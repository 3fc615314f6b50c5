#!/usr/bin/env python3
"""What a noisy person's own rankings say, run by run: of every ranked pair of a gloomy answer (the
rule scores it above 0) and a neutral one (0), the share the person put gloomy first (the vote),
over all the run's rankings and over the first 8; the same for gloomy over cheerful (under 0); and
how many rankings had no gloomy/neutral pair to order. Reads
the rankings the diagnostic patch bench/ablation/votes/dump-rankings.patch wrote (one JSON line
per ranking: prompt, responses, the noisy ranks, the rule's noiseless scores) and each run's
win-rate at 16 rankings from its `align --json` record.

usage: python3 bench/ranking_votes.py DIR [STUCK_SEEDS, default "4 14 33 52"]
  DIR holds rankings-seedS.jsonl and align-seedS.jsonl for each seed S."""
import glob
import json
import os
import re
import sys


def style(score):
    return "gloomy" if score > 0 else "cheerful" if score < 0 else "neutral"


def votes(rankings, better, worse):
    """(pairs put `better` first, pairs) over the rankings' pairs of one answer of each style."""
    won = pairs = 0
    for r in rankings:
        kinds = [style(s) for s in r["scores"]]
        for i, ki in enumerate(kinds):
            for j, kj in enumerate(kinds):
                if ki == better and kj == worse:
                    pairs += 1
                    won += r["ranks"][i] < r["ranks"][j]
    return won, pairs


def win_rate_at(path, rankings):
    for line in open(path):
        e = json.loads(line).get("eval")
        if e and e["rankings"] == rankings:
            return e["win_rate_vs_sft"]
    return None


def share(won, pairs):
    return won / pairs if pairs else float("nan")


def main():
    d = sys.argv[1]
    stuck = {int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "4 14 33 52").split()}
    rows = []
    for path in glob.glob(os.path.join(d, "rankings-seed*.jsonl")):
        seed = int(re.search(r"seed(\d+)", path).group(1))
        rankings = [json.loads(line) for line in open(path)]
        gn = votes(rankings, "gloomy", "neutral")
        gn8 = votes(rankings[:8], "gloomy", "neutral")
        gc = votes(rankings, "gloomy", "cheerful")
        w = win_rate_at(os.path.join(d, f"align-seed{seed}.jsonl"), 16)
        if w is None:
            print(f"seed {seed}: no win-rate at 16 rankings yet, left out", file=sys.stderr)
            continue
        blind = sum(votes([r], "gloomy", "neutral")[1] == 0 for r in rankings)
        rows.append((share(*gn), seed, gn, gn8, gc, len(rankings), w, blind))
    rows.sort()
    print("| seed | rankings | gloomy over neutral, 16 rankings | the first 8 | gloomy over cheerful | rankings without a gloomy/neutral pair | win-rate at 16 |")
    print("|---|---|---|---|---|---|---|")
    for v, seed, gn, gn8, gc, n, w, blind in rows:
        mark = " (stuck)" if seed in stuck else ""
        print(f"| {seed}{mark} | {n} | {v:.2f} ({gn[0]}/{gn[1]}) | {share(*gn8):.2f} ({gn8[0]}/{gn8[1]}) "
              f"| {share(*gc):.2f} ({gc[0]}/{gc[1]}) | {blind} | {w:.3f} |")
    places = {seed: i + 1 for i, (_, seed, *_) in enumerate(rows)}
    by8 = sorted(rows, key=lambda r: share(*r[3]))
    places8 = {r[1]: i + 1 for i, r in enumerate(by8)}
    pooled = [sum(r[2][k] for r in rows) for k in (0, 1)]
    print(f"\npooled gloomy over neutral: {share(*pooled):.3f} ({pooled[0]}/{pooled[1]}) over {len(rows)} runs")
    print(f"the stuck seeds' places from the lowest vote of {len(rows)}, over 16 rankings / the first 8: "
          + ", ".join(f"{s} {places.get(s, '?')} / {places8.get(s, '?')}" for s in sorted(stuck)))
    low8 = [f"{r[1]} {share(*r[3]):.2f}" for r in by8[:6]]
    print("the six lowest votes over the first 8 rankings: " + ", ".join(low8))


if __name__ == "__main__":
    main()
