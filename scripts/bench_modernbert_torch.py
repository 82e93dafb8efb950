#!/usr/bin/env python3
"""PyTorch/transformers beside `hearth bench --modernbert`: ModernBERT-base-shaped fill-mask
(ModernBertForMaskedLM(ModernBertConfig()): 22 layers, 768 wide, vocabulary 50,368), random
weights, fp32, sdpa attention, two threads, the same 12 ids (`[CLS]`, GPT-2's ids of "Life is like
a", `[MASK]`, " of chocolates.", `[SEP]`), as ../shared/reference/bench_torch.py times BERT-base:
the model's logits, then softmax and top-5 at the mask. Prints one JSON line.

  python3 scripts/bench_modernbert_torch.py [--runs 30]
"""
import argparse, json, statistics, time

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

IDS = [50281, 14662, 318, 588, 257, 50284, 286, 442, 4668, 689, 13, 50282]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ModernBertForMaskedLM(ModernBertConfig(attn_implementation="sdpa")).eval()
    ids = torch.tensor([IDS])
    at = IDS.index(50284)

    def run():
        with torch.inference_mode():
            logits = model(input_ids=ids).logits
            torch.softmax(logits[0, at], -1).topk(5)

    for _ in range(5):
        run()
    ts = []
    for _ in range(args.runs):
        t = time.perf_counter()
        run()
        ts.append(time.perf_counter() - t)
    print(json.dumps({"bench": "modernbert_base_fillmask_12tok", "params": model.num_parameters(),
                      "latency_ms_median": statistics.median(ts) * 1000, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
