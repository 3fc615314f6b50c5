"""The README's table of the person's loop from bench/person.mjs runs: the waits for the next
answers (median and worst), the session's length against its reading time + 30 s (16 rankings, or
as many as the sessions ran), and the win-rate against SFT of the page's exports (at 4, 8, 12 and 16
rankings, and every 8 after in a longer session) with their KL; and the seed
the page drew for the session, where the run recorded it (for `rlhf align --seed` natively).
usage: python3 bench/person_table.py bench/person"""
import glob
import json
import os
import statistics as st
import sys


def main(folder):
    paths = sorted(glob.glob(os.path.join(folder, "*-seed*.jsonl")))
    runs = [[json.loads(l) for l in open(p)] for p in paths]
    # the rankings the exports were judged at, and the session's length, from the first run
    at = sorted({r["eval"]["rankings"] for r in runs[0] if "eval" in r}) if runs else [4, 8, 12, 16]
    n = at[-1] if at else 16
    print(f"| preference, seed | the page's seed | waits: median / worst (s) | session (s) | {n} × reading + 30 (s) | win-rate at {' / '.join(map(str, at))} | KL at {n} |")
    print("|---|---:|---:|---:|---:|---|---:|")
    named = []
    for path, rows in zip(paths, runs):
        waits = [r["wait_s"] for r in rows if "ranking" in r]
        evals = sorted((r["eval"] for r in rows if "eval" in r), key=lambda e: e["rankings"])
        s = next((r["summary"] for r in rows if "summary" in r), None)
        if s is None:  # a session still running, or one that stopped before its end
            print(f"{path}: no summary, left out", file=sys.stderr)
            continue
        name = os.path.basename(path)[:-6].replace("-seed", ", seed ").replace("~0.25", " (25% noise)")
        wins = " / ".join(f"{e['win_rate_vs_sft']:.2f}" for e in evals)
        if all("win_rate_own_seed" in e for e in evals):  # sessions judged also with their own seed
            wins += " (own seed: " + " / ".join(f"{e['win_rate_own_seed']:.2f}" for e in evals) + ")"
        kl = evals[-1]["kl"] if evals and evals[-1]["kl"] is not None else float("nan")
        lab_seed = s.get("lab_seed", "1")  # runs that predate the record: the page then always used seed 1
        named.append((name, rows))
        print(f"| {name} | {lab_seed} | {st.median(waits):.2f} / {max(waits):.2f} | {s['session_s']:.0f} | {s['reading_s'] + 30:.0f} | {wins} | {kl:.1f} |")
    if n > 16:
        blocks(named)


def blocks(named):
    """Finished long sessions (name, rows), 16 rankings at a time: the waits, how often the engine was busy when a ranking
    came, the iterations that learned from the block's rankings and their mean length."""
    print()
    print("| preference, seed | rankings | waits: median / worst (s) | engine busy at submit | iterations | seconds per iteration |")
    print("|---|---|---:|---:|---:|---:|")
    for name, rows in named:
        ranked = [r for r in rows if "ranking" in r]
        its = [r["iteration"] for r in rows if "iteration" in r]
        for lo in range(0, len(ranked), 16):
            part = ranked[lo:lo + 16]
            waits = [r["wait_s"] for r in part]
            busy = sum(r["engine_busy_at_submit"] for r in part)
            mine = [i["seconds"] for i in its if lo < i["rankings"] <= lo + 16]
            per = f"{st.mean(mine):.1f}" if mine else "-"
            print(f"| {name} | {lo + 1} to {lo + len(part)} | {st.median(waits):.2f} / {max(waits):.2f} | {busy} of {len(part)} | {len(mine)} | {per} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/person")
