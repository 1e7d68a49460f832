#include "hashing_embedder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>

#include "cbtm/error.h"
#include "cbtm/runtime.h"
#include "cbtm/tensor_file.h"
#include "context.h"
#include "murmurhash3.h"
#include "randomized_svd.h"

namespace cbtm::hashing {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

const char* yes_no(bool b) { return b ? "true" : "false"; }

/// The options that change what embed() returns, as "key=value" strings.
std::vector<std::string> settings_of(const HashingOptions& o) {
  return {"n_features=" + std::to_string(o.n_features),
          std::string("alternate_sign=") + yes_no(o.alternate_sign),
          "normalize=" + o.normalize,
          "stop_words=" + o.stop_words,
          std::string("drop_numbers=") + yes_no(o.drop_numbers),
          std::string("sublinear_tf=") + yes_no(o.sublinear_tf)};
}

const TensorFile::Info& info_of(const TensorFile& in, const std::string& name, DType dtype,
                                const std::vector<int64_t>& shape, const char* what) {
  const TensorFile::Info& info = in.info(name);
  if (info.dtype != dtype || info.shape != shape) {
    auto dims = [](const std::vector<int64_t>& s) {
      std::string r = "[";
      for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
      return r + "]";
    };
    throw Error(in.path() + ": tensor " + name + " should be " + dtype_name(dtype) + " " +
                dims(shape) + " (" + what + "), found " + dtype_name(info.dtype) + " " +
                dims(info.shape));
  }
  return info;
}

template <class T>
std::vector<T> read_raw(const TensorFile& in, const std::string& name, DType dtype,
                        const std::vector<int64_t>& shape, const char* what) {
  const TensorFile::Info& info = info_of(in, name, dtype, shape, what);
  std::vector<T> v(static_cast<size_t>(info.numel()));
  if (!v.empty()) std::memcpy(v.data(), in.data(name), v.size() * sizeof(T));
  return v;
}

}  // namespace

HashingVectorizerOptions vectorizer_options(const HashingOptions& o) {
  HashingVectorizerOptions v;
  v.n_features = o.n_features;
  v.alternate_sign = o.alternate_sign;
  v.sublinear_tf = o.sublinear_tf;
  v.keep_terms = o.keep_terms;
  v.tokenizer.english_stop_words = o.stop_words == "english";
  v.tokenizer.drop_numbers = o.drop_numbers;
  return v;
}

HashingEmbedder::HashingEmbedder(const Options& options) : options_(options) {
  try {
    options_.validate();
  } catch (const OptionError& e) {
    throw Error("hashing embedder: option " + e.key + ": " + e.what());
  }
  vectorizer_ = HashingVectorizer(vectorizer_options(options_));
  norm_ = options_.normalize == "l2"            ? Norm::kL2
          : options_.normalize == "standardize" ? Norm::kStandardize
                                                : Norm::kNone;
}

void HashingEmbedder::require_fitted(const char* what) const {
  if (!fitted())
    throw Error(std::string("hashing embedder: ") + what + " called before fit() or load()");
}

void HashingEmbedder::fit(const std::vector<std::string>& texts) { fit_impl(texts, false); }

Matrix HashingEmbedder::fit_embed(const std::vector<std::string>& texts) {
  return fit_impl(texts, true);
}

Matrix HashingEmbedder::fit_impl(const std::vector<std::string>& texts, bool want_embedding) {
  const int threads = std::max(1, runtime().resolved_threads());
  const auto t0 = std::chrono::steady_clock::now();
  HashingVectorizer vectorizer(vectorizer_options(options_));
  const tfidf::CsrMatrix x = vectorizer.fit_transform(texts, threads);
  const int64_t dims = options_.dims;
  if (dims > std::min(x.rows, x.cols))
    throw Error("hashing embedder: dims=" + std::to_string(dims) + " needs at least " +
                std::to_string(dims) + " training documents and used buckets; got " +
                std::to_string(x.rows) + " documents and " + std::to_string(x.cols) +
                " buckets (lower dims, give more text, or raise n_features)");
  const double t_count = seconds_since(t0);

  tfidf::RandomizedSvdOptions so;
  so.components = dims;
  so.oversamples = options_.svd_oversamples;
  so.power_iters = options_.svd_power_iters;
  so.seed = options_.seed;
  so.threads = threads;
  const auto t1 = std::chrono::steady_clock::now();
  tfidf::SvdResult svd = tfidf::randomized_svd(x, so);
  const double t_svd = seconds_since(t1);

  const int64_t used = x.cols;
  std::vector<float> projection = std::move(svd.projection);  // used x dims

  // The training rows projected: x is l2-normalised, so row r of y is embed_counts' sum
  // times the row's inverse norm.
  std::vector<float> y;
  if (want_embedding || norm_ == Norm::kStandardize) {
    y.resize(static_cast<size_t>(x.rows * dims));
    tfidf::spmm(x, projection.data(), dims, y.data(), threads);
  }
  std::vector<double> mean(static_cast<size_t>(dims), 0.0), scale(static_cast<size_t>(dims), 1.0);
  if (norm_ == Norm::kStandardize) {
    // Mean and population std of the projected training rows (scikit-learn's StandardScaler).
    std::vector<double> sq(static_cast<size_t>(dims), 0.0);
    for (int64_t r = 0; r < x.rows; ++r)
      for (int64_t k = 0; k < dims; ++k) mean[k] += y[r * dims + k];
    for (int64_t k = 0; k < dims; ++k) mean[k] /= static_cast<double>(x.rows);
    for (int64_t r = 0; r < x.rows; ++r)
      for (int64_t k = 0; k < dims; ++k) {
        const double d = y[r * dims + k] - mean[k];
        sq[k] += d * d;
      }
    for (int64_t k = 0; k < dims; ++k) {
      const double sd = std::sqrt(sq[k] / static_cast<double>(x.rows));
      scale[k] = sd > 0 ? sd : 1.0;
    }
  }

  vectorizer_ = std::move(vectorizer);
  projection_ = std::move(projection);
  singular_values_ = std::move(svd.singular_values);
  mean_ = std::move(mean);
  scale_ = std::move(scale);
  spdlog::info(
      "hashing: fitted on {} documents: {} used buckets of {}, {} nonzeros ({:.2f} s), SVD to "
      "{} dims ({:.2f} s)",
      x.rows, used, options_.n_features, x.nnz(), t_count, dims, t_svd);
  if (!want_embedding) return {};
  // The normalisers of embed_counts() on those rows (a row without a bucket has y = 0).
  Matrix out(x.rows, dims);
#pragma omp parallel for num_threads(threads) schedule(static) if (x.rows >= 1024)
  for (int64_t r = 0; r < x.rows; ++r) {
    const float* yr = y.data() + r * dims;
    float* o = out.row(r);
    if (norm_ == Norm::kL2) {
      double n2 = 0;
      for (int64_t k = 0; k < dims; ++k) n2 += double(yr[k]) * yr[k];
      const double s = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
      for (int64_t k = 0; k < dims; ++k) o[k] = static_cast<float>(yr[k] * s);
    } else if (norm_ == Norm::kStandardize) {
      for (int64_t k = 0; k < dims; ++k) o[k] = static_cast<float>((yr[k] - mean_[k]) / scale_[k]);
    } else {
      std::copy(yr, yr + dims, o);
    }
  }
  return out;
}

void HashingEmbedder::embed_counts(const std::pair<int32_t, int32_t>* counts, size_t size,
                                   double* sum, float* out) const {
  const int64_t dims = options_.dims;
  std::fill(sum, sum + dims, 0.0);
  double norm2 = 0;
  for (size_t i = 0; i < size; ++i) {
    const auto [bucket, c] = counts[i];
    if (c == 0) continue;
    const int32_t col = vectorizer_.column(bucket);
    const double w =
        vectorizer_.tf_weight(c) *
        (col >= 0 ? vectorizer_.idf()[static_cast<size_t>(col)] : vectorizer_.unseen_idf());
    norm2 += w * w;
    if (col < 0) continue;
    const float* row = projection_.data() + static_cast<int64_t>(col) * dims;
    for (int64_t k = 0; k < dims; ++k) sum[k] += w * row[k];
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

Matrix HashingEmbedder::embed(const std::vector<std::string>& texts) const {
  require_fitted("embed()");
  const int64_t n = static_cast<int64_t>(texts.size());
  Matrix out(n, options_.dims);
  // A few texts (a routing context, a test) are embedded without waking threads.
#pragma omp parallel num_threads(std::max(1, runtime().resolved_threads())) if (n >= 32)
  {
    CountScratch scratch;
    BucketCounts counts;
    std::vector<double> sum(static_cast<size_t>(options_.dims));
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; ++i) {
      vectorizer_.count_buckets(texts[static_cast<size_t>(i)], scratch, counts);
      embed_counts(counts.data(), counts.size(), sum.data(), out.row(i));
    }
  }
  return out;
}

std::unique_ptr<ContextEmbedder> HashingEmbedder::context() const {
  return std::make_unique<HashingContext>(*this);
}

std::vector<TermWeight> HashingEmbedder::top_terms(const float* point, int n) const {
  require_fitted("top_terms()");
  const int64_t dims = options_.dims;
  std::vector<double> y(static_cast<size_t>(dims));
  for (int64_t k = 0; k < dims; ++k)
    y[k] = norm_ == Norm::kStandardize ? point[k] * scale_[k] + mean_[k] : point[k];
  const auto& buckets = vectorizer_.buckets();
  const auto& terms = vectorizer_.terms();
  const bool named = options_.keep_terms && terms.size() == buckets.size();
  const size_t used = buckets.size();
  std::vector<double> weight(used);
  for (size_t j = 0; j < used; ++j) {
    const float* row = projection_.data() + static_cast<int64_t>(j) * dims;
    double w = 0;
    for (int64_t k = 0; k < dims; ++k) w += y[k] * row[k];
    if (named && options_.alternate_sign) w *= hash_term(terms[j], options_.n_features, true).sign;
    weight[j] = w;
  }
  const size_t m = std::min(used, static_cast<size_t>(std::max(0, n)));
  std::vector<size_t> order(used);
  std::iota(order.begin(), order.end(), size_t{0});
  std::partial_sort(
      order.begin(), order.begin() + static_cast<std::ptrdiff_t>(m), order.end(),
      [&](size_t a, size_t b) { return weight[a] != weight[b] ? weight[a] > weight[b] : a < b; });
  std::vector<TermWeight> out;
  out.reserve(m);
  for (size_t i = 0; i < m; ++i) {
    const size_t j = order[i];
    out.push_back({named ? terms[j] : "#" + std::to_string(buckets[j]), weight[j]});
  }
  return out;
}

void HashingEmbedder::save(TensorFileWriter& out, const std::string& prefix) const {
  require_fitted("save()");
  const int64_t dims = options_.dims;
  const auto& buckets = vectorizer_.buckets();
  const int64_t used = static_cast<int64_t>(buckets.size());
  const std::string p = prefix + ".";
  out.add_i32(p + "buckets", {used}, buckets);
  out.add(p + "idf", DType::F64, {used}, vectorizer_.idf().data(),
          vectorizer_.idf().size() * sizeof(double));
  out.add_i64(p + "documents", {1}, {vectorizer_.documents()});
  std::vector<float> components(static_cast<size_t>(dims * used));  // scikit-learn layout
  for (int64_t j = 0; j < used; ++j)
    for (int64_t k = 0; k < dims; ++k) components[k * used + j] = projection_[j * dims + k];
  out.add_f32(p + "components", {dims, used}, components);
  out.add_f32(p + "singular_values", {dims}, singular_values_);
  out.add(p + "mean", DType::F64, {dims}, mean_.data(), mean_.size() * sizeof(double));
  out.add(p + "scale", DType::F64, {dims}, scale_.data(), scale_.size() * sizeof(double));
  if (!vectorizer_.terms().empty()) out.add_strings(p + "terms", vectorizer_.terms());
  out.add_strings(p + "settings", settings_of(options_));
}

void HashingEmbedder::load(const TensorFile& in, const std::string& prefix) {
  const std::string p = prefix + ".";
  const std::vector<std::string> saved = in.strings(p + "settings");
  for (const auto& s : settings_of(options_))
    if (std::find(saved.begin(), saved.end(), s) == saved.end()) {
      std::string was;
      for (const auto& x : saved)
        if (x.substr(0, x.find('=')) == s.substr(0, s.find('='))) was = x;
      throw Error(in.path() + ": the hashing embedder under '" + prefix + "' was saved with " +
                  (was.empty() ? std::string("other settings") : was) + " but the options say " +
                  s);
    }
  const int64_t dims = options_.dims;
  const TensorFile::Info& bi = in.info(p + "buckets");
  if (bi.shape.size() != 1)
    throw Error(in.path() + ": tensor " + p + "buckets should be 1-D (one per used bucket)");
  const int64_t used = bi.shape[0];
  std::vector<int32_t> buckets =
      read_raw<int32_t>(in, p + "buckets", DType::I32, {used}, "used buckets");
  std::vector<double> idf = read_raw<double>(in, p + "idf", DType::F64, {used}, "idf per bucket");
  const std::vector<int64_t> documents =
      read_raw<int64_t>(in, p + "documents", DType::I64, {1}, "fit documents");
  const std::vector<float> components =
      read_raw<float>(in, p + "components", DType::F32, {dims, used}, "dims option x buckets");
  std::vector<float> sv =
      read_raw<float>(in, p + "singular_values", DType::F32, {dims}, "dims option");
  std::vector<double> mean = read_raw<double>(in, p + "mean", DType::F64, {dims}, "dims option");
  std::vector<double> scale = read_raw<double>(in, p + "scale", DType::F64, {dims}, "dims option");
  std::vector<std::string> terms;
  if (options_.keep_terms && in.has(p + "terms.bytes")) terms = in.strings(p + "terms");

  HashingVectorizer vectorizer(vectorizer_options(options_));
  try {
    vectorizer.set_state(std::move(buckets), std::move(idf), documents[0], std::move(terms));
  } catch (const Error& e) {
    throw Error(in.path() + ": " + p + "buckets: " + e.what());
  }
  std::vector<float> projection(static_cast<size_t>(used * dims));
  for (int64_t k = 0; k < dims; ++k)
    for (int64_t j = 0; j < used; ++j) projection[j * dims + k] = components[k * used + j];
  vectorizer_ = std::move(vectorizer);
  projection_ = std::move(projection);
  singular_values_ = std::move(sv);
  mean_ = std::move(mean);
  scale_ = std::move(scale);
}

}  // namespace cbtm::hashing
