#!/usr/bin/python3
"""Builds the few-shot classification tasks shipped in data/tasks/ from the labelled fields of
the devpile corpus (configs/fewshot/devpile.yaml defines how they are prompted).

Usage: scripts/make_fewshot_tasks.py [DEVPILE] [OUTDIR] [SEED]
Defaults: ../shared/data/devpile.jsonl.zst data/tasks 1

Each task file is JSONL (zstd): {"id", "text", "label", "split"} with split "train" (the pool
demonstrations and validation probes are drawn from: 16 per label) or "test" (50 per label).
Documents of the quickstart slice (data/devpile-mini, train and eval) are excluded, so no task
text was seen in training. Texts are whitespace-collapsed and cut to 300 characters, so that 8
demonstrations and the example fit a small model's context.
"""
import json, os, random, subprocess, sys

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/devpile.jsonl.zst"
out = sys.argv[2] if len(sys.argv) > 2 else "data/tasks"
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
TRAIN, TEST, CHARS = 16, 50, 300

TASKS = {
    "wordnet-nouns": ("wordnet", ["noun.animal", "noun.plant", "noun.artifact", "noun.person"]),
    "debian-sections": ("debian_desc", ["python", "perl", "golang", "rust"]),
    "spam": ("spamassassin", ["ham", "spam"]),
}

def texts_of(path):
    if not os.path.exists(path):
        return set()
    text = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout.decode()
    return {json.loads(l)["text"] for l in text.split("\n") if l}

used = texts_of("data/devpile-mini/train.jsonl.zst") | texts_of("data/devpile-mini/eval.jsonl.zst")
lines = [l for l in subprocess.run(["zstd", "-dc", src], check=True, capture_output=True).stdout.decode().split("\n") if l]
pools = {name: {lab: [] for lab in labels} for name, (_, labels) in TASKS.items()}
for i, line in enumerate(lines):
    d = json.loads(line)
    if d["text"] in used:
        continue
    for name, (domain, labels) in TASKS.items():
        if d.get("domain") == domain and d.get("label") in labels:
            text = " ".join(d["text"].split())[:CHARS]
            pools[name][d["label"]].append({"id": f"devpile:{i + 1}", "text": text, "label": d["label"]})
os.makedirs(out, exist_ok=True)
rng = random.Random(seed)
for name, by_label in pools.items():
    rows = []
    for lab, items in by_label.items():
        if len(items) < TRAIN + TEST:
            sys.exit(f"{name}: only {len(items)} documents labelled {lab}")
        pick = rng.sample(items, TRAIN + TEST)
        rows += [dict(r, split="train") for r in pick[:TRAIN]] + [dict(r, split="test") for r in pick[TRAIN:]]
    rng.shuffle(rows)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    path = os.path.join(out, name + ".jsonl.zst")
    subprocess.run(["zstd", "-19", "-q", "-f", "-o", path], input=data, check=True)
    print(f"{path}: {len(rows)} examples, labels {list(by_label)}")
