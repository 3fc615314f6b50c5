#!/usr/bin/env bash
# The realignment benchmark: `rlhf align` with the defaults (no flags but the run's length and
# evaluation cadence) for the four labelers the defaults were measured on and two preferences
# nobody tuned for (practical; gloomy ranked with noise, a quarter of its pairs reversed), seeds
# 1..3, 64 rankings, a win-rate against SFT every 8. Writes one JSON-lines file per run to
# bench/align/ and prints the README's table. Two runs at a time, one thread each: about an
# hour on 2 cores.
# usage: bash bench/align.sh [labelers, default "polite concise on_topic cheerful practical gloomy~0.25"] [seeds, default "1 2 3"]
# An ablation: the same runs with flags of its own, written as bench/ablation/PREFIX-*.jsonl, e.g.
#   PREFIX=k6 FLAGS="--k 6" bash bench/align.sh    (then: python3 bench/targets.py bench/ablation d64 k6)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
LABELERS="${1:-polite concise on_topic cheerful practical gloomy~0.25}"
SEEDS="${2:-1 2 3}"
export FLAGS="${FLAGS:-}" RANKINGS="${RANKINGS:-64}"
if [ -n "${PREFIX:-}" ]; then export OUT="bench/ablation/$PREFIX-"; else export OUT="bench/align/"; fi
cargo build --release --bin rlhf
export BIN="${RLHF:-$CARGO_TARGET_DIR/release/rlhf}"
mkdir -p "$(dirname "${OUT}x")"
for l in $LABELERS; do for s in $SEEDS; do echo "$l $s"; done; done |
    xargs -P 2 -L 1 sh -c 'name="${0%~*}"; noise=0; case "$0" in *~*) noise="${0#*~}";; esac
        "$BIN" align --threads 1 --model www/assets/base --labeler "$name" --noise "$noise" \
        --seed "$1" --rankings "${RANKINGS:-64}" --eval-every 8 --json $FLAGS > "$OUT$0-seed$1.jsonl"'
python3 bench/align_table.py "$(dirname "${OUT}x")" ${PREFIX:-}
