"""The README's realignment tables from `rlhf align --json` runs: win-rate against SFT by rankings,
mean ± spread (population standard deviation) over seeds, the lowest seed, KL to SFT, the change
in held-out pretraining log-likelihood, and the compute each run took.
usage: python3 bench/align_table.py bench/align   (files named LABELER[~NOISE]-seedN.jsonl)
       python3 bench/align_table.py bench/ablation minr4   (an ablation's: PREFIX-LABELER[~NOISE]-seedN.jsonl)
       python3 bench/align_table.py bench/ablation brk5/k6osf8 early4   (as in targets.py, "/" takes
         the second prefix's run where the first has none of that preference and seed; a third
         argument adds the evaluations its runs made at rankings the runs have none of: the same
         runs, deterministic, cut short with a denser --eval-every)"""
import collections
import glob
import json
import os
import statistics as st
import sys

ORDER = ["polite", "concise", "on_topic", "cheerful", "practical", "gloomy~0.25"]


def load(folder, prefix=""):
    runs = collections.defaultdict(list)  # labeler -> [run]
    for path in sorted(glob.glob(os.path.join(folder, f"{prefix}{'-' if prefix else ''}*-seed*.jsonl"))):
        labeler = os.path.basename(path).rsplit("-seed", 1)[0][len(prefix) + 1 if prefix else 0 :]
        run = {"seed": int(path[:-len(".jsonl")].rsplit("-seed", 1)[1]), "evals": {}, "seconds": 0.0, "max_kl": 0.0}
        for line in open(path):
            d = json.loads(line)
            if "eval" in d:
                run["evals"][d["eval"]["rankings"]] = d["eval"]
            elif "summary" in d:
                run["sft_ptx"] = d["summary"]["ptx_loglik_sft"]
                run["seconds"] = d["summary"]["seconds_training"]
            elif "rankings" in d:
                run["max_kl"] = max(run["max_kl"], d["kl_k1"])
        runs[labeler].append(run)
    return runs


def cell(values, fmt="{:.2f}"):
    return (fmt + " ± {:.2f}").format(st.mean(values), st.pstdev(values)) if len(values) > 1 else fmt.format(values[0])


def name(l):
    base, _, noise = l.partition("~")
    return base.replace("_", " ") + (f" ({float(noise):.0%} noise)" if noise else "")


def filled(folder, prefix, early=""):
    """The runs a prefix names: "A+B" pools A's and B's, "A/F" adds F's where A has no run of that
    preference and seed, F pooled with "+" too (returned as "taken": for an option that provably
    leaves some runs as the defaults' were, so only the others were run); `early` adds the evaluations its runs made at
    rankings the same runs were not evaluated at."""
    pooled, _, fill = prefix.partition("/")
    runs, taken = collections.defaultdict(list), []
    for part in pooled.split("+"):
        for labeler, rs in load(folder, part).items():
            runs[labeler].extend(rs)
    fills = collections.defaultdict(list)
    for part in fill.split("+") if fill else []:
        for labeler, rs in load(folder, part).items():
            fills[labeler].extend(rs)
    for labeler, rs in fills.items():
        have = {r["seed"] for r in runs[labeler]}
        for r in rs:
            if r["seed"] not in have:
                runs[labeler].append(r)
                taken.append(f"{labeler} seed {r['seed']}")
    for labeler, rs in (load(folder, early).items() if early else []):
        for e in rs:
            for r in runs.get(labeler, []):
                if r["seed"] == e["seed"]:
                    r["evals"] = {**e["evals"], **r["evals"]}  # the run's own evaluations win
    return runs, taken


def main(folder, prefix="", early=""):
    runs, _ = filled(folder, prefix, early)
    labelers = [l for l in ORDER if l in runs] + sorted(l for l in runs if l not in ORDER)
    print("| rankings | " + " | ".join(name(l) for l in labelers) + " |")
    print("|---:|" + "---:|" * len(labelers))
    ks = sorted({k for l in labelers for r in runs[l] for k in r["evals"]})
    for k in ks:
        cells = []
        for l in labelers:
            ws = [r["evals"][k]["win_rate_vs_sft"] for r in runs[l] if k in r["evals"]]
            cells.append(f"{cell(ws)} (min {min(ws):.2f})" if len(ws) > 1 else cell(ws) if ws else "–")
        print(f"| {k} | " + " | ".join(cells) + " |")
    kmax = ks[-1] if ks else None
    if kmax:
        print("| KL at the end (nats per answer) | " + " | ".join(cell([r["evals"][kmax]["kl"] for r in runs[l]], "{:.1f}") for l in labelers) + " |")
        print("| largest KL of any iteration | " + " | ".join(f"{max(r['max_kl'] for r in runs[l]):.1f}" for l in labelers) + " |")
        ptx = [cell([r["evals"][kmax]["ptx_loglik"] - r["sft_ptx"] for r in runs[l]], "{:+.3f}") for l in labelers]
        print("| pretraining log-lik. at the end, change | " + " | ".join(ptx) + " |")
        secs = [" ".join(f"{r['seconds']:.0f}" for r in runs[l]) for l in labelers]
        print(f"| seconds of training for {kmax} rankings, per seed | " + " | ".join(secs) + " |")


if __name__ == "__main__":
    main(*(sys.argv[1:4] if len(sys.argv) > 1 else ["bench/align"]))
