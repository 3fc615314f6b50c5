"""The table of bench/eval_spread.sh: per run, the protocol's win-rate at N rankings (its one
answer seed), the mean and spread of the same policy judged with other answer seeds, and how often
one draw lands under the line; then the counts at the line by the protocol and by the mean.
With a folder and +-joined prefixes of the same runs made to more rankings, checks that each
run's win-rate at N equals theirs to the digit (the same run, so the same policy).
The line the counts are taken at: issue 15's, 0.80 before 32 rankings and 0.90 from 32 on
(--line=X to choose another).
usage: python3 bench/eval_spread.py bench/eval_spread/at8 8 [bench/ablation ob1k1+s456-ob1k1] [--line=X]"""
import glob
import json
import os
import statistics as st
import sys

flags = [a for a in sys.argv[1:] if a.startswith("--line=")]
sys.argv = [a for a in sys.argv if not a.startswith("--line=")]
d, n = sys.argv[1], int(sys.argv[2])
line = float(flags[-1].split("=")[1]) if flags else (0.9 if n >= 32 else 0.8)
rows = []
for f in sorted(glob.glob(os.path.join(d, "*-seed*.jsonl"))):
    lines = [json.loads(x) for x in open(f)]
    prot = [x["eval"]["win_rate_vs_sft"] for x in lines if "eval" in x and x["eval"].get("rankings") == n]
    draws = [x["judged"]["win_rate"] for x in lines if "judged" in x]
    if not prot or len(draws) < 2:
        continue
    rows.append((os.path.basename(f)[:-6], prot[0], st.mean(draws), st.stdev(draws), sum(w < line for w in draws) / len(draws), len(draws)))
print(f"| run | protocol at {n} | mean of other draws | spread of one draw | draws under {line:.2f} |")
print("|---|---:|---:|---:|---:|")
for name, p, m, s, lo, k in rows:
    print(f"| {name} | {p:.3f} | {m:.3f} | {s:.3f} | {lo:.2f} (of {k}) |")
if len(sys.argv) > 4:
    same = 0
    for name, p, *_ in rows:
        for pre in sys.argv[4].split("+"):
            f = os.path.join(sys.argv[3], f"{pre}-{name}.jsonl")
            if os.path.exists(f):
                same += any(x.get("eval", {}).get("rankings") == n and x["eval"]["win_rate_vs_sft"] == p for x in map(json.loads, open(f)))
                break
    print(f"\nequal at {n} to the runs of {sys.argv[4]}: {same} of {len(rows)}")
if rows:
    print(f"\nruns: {len(rows)}; at {line:.2f} by the protocol {sum(p >= line for _, p, *_ in rows)}, by the mean of the other draws {sum(m >= line for _, _, m, *_ in rows)}")
    print(f"means: protocol {st.mean(r[1] for r in rows):.3f}, other draws {st.mean(r[2] for r in rows):.3f}; one draw's spread: median {st.median(r[3] for r in rows):.3f}, largest {max(r[3] for r in rows):.3f}")
    z = [(p - m) / s for _, p, m, s, *_ in rows if s > 0]
    print(f"the protocol's draw against the others' mean, in spreads: mean {st.mean(z):+.2f}, sd {st.stdev(z) if len(z) > 1 else 0:.2f}")
