#include "lm_embedder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "cbtm/artifact.h"
#include "cbtm/error.h"
#include "cbtm/progress.h"
#include "cbtm/runtime.h"
#include "cbtm/tensor_file.h"
#include "cbtm/tokenizer.h"
#include "document_tokens.h"
#include "file_digest.h"
#include "opt/opt.h"

namespace cbtm::lm_embed {

namespace fs = std::filesystem;

struct LmEmbedder::State {
  models::OptLM model{nullptr};
  models::OptConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
  torch::Device device{torch::kCPU};
  int64_t layer = 0;       ///< resolved: 0..n_layers
  int64_t max_tokens = 0;  ///< effective
  std::string model_desc, checkpoint_digest, tokenizer_digest;
};

namespace {

constexpr int64_t kProgressDocs = 2000;  // log progress for embed() calls at least this big

/// The options that change what embed() returns, as "key=value" strings.
std::vector<std::string> settings_of(const LmOptions& o) {
  return {"pooling=" + o.pooling, "normalize=" + o.normalize, "precision=" + o.precision,
          "layer=" + std::to_string(o.layer), "max_tokens=" + std::to_string(o.max_tokens)};
}

/// The architecture of a checkpoint as one line (compared on load).
std::string describe(const models::OptConfig& c) {
  return "vocab_size=" + std::to_string(c.vocab_size) + " d_model=" + std::to_string(c.d_model) +
         " n_layers=" + std::to_string(c.n_layers) + " n_heads=" + std::to_string(c.n_heads) +
         " d_ff=" + std::to_string(c.d_ff) + " max_positions=" + std::to_string(c.max_positions);
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

/// Sets LibTorch's intra-op threads for a scope.
class TorchThreads {
 public:
  explicit TorchThreads(int n) : saved_(at::get_num_threads()) {
    if (n != saved_) at::set_num_threads(n);
  }
  ~TorchThreads() {
    if (at::get_num_threads() != saved_) at::set_num_threads(saved_);
  }

 private:
  int saved_;
};

}  // namespace

LmEmbedder::LmEmbedder(const Options& options, const Registry& registry)
    : options_(options), registry_(&registry) {
  try {
    options_.validate();
  } catch (const OptionError& e) {
    throw Error("lm embedder: option " + e.key + ": " + e.what());
  }
}

LmEmbedder::~LmEmbedder() = default;

void LmEmbedder::require_ready(const char* what) const {
  if (!state_) throw Error(std::string("lm embedder: ") + what + " called before fit() or load()");
}

int64_t LmEmbedder::dim() const {
  return state_ ? state_->config.d_model : models::read_config(options_.checkpoint).d_model;
}

int64_t LmEmbedder::effective_max_tokens() const {
  if (state_) return state_->max_tokens;
  return std::min(options_.max_tokens, models::read_config(options_.checkpoint).max_positions - 1);
}

void LmEmbedder::open(const std::string& where) {
  const std::string& ckpt = options_.checkpoint;
  const std::string& tok_path = options_.tokenizer;
  if (!fs::is_directory(ckpt))
    throw Error(where + "the checkpoint directory '" + ckpt +
                "' (option checkpoint) does not exist: point checkpoint at the OPT checkpoint "
                "directory (config.json + model.safetensors)");
  if (!fs::is_regular_file(tok_path))
    throw Error(where + "the tokenizer artifact '" + tok_path +
                "' (option tokenizer) does not exist: point tokenizer at the artifact the "
                "checkpoint was trained with (e.g. RUN/tokenizer.safetensors)");
  auto s = std::make_unique<State>();
  s->config = models::read_config(ckpt);
  const models::OptConfig& c = s->config;
  if (options_.layer > c.n_layers)
    throw Error(where + "option layer = " + std::to_string(options_.layer) + " but checkpoint '" +
                ckpt + "' has " + std::to_string(c.n_layers) + " blocks (use -1 or 0.." +
                std::to_string(c.n_layers) + ")");
  if (c.max_positions < 2)
    throw Error(where + "checkpoint '" + ckpt + "' has max_positions " +
                std::to_string(c.max_positions) + ": no room for </s> and a token");
  s->layer = options_.layer < 0 ? c.n_layers : options_.layer;
  s->max_tokens = std::min(options_.max_tokens, c.max_positions - 1);

  s->tokenizer = ArtifactReader(tok_path, "tokenizer").load<Tokenizer>(*registry_, "tokenizer");
  if (s->tokenizer->vocab_size() > c.vocab_size)
    throw Error(where + "the tokenizer '" + tok_path + "' has " +
                std::to_string(s->tokenizer->vocab_size()) + " ids but checkpoint '" + ckpt +
                "' has a vocabulary of " + std::to_string(c.vocab_size) +
                ": they do not belong together (option tokenizer must be the checkpoint's)");

  s->model = models::load_checkpoint(ckpt);
  s->device = models::model_device();
  s->model->to(s->device);
  s->model->eval();
  s->model_desc = describe(c);
  s->checkpoint_digest = file_digest((fs::path(ckpt) / "model.safetensors").string());
  s->tokenizer_digest = file_digest(tok_path);
  if (s->max_tokens < options_.max_tokens)
    spdlog::info("lm embedder: max_tokens {} does not fit checkpoint max_positions {} with </s> "
                 "first; embedding the first {} tokens",
                 options_.max_tokens, c.max_positions, s->max_tokens);
  spdlog::info("lm embedder: {} ({}), layer {}, {} pooling, {} normaliser, {} on {}", ckpt,
               s->model_desc, s->layer, options_.pooling, options_.normalize, options_.precision,
               s->device.str());
  state_ = std::move(s);
}

Matrix LmEmbedder::pool(const std::vector<std::string>& texts,
                        std::vector<int64_t>& lengths) const {
  require_ready("embed()");
  const State& s = *state_;
  const int64_t n = static_cast<int64_t>(texts.size());
  const int64_t d = s.config.d_model;
  const int threads = std::max(1, runtime().resolved_threads());

  TorchThreads torch_threads(threads);
  const auto t0 = std::chrono::steady_clock::now();

  // ---- tokens (in parallel, on LibTorch's intra-op threads) ---------------------------
  std::vector<std::vector<int32_t>> ids(static_cast<size_t>(n));
  at::parallel_for(0, n, 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      ids[i] = leading_tokens(*s.tokenizer, texts[i], s.max_tokens);
  });
  lengths.assign(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) lengths[i] = static_cast<int64_t>(ids[i].size());

  const double t_tokens =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // ---- batched forward passes ---------------------------------------------------------
  Matrix out(n, d);
  const std::vector<TokenBatch> batches = pack_batches(lengths, options_.batch_tokens, 1);
  models::OptLM model = s.model;  // a handle (forward passes are not const)
  torch::NoGradGuard no_grad;
  std::unique_ptr<Progress> progress;
  if (n >= kProgressDocs) progress = std::make_unique<Progress>("lm-embed", double(n), "docs");
  int64_t done = 0;
  const bool mean = options_.pooling == "mean";
  for (const TokenBatch& batch : batches) {
    const int64_t B = static_cast<int64_t>(batch.docs.size());
    const int64_t T = batch.longest + 1;
    torch::Tensor tokens = torch::full({B, T}, s.tokenizer->pad_id(), torch::kLong);
    torch::Tensor lens = torch::empty({B}, torch::kLong);
    auto tok = tokens.accessor<int64_t, 2>();
    auto len = lens.accessor<int64_t, 1>();
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int32_t>& row = ids[batch.docs[static_cast<size_t>(b)]];
      tok[b][0] = s.tokenizer->bos_id();
      for (size_t t = 0; t < row.size(); ++t) tok[b][static_cast<int64_t>(t) + 1] = row[t];
      len[b] = static_cast<int64_t>(row.size());
    }
    torch::Tensor hidden;
    {
      models::AutocastGuard autocast(s.device, options_.precision == "bf16");
      hidden = model->layer_states(tokens.to(s.device), s.layer);
    }
    hidden = hidden.to(torch::kFloat);  // [B, T, d]
    const torch::Tensor lens_d = lens.to(s.device);
    torch::Tensor pooled;
    if (mean) {
      // Positions 1..len of each row: the document's tokens (0 is </s>, the rest padding).
      const torch::Tensor pos =
          torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(s.device));
      const torch::Tensor mask =
          ((pos.unsqueeze(0) >= 1) & (pos.unsqueeze(0) <= lens_d.unsqueeze(1))).to(torch::kFloat);
      pooled = torch::bmm(mask.unsqueeze(1), hidden).squeeze(1) /
               lens_d.to(torch::kFloat).unsqueeze(1);
    } else {
      const torch::Tensor rows =
          torch::arange(B, torch::TensorOptions().dtype(torch::kLong).device(s.device));
      pooled = hidden.index({rows, lens_d});
    }
    pooled = pooled.to(torch::kCPU).contiguous();
    const float* p = pooled.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(out.row(static_cast<int64_t>(batch.docs[static_cast<size_t>(b)])), p + b * d,
                  static_cast<size_t>(d) * sizeof(float));
    done += B;
    if (progress) progress->update(double(done));
  }
  if (progress) {
    int64_t tokens = 0;
    for (int64_t l : lengths) tokens += l;
    progress->finish(std::to_string(tokens) + " tokens, " + std::to_string(batches.size()) +
                     " batches; tokenizing took " + std::to_string(t_tokens) + " s");
  }
  return out;
}

void LmEmbedder::fit(const std::vector<std::string>& texts) {
  open("lm embedder: ");
  const int64_t d = state_->config.d_model;
  mean_.assign(static_cast<size_t>(d), 0.0);
  scale_.assign(static_cast<size_t>(d), 1.0);
  if (options_.normalize != "standardize") return;
  std::vector<int64_t> lengths;
  Matrix y;
  try {
    y = pool(texts, lengths);
  } catch (...) {
    state_.reset();
    throw;
  }
  // Mean and population std over the texts that have tokens (scikit-learn's StandardScaler).
  int64_t rows = 0;
  std::vector<double> sum(static_cast<size_t>(d), 0.0), sq(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < y.rows; ++i) {
    if (lengths[i] == 0) continue;
    ++rows;
    for (int64_t k = 0; k < d; ++k) sum[k] += y.at(i, k);
  }
  if (rows == 0) {
    state_.reset();
    throw Error("lm embedder: normalize: standardize needs at least one fit() text with tokens, got " +
                std::to_string(texts.size()) + " texts and none has any");
  }
  for (int64_t k = 0; k < d; ++k) mean_[k] = sum[k] / double(rows);
  for (int64_t i = 0; i < y.rows; ++i) {
    if (lengths[i] == 0) continue;
    for (int64_t k = 0; k < d; ++k) {
      const double e = y.at(i, k) - mean_[k];
      sq[k] += e * e;
    }
  }
  for (int64_t k = 0; k < d; ++k) {
    const double sd = std::sqrt(sq[k] / double(rows));
    scale_[k] = sd > 0 ? sd : 1.0;
  }
}

Matrix LmEmbedder::embed(const std::vector<std::string>& texts) const {
  std::vector<int64_t> lengths;
  Matrix y = pool(texts, lengths);
  const int64_t d = y.cols;
  for (int64_t i = 0; i < y.rows; ++i) {
    if (lengths[i] == 0) continue;  // no tokens: stays the zero vector
    float* r = y.row(i);
    if (options_.normalize == "l2") {
      double n2 = 0;
      for (int64_t k = 0; k < d; ++k) n2 += double(r[k]) * r[k];
      const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
      for (int64_t k = 0; k < d; ++k) r[k] = static_cast<float>(r[k] * inv);
    } else if (options_.normalize == "standardize") {
      for (int64_t k = 0; k < d; ++k) r[k] = static_cast<float>((r[k] - mean_[k]) / scale_[k]);
    }
  }
  return y;
}

void LmEmbedder::save(TensorFileWriter& out, const std::string& prefix) const {
  require_ready("save()");
  const State& s = *state_;
  const int64_t d = s.config.d_model;
  const std::string p = prefix + ".";
  out.add(p + "mean", DType::F64, {d}, mean_.data(), mean_.size() * sizeof(double));
  out.add(p + "scale", DType::F64, {d}, scale_.data(), scale_.size() * sizeof(double));
  out.add_strings(p + "settings", settings_of(options_));
  out.add_strings(p + "source", {"checkpoint=" + options_.checkpoint,
                                 "tokenizer=" + options_.tokenizer, "model=" + s.model_desc,
                                 "checkpoint_digest=" + s.checkpoint_digest,
                                 "tokenizer_digest=" + s.tokenizer_digest});
}

void LmEmbedder::load(const TensorFile& in, const std::string& prefix) {
  const std::string p = prefix + ".";
  const std::string where = in.path() + ": the lm embedder under '" + prefix + "': ";
  const std::vector<std::string> saved = in.strings(p + "settings");
  for (const auto& mine : settings_of(options_))
    if (std::find(saved.begin(), saved.end(), mine) == saved.end()) {
      std::string was = "other settings";
      for (const auto& x : saved)
        if (x.substr(0, x.find('=')) == mine.substr(0, mine.find('='))) was = x;
      throw Error(where + "was saved with " + was + " but the options say " + mine);
    }
  std::map<std::string, std::string> source;
  for (const auto& x : in.strings(p + "source")) {
    const size_t eq = x.find('=');
    if (eq != std::string::npos) source[x.substr(0, eq)] = x.substr(eq + 1);
  }
  for (const char* key : {"model", "checkpoint_digest", "tokenizer_digest"})
    if (!source.count(key))
      throw Error(where + "tensor " + p + "source has no '" + key + "' entry");

  open(where);
  const State& s = *state_;
  auto mismatch = [&](const std::string& what, const std::string& path, const std::string& was,
                      const std::string& now) {
    // Build the message first: `now` may refer into the state that reset() frees.
    Error error(where + what + " '" + path + "' is not the one the embedder was fitted with (" +
                was + " then, " + now + " now): restore it or fit the embedder again");
    state_.reset();
    throw error;
  };
  if (s.model_desc != source["model"])
    mismatch("checkpoint", options_.checkpoint, source["model"], s.model_desc);
  if (s.checkpoint_digest != source["checkpoint_digest"])
    mismatch("checkpoint", options_.checkpoint, "model.safetensors " + source["checkpoint_digest"],
             s.checkpoint_digest);
  if (s.tokenizer_digest != source["tokenizer_digest"])
    mismatch("tokenizer", options_.tokenizer, "digest " + source["tokenizer_digest"],
             s.tokenizer_digest);
  const int64_t d = s.config.d_model;
  try {
    mean_ = read_f64(in, p + "mean", d);
    scale_ = read_f64(in, p + "scale", d);
  } catch (...) {
    state_.reset();
    throw;
  }
}

}  // namespace cbtm::lm_embed
