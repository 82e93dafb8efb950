#!/usr/bin/env bash
# GPU dispatches per training step of the micro GPT (2 layers × 64, characters) for one hearth
# binary with `--device wgpu`: CubeCL logs every kernel it executes when its profiling logger is
# at "minimal" (read from a cubecl.toml in the working directory); two runs that differ only in
# two steps, subtracted, leave two steps' kernels (start-up, evaluation and the sample cancel).
# Autotune runs candidate kernels while it tunes, as many as their timings ask for, so a build
# with it cannot be counted this way: count the builds without it —
#   cargo build --release -p hearth-cli --no-default-features                        # plain
#   cargo build --release -p hearth-cli --no-default-features --features gpu-fusion # fused
# Usage: scripts/dispatches.sh BIN   (any adapter; a software one such as lavapipe will do: the
# count does not depend on its speed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:?usage: scripts/dispatches.sh BIN (a hearth built without autotune)}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# No cached tuning or device measurements: a build that autotunes then always leaves its mark.
export CUBECL_THROUGHPUT_CACHE=0
count() {
  cat > cubecl.toml <<TOML
[profiling.logger]
level = "minimal"
file = "$work/kernels-$1.log"
[autotune]
disable_cache = true
TOML
  "$bin" --device wgpu train --corpus "$root/web/corpus/tiny_shakespeare_like.txt" --steps "$1" \
    --eval-every 1000 --out "$work/run-$1" --json >/dev/null 2>"$work/err-$1" ||
    { cat "$work/err-$1" >&2; exit 1; }
  # The tuner times a no-op kernel to subtract launch overhead: its mark in the log.
  if grep -q "LaunchOverhead" "$work/kernels-$1.log"; then
    echo "$(basename "$bin") autotunes: its dispatches cannot be counted (see this script's header)" >&2
    exit 1
  fi
  wc -l < "$work/kernels-$1.log"
}
two=$(count 2)
four=$(count 4)
echo "dispatches per training step (micro GPT, --device wgpu, $(basename "$bin")): $(( (four - two) / 2 ))"
