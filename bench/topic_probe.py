"""Does a reward model see whether an answer is to the question asked? For each of the 16 topics'
questions ("Can you give me a tip about T?"), SFT's answers to it against SFT's answers to the other
15 questions, put after this question. Prints, for each reward model, the share of pairs it orders
as the labeler's rule does, over the pairs the rule orders: across questions (one answer to this
question, one to another) and within (two answers to this question, what rankings teach).
The reward models are `rlhf align --out DIR` folders (DIR/reward_model, HF's
GPT2ForSequenceClassification), read with transformers from the test venv.
usage: ~/.cache/rlhf-lab/hfvenv/bin/python bench/topic_probe.py LABELER DIR... >> bench/topic/probe.jsonl
SFT's answers are drawn once (`rlhf generate`, 4 per question, temperature 0.7, seed 100 + topic)
into bench/topic/sft_answers.json, so every reward model is probed on the same answers."""
import json, os, re, subprocess, sys
import torch
from transformers import GPT2ForSequenceClassification, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RLHF = os.environ.get("RLHF", os.path.expanduser("~/.cache/rlhf-lab/target/release/rlhf"))
ANSWERS = os.path.join(ROOT, "bench/topic/sft_answers.json")


def sft_answers():
    if os.path.exists(ANSWERS):
        return json.load(open(ANSWERS))
    names = re.findall(r'name: "([^"]+)"', open(os.path.join(ROOT, "src/corpus.rs")).read())
    out = []
    for i, name in enumerate(names):
        prompt = f"Can you give me a tip about {name}?"
        args = [RLHF, "generate", "--model", os.path.join(ROOT, "www/assets/base"), "--prompt", prompt]
        text = subprocess.run(args + ["--samples", "4", "--temperature", "0.7", "--seed", str(100 + i)], capture_output=True, text=True, check=True).stdout
        out.append({"topic": name, "prompt": prompt, "answers": [re.sub(r"^\[\d+\] ", "", l) for l in text.splitlines() if re.match(r"^\[\d+\]", l)]})
    json.dump(out, open(ANSWERS, "w"), indent=1)
    return out


def pairs(data):
    """(kind, prompt, a, b): every own answer against the first answer to each other question, and
    every two own answers."""
    for i, g in enumerate(data):
        own, other = g["answers"], [h["answers"][0] for j, h in enumerate(data) if j != i]
        yield from (("across", g["prompt"], a, b) for a in own for b in other)
        yield from (("within", g["prompt"], a, b) for k, a in enumerate(own) for b in own[k + 1:])


def rule_ranks(labeler, ps):
    lines = "".join(json.dumps({"prompt": p, "responses": [a, b]}) + "\n" for _, p, a, b in ps)
    out = subprocess.run([RLHF, "rank", "--labeler", labeler], input=lines, capture_output=True, text=True, check=True).stdout
    return [json.loads(l)["ranks"] for l in out.splitlines()]


def probe(labeler, d, ps, ranks):
    model = GPT2ForSequenceClassification.from_pretrained(os.path.join(d, "reward_model")).eval()
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(d, "reward_model/tokenizer.json"))
    cache = {}

    def score(p, a):
        if (p, a) not in cache:
            with torch.no_grad():
                cache[p, a] = model(torch.tensor([tok.encode(f"<|user|>{p}<|assistant|>{a}<|end|>")])).logits[0, 0].item()
        return cache[p, a]

    tally = {"across": [0.0, 0], "within": [0.0, 0]}
    for (kind, p, a, b), r in zip(ps, ranks):
        if r[0] == r[1]:
            continue
        better, worse = (a, b) if r[0] < r[1] else (b, a)
        sb, sw = score(p, better), score(p, worse)
        tally[kind][0] += 1.0 if sb > sw else 0.5 if sb == sw else 0.0
        tally[kind][1] += 1
    return {"labeler": labeler, "reward_model": d, **{f"{k}_right": round(v[0] / max(v[1], 1), 3) for k, v in tally.items()}, **{f"{k}_pairs": v[1] for k, v in tally.items()}}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    labeler, dirs = sys.argv[1], sys.argv[2:]
    ps = list(pairs(sft_answers()))
    ranks = rule_ranks(labeler, ps)
    for d in dirs:
        print(json.dumps(probe(labeler, d, ps, ranks)), flush=True)


if __name__ == "__main__":
    main()
