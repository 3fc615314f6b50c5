#!/usr/bin/env bash
# The GPU engine on a Linux machine with an NVIDIA GPU and no display: `rlhf bench` on native
# Vulkan, one alignment iteration with --engine gpu timed by phase, and the same model and batch in
# PyTorch CUDA eager, with the ratio. Needs the NVIDIA driver's Vulkan ICD, a Rust toolchain and a
# Python with torch and transformers (set PYTHON).
# usage: bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PYTHON="${PYTHON:-$CACHE_DIR/hfvenv/bin/python}"
cargo build --release --bin rlhf
RLHF="$CARGO_TARGET_DIR/release/rlhf"
echo "== rlhf bench, GPU engine on $(vulkaninfo --summary 2>/dev/null | grep -m1 deviceName || echo 'the default Vulkan adapter')"
"$RLHF" bench --presets demo --engines gpu | tee /tmp/rlhf-gpu-bench.txt
echo "== one alignment iteration on the GPU engine, by phase"
"$RLHF" align --model www/assets/base --labeler polite --rankings 1 --eval-prompts 1 --eval-samples 1 --engine gpu --json | head -1 |
    "$PYTHON" -c 'import json,sys; m=json.loads(sys.stdin.readline()); print({k: round(v, 3) for k, v in m.items() if k.startswith("seconds")})'
echo "== the same model and batch in PyTorch CUDA eager"
"$PYTHON" bench/torch_step.py --device cuda --preset demo | tee /tmp/rlhf-torch.json
"$PYTHON" - <<'PY'
import json, re
torch_tok = json.load(open("/tmp/rlhf-torch.json"))["tokens_per_s"]
rows = [l for l in open("/tmp/rlhf-gpu-bench.txt") if l.startswith("| demo") and "gpu" in l]
best = max(float(l.split("|")[4]) for l in rows)
print(f"demo step: WebGPU engine {best:.0f} tokens/s, PyTorch CUDA eager {torch_tok:.0f} tokens/s: PyTorch is {torch_tok / best:.2f}x the engine")
PY
