"""The README's table of the person's loop from bench/person.mjs runs: the waits for the next
answers (median and worst), the session's length against 16 × the reading time + 30 s, and the
win-rate against SFT of the page's exports at 4, 8, 12 and 16 rankings with their KL; and the seed
the page drew for the session, where the run recorded it (for `rlhf align --seed` natively).
usage: python3 bench/person_table.py bench/person"""
import glob
import json
import os
import statistics as st
import sys


def main(folder):
    print("| preference, seed | the page's seed | waits: median / worst (s) | session (s) | 16 × reading + 30 (s) | win-rate at 4 / 8 / 12 / 16 | KL at 16 |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for path in sorted(glob.glob(os.path.join(folder, "*-seed*.jsonl"))):
        rows = [json.loads(l) for l in open(path)]
        waits = [r["wait_s"] for r in rows if "ranking" in r]
        evals = sorted((r["eval"] for r in rows if "eval" in r), key=lambda e: e["rankings"])
        s = next((r["summary"] for r in rows if "summary" in r), None)
        if s is None:  # a session still running, or one that stopped before its end
            print(f"{path}: no summary, left out", file=sys.stderr)
            continue
        name = os.path.basename(path)[:-6].replace("-seed", ", seed ").replace("~0.25", " (25% noise)")
        wins = " / ".join(f"{e['win_rate_vs_sft']:.2f}" for e in evals)
        kl = evals[-1]["kl"] if evals and evals[-1]["kl"] is not None else float("nan")
        lab_seed = s.get("lab_seed", "1")  # runs that predate the record: the page then always used seed 1
        print(f"| {name} | {lab_seed} | {st.median(waits):.2f} / {max(waits):.2f} | {s['session_s']:.0f} | {s['reading_s'] + 30:.0f} | {wins} | {kl:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/person")
