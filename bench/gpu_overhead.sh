#!/usr/bin/env bash
# What a GPU training step asks of the device, against the engine before its rework (commit
# 8af9c22), in one run on this machine's adapter: dispatches, submissions, readbacks, CPU time
# spent encoding, and buffers and bind groups made per step. The old engine is built in a git
# worktree with bench/baseline-counters.patch, which adds counters to it and changes nothing else.
# usage: bash bench/gpu_overhead.sh [presets, default tiny,demo]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PRESETS="${1:-tiny,demo}"
BASELINE=8af9c22
tree="$CACHE_DIR/baseline-src"
if [ ! -d "$tree" ]; then
    git worktree add -f "$tree" "$BASELINE"
    git -C "$tree" apply "$PWD/bench/baseline-counters.patch"
fi
CARGO_TARGET_DIR="$CACHE_DIR/baseline-target" cargo build --release --bin rlhf --manifest-path "$tree/Cargo.toml"
cargo build --release --bin rlhf
echo "| preset | kernel | per | dispatches | submissions | readbacks | encode ms | buffers made | bind groups made |"
echo "|---|---|---|---|---|---|---|---|---|"
"$CACHE_DIR/baseline-target/release/rlhf" bench-counts --presets "$PRESETS" | sed 's/training step/training step, before (8af9c22)/'
"$CARGO_TARGET_DIR/release/rlhf" bench --presets "$PRESETS" --engines gpu | sed -n '/^| preset | kernel/,$p' | tail -n +3
