#!/usr/bin/env bash
# Methods side by side on the same rankings: `rlhf compare` (PPO-ptx's loop, the default, collects
# 32 rankings from the labeler; PPO-ptx, DPO, RLOO and best-of-K each learn from them from the base
# model in the same order, a win-rate against SFT every 8) for the four labelers, seeds 1..3.
# Writes one JSON-lines file per run to bench/compare/ and prints the README's table.
# Two runs at a time, one matrix thread each: a bit over an hour on 2 cores.
# usage: bash bench/compare.sh [labelers, default "polite concise on_topic cheerful"] [seeds, default "1 2 3"]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
LABELERS="${1:-polite concise on_topic cheerful}"
SEEDS="${2:-1 2 3}"
cargo build --release --bin rlhf
export BIN="${RLHF:-$CARGO_TARGET_DIR/release/rlhf}"
mkdir -p bench/compare
for l in $LABELERS; do for s in $SEEDS; do echo "$l $s"; done; done |
    xargs -P 2 -L 1 sh -c '"$BIN" compare --threads 1 --model www/assets/base --labeler "$0" --seed "$1" \
        --rankings 32 --eval-every 8 --json > "bench/compare/$0-seed$1.jsonl"'
python3 bench/compare_table.py bench/compare
