#!/usr/bin/env bash
# Every check, the same one CI runs: formatting, lints, all tests, and the wasm build of the
# model crate. Run from anywhere: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustup show active-toolchain >/dev/null 2>&1 || true
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (native; parity on the ndarray and flex backends)"
cargo test --workspace

step "hearth-lm builds for wasm32-unknown-unknown with the wgpu backend"
cargo check -p hearth-lm --lib --target wasm32-unknown-unknown --features burn/wgpu

step "all checks passed"
