#!/usr/bin/python3
"""Golden vocabulary + idf of the reference C-BTM vectorizer on ~2000 devpile documents,
for tests/embedders/test_tfidf_vectorizer.cpp ("vocabulary and idf agree with
scikit-learn on devpile").

The documents are the concatenation of the SLICES below, each (skip, count) counted in
documents from the start of ../shared/data/devpile.jsonl.zst (the same slices the test
reads with cbtm::test::devpile_docs(count, skip)). They mix domains and include most of
the corpus' non-ASCII text (Debian descriptions, kernel docs, dictionary entries, e-mail).

Writes tests/data/tfidf_devpile_vocab.tsv.zst: a "#docs\t<n>" line, then "term\tidf" lines
in vocabulary order.

Usage: /usr/bin/python3 tests/embedders/golden/tfidf_devpile_vocab.py [devpile.jsonl.zst]
"""
import json
import os
import subprocess
import sys
import warnings

from sklearn.feature_extraction import text
from sklearn.feature_extraction.text import TfidfVectorizer

warnings.filterwarnings("ignore")

SLICES = [(0, 450), (34115, 150), (42500, 700), (169688, 200), (302000, 500)]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
DEVPILE = os.path.join(os.path.dirname(ROOT), "shared", "data", "devpile.jsonl.zst")
OUT = os.path.join(ROOT, "tests", "data", "tfidf_devpile_vocab.tsv.zst")


def number_normalizer(tokens):
    return ("#NUMBER" if token[0].isdigit() else token for token in tokens)


class NumberNormalizingVectorizer(TfidfVectorizer):
    def build_tokenizer(self):
        tokenize = super().build_tokenizer()
        return lambda doc: list(number_normalizer(tokenize(doc)))


def read_slices(path):
    wanted = {}
    for skip, count in SLICES:
        for i in range(skip, skip + count):
            wanted[i] = None
    last = max(wanted)
    p = subprocess.Popen(["zstdcat", path], stdout=subprocess.PIPE)
    for i, line in enumerate(p.stdout):
        if i in wanted:
            wanted[i] = json.loads(line)["text"]
        if i >= last:
            break
    p.kill()
    if any(t is None for t in wanted.values()):
        sys.exit("%s has fewer documents than the slices need" % path)
    return [wanted[i] for i in sorted(wanted)]


def main():
    docs = read_slices(sys.argv[1] if len(sys.argv) > 1 else DEVPILE)
    v = NumberNormalizingVectorizer(stop_words=list(text.ENGLISH_STOP_WORDS.union(["#NUMBER"])))
    v.fit(docs)
    lines = ["#docs\t%d" % len(docs)]
    lines += ["%s\t%.12g" % (t, i) for t, i in zip(v.get_feature_names_out(), v.idf_)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    subprocess.run(["zstd", "-19", "-q", "-f", "-o", OUT], input=data, check=True)
    print("%d docs, %d terms, %d non-ASCII terms -> %s (%d bytes)" % (
        len(docs), len(v.idf_), sum(any(ord(c) > 127 for c in t) for t in v.get_feature_names_out()),
        OUT, os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
