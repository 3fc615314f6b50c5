#!/usr/bin/env bash
# How bench/topic/ was made (Dec 5): runs of today's defaults to 16 or 64 rankings with the reward
# model written out, then the topic probe on each. The runs' lines are in bench/topic/runs/; the
# reward models themselves (8 MB each) are not kept: these commands remake them (--threads 2 as
# here; --threads 1, as the ablations run, measures slightly other win-rates).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
RLHF="${RLHF:-$CARGO_TARGET_DIR/release/rlhf}"
OUT="${OUT:-/tmp/rm}"
mkdir -p "$OUT"
for spec in "practical 1 16" "practical 2 16" "practical 4 16" "practical 4 64" "on_topic 1 16" "on_topic 3 16" "on_topic 3 64" "cheerful 1 16" "polite 1 16"; do
    set -- $spec
    "$RLHF" align --threads 2 --model www/assets/base --labeler "$1" --seed "$2" --rankings "$3" --eval-every 8 --json \
        --out "$OUT/$1-seed$2-r$3" > "bench/topic/runs/$1-seed$2-r$3.jsonl"
done
# the same run as practical seed 4 to 16 with each ranking's favourite also beating two other
# questions' favourites (--rm-others 2, --threads 1)
"$RLHF" align --threads 1 --model www/assets/base --labeler practical --seed 4 --rankings 16 --eval-every 8 --json \
    --rm-others 2 --out "$OUT/x-practical-seed4-r16-o2" > bench/topic/runs/x-practical-seed4-r16-o2.jsonl
cd "$OUT"
for l in practical on_topic cheerful polite; do
    ~/.cache/rlhf-lab/hfvenv/bin/python "$OLDPWD/bench/topic_probe.py" "$l" $(ls -d "$l"-* x-"$l"-* 2>/dev/null)
done > "$OLDPWD/bench/topic/probe.jsonl"
