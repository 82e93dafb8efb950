#!/usr/bin/env bash
# The native CLI's demo on the bundled fixture checkpoints, then a short pretraining run.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: install Rust with rustup first (https://rustup.rs)"; exit 1; }

cargo build --release -p hearth-cli
hearth="${CARGO_TARGET_DIR:-target}/release/hearth"
cases=tests/fixtures/cases

echo; echo '$ hearth tokenize --tokenizer gpt2 "Swimming at the beach is"'
$hearth tokenize --tokenizer gpt2 "Swimming at the beach is"
echo; echo '$ hearth tokenize --tokenizer bert-base-uncased --json "Life is like a [MASK] of chocolates."'
$hearth tokenize --tokenizer bert-base-uncased --json "Life is like a [MASK] of chocolates."
echo; echo '$ hearth decode --tokenizer bert-base-uncased --ids 7967'
$hearth decode --tokenizer bert-base-uncased --ids 7967
echo; echo "\$ hearth fill-mask --model $cases/bert-tiny-mlm-perturbed \"Life is like a [MASK] of chocolates.\""
$hearth fill-mask --model $cases/bert-tiny-mlm-perturbed "Life is like a [MASK] of chocolates."
echo; echo "\$ hearth generate --model $cases/gpt2-tiny-perturbed --prompt \"Swimming at the beach is\" --max-new-tokens 10"
$hearth generate --model $cases/gpt2-tiny-perturbed --prompt "Swimming at the beach is" --max-new-tokens 10
echo; echo "(The fixture models have random weights: their words are noise, their numbers match transformers.)"
echo; echo '$ hearth train --corpus web/corpus/tiny_shakespeare_like.txt --steps 300 --eval-every 100 --out target/demo-model'
$hearth train --corpus web/corpus/tiny_shakespeare_like.txt --steps 300 --eval-every 100 --eval-batches 10 --out target/demo-model
echo; echo '$ hearth generate --model target/demo-model --prompt "ROMEO:" --max-new-tokens 60 --temperature 0.8 --top-k 40 --seed 1'
$hearth generate --model target/demo-model --prompt "ROMEO:" --max-new-tokens 60 --temperature 0.8 --top-k 40 --seed 1
echo; echo "Train longer (the default is nanoGPT's 2,000-step CPU recipe) with: $hearth train --corpus FILE --out DIR"
echo "Point --model at any Hugging Face GPT-2 or BERT directory (config.json + model.safetensors)."
