#!/usr/bin/env bash
# How far the win-rate protocol's one draw moves for a fixed policy: each run of the defaults to N
# rankings (`rlhf align --out`, the same run the benchmark makes: its win-rate at N must equal the
# defaults' runs' in bench/ablation, ob1k1, s456-ob1k1 and s1618-ob1k1, to the digit), then its policy judged again with E other answer seeds (`rlhf eval
# --seed`, the same 24 held-out questions and 4 answers each). Writes bench/eval_spread/atN/L-seedS.jsonl
# (the run's lines, then one line per answer seed) and prints the table (bench/eval_spread.py).
# Two runs at a time, one thread each: about 40 minutes for six preferences x nine seeds at N = 8,
# E = 40. The policies go to $CK (default /tmp/rlhf-eval-spread), not into the repository.
# usage: RANKINGS=8 EVAL_SEEDS=40 bash bench/eval_spread.sh [labelers] [seeds]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
LABELERS="${1:-polite concise on_topic cheerful practical gloomy~0.25}"
SEEDS="${2:-1 2 3 4 5 6 16 17 18}"
export RANKINGS="${RANKINGS:-8}" EVAL_SEEDS="${EVAL_SEEDS:-40}" CK="${CK:-/tmp/rlhf-eval-spread}" OUT="bench/eval_spread/at${RANKINGS:-8}"
cargo build --release --bin rlhf
export BIN="${RLHF:-$CARGO_TARGET_DIR/release/rlhf}"
mkdir -p "$OUT" "$CK"
for l in $LABELERS; do for s in $SEEDS; do echo "$l $s"; done; done |
    xargs -P 2 -L 1 sh -c 'name="${0%~*}"; noise=0; case "$0" in *~*) noise="${0#*~}";; esac
        f="$OUT/$0-seed$1.jsonl"; dir="$CK/at$RANKINGS/$0-seed$1"
        "$BIN" align --threads 1 --model www/assets/base --labeler "$name" --noise "$noise" --seed "$1" \
            --rankings "$RANKINGS" --eval-every "$RANKINGS" --json --out "$dir" > "$f"
        bash bench/judge_seeds.sh "$EVAL_SEEDS" "$name" "$dir/policy" >> "$f"'
python3 bench/eval_spread.py "$OUT" "$RANKINGS" bench/ablation ob1k1+s456-ob1k1+s1618-ob1k1
