"""Issue 15's targets counted over a set of `rlhf align --json` runs to 64 rankings, as the README's
adoption rules count them: runs at 0.80 or more after 8 rankings, at 0.90 or more at both 32 and 64,
never under 0.80 at any evaluation from 16 on, with KL under 10 at every evaluation; the mean
win-rate at 8, 16, 32 and 64 rankings and the lowest at 64. Counts use the unrounded win-rates.
usage: python3 bench/targets.py bench/ablation d64 rms4x64   (one line per prefix)
       python3 bench/targets.py bench/ablation d64+s456-d64   (a "+" pools the prefixes' runs: seeds 1-6)
       python3 bench/targets.py bench/ablation brk5/k6osf8    (a "/" takes the second prefix's run
         where the first has none of that preference and seed: for an option that provably leaves
         some runs as the defaults' were, so only the others were run)"""
import sys

from align_table import filled


def counts(runs):
    rs = [r["evals"] for l in runs for r in runs[l] if 64 in r["evals"]]
    win = lambda e, k: e[k]["win_rate_vs_sft"]
    mean = lambda k: sum(win(e, k) for e in rs) / len(rs)
    return {
        "runs": len(rs),
        "0.80 at 8": sum(win(e, 8) >= 0.8 for e in rs),
        "0.90 at 32 and 64": sum(win(e, 32) >= 0.9 and win(e, 64) >= 0.9 for e in rs),
        "never under 0.80 from 16": sum(all(win(e, k) >= 0.8 for k in e if k >= 16) for e in rs),
        "KL under 10 throughout": sum(all(x["kl"] < 10 for x in e.values()) for e in rs),
        "mean at 8/16/32/64": " / ".join(f"{mean(k):.3f}" for k in (8, 16, 32, 64)),
        "lowest at 64": f"{min(win(e, 64) for e in rs):.2f}",
    }


if __name__ == "__main__":
    folder, prefixes = sys.argv[1], sys.argv[2:]
    for p in prefixes:
        runs, taken = filled(folder, p)
        c = counts(runs)
        if not c["runs"]:
            print(f"{p}: no run reached 64 rankings")
            continue
        print(f"{p}: " + "; ".join(f"{k} {v}" for k, v in c.items()))
        if taken:
            print(f"  from {p.partition('/')[2]}: {', '.join(taken)}")
