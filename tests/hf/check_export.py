"""Opens a model directory written by `hearth train` with Hugging Face `transformers` and
checks it agrees with `hearth` on the same text (needs torch + transformers; not run in CI,
which has neither: a manual check, see the README).

    python3 tests/hf/check_export.py DIR TEXT_OR_SENTENCE_WITH_[MASK] HEARTH_BINARY
"""
import json
import subprocess
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

model_dir, text, hearth = sys.argv[1], sys.argv[2], sys.argv[3]
config = AutoConfig.from_pretrained(model_dir)
tokenizer = AutoTokenizer.from_pretrained(model_dir)
print(f"{model_dir}: {config.model_type}, tokenizer {type(tokenizer).__name__} ({len(tokenizer)} tokens)")

if config.model_type == "gpt2":
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    ours = json.loads(subprocess.check_output([hearth, "score", "--model", model_dir, "--text", text, "--json"]))
    assert ours["ids"] == ids[0].tolist(), (ours["ids"], ids[0].tolist())
    print(f"transformers loss {loss:.6f}  hearth loss {ours['loss']:.6f}")
    assert abs(loss - ours["loss"]) < 1e-4
    # transformers cannot go past n_positions (hearth slides its window there).
    new = min(20, config.n_positions - ids.shape[1])
    out = model.generate(ids, max_new_tokens=new, do_sample=False, pad_token_id=config.eos_token_id)
    ours = json.loads(subprocess.check_output(
        [hearth, "generate", "--model", model_dir, "--prompt", text, "--max-new-tokens", str(new), "--json"]))
    assert out[0, ids.shape[1]:].tolist() == ours["new_ids"], (out[0].tolist(), ours["new_ids"])
    print("greedy continuation identical:", repr(tokenizer.decode(out[0])))
else:
    model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    enc = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits[0]
    pos = (enc.input_ids[0] == tokenizer.mask_token_id).nonzero()[0].item()
    probs = logits[pos].softmax(-1)
    top = probs.topk(5)
    ours = json.loads(subprocess.check_output([hearth, "fill-mask", "--model", model_dir, "--json", text]))
    got = ours["masks"][0]
    assert got["position"] == pos
    assert [p["id"] for p in got["predictions"]] == top.indices.tolist()
    for p, q in zip(got["predictions"], top.values.tolist()):
        assert abs(p["prob"] - q) < 1e-4
    # The masked-LM loss of the top prediction as the label, both ways (-log of its probability).
    labels = torch.full_like(enc.input_ids, -100)
    labels[0, pos] = top.indices[0]
    with torch.no_grad():
        loss = model(**enc, labels=labels).loss.item()
    ours_loss = -torch.tensor(got["predictions"][0]["prob"], dtype=torch.float64).log().item()
    print(f"transformers loss {loss:.6f}  hearth loss {ours_loss:.6f}")
    assert abs(loss - ours_loss) < 1e-4
    print("fill-mask top-5 identical:", [tokenizer.decode([i]) for i in top.indices.tolist()])
print("OK")
