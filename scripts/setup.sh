#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine; quick when everything is already there.
# usage: scripts/setup.sh [--with-hf]   (--with-hf also makes the Python venv for the HF transformers check)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

need_apt=()
# lavapipe for native wgpu; Debian's Chromium (with SwiftShader) for the browser tests
for pkg in mesa-vulkan-drivers chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# Debian's own python3 makes venvs only with python3-venv
if [ "${1:-}" = "--with-hf" ] && ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
    echo "setup: rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must match the wasm-bindgen crate exactly (pinned in Cargo.toml).
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    echo "setup: cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (once; several minutes)"
    cargo install --root "$CACHE_DIR/tools" wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# the page's npm packages (uPlot), wasm-opt (binaryen) and the browser tests' driver
# (playwright-core, which downloads no browser)
if [ ! -d node_modules/uplot ] || [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/binaryen ]; then
    echo "setup: npm ci"
    npm ci --no-audit --no-fund
fi

if [ "${1:-}" = "--with-hf" ] && ! "$CACHE_DIR/hfvenv/bin/python" -c "import torch, transformers, trl" 2>/dev/null; then
    echo "setup: Python venv with torch, transformers and TRL for the HF and TRL checks (once)"
    python3 -m venv "$CACHE_DIR/hfvenv"
    "$CACHE_DIR/hfvenv/bin/pip" install -q torch transformers safetensors numpy trl
fi
echo "setup: ok"
