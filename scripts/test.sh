#!/usr/bin/env bash
# Runs every test: installs first, then Rust tests (CPU reference, WGSL kernels on lavapipe),
# the page build and its browser tests (headless Chromium, WebGPU on SwiftShader), a CLI smoke
# run and the HF transformers check on the committed base model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-hf
source scripts/env.sh

echo "== cargo test (release: the kernels run on a software adapter)"
cargo test --release 2>&1 | grep -v "XDG_RUNTIME_DIR" 

echo "== page build (wasm, JS glue, vendored npm packages)"
bash scripts/build_page.sh

echo "== browser tests (screenshots in test-artifacts/)"
node --test tests/browser/

echo "== CLI on the committed base model"
RLHF="$CARGO_TARGET_DIR/release/rlhf"
"$RLHF" generate --model www/assets/base --prompt "How do I make a good cup of tea?" --samples 3 --seed 1 --max-tokens 48

echo "== HF transformers loads the model the page exported and agrees on the logits"
"$CACHE_DIR/hfvenv/bin/python" tests/hf_check.py test-artifacts/exported-model "$RLHF" 2>&1 | grep -v "Loading weights"

echo "== HF transformers loads the base model and agrees on the logits"
"$CACHE_DIR/hfvenv/bin/python" tests/hf_check.py www/assets/base "$RLHF" 2>&1 | grep -v "Loading weights"
