#!/usr/bin/python3
"""Golden tf-idf values for tests/embedders/test_tfidf_vectorizer.cpp.

The reference C-BTM vectorizer (scikit-learn 1.2.1 TfidfVectorizer with the default
tokenizer, digit-first tokens -> "#NUMBER", stop words = ENGLISH_STOP_WORDS + "#NUMBER")
fitted on a toy corpus, with the default options and with pruning/sublinear options.
Prints C++ initializers: the vocabulary, the idf and the nonzeros (row, term, value).

Usage: /usr/bin/python3 tests/embedders/golden/tfidf_toy.py
"""
import warnings

from sklearn.feature_extraction import text
from sklearn.feature_extraction.text import TfidfVectorizer

warnings.filterwarnings("ignore")

DOCS = [
    "The kernel schedules tasks; the kernel preempts tasks.",
    "Python's garbage collector frees memory in 2 generations.",
    "Memory pages: the kernel maps pages, Python maps objects.",
    "Café au lait, CAFÉ noir, straße 42 and ΟΔΟΣ.",
    "the of and 1999 a",
    "Kernel modules load at boot; modules unload later.",
    "snake_case names and __init__ methods in Python classes",
]

CONFIGS = {
    "defaults": {},
    "pruned": {"min_df": 2, "max_df": 0.5, "sublinear_tf": True},
    "top2": {"max_features": 2},
}


def number_normalizer(tokens):
    return ("#NUMBER" if token[0].isdigit() else token for token in tokens)


class NumberNormalizingVectorizer(TfidfVectorizer):
    def build_tokenizer(self):
        tokenize = super().build_tokenizer()
        return lambda doc: list(number_normalizer(tokenize(doc)))


def cpp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


print("// docs")
print("{" + ",\n ".join(cpp_str(d) for d in DOCS) + "}")
for name, kw in CONFIGS.items():
    v = NumberNormalizingVectorizer(
        stop_words=list(text.ENGLISH_STOP_WORDS.union(["#NUMBER"])), **kw)
    x = v.fit_transform(DOCS).tocoo()
    vocab = v.get_feature_names_out()
    print(f"// {name}: {kw}")
    print("vocab {" + ", ".join(cpp_str(t) for t in vocab) + "}")
    print("idf {" + ", ".join("%.9f" % i for i in v.idf_) + "}")
    entries = sorted(zip(x.row, x.col, x.data))
    print("nonzeros {" + ", ".join("{%d, %d, %.9f}" % e for e in entries) + "}")
