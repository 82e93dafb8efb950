#!/usr/bin/env bash
# Installs what is missing, builds the web app and serves it on http://127.0.0.1:8080.
# Open it in a browser with WebGPU (Chrome, Edge; Firefox and Safari where enabled); without
# WebGPU the page runs on its CPU backend and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ./scripts/setup.sh
echo "==> building and serving the app (the first build takes ~10 minutes)"
exec trunk serve --release "$@"
