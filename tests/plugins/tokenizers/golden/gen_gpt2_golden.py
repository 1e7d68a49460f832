#!/usr/bin/python3
"""Expected GPT-2 encodings for test_gpt2_tokenizer.cpp.

The reference is OpenAI's encoder.py (github.com/openai/gpt-2, src/encoder.py: bytes_to_unicode,
the pre-tokenising pattern under the `regex` module, and bpe()), restated here without change,
run on GPT-2's own vocabulary files (tests/data/gpt2/, see DATA-LICENSES.md). Texts: hand-written
cases, then the first 400 bytes of every 20th document of data/devpile-mini/eval.jsonl.zst.

    apt-get install python3-regex zstd
    tests/plugins/tokenizers/golden/gen_gpt2_golden.py > tests/data/gpt2/golden.json

Optionally cross-checked against the npm package gpt-3-encoder (an independent JavaScript port):
    --check-node DIR   (DIR: the unpacked package, e.g. from `npm pack gpt-3-encoder`)
"""
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import regex as re

ROOT = Path(__file__).resolve().parents[4]


def zst(path):
    return subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout


@lru_cache()
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    cs = [chr(n) for n in cs]
    return dict(zip(bs, cs))


def get_pairs(word):
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


class Encoder:
    def __init__(self, encoder, bpe_merges):
        self.encoder = encoder
        self.byte_encoder = bytes_to_unicode()
        self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))
        self.cache = {}
        self.pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = get_pairs(word)
        if not pairs:
            return token
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        bpe_tokens = []
        for token in re.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            bpe_tokens.extend(self.encoder[bpe_token] for bpe_token in self.bpe(token).split(" "))
        return bpe_tokens


CASES = [
    "Hello world",
    " Hello world",
    "hello  world\n\n  indented line\n",
    "This is an example sentence to try encoding out on!",
    "I'm sure they'll say it's the dog's, we've 've 'RE and 'LL done.",
    "Numbers: 3.14159, 2,718 and 1234567890; 12abc34",
    "tabs\tand\r\nwindows\u000bline\u000cendings",
    "Ünïcödé: naïve café, Größe, Ελληνικά, русский текст, 日本語のテキスト, 한국어",
    "Emoji 😀👍🏽 and symbols ©®™ — “quotes” ‘single’ … ½ ¼",
    "   leading and trailing spaces   ",
    "snake_case_identifier and CamelCaseWord and kebab-case-word",
    "https://example.com/path?query=1&b=2#frag user@example.org",
    "<s> </s> <|endoftext|> are plain text here",
    "a" * 300,
    "",
]


def main():
    encoder = json.loads(zst(ROOT / "tests/data/gpt2/vocab.json.zst"))
    merges_txt = zst(ROOT / "tests/data/gpt2/merges.txt.zst").decode("utf-8")
    merges = [tuple(m.split()) for m in merges_txt.split("\n")[1:-1]]
    enc = Encoder(encoder, merges)
    texts = list(CASES)
    docs = zst(ROOT / "data/devpile-mini/eval.jsonl.zst").decode("utf-8").splitlines()
    for i in range(0, len(docs), 20):
        t = json.loads(docs[i])["text"].encode("utf-8")[:400].decode("utf-8", "ignore")
        texts.append(t)
    out = {"source": "OpenAI gpt-2 src/encoder.py on GPT-2's vocab.json/merges.txt",
           "cases": [{"text": t, "ids": enc.encode(t)} for t in texts]}
    if len(sys.argv) == 3 and sys.argv[1] == "--check-node":
        js = ("const {encode} = require(process.argv[1]);"
              "const cases = JSON.parse(require('fs').readFileSync(0, 'utf-8'));"
              "process.stdout.write(JSON.stringify(cases.map(c => encode(c))));")
        got = json.loads(subprocess.run(["node", "-e", js, sys.argv[2]], input=json.dumps(texts).encode(),
                                        check=True, capture_output=True).stdout)
        bad = [t for t, g, c in zip(texts, got, out["cases"]) if g != c["ids"]]
        print(f"node gpt-3-encoder agrees on {len(texts) - len(bad)} of {len(texts)} texts", file=sys.stderr)
        for t in bad:
            print("  differs: " + repr(t[:80]), file=sys.stderr)
    sys.stdout.write('{"source": ' + json.dumps(out["source"]) + ',\n "cases": [\n')
    sys.stdout.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in out["cases"]))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main()
