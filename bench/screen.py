"""A screen against the defaults' same runs (same preference and seed, deterministic): at each
evaluation both have, the runs at 0.80 or more, the means, and the paired difference (mean ± its
standard error), over all runs and per preference. Prefixes pool with "+" as in targets.py.
usage: python3 bench/screen.py bench/ablation ob1k1+s456-ob1k1 fw1-16   (six preferences, seeds 1-6)
       python3 bench/screen.py bench/ablation/stuck16 st-def fw1        (the stuck-start seeds)"""
import statistics as st
import sys

from align_table import ORDER, filled


def paired(base, cand, at):
    """(labeler, base win-rate, candidate win-rate) for every run both have evaluated at `at`."""
    out = []
    for labeler in [l for l in ORDER if l in cand] + sorted(l for l in cand if l not in ORDER):
        seeds = {r["seed"]: r["evals"] for r in base.get(labeler, [])}
        for r in cand[labeler]:
            b = seeds.get(r["seed"], {}).get(at)
            if b and at in r["evals"]:
                out.append((labeler, b["win_rate_vs_sft"], r["evals"][at]["win_rate_vs_sft"]))
    return out


def line(rows):
    d = [c - b for _, b, c in rows]
    se = st.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
    return (f"{len(rows)} runs, 0.80 or more {sum(b >= 0.8 for _, b, _ in rows)} against "
            f"{sum(c >= 0.8 for _, _, c in rows)}, mean {st.mean(b for _, b, _ in rows):.3f} against "
            f"{st.mean(c for _, _, c in rows):.3f}, paired {st.mean(d):+.3f} ± {se:.3f}")


if __name__ == "__main__":
    folder, base_prefix, cand_prefix = sys.argv[1:4]
    base, _ = filled(folder, base_prefix)
    cand, _ = filled(folder, cand_prefix)
    for at in sorted({k for rs in cand.values() for r in rs for k in r["evals"]}):
        rows = paired(base, cand, at)
        if not rows:
            continue
        print(f"at {at} ({base_prefix} against {cand_prefix}): {line(rows)}")
        for labeler in dict.fromkeys(l for l, _, _ in rows):
            print(f"  {labeler}: {line([r for r in rows if r[0] == labeler])}")
