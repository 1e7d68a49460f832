#!/usr/bin/python3
"""Reference token lists for tests/embedders/test_tfidf_tokenizer.cpp: the analyzer of the
reference C-BTM vectorizer (scikit-learn 1.2.1 TfidfVectorizer, default tokenizer with
digit-first tokens mapped to "#NUMBER", stop words = ENGLISH_STOP_WORDS + "#NUMBER").

Usage: /usr/bin/python3 tests/embedders/golden/tokenizer_cases.py
Prints, for every case, the input and the terms as a C++ initializer list.
"""
from sklearn.feature_extraction import text
from sklearn.feature_extraction.text import TfidfVectorizer


def number_normalizer(tokens):
    return ("#NUMBER" if token[0].isdigit() else token for token in tokens)


class NumberNormalizingVectorizer(TfidfVectorizer):
    def build_tokenizer(self):
        tokenize = super().build_tokenizer()
        return lambda doc: list(number_normalizer(tokenize(doc)))


CASES = [
    "The Quick brown FOX jumps over the lazy dog",
    "snake_case __init__ a_b _x x_",
    "don't won't it's O'Reilly's",
    "Café naïve Ünïcödé straße ОДИН Ελλάδα",
    "İstanbul KİLİM",
    "2nd 3D x86 4K 10 1.5 ²nd \u0663abc v2",
    "a b c I x y",
    "state-of-the-art e-mail foo.bar foo/bar",
    "ΟΔΟΣ ΣΟΦΟΣ. ΑΣ'Α ΑΣ' Σ ΑΣ.Σ",
    "日本語のテキスト 中文 한국어",
]

analyzer = NumberNormalizingVectorizer(
    stop_words=list(text.ENGLISH_STOP_WORDS.union(["#NUMBER"]))).build_analyzer()
plain = TfidfVectorizer().build_analyzer()  # no stop words, numbers kept
for case in CASES:
    print(repr(case))
    print("  terms: {" + ", ".join('"%s"' % t for t in analyzer(case)) + "}")
    print("  words: {" + ", ".join('"%s"' % t for t in plain(case)) + "}")
