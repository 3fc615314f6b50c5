"""Take the page's export on to TRL, the tools people train larger models with.

usage: python scripts/trl_continue.py EXPORT_DIR [--steps N] [--out DIR]

EXPORT_DIR is rlhf-lab-export.tar (the page's "Export the models") unpacked: policy/ (a
GPT2LMHeadModel), reward_model/ (a GPT2ForSequenceClassification), each with tokenizer.json and a
tokenizer_config.json whose chat template writes the lab's format, rankings.jsonl (TRL's
conversational preference format) and reward_check.json (answers with the lab's own scores).

The script checks that the tokenizer renders the lab's format and that the reward model scores
answers as the lab did, then runs a few steps of TRL's RewardTrainer (from the exported reward
model) and DPOTrainer (from the exported policy) on the rankings. For many GPUs, the same trainers
run under `accelerate launch`; see the README.
"""
import argparse
import json
import os
import sys
import tempfile

import torch
from datasets import load_dataset
from transformers import AutoTokenizer, GPT2ForSequenceClassification, GPT2LMHeadModel
from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer


def check_format(tok):
    """The chat template must write exactly what the model was trained on."""
    msgs = [{"role": "user", "content": "How do I brew better coffee?"}, {"role": "assistant", "content": "Grind the beans just before you brew."}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    want = "<|user|>How do I brew better coffee?<|assistant|>Grind the beans just before you brew.<|end|>"
    assert text == want, f"the chat template wrote {text!r}, not {want!r}"
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|user|>How do I brew better coffee?<|assistant|>", prompt
    assert tok.eos_token == "<|end|>" and tok.pad_token == "<|user|>", (tok.eos_token, tok.pad_token)


def check_reward_model(export, tok):
    """GPT2ForSequenceClassification plus the exported bias scores answers as the lab did."""
    rm = GPT2ForSequenceClassification.from_pretrained(os.path.join(export, "reward_model"))
    bias = rm.config.rlhf_lab["reward_bias"]
    with open(os.path.join(export, "reward_check.json")) as f:
        check = json.load(f)
    assert check, "reward_check.json holds no answers"
    texts = [tok.apply_chat_template([{"role": "user", "content": c["prompt"]}, {"role": "assistant", "content": c["answer"]}], tokenize=False) for c in check]
    batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False, truncation=True, max_length=rm.config.n_positions)
    with torch.no_grad():
        scores = rm(**batch).logits[:, 0] + bias
    worst = max(abs(float(s) - c["score"]) for s, c in zip(scores, check))
    print(f"reward model: {len(check)} answers scored as the lab scored them (largest difference {worst:.2e})")
    assert worst < 1e-3, f"scores differ from the lab's by {worst}"
    return rm


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", default=None, help="where TRL writes its checkpoints (a temporary folder by default)")
    a = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(os.path.join(a.export, "policy"))
    check_format(tok)
    rm = check_reward_model(a.export, tok)
    ds = load_dataset("json", data_files=os.path.join(a.export, "rankings.jsonl"), split="train")
    print(f"rankings: {len(ds)} preference pairs, columns {ds.column_names}")
    out = a.out or tempfile.mkdtemp(prefix="rlhf-trl-")
    max_len = rm.config.n_positions
    common = dict(max_steps=a.steps, per_device_train_batch_size=2, logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, learning_rate=1e-5)

    reward = RewardTrainer(model=rm, args=RewardConfig(output_dir=os.path.join(out, "reward"), max_length=max_len, **common), train_dataset=ds, processing_class=tok)
    r = reward.train()
    print(f"RewardTrainer: {r.global_step} steps, loss {r.training_loss:.4f}")

    policy = GPT2LMHeadModel.from_pretrained(os.path.join(a.export, "policy"))
    dpo = DPOTrainer(model=policy, args=DPOConfig(output_dir=os.path.join(out, "dpo"), max_length=max_len, beta=0.1, **common), train_dataset=ds, processing_class=tok)
    d = dpo.train()
    print(f"DPOTrainer: {d.global_step} steps, loss {d.training_loss:.4f}")
    for name, res in [("reward", r), ("dpo", d)]:
        if res.global_step != a.steps or not torch.isfinite(torch.tensor(res.training_loss)):
            sys.exit(f"{name}: {res.global_step} steps, loss {res.training_loss}")
    print("TRL continued from the page's export")


if __name__ == "__main__":
    main()
