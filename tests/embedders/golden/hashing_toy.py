#!/usr/bin/python3
"""Golden values for tests/embedders/test_hashing_vectorizer.cpp.

1. scikit-learn's murmurhash3_32(s, seed, positive=False) of strings with 0..9 UTF-8 bytes
   (every tail length), non-ASCII text, and a non-zero seed.
2. The reference pipeline of the "hashing" embedder on a toy corpus:
   HashingVectorizer(n_features=64, norm=None, alternate_sign=..., the reference C-BTM
   tokenizer: digit-first tokens -> "#NUMBER", stop words = ENGLISH_STOP_WORDS + "#NUMBER")
   -> TfidfTransformer(smooth_idf, l2, sublinear_tf=...). 64 buckets make collisions:
   "network"/"packet" (bucket 4) and "memory"/"maps" (bucket 33) cancel to 0 in a document
   that holds one of each (the bucket still counts in the document frequency).
   Prints df (per bucket, including the documents where the sum cancelled), idf, the
   nonzeros (row, bucket, value) of the tf-idf matrix and its 4 largest singular values
   (numpy's exact SVD; what TruncatedSVD approximates).

Usage: /usr/bin/python3 tests/embedders/golden/hashing_toy.py   (scikit-learn 1.2.1)
"""
import warnings

import numpy as np
from sklearn.feature_extraction import text
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.utils import murmurhash3_32

warnings.filterwarnings("ignore")

HASH_CASES = ["", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh",
              "abcdefghi", "kernel", "café", "straße", "日本語", "λόγος", "snake_case"]

DOCS = [
    "The kernel schedules tasks; the kernel preempts tasks.",
    "Network packet router: the packet router drops a packet.",
    "Memory maps: Linux maps memory pages, Python maps objects.",
    "Café au lait, CAFÉ noir, straße 42 and ΟΔΟΣ λόγος.",
    "the of and 1999 a",
    "network packet memory maps",
    "Snake_case methods in Python classes; unload modules at boot.",
    "Spam money fortune cookie: naïve collector of money.",
]

CONFIGS = {
    "signed": {"alternate_sign": True, "sublinear_tf": False},
    "unsigned_sublinear": {"alternate_sign": False, "sublinear_tf": True},
}


def number_normalizer(tokens):
    return ("#NUMBER" if token[0].isdigit() else token for token in tokens)


class NumberNormalizingHashingVectorizer(HashingVectorizer):
    def build_tokenizer(self):
        tokenize = super().build_tokenizer()
        return lambda doc: list(number_normalizer(tokenize(doc)))


def cpp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


print("// murmurhash3_32(s, seed=0), then seed=42")
print("{" + ", ".join("{%s, %d, %d}" % (cpp_str(s), murmurhash3_32(s, seed=0),
                                         murmurhash3_32(s, seed=42)) for s in HASH_CASES) + "}")
print("// docs")
print("{" + ",\n ".join(cpp_str(d) for d in DOCS) + "}")
for name, kw in CONFIGS.items():
    hv = NumberNormalizingHashingVectorizer(
        n_features=64, norm=None, alternate_sign=kw["alternate_sign"],
        stop_words=list(text.ENGLISH_STOP_WORDS.union(["#NUMBER"])))
    counts = hv.transform(DOCS)
    tt = TfidfTransformer(sublinear_tf=kw["sublinear_tf"])
    x = tt.fit_transform(counts).tocoo()
    df = np.bincount(counts.indices, minlength=64)
    print(f"// {name}: {kw}")
    print("df {" + ", ".join("%d" % d for d in df) + "}")
    print("idf {" + ", ".join("%.9f" % i for i in tt.idf_) + "}")
    entries = sorted(zip(x.row, x.col, x.data))
    print("nonzeros {" + ", ".join("{%d, %d, %.9f}" % e for e in entries) + "}")
    sv = np.linalg.svd(x.toarray(), compute_uv=False)[:4]
    print("singular_values {" + ", ".join("%.9f" % v for v in sv) + "}")
