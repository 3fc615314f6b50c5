#!/usr/bin/env bash
# Where the slow starts' shortfall lies: each run's own reward model after N rankings picking the
# best of 16 of SFT's answers (`rlhf eval --best-of 16 --judge`), judged with the answer seeds the
# spread measure used (1000 on), against the run's policy judged with the same seeds. Needs the
# runs' checkpoints that bench/eval_spread.sh leaves in $CK (default /tmp/rlhf-eval-spread/atN);
# writes bench/ceiling/rm-at-N-all/RUN.jsonl and prints the table (bench/ceiling/rm_at_n.py).
# Two at a time, one thread each: about 50 minutes for the 54 runs at N = 8 with 6 answer seeds.
# usage: RANKINGS=8 EVAL_SEEDS=6 bash bench/ceiling/rm_at_n.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
export RANKINGS="${RANKINGS:-8}" EVAL_SEEDS="${EVAL_SEEDS:-6}"
CK="${CK:-/tmp/rlhf-eval-spread}/at$RANKINGS"
export OUT="bench/ceiling/rm-at-$RANKINGS-all" CK
if ! ls "$CK"/*/reward_model > /dev/null 2>&1; then
    echo "no checkpoints in $CK: run RANKINGS=$RANKINGS bash bench/eval_spread.sh first (it keeps each run's policy and reward model there)" >&2
    exit 1
fi
cargo build --release --bin rlhf
export BIN="${RLHF:-$CARGO_TARGET_DIR/release/rlhf}"
mkdir -p "$OUT"
for d in "$CK"/*/; do basename "$d"; done |
    xargs -P 2 -I{} sh -c 'run={}; name="${run%-seed*}"; name="${name%~*}"
        bash bench/judge_seeds.sh "$EVAL_SEEDS" "$name" www/assets/base --best-of 16 --judge "$CK/$run/reward_model" > "$OUT/$run.jsonl"'
python3 bench/ceiling/rm_at_n.py "$OUT" "bench/eval_spread/at$RANKINGS"
