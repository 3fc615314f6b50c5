#!/usr/bin/env bash
# Builds the page: the wasm (size-optimized, fat LTO) and its JS glue into www/pkg/, and the npm
# packages the page imports into www/vendor/ (the page must work offline from a static server).
# The wasm is built twice from the same source: with 128-bit SIMD (every browser with WebGPU has
# it), and with relaxed SIMD too, whose fused multiply-add matrixmultiply's wasm kernel uses; the
# page loads the second where the browser has the instruction (www/simd.js). The relaxed build
# has a target directory of its own: other rustflags rebuild every crate, and would evict the
# plain build's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -d node_modules/uplot ] && [ -d node_modules/binaryen ] || npm ci --no-audit --no-fund
mkdir -p www/vendor
cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css www/vendor/

# wasm-opt -Oz (binaryen from npm; Debian's older binaryen breaks the module) takes a minute:
# keep its output by the hash of its input
optimize() {
    local raw="$1" out="$2"
    mkdir -p "$CACHE_DIR/wasm-opt"
    local cached="$CACHE_DIR/wasm-opt/$(sha256sum "$raw" | cut -c1-16).wasm"
    if [ ! -f "$cached" ]; then
        echo "wasm-opt -Oz ($(stat -c %s "$raw") bytes in)"
        node_modules/binaryen/bin/wasm-opt -Oz "$raw" -o "$cached.tmp"
        mv "$cached.tmp" "$cached"
    fi
    cp "$cached" "$out"
}

cargo build --lib --target wasm32-unknown-unknown --profile wasm-release
wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/rlhf_lab.wasm"
optimize www/pkg/rlhf_lab_bg.wasm www/pkg/rlhf_lab_bg.wasm

relaxed_dir="$CARGO_TARGET_DIR/relaxed-simd"
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
    cargo build --lib --target wasm32-unknown-unknown --profile wasm-release --target-dir "$relaxed_dir"
tmp="$(mktemp -d)"
wasm-bindgen --target web --no-typescript --out-dir "$tmp" \
    "$relaxed_dir/wasm32-unknown-unknown/wasm-release/rlhf_lab.wasm"
# both builds run under the one JS glue
cmp -s "$tmp/rlhf_lab.js" www/pkg/rlhf_lab.js || { echo "the relaxed-SIMD build's JS glue differs from the plain build's" >&2; exit 1; }
optimize "$tmp/rlhf_lab_bg.wasm" www/pkg/rlhf_lab_relaxed_bg.wasm
rm -rf "$tmp"
ls -l www/pkg | awk 'NR>1 {print "wasm: " $NF ": " $5 " bytes"}'
