"""How much a ranked pair says, by how far apart the ranking put its two answers: groups of eight of
SFT's answers (temperature 0.7, the loop's) to the questions the page's simulated persons were
asked, ranked by a labeler with noise and by its noiseless rule; for each distance in the noisy
ranking, the share of pairs the noiseless rule orders the same way, the share it orders the other
way (reversed), and the share it ties (the noise chose). The signal is the first less the second.

usage: python3 bench/pair_signal.py [LABELER [NOISE]]   (default gloomy 0.25; about 4 minutes)
"""
import collections
import glob
import json
import os
import re
import subprocess
import sys

LABELER = sys.argv[1] if len(sys.argv) > 1 else "gloomy"
NOISE = sys.argv[2] if len(sys.argv) > 2 else "0.25"
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/rlhf-lab/target"))
RLHF = os.environ.get("RLHF", os.path.join(TARGET, "release/rlhf"))
K = 8

prompts = sorted({json.loads(line)["prompt"] for f in glob.glob("bench/person/docs/*.jsonl") for line in open(f) if '"prompt"' in line})
groups = []
for seed in range(2):
    for p in prompts:
        out = subprocess.run([RLHF, "generate", "--model", "www/assets/base", "--prompt", p, "--samples", str(K), "--temperature", "0.7", "--seed", str(seed)], capture_output=True, text=True, check=True).stdout
        answers = re.findall(r"^\[\d+\] (.*)$", out, re.M)
        if len(answers) == K:
            groups.append((p, answers))


def ranker(noise, seed):
    return subprocess.Popen([RLHF, "rank", "--labeler", LABELER, "--noise", noise, "--seed", str(seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def ranks(proc, prompt, answers):
    proc.stdin.write(json.dumps({"prompt": prompt, "responses": answers}) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())["ranks"]


clean = ranker("0", 1)
by_distance = collections.defaultdict(lambda: [0, 0, 0])  # same order, reversed, tied by the rule
for noise_seed in range(1, 6):
    noisy = ranker(NOISE, noise_seed)
    for p, answers in groups:
        rc, rn = ranks(clean, p, answers), ranks(noisy, p, answers)
        for i in range(K):
            for j in range(K):
                if rn[i] < rn[j]:
                    c = by_distance[rn[j] - rn[i]]
                    c[0 if rc[i] < rc[j] else 1 if rc[i] > rc[j] else 2] += 1
    noisy.stdin.close()
print(f"{LABELER} with noise {NOISE}: {len(groups)} groups of {K} x 5 noise seeds")
print("| distance | pairs | same order | reversed | tied by the rule | signal |\n|---:|---:|---:|---:|---:|---:|")
for d in sorted(by_distance):
    same, rev, tie = by_distance[d]
    n = same + rev + tie
    print(f"| {d} | {n} | {same / n:.2f} | {rev / n:.2f} | {tie / n:.2f} | {(same - rev) / n:.2f} |")
