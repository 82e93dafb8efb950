#!/usr/bin/env bash
# Every check, the same one CI runs: formatting, lints, native tests (parity on the ndarray and
# flex backends, and --device wgpu on Vulkan against them), the web app's build, and the browser
# tests in headless Chromium on WebGPU.
# Run from anywhere: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"

step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }

# Clippy as the compiler of our own crates: `cargo clippy` is exactly this wrapper over
# `cargo check`. Wrapping the real builds lints every crate we compile (-D warnings) without a
# second, check-only build of all dependencies: ~10 minutes less on a fresh 2-core machine.
clippy() {
    RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)" \
        CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
}

# Stops a background job whole: its subshell, and what that started (trunk, the cargo it ran).
kill_tree() {
    local child
    for child in $(pgrep -P "$1"); do kill_tree "$child"; done
    kill "$1" 2>/dev/null || true
}

step "toolchain"
rustup show active-toolchain >/dev/null
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# Before the background setup: both use apt, which allows one install at a time.
step "a Vulkan driver for the --device wgpu tests (Mesa's lavapipe where the machine has none)"
bash ./scripts/vulkan.sh

step "setup in the background: trunk, wasm-bindgen-cli, chromium, playwright-core"
bash ./scripts/setup.sh --browser > "$target/setup.log" 2>&1 &
setup_pid=$!

step "cargo fmt --check"
cargo fmt --all -- --check

step "native build, linted by clippy -D warnings"
clippy cargo test --workspace --all-targets --no-run

step "waiting for setup"
wait "$setup_pid" || { cat "$target/setup.log"; echo "setup failed"; exit 1; }
cat "$target/setup.log"

# The wasm build beside the native tests, which do not keep both cores busy (one test binary
# after another; lavapipe compiling shaders). Neither waits for the other's build directory: the
# tests' artifacts are in target/debug, the wasm's in target/wasm32-unknown-unknown and its
# build scripts' in target/release and target/wasm-release. Measured on 2 cores: 15.7–16.8 min
# side by side, 17.5 one after the other; 19.9 side by side with the worker's size profile.
step "trunk build --release in the background, the web crates linted by clippy -D warnings"
clippy trunk build --release > "$target/trunk.log" 2>&1 &
trunk_pid=$!

step "native tests (parity on the ndarray and flex backends, and wgpu on Vulkan)"
clippy cargo test --workspace --all-targets || { kill_tree "$trunk_pid"; exit 1; }

step "waiting for trunk build --release"
wait "$trunk_pid" || { cat "$target/trunk.log"; echo "trunk build failed"; exit 1; }
cat "$target/trunk.log"

step "the native CLI's greedy ids on the GPT-2 fixture (the browser must match them)"
greedy="$target/greedy-gpt2-tiny.json"
"$target/debug/hearth" generate --model tests/fixtures/cases/gpt2-tiny --prompt "Every effort moves you" \
    --max-new-tokens 20 --json > "$greedy"
cat "$greedy"
# A seeded top-k draw: the browser chooses on the GPU and must draw the same tokens.
sampled="$target/sampled-gpt2-tiny.json"
"$target/debug/hearth" generate --model tests/fixtures/cases/gpt2-tiny --prompt "Every effort moves you" \
    --max-new-tokens 12 --temperature 0.8 --top-k 40 --seed 7 --json > "$sampled"
# Per-token surprisal of the same prompt: the Surprisal view must show these losses.
score="$target/score-gpt2-tiny.json"
"$target/debug/hearth" score --model tests/fixtures/cases/gpt2-tiny --text "Every effort moves you" \
    --per-token --json > "$score"

step "a GPT-2 medium-sized random model (355M parameters, 1.5 GB, made here) and the CLI's greedy ids on it"
medium="$target/gpt2-medium-random"
# 1.5 GB that the next run writes again: gone when this script ends, passed or not.
trap 'rm -rf "$medium"' EXIT
node tests/browser/random_gpt2.mjs "$medium"
greedy_medium="$target/greedy-gpt2-medium.json"
"$target/debug/hearth" generate --model "$medium" --prompt "Every effort moves you" --max-new-tokens 3 --json \
    > "$greedy_medium"
cat "$greedy_medium"

step "browser tests (headless Chromium, WebGPU)"
HEARTH_EXPECTED_GREEDY="$greedy" HEARTH_EXPECTED_SAMPLED="$sampled" HEARTH_EXPECTED_SCORE="$score" \
    HEARTH_MEDIUM_DIR="$medium" HEARTH_EXPECTED_MEDIUM="$greedy_medium" node tests/browser/run.mjs

step "all checks passed"
