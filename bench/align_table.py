"""The README's realignment table from `rlhf align --json` runs: win-rate against SFT by rankings,
mean ± spread (population standard deviation) over seeds, then KL and the change in held-out
pretraining log-likelihood at 16 rankings, and the compute each run took to reach 16 rankings.
usage: python3 bench/align_table.py bench/align   (files named LABELER-seedN.jsonl)"""
import collections
import glob
import json
import os
import statistics as st
import sys

LABELERS = ["polite", "concise", "on_topic", "cheerful"]


def load(folder):
    runs = collections.defaultdict(list)  # labeler -> [run]
    for path in sorted(glob.glob(os.path.join(folder, "*-seed*.jsonl"))):
        labeler = os.path.basename(path).rsplit("-seed", 1)[0]
        run = {"evals": {}, "seconds16": 0.0}
        for line in open(path):
            d = json.loads(line)
            if "eval" in d:
                run["evals"][d["eval"]["rankings"]] = d["eval"]
            elif "summary" in d:
                run["sft_ptx"] = d["summary"]["ptx_loglik_sft"]
            elif "rankings" in d and d["rankings"] <= 16:
                run["seconds16"] += sum(v for k, v in d.items() if k.startswith("seconds_"))
        runs[labeler].append(run)
    return runs


def cell(values, fmt="{:.2f}"):
    return (fmt + " ± {:.2f}").format(st.mean(values), st.pstdev(values)) if len(values) > 1 else fmt.format(values[0])


def main(folder):
    runs = load(folder)
    labelers = [l for l in LABELERS if l in runs]
    print("| rankings | " + " | ".join(l.replace("_", " ") for l in labelers) + " |")
    print("|---:|" + "---:|" * len(labelers))
    ks = sorted({k for l in labelers for r in runs[l] for k in r["evals"]})
    for k in ks:
        cells = [cell([r["evals"][k]["win_rate_vs_sft"] for r in runs[l] if k in r["evals"]]) for l in labelers]
        print(f"| {k} | " + " | ".join(cells) + " |")
    if 16 in ks:
        kl = [f"{st.mean(r['evals'][16]['kl'] for r in runs[l]):.1f}" for l in labelers]
        ptx = [f"{st.mean(r['evals'][16]['ptx_loglik'] - r['sft_ptx'] for r in runs[l]):+.3f}" for l in labelers]
        secs = [" ".join(f"{r['seconds16']:.0f}" for r in runs[l]) for l in labelers]
        print("| KL at 16 (nats per answer) | " + " | ".join(kl) + " |")
        print("| pretraining log-lik. at 16, change | " + " | ".join(ptx) + " |")
        print("| seconds to 16 rankings, per seed | " + " | ".join(secs) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/align")
