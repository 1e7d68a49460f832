#include "tfidf_embedder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include <spdlog/spdlog.h>

#include "cbtm/error.h"
#include "cbtm/runtime.h"
#include "cbtm/tensor_file.h"
#include "context.h"
#include "randomized_svd.h"

namespace cbtm::tfidf {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// The options that change what embed() returns, as "key=value" strings.
std::vector<std::string> settings_of(const TfidfOptions& o) {
  return {"normalize=" + o.normalize, "stop_words=" + o.stop_words,
          std::string("drop_numbers=") + (o.drop_numbers ? "true" : "false"),
          std::string("sublinear_tf=") + (o.sublinear_tf ? "true" : "false"),
          "ngram_range=" + std::to_string(o.ngram_range[0]) + "," +
              std::to_string(o.ngram_range[1])};
}

/// sum[k] += w * row[k] for k < n, in float. Compiled for AVX-512, AVX2 and the baseline;
/// all do the same multiplies and adds (no FMA: -ffp-contract=off), so they agree bit for bit.
__attribute__((target_clones("avx512f", "avx2", "default"))) void add_scaled(
    float* __restrict sum, const float* __restrict row, float w, int64_t n) {
  for (int64_t k = 0; k < n; ++k) sum[k] += w * row[k];
}

std::vector<double> read_f64(const TensorFile& in, const std::string& name, int64_t expected) {
  const TensorFile::Info& info = in.info(name);
  if (info.dtype != DType::F64 || info.numel() != expected)
    throw Error(in.path() + ": tensor " + name + " should be F64 with " + std::to_string(expected) +
                " values, found " + dtype_name(info.dtype) + " with " +
                std::to_string(info.numel()));
  std::vector<double> v(static_cast<size_t>(expected));
  std::memcpy(v.data(), in.data(name), v.size() * sizeof(double));
  return v;
}

}  // namespace

VectorizerOptions vectorizer_options(const TfidfOptions& o) {
  VectorizerOptions v;
  v.min_df = o.min_df;
  v.max_df = o.max_df;
  v.max_features = o.max_features;
  v.sublinear_tf = o.sublinear_tf;
  v.ngram_min = o.ngram_range.size() == 2 ? o.ngram_range[0] : 1;
  v.ngram_max = o.ngram_range.size() == 2 ? o.ngram_range[1] : 1;
  v.tokenizer.english_stop_words = o.stop_words == "english";
  v.tokenizer.drop_numbers = o.drop_numbers;
  return v;
}

TfidfEmbedder::TfidfEmbedder(const Options& options)
    : options_(options), vectorizer_(vectorizer_options(options)) {
  try {
    options_.validate();
  } catch (const OptionError& e) {
    throw Error("tfidf embedder: option " + e.key + ": " + e.what());
  }
  norm_ = options_.normalize == "l2"            ? Norm::kL2
          : options_.normalize == "standardize" ? Norm::kStandardize
                                                : Norm::kNone;
}

void TfidfEmbedder::require_fitted(const char* what) const {
  if (!fitted())
    throw Error(std::string("tfidf embedder: ") + what + " called before fit() or load()");
}

void TfidfEmbedder::fit(const std::vector<std::string>& texts) { fit_impl(texts, false); }

Matrix TfidfEmbedder::fit_embed(const std::vector<std::string>& texts) {
  return fit_impl(texts, true);
}

Matrix TfidfEmbedder::fit_impl(const std::vector<std::string>& texts, bool want_embedding) {
  const int threads = runtime().resolved_threads();
  const auto t0 = std::chrono::steady_clock::now();
  TfidfVectorizer vectorizer(vectorizer_options(options_));
  const CsrMatrix x = vectorizer.fit_transform(texts, threads);
  const int64_t dims = options_.dims;
  if (dims > std::min(x.rows, x.cols))
    throw Error("tfidf embedder: dims=" + std::to_string(dims) + " needs at least " +
                std::to_string(dims) + " training documents and vocabulary terms; got " +
                std::to_string(x.rows) + " documents and " + std::to_string(x.cols) +
                " terms (lower dims or give more text)");
  const double t_vocab = seconds_since(t0);

  RandomizedSvdOptions so;
  so.components = dims;
  so.oversamples = options_.svd_oversamples;
  so.power_iters = options_.svd_power_iters;
  so.seed = options_.seed;
  so.threads = threads;
  const auto t1 = std::chrono::steady_clock::now();
  SvdResult svd = randomized_svd(x, so);
  const double t_svd = seconds_since(t1);
  // Term-major projection: row t holds the component values of term t.
  std::vector<float> projection = std::move(svd.projection);

  // The training rows projected: x is already l2-normalised, so row r of y is the `sum`
  // of finish() divided by the row norm (norm2 = 1 for a row with a term).
  std::vector<float> y;
  if (want_embedding || norm_ == Norm::kStandardize) {
    y.resize(static_cast<size_t>(x.rows * dims));
    spmm(x, projection.data(), dims, y.data(), threads);
  }
  std::vector<double> mean(static_cast<size_t>(dims), 0.0), scale(static_cast<size_t>(dims), 1.0);
  if (norm_ == Norm::kStandardize) {
    // Mean and population std (scikit-learn's StandardScaler) of the projected training
    // rows that have a term; rows without one embed to zero, the mean, by definition.
    std::vector<double> sq(static_cast<size_t>(dims), 0.0);
    int64_t rows = 0;
    for (int64_t r = 0; r < x.rows; ++r) {
      if (x.indptr[r + 1] == x.indptr[r]) continue;
      ++rows;
      for (int64_t k = 0; k < dims; ++k) mean[k] += y[r * dims + k];
    }
    for (int64_t k = 0; k < dims; ++k) mean[k] /= static_cast<double>(std::max<int64_t>(rows, 1));
    for (int64_t r = 0; r < x.rows; ++r) {
      if (x.indptr[r + 1] == x.indptr[r]) continue;
      for (int64_t k = 0; k < dims; ++k) {
        const double d = y[r * dims + k] - mean[k];
        sq[k] += d * d;
      }
    }
    for (int64_t k = 0; k < dims; ++k) {
      const double sd = std::sqrt(sq[k] / static_cast<double>(std::max<int64_t>(rows, 1)));
      scale[k] = sd > 0 ? sd : 1.0;
    }
  }

  vectorizer_ = std::move(vectorizer);
  projection_ = std::move(projection);
  singular_values_ = std::move(svd.singular_values);
  mean_ = std::move(mean);
  scale_ = std::move(scale);
  spdlog::info(
      "tfidf: fitted on {} documents: {} terms, {} nonzeros ({:.2f} s), SVD to {} dims ({:.2f} s)",
      x.rows, x.cols, x.nnz(), t_vocab, dims, t_svd);
  if (!want_embedding) return {};
  Matrix out(x.rows, dims);
#pragma omp parallel num_threads(std::max(1, threads)) if (x.rows >= 1024)
  {
    std::vector<double> sum(static_cast<size_t>(dims));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < x.rows; ++r) {
      const float* yr = y.data() + r * dims;
      for (int64_t k = 0; k < dims; ++k) sum[k] = yr[k];
      finish(sum.data(), x.indptr[r + 1] > x.indptr[r] ? 1.0 : 0.0, out.row(r));
    }
  }
  return out;
}

void TfidfEmbedder::finish(const double* sum, double norm2, float* out) const {
  const int64_t dims = options_.dims;
  if (!(norm2 > 0)) {  // no vocabulary term: the zero vector, whatever the normaliser
    std::fill(out, out + dims, 0.f);
    return;
  }
  const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
  if (norm_ == Norm::kL2) {
    double n2 = 0;
    for (int64_t k = 0; k < dims; ++k) n2 += sum[k] * sum[k];
    // l2 of (sum * inv) equals l2 of sum: the tf-idf row norm cancels.
    const double s = n2 > 0 && inv > 0 ? 1.0 / std::sqrt(n2) : 0.0;
    for (int64_t k = 0; k < dims; ++k) out[k] = static_cast<float>(sum[k] * s);
  } else if (norm_ == Norm::kStandardize) {
    for (int64_t k = 0; k < dims; ++k)
      out[k] = static_cast<float>((sum[k] * inv - mean_[k]) / scale_[k]);
  } else {
    for (int64_t k = 0; k < dims; ++k) out[k] = static_cast<float>(sum[k] * inv);
  }
}

Matrix TfidfEmbedder::embed(const std::vector<std::string>& texts) const {
  require_fitted("embed()");
  const int64_t n = static_cast<int64_t>(texts.size());
  const int64_t dims = options_.dims;
  Matrix out(n, dims);
  // A few texts (a routing context, a test) are embedded without waking threads.
#pragma omp parallel num_threads(std::max(1, runtime().resolved_threads())) if (n >= 32)
  {
    CountScratch scratch;
    TermCounts counts;
    std::vector<float> sumf(static_cast<size_t>(dims));
    std::vector<double> sum(static_cast<size_t>(dims));
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      vectorizer_.count_terms(texts[i], scratch, counts);
      std::fill(sumf.begin(), sumf.end(), 0.f);
      double norm2 = 0;
      for (const auto& [id, c] : counts) {
        const double w = vectorizer_.tf_weight(c) * vectorizer_.idf()[id];
        norm2 += w * w;
        add_scaled(sumf.data(), projection_.data() + static_cast<int64_t>(id) * dims,
                   static_cast<float>(w), dims);
      }
      std::copy(sumf.begin(), sumf.end(), sum.begin());
      finish(sum.data(), norm2, out.row(i));
    }
  }
  return out;
}

std::vector<TermWeight> TfidfEmbedder::top_terms(const float* point, int n) const {
  require_fitted("top_terms()");
  if (n <= 0) return {};
  const int64_t dims = options_.dims;
  // Undo the normaliser's affine part (the l2 scale does not change the ranking).
  std::vector<double> y(static_cast<size_t>(dims));
  for (int64_t k = 0; k < dims; ++k)
    y[k] = norm_ == Norm::kStandardize ? point[k] * scale_[k] + mean_[k] : point[k];
  const auto& vocab = vectorizer_.vocabulary();
  const int64_t terms = static_cast<int64_t>(vocab.size());
  std::vector<std::pair<double, int32_t>> weights;  // (weight, term) of the positive ones
  weights.reserve(static_cast<size_t>(terms));
  for (int64_t t = 0; t < terms; ++t) {
    const float* row = projection_.data() + t * dims;
    double w = 0;
    for (int64_t k = 0; k < dims; ++k) w += y[k] * row[k];
    if (w > 0) weights.emplace_back(w, static_cast<int32_t>(t));
  }
  const size_t keep = std::min(weights.size(), static_cast<size_t>(n));
  // Highest weight first; ties by term order.
  std::partial_sort(weights.begin(), weights.begin() + keep, weights.end(),
                    [](const auto& a, const auto& b) {
                      return a.first != b.first ? a.first > b.first : a.second < b.second;
                    });
  std::vector<TermWeight> out;
  out.reserve(keep);
  for (size_t i = 0; i < keep; ++i) out.push_back({vocab[weights[i].second], weights[i].first});
  return out;
}

std::unique_ptr<ContextEmbedder> TfidfEmbedder::context() const {
  return std::make_unique<TfidfContext>(*this);
}

void TfidfEmbedder::save(TensorFileWriter& out, const std::string& prefix) const {
  require_fitted("save()");
  const int64_t dims = options_.dims;
  const auto& vocab = vectorizer_.vocabulary();
  const int64_t terms = static_cast<int64_t>(vocab.size());
  const std::string p = prefix + ".";
  out.add_strings(p + "vocab", vocab);
  out.add(p + "idf", DType::F64, {terms}, vectorizer_.idf().data(), vocab.size() * sizeof(double));
  std::vector<float> components(static_cast<size_t>(dims * terms));  // scikit-learn layout
  for (int64_t t = 0; t < terms; ++t)
    for (int64_t k = 0; k < dims; ++k) components[k * terms + t] = projection_[t * dims + k];
  out.add_f32(p + "components", {dims, terms}, components);
  out.add_f32(p + "singular_values", {dims}, singular_values_);
  out.add(p + "mean", DType::F64, {dims}, mean_.data(), mean_.size() * sizeof(double));
  out.add(p + "scale", DType::F64, {dims}, scale_.data(), scale_.size() * sizeof(double));
  out.add_strings(p + "settings", settings_of(options_));
}

void TfidfEmbedder::load(const TensorFile& in, const std::string& prefix) {
  const std::string p = prefix + ".";
  std::vector<std::string> saved = in.strings(p + "settings");
  if (std::none_of(saved.begin(), saved.end(),
                   [](const std::string& x) { return x.rfind("ngram_range=", 0) == 0; }))
    saved.push_back("ngram_range=1,1");  // saved before n-grams existed: unigrams
  const std::vector<std::string> mine = settings_of(options_);
  for (const auto& s : mine)
    if (std::find(saved.begin(), saved.end(), s) == saved.end()) {
      std::string was;
      for (const auto& x : saved)
        if (x.substr(0, x.find('=')) == s.substr(0, s.find('='))) was = x;
      throw Error(in.path() + ": the tfidf embedder under '" + prefix + "' was saved with " +
                  (was.empty() ? std::string("other settings") : was) + " but the options say " +
                  s);
    }
  std::vector<std::string> vocab = in.strings(p + "vocab");
  const int64_t terms = static_cast<int64_t>(vocab.size());
  const int64_t dims = options_.dims;
  const TensorFile::Info& ci = in.info(p + "components");
  if (ci.shape.size() != 2 || ci.shape[0] != dims || ci.shape[1] != terms)
    throw Error(in.path() + ": tensor " + p + "components should be [" + std::to_string(dims) +
                ", " + std::to_string(terms) +
                "] (dims option x vocabulary size), found shape with " +
                std::to_string(ci.shape.empty() ? 0 : ci.shape[0]) + " rows");
  std::vector<double> idf = read_f64(in, p + "idf", terms);
  const std::vector<float> components = in.f32(p + "components");
  std::vector<float> sv = in.f32(p + "singular_values");
  if (static_cast<int64_t>(sv.size()) != dims)
    throw Error(in.path() + ": tensor " + p + "singular_values should have " +
                std::to_string(dims) + " values");
  std::vector<double> mean = read_f64(in, p + "mean", dims);
  std::vector<double> scale = read_f64(in, p + "scale", dims);

  TfidfVectorizer vectorizer(vectorizer_options(options_));
  try {
    vectorizer.set_state(std::move(vocab), std::move(idf));
  } catch (const Error& e) {
    throw Error(in.path() + ": " + p + "vocab: " + e.what());
  }
  std::vector<float> projection(static_cast<size_t>(terms * dims));
  for (int64_t k = 0; k < dims; ++k)
    for (int64_t t = 0; t < terms; ++t) projection[t * dims + k] = components[k * terms + t];
  vectorizer_ = std::move(vectorizer);
  projection_ = std::move(projection);
  singular_values_ = std::move(sv);
  mean_ = std::move(mean);
  scale_ = std::move(scale);
}

}  // namespace cbtm::tfidf
