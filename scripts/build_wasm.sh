#!/usr/bin/env bash
# Builds the page's wasm (size-optimized, fat LTO) and its JS glue into www/pkg/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --lib --target wasm32-unknown-unknown --profile wasm-release
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/rlhf_lab.wasm"
ls -l www/pkg | awk 'NR>1 {print "wasm: " $NF ": " $5 " bytes"}'
