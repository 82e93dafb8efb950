#!/usr/bin/env bash
# Installs what is missing, builds the web app and serves it on http://127.0.0.1:8080.
# Open it in a browser with WebGPU (Chrome, Edge; Firefox and Safari where enabled); without
# WebGPU the page runs on its CPU backend and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ./scripts/setup.sh
echo "==> building the app (the first build takes ~20 minutes on 2 cores)"
trunk build --release
# The shipped build's download, checked where it is made (CI tests a faster-to-build profile).
bash ./scripts/check-size.sh dist
echo "==> serving the app"
exec trunk serve --release "$@"
