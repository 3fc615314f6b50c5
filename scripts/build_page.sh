#!/usr/bin/env bash
# Builds the page: the wasm (size-optimized, fat LTO) and its JS glue into www/pkg/, and the npm
# packages the page imports into www/vendor/ (the page must work offline from a static server).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -d node_modules/uplot ] && [ -d node_modules/binaryen ] || npm ci --no-audit --no-fund
mkdir -p www/vendor
cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css www/vendor/
cargo build --lib --target wasm32-unknown-unknown --profile wasm-release
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/rlhf_lab.wasm"
# wasm-opt -Oz (binaryen from npm; Debian's older binaryen breaks the module) takes a minute:
# keep its output by the hash of its input
raw=www/pkg/rlhf_lab_bg.wasm
mkdir -p "$CACHE_DIR/wasm-opt"
cached="$CACHE_DIR/wasm-opt/$(sha256sum "$raw" | cut -c1-16).wasm"
if [ ! -f "$cached" ]; then
    echo "wasm-opt -Oz ($(stat -c %s "$raw") bytes in)"
    node_modules/binaryen/bin/wasm-opt -Oz "$raw" -o "$cached.tmp"
    mv "$cached.tmp" "$cached"
fi
cp "$cached" "$raw"
ls -l www/pkg | awk 'NR>1 {print "wasm: " $NF ": " $5 " bytes"}'
