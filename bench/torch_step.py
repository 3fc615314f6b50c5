"""The demo model's training step in PyTorch eager, for a same-run comparison with `rlhf bench`.

usage: python bench/torch_step.py [--device cpu|cuda] [--preset demo|tiny] [--threads N]

Builds GPT-2 of the preset's shape with transformers (no dropout, tied embeddings, as the lab's),
and times forward + backward + AdamW on the preset's training batch after warm-up (oneDNN and
cuBLAS choose their kernels in the first steps). Prints one JSON line: tokens per second.
"""
import argparse
import json
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

PRESETS = {"demo": (1024, 128, 4, 4, 192, 8, 128), "tiny": (384, 64, 2, 2, 32, 4, 32)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=4.0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    v, ctx, layers, heads, c, b, t = PRESETS[a.preset]
    cfg = GPT2Config(vocab_size=v, bos_token_id=2, eos_token_id=2, n_positions=ctx, n_layer=layers, n_head=heads, n_embd=c, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     activation_function="gelu_new", tie_word_embeddings=True)
    model = GPT2LMHeadModel(cfg).to(a.device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, betas=(0.9, 0.95), weight_decay=0.0)
    tokens = torch.randint(0, v, (b, t), device=a.device)

    def step():
        out = model(input_ids=tokens, labels=tokens)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return out.loss.item()  # waits for the step, as the lab's step reads its loss back

    for _ in range(10):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < a.seconds:
        step()
        n += 1
    dt = (time.perf_counter() - t0) / n
    print(json.dumps({"engine": f"pytorch {torch.__version__} {a.device}", "preset": a.preset, "threads": torch.get_num_threads(), "batch": [b, t], "ms_per_step": dt * 1e3, "tokens_per_s": b * t / dt}))


if __name__ == "__main__":
    main()
