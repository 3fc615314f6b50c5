"""HF transformers loads our checkpoint and gives the same logits as our engines.

usage: python tests/hf_check.py MODEL_DIR RLHF_BINARY
Runs `rlhf logits` on each engine and compares with GPT2LMHeadModel.from_pretrained(MODEL_DIR).
"""
import json
import subprocess
import sys

import torch
from transformers import GPT2LMHeadModel

model_dir, rlhf = sys.argv[1], sys.argv[2]
text = "<|user|>How do I brew better coffee?<|assistant|>Sure! Grind the beans just before you brew.<|end|>"

model = GPT2LMHeadModel.from_pretrained(model_dir)
model.eval()
failures = 0
for engine in ["cpu", "gpu"]:
    out = subprocess.run([rlhf, "logits", "--model", model_dir, "--text", text, "--engine", engine],
                         check=True, capture_output=True, text=True).stdout
    ours = json.loads(out)
    ids = torch.tensor([ours["tokens"]])
    with torch.no_grad():
        hf = model(ids).logits[0]
    mine = torch.tensor(ours["logits"])
    assert mine.shape == hf.shape, (mine.shape, hf.shape)
    diff = (mine - hf).abs().max().item()
    scale = hf.abs().max().item()
    same_argmax = bool((mine.argmax(-1) == hf.argmax(-1)).all())
    ok = diff <= 1e-3 * max(1.0, scale) and same_argmax
    failures += 0 if ok else 1
    print(f"{engine}: {len(ours['tokens'])} tokens, max |ours - HF| = {diff:.2e} (logit scale {scale:.1f}), "
          f"same argmax: {same_argmax} -> {'ok' if ok else 'MISMATCH'}")
print(f"hf_check: {2 - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
