"""nanoGPT's CPU recipe for Shakespeare in PyTorch, for the wall-time comparison in the README.

The model and loop follow nanoGPT's model.py / train.py (4 layers, 4 heads, 128 dims, context
64, batch 12, 2,000 iterations, lr 1e-3 -> 1e-4 cosine after 100 warmup steps, AdamW betas
(0.9, 0.99), weight decay 0.1 on matrices only, clip 1.0, dropout 0, no bias-free layers),
character-level on the first 90% of the corpus with the last 10% for validation, evaluated every
250 steps on 20 batches: the defaults of `hearth train --tokenizer chars`. Prints one JSON
line per evaluation and a last one with the wall time.

    python3 tests/hf/nanogpt_recipe.py web/corpus/tiny_shakespeare_like.txt

Needs torch (not part of CI).
"""

import json
import math
import sys
import time

import torch
import torch.nn as nn
from torch.nn import functional as F

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH = 4, 4, 128, 64, 12
MAX_ITERS, EVAL_EVERY, EVAL_ITERS = 2000, 250, 20
LR, MIN_LR, WARMUP = 1e-3, 1e-4, 100


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(N_EMBD)
        self.c_attn = nn.Linear(N_EMBD, 3 * N_EMBD)
        self.c_proj = nn.Linear(N_EMBD, N_EMBD)
        self.ln_2 = nn.LayerNorm(N_EMBD)
        self.c_fc = nn.Linear(N_EMBD, 4 * N_EMBD)
        self.mlp_proj = nn.Linear(4 * N_EMBD, N_EMBD)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(N_EMBD, dim=2)
        q, k, v = (z.view(b, t, N_HEAD, c // N_HEAD).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, N_EMBD)
        self.wpe = nn.Embedding(BLOCK, N_EMBD)
        self.h = nn.ModuleList(Block() for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.lm_head = nn.Linear(N_EMBD, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * N_LAYER))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def lr_at(it):
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    ratio = (it - WARMUP) / (MAX_ITERS - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * min(ratio, 1.0))) * (LR - MIN_LR)


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}
    torch.manual_seed(1337)

    def batch(split):
        d = splits[split]
        ix = torch.randint(len(d) - BLOCK, (BATCH,))
        return torch.stack([d[i : i + BLOCK] for i in ix]), torch.stack([d[i + 1 : i + 1 + BLOCK] for i in ix])

    model = GPT(len(chars))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LR,
        betas=(0.9, 0.99),
    )

    @torch.no_grad()
    def evaluate():
        model.eval()
        out = {s: sum(model(*batch(s)).item() for _ in range(EVAL_ITERS)) / EVAL_ITERS for s in splits}
        model.train()
        return out

    start = time.perf_counter()
    best = float("inf")
    for it in range(MAX_ITERS + 1):
        if it % EVAL_EVERY == 0 or it == MAX_ITERS:
            losses = evaluate()
            best = min(best, losses["val"])
            print(json.dumps({"step": it, "train_loss": losses["train"], "val_loss": losses["val"],
                              "seconds": time.perf_counter() - start}), flush=True)
        if it == MAX_ITERS:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        loss = model(*batch("train"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    print(json.dumps({"done": True, "best_val_loss": best, "wall_s": time.perf_counter() - start,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
