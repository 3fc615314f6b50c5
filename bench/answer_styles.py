#!/usr/bin/env python3
"""Where a reward model's scores and a labeler's rule part, by the corpus's answer styles.

Reads the lines of `rlhf score --answers-of MODEL --labeler L` ({prompt, answer, reward, rule}) and
prints, per file: each style's share of the answers and its mean reward (in standard deviations of
that file's rewards), and the reward model's pair accuracy against the rule over the pairs of one
prompt's answers the rule tells apart, in all and by the styles of the rule's winner and loser.
The styles are the mood words of `src/corpus.rs` (a gloomy or cheerful word wins over courtesy).
usage: python3 bench/answer_styles.py FILE.jsonl...
"""
import itertools
import json
import statistics
import sys

GLOOMY = ["sadly", "gloomy", "nothing lasts", "dull", "grim", "tired", "pointless", "gray"]
CHEERFUL = ["lovely", "wonderful", "delightful", "fun", "great", "joy", "bright", "happy"]
COURTEOUS = ["please", "thank", "hope this helps", "good question", "sure", "of course", "glad"]
RUDE = ["stupid", "silly", "obviously", "whatever", "figure it out", "waste of my time", "ugh", "boring"]


def style(answer):
    t = answer.lower()
    for name, words in [("gloomy", GLOOMY), ("cheerful", CHEERFUL), ("courteous", COURTEOUS), ("rude", RUDE)]:
        if any(w in t for w in words):
            return name
    return "plain"


def report(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    mean, sd = statistics.mean(r["reward"] for r in rows), statistics.pstdev(r["reward"] for r in rows) or 1.0
    by_style = {}
    for r in rows:
        by_style.setdefault(style(r["answer"]), []).append((r["reward"] - mean) / sd)
    by_prompt = {}
    for r in rows:
        by_prompt.setdefault(r["prompt"], []).append(r)
    pairs = {}
    for group in by_prompt.values():
        for a, b in itertools.combinations(group, 2):
            if a["rule"] == b["rule"]:
                continue
            w, l = (a, b) if a["rule"] > b["rule"] else (b, a)
            for key in ["all", (style(w["answer"]), style(l["answer"]))]:
                c = pairs.setdefault(key, [0, 0])
                c[0] += w["reward"] > l["reward"]
                c[1] += 1
    n = len(rows)
    shares = ", ".join(f"{k} {len(v) / n:.0%} ({statistics.mean(v):+.2f})" for k, v in sorted(by_style.items(), key=lambda kv: -len(kv[1])))
    right, total = pairs.pop("all", [0, 0])
    split = ", ".join(f"{w} over {l} {c[0] / c[1]:.2f} of {c[1]}" for (w, l), c in sorted(pairs.items(), key=lambda kv: -kv[1][1]) if c[1] >= 20)
    print(f"{path}: {n} answers; pair accuracy {right / max(total, 1):.2f} of {total}")
    print(f"  styles (mean reward in sd): {shares}")
    print(f"  by the rule's winner and loser (20 pairs or more): {split}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        report(p)
