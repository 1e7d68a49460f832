#!/usr/bin/python3
"""The scikit-learn peer of bench/cluster_bench: the reference C-BTM clustering pipeline
built from scikit-learn 1.2 parts, timed on the documents cluster_bench hands it.

  TfidfVectorizer(stop_words=english + "#NUMBER", numbers -> "#NUMBER")   (reference C-BTM)
  -> TruncatedSVD(100, random_state=0) -> Normalizer() -> KMeans(K, random_state=0, n_init)

fit    = vectorizer.fit_transform + svd.fit_transform + normalizer + kmeans.fit
assign = vectorizer.transform + svd.transform + normalizer + kmeans.predict (same documents)

Input: JSONL, one {"text": ..., "domain": ...} a line. Prints one JSON object on stdout
(times, NMI/purity of the assign labels against `domain`, cluster sizes, peak RSS) and,
with --labels OUT, writes the assign labels one per line. Thread count: --threads, applied
to OpenMP/OpenBLAS before numpy is imported.

  /usr/bin/python3 bench/peers/sklearn_cluster.py --data docs.jsonl --k 32 --threads 2

--seeds N adds a seed study after the timed pipeline: KMeans fitted with random_state 0..N-1
on the same embeddings, the NMI and mutual information of each against `domain`.
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="JSONL with text and domain fields")
    ap.add_argument("--k", type=int, required=True, help="clusters")
    ap.add_argument("--dims", type=int, default=100, help="TruncatedSVD components")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS threads")
    ap.add_argument("--n-init", default="1",
                    help="KMeans n_init: an integer, or 'auto' (scikit-learn 1.2's default is 10)")
    ap.add_argument("--labels", default="", help="also write the assign labels here")
    ap.add_argument("--seeds", type=int, default=0,
                    help="seed study, after the timed pipeline: KMeans with random_state 0..N-1 "
                         "on the assign embeddings, NMI and mutual information of each")
    args = ap.parse_args()

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import json
    import resource
    import time
    import warnings

    import numpy as np
    import sklearn
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
    from sklearn.metrics import mutual_info_score, normalized_mutual_info_score
    from sklearn.preprocessing import Normalizer

    # "#NUMBER" as a stop word trips scikit-learn's stop-word consistency check; harmless.
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)

    # The reference C-BTM vectorizer: every token whose first character is a digit becomes
    # "#NUMBER", which is a stop word (so it is dropped).
    class NumberNormalizingVectorizer(TfidfVectorizer):
        def build_tokenizer(self):
            tokenize = super().build_tokenizer()
            return lambda doc: ["#NUMBER" if t[0].isdigit() else t for t in tokenize(doc)]

    texts, domains = [], []
    with open(args.data, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            texts.append(d["text"])
            domains.append(d.get("domain") or "")

    n_init = args.n_init if args.n_init == "auto" else int(args.n_init)
    stop_words = list(ENGLISH_STOP_WORDS.union(["#NUMBER"]))
    vec = NumberNormalizingVectorizer(stop_words=stop_words)
    svd = TruncatedSVD(n_components=args.dims, random_state=0)
    norm = Normalizer(copy=False)
    km = KMeans(n_clusters=args.k, random_state=0, n_init=n_init)

    t0 = time.perf_counter()
    x = vec.fit_transform(texts)
    t_vec = time.perf_counter() - t0
    t1 = time.perf_counter()
    y = norm.fit_transform(svd.fit_transform(x))
    t_svd = time.perf_counter() - t1
    t1 = time.perf_counter()
    km.fit(y)
    t_km = time.perf_counter() - t1
    fit_s = time.perf_counter() - t0
    del x, y

    t0 = time.perf_counter()
    y_assign = norm.transform(svd.transform(vec.transform(texts)))
    labels = km.predict(y_assign)
    assign_s = time.perf_counter() - t0

    seed_study = []
    for seed in range(args.seeds):  # outside the timings
        m = KMeans(n_clusters=args.k, random_state=seed, n_init=n_init).fit(y_assign)
        seed_study.append({"seed": seed, "nmi": float(normalized_mutual_info_score(domains, m.labels_)),
                           "mi": float(mutual_info_score(domains, m.labels_)),
                           "iterations": int(m.n_iter_), "inertia": float(m.inertia_)})
    del y_assign

    sizes = np.bincount(labels, minlength=args.k)
    counts = {}
    for dom, lab in zip(domains, labels):
        counts.setdefault(dom, np.zeros(args.k, dtype=np.int64))[lab] += 1
    purity = sum(int(np.max([c[j] for c in counts.values()])) for j in range(args.k)) / len(labels)
    if args.labels:
        with open(args.labels, "w") as f:
            f.write("\n".join(str(int(v)) for v in labels) + "\n")
    print(json.dumps({
        "sklearn": sklearn.__version__,
        "docs": len(texts),
        "k": args.k,
        "threads": args.threads,
        "n_init": n_init,
        "terms": len(vec.vocabulary_),
        "fit_s": fit_s,
        "fit_vectorizer_s": t_vec,
        "fit_svd_normalizer_s": t_svd,
        "fit_kmeans_s": t_km,
        "kmeans_iterations": int(km.n_iter_),
        "assign_s": assign_s,
        "nmi": float(normalized_mutual_info_score(domains, labels)),
        "purity": purity,
        "seed_study": seed_study,
        "size_min": int(sizes.min()),
        "size_max": int(sizes.max()),
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
