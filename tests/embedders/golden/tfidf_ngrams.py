#!/usr/bin/python3
"""Golden word n-gram tf-idf values for tests/embedders/test_tfidf_ngrams.cpp.

The reference C-BTM vectorizer (scikit-learn 1.2.1 TfidfVectorizer, default tokenizer,
digit-first tokens -> "#NUMBER", stop words = ENGLISH_STOP_WORDS + "#NUMBER") with
ngram_range (1, 2) and (2, 3) on a toy corpus: stop words and numbers are removed before
the n-grams are formed. Prints C++ initializers: vocabulary, idf, nonzeros (row, term, value).

Usage: /usr/bin/python3 tests/embedders/golden/tfidf_ngrams.py
"""
import warnings

from sklearn.feature_extraction import text
from sklearn.feature_extraction.text import TfidfVectorizer

warnings.filterwarnings("ignore")

DOCS = [
    "The Linux kernel schedules tasks; the kernel preempts tasks.",
    "Linux kernel modules load at boot, and kernel modules unload.",
    "Python's garbage collector frees memory in 2 generations of objects.",
    "Café au lait, café noir: ΟΔΟΣ café au lait",
    "kernel",
    "the of and 1999 a",
]

CONFIGS = {"uni_bi": (1, 2), "bi_tri": (2, 3)}


def number_normalizer(tokens):
    return ("#NUMBER" if token[0].isdigit() else token for token in tokens)


class NumberNormalizingVectorizer(TfidfVectorizer):
    def build_tokenizer(self):
        tokenize = super().build_tokenizer()
        return lambda doc: list(number_normalizer(tokenize(doc)))


def cpp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


for name, ngrams in CONFIGS.items():
    v = NumberNormalizingVectorizer(
        stop_words=list(text.ENGLISH_STOP_WORDS.union(["#NUMBER"])), ngram_range=ngrams)
    x = v.fit_transform(DOCS).tocoo()
    print(f"// {name}: ngram_range={ngrams}")
    print("vocab {" + ", ".join(cpp_str(t) for t in v.get_feature_names_out()) + "}")
    print("idf {" + ", ".join("%.9f" % i for i in v.idf_) + "}")
    entries = sorted(zip(x.row, x.col, x.data))
    print("nonzeros {" + ", ".join("{%d, %d, %.9f}" % e for e in entries) + "}")
