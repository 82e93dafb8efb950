#!/usr/bin/env bash
# The hand-off to Hugging Face Trainer, checked end to end (needs torch, transformers and pyarrow;
# not part of CI, which checks the Rust side against fixtures):
#   1. `hearth train` 30 steps (no dropout), then `hearth handoff` to 50 steps; optimizer.pt's
#      parameter order is the one Trainer's own create_optimizer builds;
#   2. Trainer, one process, 20 steps (checkpoints at 40 and 50): each loss against Hearth's own
#      resumed steps 31…50 (1e-4);
#   3. torchrun, two processes (CPU, gloo), the same global batch: each loss against (2) (1e-3);
#   4. back: `hearth train --resume one/checkpoint-40`, 10 steps, each against Trainer's 41…50
#      (1e-4).
# Usage: tests/hf/check_handoff.sh [ARCH] [HEARTH] [PYTHON]   (ARCH gpt2, llama, bert or modernbert)
set -euo pipefail
arch=${1:-gpt2}
hearth=$(realpath "${2:-target/debug/hearth}")
python=${3:-python3}
corpus=$(realpath web/corpus/tiny_shakespeare_like.txt)
torchrun="$(dirname "$(command -v "$python")")/torchrun"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

"$hearth" train --corpus "$corpus" --arch "$arch" --preset nano --context 64 --batch-size 4 --steps 30 \
    --eval-every 10 --dropout 0 --lr 1e-3 --warmup 5 --sample-tokens 0 --out run --json > /dev/null
cp -r run resumed
"$hearth" train --resume resumed --corpus "$corpus" --steps 50 --out resumed --json > hearth.jsonl
"$hearth" handoff --run run --corpus "$corpus" --out one --steps 50
cp -r one two
"$python" - one <<'PY'
import json, sys
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, Trainer, TrainingArguments
d = sys.argv[1]
meta = json.load(open(f"{d}/handoff.json"))
auto = AutoModelForCausalLM if meta["objective"] == "causal" else AutoModelForMaskedLM
model = auto.from_pretrained(f"{d}/{meta['checkpoint']}")
trainer = Trainer(model=model, args=TrainingArguments(output_dir=f"{d}/.order", report_to="none", use_cpu=True))
# (The decay list also names a tied head, which named_parameters lists once, as the embedding.)
decay = set(trainer.get_decay_parameter_names(model))
names = [n for n, _ in model.named_parameters()]
decayed = [n for n in names if n in decay]
order = decayed + [n for n in names if n not in decay]
assert order == meta["parameters"] and len(decayed) == meta["decayed_parameters"], "not Trainer's order"
print(f"optimizer.pt: {len(order)} parameters in Trainer's order, {len(decayed)} decayed first")
PY
"$python" one/train_hf.py one > one.log 2>&1 || { tail -20 one.log; exit 1; }
"$torchrun" --nproc_per_node 2 two/train_hf.py two > two.log 2>&1 || { tail -20 two.log; exit 1; }
"$hearth" train --resume one/checkpoint-40 --corpus "$corpus" --out back --json > back.jsonl

"$python" - hearth.jsonl one/hf_losses.jsonl two/hf_losses.jsonl back.jsonl <<'PY'
import json, sys

def losses(path):
    out = {}
    for line in open(path):
        d = json.loads(line)
        if d.get("event") == "step":
            out[d["step"]] = d["loss"]
        elif d.get("event") == "eval" and d.get("val_loss") is not None:
            out[f"val@{d['step']}"] = d["val_loss"]
    return out

hearth, one, two, back = (losses(p) for p in sys.argv[1:])
worst = {"one": 0.0, "two": 0.0, "back": 0.0}
print(f"{'':>8}  {'hearth':>10}  {'trainer':>10}  {'torchrun x2':>11}  {'back':>10}")
for key in sorted(one, key=lambda k: (int(str(k).split("@")[-1]), str(k))):
    row = f"{key:>8}  {hearth[key]:10.7f}  {one[key]:10.7f}  {two[key]:11.7f}"
    worst["one"] = max(worst["one"], abs(hearth[key] - one[key]))
    worst["two"] = max(worst["two"], abs(one[key] - two[key]))
    if key in back:
        row += f"  {back[key]:10.7f}"
        worst["back"] = max(worst["back"], abs(back[key] - one[key]))
    print(row)
assert len(one) == len(two) == 22 and len(back) == 11, (len(one), len(two), len(back))
print(f"largest difference: Trainer vs Hearth {worst['one']:.2e} (limit 1e-4), two processes vs one "
      f"{worst['two']:.2e} (limit 1e-3), back in Hearth vs Trainer {worst['back']:.2e} (limit 1e-4)")
assert worst["one"] <= 1e-4 and worst["two"] <= 1e-3 and worst["back"] <= 1e-4
PY
