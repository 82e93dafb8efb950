#!/usr/bin/env bash
# The browser's WebGPU kernels on a real GPU, natively (`--device wgpu`), for each hearth binary
# given — e.g. the default release build (Burn's fusion and autotune) and one built with
# `--no-default-features` (the plain kernels the browser's worker runs), to decide which is faster
# on which adapter. For each binary, in this order (so that a run cut short still says the most):
#   1. parity: greedy ids of the GPT-2 fixture against transformers', and 6 fine-tuning steps'
#      losses against the CPU backend's (what crates/cli/tests/gpu.rs checks on lavapipe);
#   2. `hearth bench --train` (baby GPT, GPT-2 124M) and `hearth bench` (generation, fill-mask) —
#      an autotuning build's first run on a GPU tunes every shape it meets (over a minute on an
#      H200; cached after), so the timeouts are generous and a second run is the one to quote;
#   3. dispatches per training step (scripts/dispatches.sh; builds without autotune only).
# Usage: scripts/gpu-bench.sh BIN [BIN...]. Never part of CI, which has no GPU.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case_dir=tests/fixtures/cases/gpt2-tiny-perturbed
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 20000 web/corpus/tiny_shakespeare_like.txt > "$work/corpus.txt"
summary() { # the eval events' losses, without the probe's attention maps
  python3 -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e.get("event") == "eval": print("  step", e["step"], "train", e["train_loss"], "val", e["val_loss"])'
}
finetune() { # DEVICE BIN
  timeout 90 "$2" --device "$1" train --corpus "$work/corpus.txt" --init-from "$case_dir" --dropout 0 \
    --context 32 --batch-size 4 --steps 6 --lr 1e-3 --eval-every 2 --eval-batches 2 \
    --sample-tokens 4 --out "$work/ft-$1-$RANDOM" --json
}
echo "== expected greedy ids (transformers): $(python3 -c 'import json; print(json.load(open("'$case_dir'/expected.json"))["greedy_new_ids"])')"
echo "== fine-tuning on the CPU backend"
finetune flex "$1" | summary
for bin in "$@"; do
  name=$(basename "$bin")
  echo "== $name: greedy ids"
  timeout 60 "$bin" --device wgpu generate --model "$case_dir" --prompt "Swimming at the beach is" \
    --max-new-tokens 20 --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["new_ids"])'
  echo "== $name: fine-tuning on the GPU"
  finetune wgpu "$bin" | summary
done
for bin in "$@"; do
  echo "== $(basename "$bin"): bench --train"
  timeout 150 "$bin" --device wgpu bench --train --steps 5 --json
done
for bin in "$@"; do
  echo "== $(basename "$bin"): bench"
  timeout 120 "$bin" --device wgpu bench --json
done
for bin in "$@"; do
  timeout 120 scripts/dispatches.sh "$bin" || true
done
