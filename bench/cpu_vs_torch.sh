#!/usr/bin/env bash
# The CPU engine against PyTorch eager on the same CPU, same model shapes and batches, in one run:
# forward + backward + AdamW tokens per second, and their ratio.
# usage: bash bench/cpu_vs_torch.sh   (after scripts/setup.sh --with-hf)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PYTHON="${PYTHON:-$CACHE_DIR/hfvenv/bin/python}"
cargo build --release --bin rlhf
threads=$(nproc)
for preset in demo tiny; do
    ours=$("$CARGO_TARGET_DIR/release/rlhf" bench --presets "$preset" --engines cpu | awk -F'|' '/cpu/ {gsub(/ /, "", $5); print $5}')
    theirs=$("$PYTHON" bench/torch_step.py --device cpu --preset "$preset" --threads "$threads")
    echo "$theirs" | "$PYTHON" -c "import json,sys; t=json.loads(sys.stdin.read()); ours=float('$ours'); print(f'$preset: CPU engine {ours:.0f} tokens/s, {t[\"engine\"]} ({t[\"threads\"]} threads) {t[\"tokens_per_s\"]:.0f} tokens/s: the engine runs at {ours / t[\"tokens_per_s\"]:.2f}x PyTorch')"
done
