#!/usr/bin/env bash
# Runs every test: installs first, then formatting and lints, the Rust tests (CPU reference, WGSL
# kernels on lavapipe), the page build and its browser tests (headless Chromium, WebGPU on
# SwiftShader), a CLI smoke run, the HF transformers checks and TRL on what the page exported.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-hf
source scripts/env.sh

echo "== cargo fmt --check, cargo clippy -D warnings (native and wasm)"
cargo fmt --check
cargo clippy --release --lib --bins --tests -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown -- -D warnings

echo "== cargo test (release: the kernels run on a software adapter)"
cargo test --release 2>&1 | grep -v "XDG_RUNTIME_DIR"

echo "== page build (wasm, JS glue, vendored npm packages)"
bash scripts/build_page.sh

echo "== browser tests (screenshots in test-artifacts/)"
node --test tests/browser/

echo "== CLI on the committed base model"
RLHF="$CARGO_TARGET_DIR/release/rlhf"
"$RLHF" generate --model www/assets/base --prompt "How do I make a good cup of tea?" --samples 3 --seed 1 --max-tokens 48

echo "== HF transformers loads the policy the page exported and agrees on the logits"
"$CACHE_DIR/hfvenv/bin/python" tests/hf_check.py test-artifacts/export/policy "$RLHF" 2>&1 | grep -v "Loading weights"

echo "== TRL takes the page's export on: reward model scores as the lab's, RewardTrainer and DPOTrainer run"
"$CACHE_DIR/hfvenv/bin/python" scripts/trl_continue.py test-artifacts/export --steps 3 2>&1 | grep -E "^(reward model|rankings|RewardTrainer|DPOTrainer|TRL)"

echo "== HF transformers loads the base model and agrees on the logits"
"$CACHE_DIR/hfvenv/bin/python" tests/hf_check.py www/assets/base "$RLHF" 2>&1 | grep -v "Loading weights"
