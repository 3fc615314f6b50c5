"""The README's methods table from `rlhf compare --json` runs: each method's win-rate against SFT at
8, 16 and 32 rankings (mean ± spread over seeds), its KL at 32, and its seconds of training for 32.
usage: python3 bench/compare_table.py bench/compare   (files named LABELER-seedN.jsonl)"""
import collections
import glob
import json
import os
import statistics as st
import sys

LABELERS = ["polite", "concise", "on_topic", "cheerful"]


def main(folder):
    runs = collections.defaultdict(lambda: collections.defaultdict(list))  # method -> labeler -> [replay]
    for path in sorted(glob.glob(os.path.join(folder, "*-seed*.jsonl"))):
        labeler = os.path.basename(path).rsplit("-seed", 1)[0]
        for line in open(path):
            if not line.startswith("{"):
                continue  # runs before `--json` printed JSON lines only also printed the table
            d = json.loads(line)
            if "replay" in d:
                runs[d["replay"]["title"]][labeler].append(d["replay"])
    labelers = [l for l in LABELERS if any(l in r for r in runs.values())]
    cell = lambda xs: f"{st.mean(xs):.2f} ± {st.pstdev(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"
    print("| method | rankings | " + " | ".join(l.replace("_", " ") for l in labelers) + " |")
    print("|---|---:|" + "---:|" * len(labelers))
    for method, by in runs.items():
        for k in (8, 16, 32):
            cells = [cell([c["win_rate_vs_sft"] for r in by[l] for c in r["curve"] if c["rankings"] == k]) if by[l] else "" for l in labelers]
            print(f"| {method} | {k} | " + " | ".join(cells) + " |")
        kls = [cell([c["kl"] for r in by[l] for c in r["curve"] if c["rankings"] == 32]) for l in labelers]
        print(f"| {method} | KL at 32 | " + " | ".join(kls) + " |")
        secs = [f"{st.mean(r['seconds'] for r in by[l]):.0f}" for l in labelers]
        print(f"| {method} | seconds for 32 | " + " | ".join(secs) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/compare")
