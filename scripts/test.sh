#!/usr/bin/env bash
# Every check, the same one CI runs: formatting, lints, native tests (parity on the ndarray and
# flex backends, and --device wgpu on Vulkan against them), the web app's build, and the browser
# tests in headless Chromium on WebGPU. It ends with a table of its phases and their minutes.
# Run from anywhere: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"

# The phase table: every phase (foreground or background) appends "name, start, end, status".
t0=$(date +%s)
phases="$target/phases.tsv"
: > "$phases"

step() { printf '\n==> %s (%s)\n' "$*" "$(date +%T)"; }

# timed NAME COMMAND...: runs COMMAND and records NAME's start and end for the table.
timed() {
    local name=$1 start rc=0
    shift
    start=$(date +%s)
    "$@" || rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$((start - t0))" "$(($(date +%s) - t0))" "$rc" >> "$phases"
    return "$rc"
}

# Where the time went, printed however the run ends. Background phases overlap the others, so
# the minutes add up to more than the wall clock.
table() {
    printf '\n%-58s %7s %7s %7s\n' "phase" "start" "end" "minutes"
    sort -t$'\t' -k2,2n "$phases" | awk -F'\t' '{
        printf "%-58s %7.1f %7.1f %7.1f%s\n", $1, $2 / 60, $3 / 60, ($3 - $2) / 60, ($4 == 0 ? "" : "  (failed: " $4 ")")
    }'
    awk -v s="$(($(date +%s) - t0))" 'BEGIN { printf "%-58s %7s %7s %7.1f\n", "total (wall clock)", "", "", s / 60 }'
}

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

medium="$target/gpt2-medium-random"
smol="$target/smollm2-135m-random"
modern="$target/modernbert-base-random"
bg_pids=()
cleanup() {
    local rc=$?
    for pid in "${bg_pids[@]}"; do kill_tree "$pid"; done
    # 1.5 GB that the next run writes again: gone when this script ends, passed or not.
    rm -rf "$medium" "$smol"
    table
    exit "$rc"
}
trap cleanup EXIT

step "toolchain"
timed "toolchain (rustup: the wasm target)" bash -c \
    'rustup show active-toolchain >/dev/null
     rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown'

# Every install in one background job: apt allows one install at a time, and none of them is
# needed before the native tests (Vulkan) or the wasm build (trunk, wasm-bindgen-cli).
step "setup in the background: a Vulkan driver, trunk, wasm-bindgen-cli, chromium, playwright-core"
timed "setup (background): Vulkan driver, tools, chromium, npm" bash -c \
    'bash ./scripts/vulkan.sh && bash ./scripts/setup.sh --browser' > "$target/setup.log" 2>&1 &
setup_pid=$!
bg_pids+=("$setup_pid")

step "cargo fmt --check"
timed "cargo fmt --check" cargo fmt --all -- --check

step "native build, linted by clippy -D warnings"
timed "native build (clippy -D warnings)" clippy cargo test --workspace --all-targets --no-run --timings
# Which crates the build's time went to (cargo's report: target/cargo-timings/cargo-timing.html).
node scripts/timings-top.mjs "$target/cargo-timings/cargo-timing.html" || true

step "waiting for setup"
timed "waiting for setup" wait "$setup_pid" || { cat "$target/setup.log"; echo "setup failed"; exit 1; }
cat "$target/setup.log"

# The wasm build beside the native tests, which do not keep both cores busy (one test binary
# after another; lavapipe compiling shaders). Neither waits for the other's build directory: the
# tests' artifacts are in target/debug, the wasm's in target/wasm32-unknown-unknown and its
# build scripts' in target/release and target/wasm-release.
#
# The workers are built for the browser tests without the shipped size profile's fat LTO and
# single codegen unit (README, "Tests"): the same code at the same opt-level, linked without the
# whole-program pass that only makes the download smaller and took most of the wasm build's time
# on 2 cores. `scripts/start.sh` builds the shipped profile and checks its size.
step "trunk build --release in the background (CI profile), the web crates linted by clippy -D warnings"
CARGO_PROFILE_WASM_RELEASE_LTO=false CARGO_PROFILE_WASM_RELEASE_CODEGEN_UNITS=16 \
    timed "trunk build --release (background)" clippy trunk build --release > "$target/trunk.log" 2>&1 &
trunk_pid=$!
bg_pids+=("$trunk_pid")

# The native CLI's outputs that the browser must match, beside the tests and the wasm build: they
# need only the CLI built above and node (setup).
cli_outputs() {
    local hearth="$target/debug/hearth" gpt2=tests/fixtures/cases/gpt2-tiny prompt="Every effort moves you"
    # Greedy ids on the GPT-2 fixture.
    "$hearth" generate --model "$gpt2" --prompt "$prompt" --max-new-tokens 20 --json > "$target/greedy-gpt2-tiny.json"
    cat "$target/greedy-gpt2-tiny.json"
    # A seeded top-k draw: the browser chooses on the GPU and must draw the same tokens.
    "$hearth" generate --model "$gpt2" --prompt "$prompt" --max-new-tokens 12 --temperature 0.8 --top-k 40 \
        --seed 7 --json > "$target/sampled-gpt2-tiny.json"
    # Per-token surprisal of the same prompt: the Surprisal view must show these losses.
    "$hearth" score --model "$gpt2" --text "$prompt" --per-token --json > "$target/score-gpt2-tiny.json"
    # A GPT-2 medium-sized random model (355M parameters, 1.5 GB, made here) and its greedy ids.
    node tests/browser/random_gpt2.mjs "$medium"
    "$hearth" generate --model "$medium" --prompt "$prompt" --max-new-tokens 3 --json > "$target/greedy-gpt2-medium.json"
    cat "$target/greedy-gpt2-medium.json"
    # A SmolLM2-135M-shaped random Llama (bf16, two shards with an index, 269 MB, made here) and
    # its greedy ids: the tab must stream the shards and generate the same.
    node tests/browser/random_llama.mjs "$smol" crates/lm/assets/tokenizers/gpt2/tokenizer.json
    "$hearth" generate --model "$smol" --prompt "$prompt" --max-new-tokens 3 --json > "$target/greedy-smollm2.json"
    cat "$target/greedy-smollm2.json"
    # A ModernBERT-base-shaped random encoder (bf16, 300 MB, made here) and its top-5 at the mask.
    node tests/browser/random_modernbert.mjs "$modern" crates/lm/assets/tokenizers/gpt2/tokenizer.json
    "$hearth" fill-mask --model "$modern" --json "The capital of France is [MASK]." > "$target/fillmask-modernbert.json"
    cat "$target/fillmask-modernbert.json"
}
step "the native CLI's outputs the browser must match, in the background"
timed "CLI outputs for the browser, random GPT-2 medium, SmolLM2 and ModernBERT (background)" cli_outputs > "$target/cli-outputs.log" 2>&1 &
cli_pid=$!
bg_pids+=("$cli_pid")

step "native tests (parity on the ndarray and flex backends, and wgpu on Vulkan)"
timed "native tests" clippy cargo test --workspace --all-targets

step "waiting for trunk build --release"
timed "waiting for trunk build" wait "$trunk_pid" || { cat "$target/trunk.log"; echo "trunk build failed"; exit 1; }
cat "$target/trunk.log"
# The download, against the CI profile's limits: growth shows here, not only in start.sh.
timed "wasm sizes" bash scripts/check-size.sh --ci dist
timed "waiting for the CLI outputs" wait "$cli_pid" || { cat "$target/cli-outputs.log"; echo "the CLI outputs failed"; exit 1; }
cat "$target/cli-outputs.log"

step "browser tests (headless Chromium, WebGPU)"
# One process. Two side by side (the tuned worker's and the medium model's tests in a second
# browser) took 7.1 minutes for the longer one against ~6.8 in one process on the same machine:
# one browser already keeps the two cores ~75 % busy, and the two slowed each other down.
HEARTH_EXPECTED_GREEDY="$target/greedy-gpt2-tiny.json" HEARTH_EXPECTED_SAMPLED="$target/sampled-gpt2-tiny.json" \
    HEARTH_EXPECTED_SCORE="$target/score-gpt2-tiny.json" HEARTH_MEDIUM_DIR="$medium" \
    HEARTH_EXPECTED_MEDIUM="$target/greedy-gpt2-medium.json" \
    HEARTH_SMOL_DIR="$smol" HEARTH_EXPECTED_SMOL="$target/greedy-smollm2.json" \
    HEARTH_MODERN_DIR="$modern" HEARTH_EXPECTED_MODERN="$target/fillmask-modernbert.json" \
    HEARTH_WASM_BUILD="CI profile: no fat LTO, 16 codegen units (scripts/check-size.sh checks the shipped sizes)" \
    timed "browser tests" node tests/browser/run.mjs

step "all checks passed"
