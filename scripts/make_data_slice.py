#!/usr/bin/python3
"""Cuts the small devpile slice the quickstart ships (data/devpile-mini/).

Usage: scripts/make_data_slice.py [DEVPILE] [OUTDIR] [TRAIN_MB] [EVAL_DOCS] [SEED]
Defaults: ../shared/data/devpile.jsonl.zst data/devpile-mini 8 400 1

A uniform random sample of documents (so domains keep their natural mix), split into
disjoint train and held-out eval files; each document keeps text/domain/label and gets a
stable id "devpile:<line>". Needs the `zstd` command (Debian package zstd).
"""
import json, random, subprocess, sys, os

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/devpile.jsonl.zst"
out = sys.argv[2] if len(sys.argv) > 2 else "data/devpile-mini"
train_mb = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
eval_docs = int(sys.argv[4]) if len(sys.argv) > 4 else 400
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1

lines = subprocess.run(["zstd", "-dc", src], check=True, capture_output=True).stdout.decode().splitlines()
order = list(range(len(lines)))
random.Random(seed).shuffle(order)

def row(i):
    d = json.loads(lines[i])
    return {"id": f"devpile:{i + 1}", "text": d["text"], "domain": d.get("domain"), "label": d.get("label")}

# str.splitlines() also splits at U+2028, U+0085, ... inside a document; the pieces are not JSON
# and are skipped. (Splitting at "\n" only would renumber the lines, and so change the ids and
# the held-out set of the slices already cut.)
def rows(indices):
    for i in indices:
        try:
            yield row(i)
        except json.JSONDecodeError:
            print(f"skipping line {i + 1}: not JSON (a piece of a document split at a Unicode line separator)",
                  file=sys.stderr)

evals = [r for r, _ in zip(rows(order), range(eval_docs))]
assert len(evals) == eval_docs
train, size = [], 0
for r in rows(order[eval_docs:]):
    train.append(r)
    size += len(r["text"].encode())
    if size >= train_mb * 1e6:
        break
train.sort(key=lambda r: int(r["id"].split(":")[1]))  # corpus order, like a real shard
os.makedirs(out, exist_ok=True)
for name, rows in (("train", train), ("eval", evals)):
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    path = os.path.join(out, name + ".jsonl.zst")
    subprocess.run(["zstd", "-19", "-q", "-f", "-o", path], input=data, check=True)
    print(f"{path}: {len(rows)} docs, {sum(len(r['text'].encode()) for r in rows) / 1e6:.2f} MB text")
