#!/usr/bin/env bash
# Builds the page: the wasm (size-optimized, fat LTO) and its JS glue into www/pkg/, and the npm
# packages the page imports into www/vendor/ (the page must work offline from a static server).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -d node_modules/uplot ] || npm ci --no-audit --no-fund
mkdir -p www/vendor
cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css www/vendor/
cargo build --lib --target wasm32-unknown-unknown --profile wasm-release
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/rlhf_lab.wasm"
ls -l www/pkg | awk 'NR>1 {print "wasm: " $NF ": " $5 " bytes"}'
