#!/usr/bin/env bash
# Builds the page and serves www/ on 127.0.0.1 (port from $PORT, default 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
bash scripts/build_page.sh
PORT="${PORT:-8000}"
echo "open http://127.0.0.1:$PORT/ in a WebGPU browser (Chrome or Edge 113+, Firefox 141+, Safari 26+)"
cd www && exec python3 -m http.server "$PORT" --bind 127.0.0.1
