#!/usr/bin/env python3
"""PyTorch/transformers beside `hearth bench --llama` (and `--llama --train`): the same jobs, the
same shapes, random weights, fp32, two threads (as ../shared/reference/bench_torch.py, which
this follows for GPT-2 and BERT).

  python3 scripts/bench_llama_torch.py [--only NAME] [--runs 3] [--new-tokens 50] [--steps 10]

Jobs:
  gen_SmolLM2-135M, gen_Qwen2.5-0.5B   transformers' generate() with its KV cache, greedy, a
                                       6-token prompt, exactly --new-tokens new tokens
  train_llama_baby                     LlamaForCausalLM 6 layers / 6 heads (3 key/value) / 384,
                                       SwiGLU 1024, vocab 65, context 256, batch 8
  train_llama_124m_shape               12 / 12 (6) / 768, SwiGLU 2048, vocab 50,257, context 128,
                                       batch 2
Both training jobs: tied embeddings, rope theta 10,000, dropout 0, torch.optim.AdamW, the median
of --steps steps after two warm-up steps. Prints one JSON line per job.

Generation tokens/s here are new tokens over generate()'s whole time (prefill included), as
bench_torch.py reports GPT-2's; `hearth bench` reports decode tokens/s after the first token
and prefill apart: the two are compared in the README with that said.
"""
import argparse, json, statistics, time

THREADS = 2

# LlamaConfig::preset's shapes (crates/lm/src/model/llama/config.rs).
PRESETS = {
    "SmolLM2-135M": ("llama", dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                                   num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                                   max_position_embeddings=8192, rope_theta=100000.0,
                                   rms_norm_eps=1e-5, tie_word_embeddings=True)),
    "Qwen2.5-0.5B": ("qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                                   num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                                   max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                                   tie_word_embeddings=True)),
}

# TrainConfig::llama_config with swiglu_width(n) = ((8n/3 + 4) // 8) * 8 and n_kv_head = n_head / 2.
TRAIN = {
    "llama_baby": dict(vocab=65, ctx=256, n_layer=6, n_head=6, n_embd=384, batch=8),
    "llama_124m_shape": dict(vocab=50257, ctx=128, n_layer=12, n_head=12, n_embd=768, batch=2),
}


def swiglu_width(n):
    return max((8 * n // 3 + 4) // 8 * 8, 8)


def setup():
    import torch
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    return torch


def config_of(kind, fields):
    import transformers
    cls = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config}[kind]
    rope = {"rope_type": "default", "rope_theta": fields.pop("rope_theta")}
    return cls(**fields, rope_parameters=rope, attention_dropout=0.0, attn_implementation="sdpa")


def gen(name, runs, n_new):
    torch = setup()
    import transformers
    kind, fields = PRESETS[name]
    model = transformers.AutoModelForCausalLM.from_config(config_of(kind, dict(fields))).eval()
    prompt = torch.tensor([[1000, 2000, 3000, 4000, 5000, 6000]])  # hearth's LLAMA_PROMPT
    gc = transformers.GenerationConfig(do_sample=False, max_new_tokens=n_new, min_new_tokens=n_new,
                                       eos_token_id=None, pad_token_id=0, num_beams=1, use_cache=True)
    times = []
    for run in range(runs + 1):
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=gc)
        assert out.shape[1] - prompt.shape[1] == n_new
        if run > 0:
            times.append(time.perf_counter() - start)
    with torch.inference_mode():
        for _ in range(2):
            model(prompt, use_cache=True)
        prefill = []
        for _ in range(5):
            start = time.perf_counter()
            model(prompt, use_cache=True)
            prefill.append(time.perf_counter() - start)
    med = statistics.median(times)
    return {"bench": f"gen_{name}", "params": model.num_parameters(), "new_tokens": n_new,
            "total_s_median": med, "new_tokens_per_s": n_new / med,
            "prefill_ms_median": 1000 * statistics.median(prefill), "transformers": transformers.__version__}


def train(name, steps):
    torch = setup()
    import transformers
    c = TRAIN[name]
    config = config_of("llama", dict(vocab_size=c["vocab"], hidden_size=c["n_embd"],
                                     intermediate_size=swiglu_width(c["n_embd"]),
                                     num_hidden_layers=c["n_layer"], num_attention_heads=c["n_head"],
                                     num_key_value_heads=c["n_head"] // 2,
                                     max_position_embeddings=c["ctx"], rope_theta=10000.0,
                                     rms_norm_eps=1e-5, tie_word_embeddings=True))
    model = transformers.LlamaForCausalLM(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, c["vocab"], (c["batch"], c["ctx"]), generator=g)
    y = torch.randint(0, c["vocab"], (c["batch"], c["ctx"]), generator=g)
    F = torch.nn.functional

    def step():
        logits = model(x).logits
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    med = statistics.median(times)
    tokens = c["batch"] * c["ctx"]
    return {"bench": f"train_{name}", "params": model.num_parameters(), "config": c,
            "seconds_per_step": med, "tokens_per_s": tokens / med}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    jobs = [(f"gen_{n}", lambda n=n: gen(n, a.runs, a.new_tokens)) for n in PRESETS]
    jobs += [(f"train_{n}", lambda n=n: train(n, a.steps if n == "llama_baby" else min(a.steps, 5)))
             for n in TRAIN]
    for name, job in jobs:
        if a.only and a.only != name:
            continue
        print(json.dumps(job()), flush=True)


if __name__ == "__main__":
    main()
