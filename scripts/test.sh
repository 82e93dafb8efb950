#!/usr/bin/env bash
# Every check, the same one CI runs: formatting, lints, native tests (parity on the ndarray and
# flex backends), the web app's build, and the browser tests in headless Chromium on WebGPU.
# Run from anywhere: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }

step "setup: toolchain, trunk, wasm-bindgen, chromium, playwright-core"
bash ./scripts/setup.sh --browser

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings (native)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (native; parity on the ndarray and flex backends)"
cargo test --workspace

step "cargo clippy -D warnings (wasm: the web app and hearth-lm on WebGPU)"
cargo clippy -p hearth-web --target wasm32-unknown-unknown -- -D warnings

step "trunk build --release (the app the browser tests drive)"
trunk build --release

step "the native CLI's greedy ids on the GPT-2 fixture (the browser must match them)"
greedy="$target/greedy-gpt2-tiny.json"
"$target/debug/hearth" generate --model tests/fixtures/cases/gpt2-tiny --prompt "Every effort moves you" \
    --max-new-tokens 20 --json > "$greedy"
cat "$greedy"

step "browser tests (headless Chromium, WebGPU)"
HEARTH_EXPECTED_GREEDY="$greedy" node tests/browser/run.mjs

step "all checks passed"
