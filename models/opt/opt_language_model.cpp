// Batched scoring of token sequences with an OptLM.
#include "opt_language_model.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <mutex>
#include <numeric>

#include "cbtm/runtime.h"
#include "opt/fused_ops.h"

namespace cbtm::models {

OptLanguageModel::OptLanguageModel(OptLM model, torch::Device device)
    : model_(std::move(model)), device_(device) {
  static std::once_flag threads_set;
  std::call_once(threads_set, [] { torch::set_num_threads(runtime().resolved_threads()); });
  model_->to(device_);
  model_->eval();
}

std::vector<std::vector<float>> OptLanguageModel::score(
    const std::vector<std::vector<int32_t>>& sequences) {
  return score_impl(sequences, nullptr);
}

std::vector<std::vector<float>> OptLanguageModel::score_positions(
    const std::vector<std::vector<int32_t>>& sequences, const std::vector<std::vector<uint8_t>>& wanted) {
  check_wanted_positions(sequences, wanted);
  return score_impl(sequences, &wanted);
}

std::vector<std::vector<float>> OptLanguageModel::score_impl(
    const std::vector<std::vector<int32_t>>& sequences, const std::vector<std::vector<uint8_t>>* wanted) {
  const OptConfig& c = model_->config();
  std::vector<std::vector<float>> out(sequences.size());
  std::vector<size_t> order;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto& s = sequences[i];
    if (static_cast<int64_t>(s.size()) > c.max_positions)
      throw Error("OPT model: sequence " + std::to_string(i) + " has " +
                  std::to_string(s.size()) + " tokens, more than max_positions " +
                  std::to_string(c.max_positions));
    for (int32_t t : s)
      if (t < 0 || t >= c.vocab_size)
        throw Error("OPT model: sequence " + std::to_string(i) + " has token id " +
                    std::to_string(t) + ", outside the vocabulary of " +
                    std::to_string(c.vocab_size));
    if (s.size() < 2) continue;  // nothing to score
    if (wanted && std::all_of((*wanted)[i].begin(), (*wanted)[i].end(), [](uint8_t w) { return w == 0; })) {
      out[i].assign(s.size() - 1, std::numeric_limits<float>::quiet_NaN());  // no position wanted: not run
      continue;
    }
    order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return sequences[a].size() > sequences[b].size();
  });
  const AutocastCacheScope cast_once;  // the weights' bf16 copies serve every batch (~5% faster scoring)
  const int64_t batch_tokens = device_.is_cpu() ? kBatchTokens : kBatchTokensGpu;
  for (const auto& [begin, end] : plan_batches(sequences, order, batch_tokens)) score_batch(sequences, wanted, order, begin, end, out);
  return out;
}

std::vector<std::vector<float>> OptLanguageModel::next_token_log_probs(
    const std::vector<std::vector<int32_t>>& sequences) {
  const OptConfig& c = model_->config();
  int64_t T = 1;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto& s = sequences[i];
    if (s.empty()) throw Error("OPT model: sequence " + std::to_string(i) + " is empty (it needs at least a beginning-of-document token)");
    if (static_cast<int64_t>(s.size()) > c.max_positions)
      throw Error("OPT model: sequence " + std::to_string(i) + " has " + std::to_string(s.size()) +
                  " tokens, more than max_positions " + std::to_string(c.max_positions));
    for (int32_t t : s)
      if (t < 0 || t >= c.vocab_size)
        throw Error("OPT model: sequence " + std::to_string(i) + " has token id " + std::to_string(t) +
                    ", outside the vocabulary of " + std::to_string(c.vocab_size));
    T = std::max<int64_t>(T, static_cast<int64_t>(s.size()));
  }
  const int64_t B = static_cast<int64_t>(sequences.size());
  std::vector<std::vector<float>> out(sequences.size());
  if (B == 0) return out;
  torch::Tensor tokens = torch::full({B, T}, kPadId, torch::kLong);
  auto tok = tokens.accessor<int64_t, 2>();
  std::vector<int64_t> last;
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = sequences[static_cast<size_t>(b)];
    for (size_t t = 0; t < s.size(); ++t) tok[b][static_cast<int64_t>(t)] = s[t];
    last.push_back(b * T + static_cast<int64_t>(s.size()) - 1);
  }
  torch::Tensor lp;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor hidden;
    {
      AutocastGuard autocast(device_, use_bf16(device_));
      hidden = model_->hidden_states(tokens.to(device_));
    }
    const torch::Tensor h = hidden.to(torch::kFloat).reshape({B * T, hidden.size(2)})
                                .index_select(0, torch::tensor(last, torch::kLong).to(device_));
    lp = torch::log_softmax(model_->logits(h), -1).to(torch::kCPU, torch::kFloat).contiguous();
  }
  const float* v = lp.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) out[static_cast<size_t>(b)].assign(v + b * c.vocab_size, v + (b + 1) * c.vocab_size);
  return out;
}

namespace {
// Decoding a few tokens at a time on the CPU (generation's steps): bf16 autocast would cast
// every weight again at every step, which for small models is most of the step, so these
// steps run in fp32 (the cache converts once); and while a step's work is small, one thread
// runs its ~100 small operations faster than waking the others for each (quickstart model:
// 0.8 ms per token against 7 ms with bf16 on two threads).
constexpr size_t kDecodeTokens = 16;        ///< fewer new tokens than this: fp32
constexpr double kOneThreadWork = 3e7;      ///< new tokens x parameters below this: one thread

// Runs the enclosing scope on one intra-op thread, then restores the count.
class OneThread {
 public:
  explicit OneThread(bool on) : saved_(on ? at::get_num_threads() : 0) {
    if (saved_ > 1) at::set_num_threads(1);
  }
  ~OneThread() {
    if (saved_ > 1) at::set_num_threads(saved_);
  }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int saved_;
};

class OptContinuation : public Continuation {
 public:
  OptContinuation(OptLM model, torch::Device device) : model_(std::move(model)), device_(device) {
    for (const auto& p : model_->parameters()) params_ += static_cast<double>(p.numel());
  }
  std::vector<float> extend(const std::vector<int32_t>& tokens) override {
    const OptConfig& c = model_->config();
    if (tokens.empty()) throw Error("OPT model: Continuation::extend needs at least one token");
    const int64_t past = cache_.empty() ? 0 : cache_.front().length();
    if (past + static_cast<int64_t>(tokens.size()) > c.max_positions)
      throw Error("OPT model: the sequence would have " + std::to_string(past + static_cast<int64_t>(tokens.size())) +
                  " tokens, more than max_positions " + std::to_string(c.max_positions));
    std::vector<int64_t> ids;
    for (int32_t t : tokens) {
      if (t < 0 || t >= c.vocab_size)
        throw Error("OPT model: token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(c.vocab_size));
      ids.push_back(t);
    }
    torch::NoGradGuard no_grad;
    const bool decode = device_.is_cpu() && tokens.size() < kDecodeTokens;
    OneThread one(decode && static_cast<double>(tokens.size()) * params_ < kOneThreadWork);
    torch::Tensor h;
    {
      AutocastGuard autocast(device_, use_bf16(device_) && !decode);
      h = model_->hidden_states_cached(torch::tensor(ids, torch::kLong).unsqueeze(0).to(device_), cache_);
    }
    const torch::Tensor last = h[0][h.size(1) - 1].to(torch::kFloat).unsqueeze(0);
    const torch::Tensor lp = torch::log_softmax(model_->logits(last), -1).to(torch::kCPU, torch::kFloat).contiguous();
    return std::vector<float>(lp.data_ptr<float>(), lp.data_ptr<float>() + c.vocab_size);
  }

 private:
  OptLM model_;  // shares the loaded model's parameters
  torch::Device device_;
  std::vector<KVCache> cache_;
  double params_ = 0;
};
}  // namespace

std::unique_ptr<Continuation> OptLanguageModel::continuation() { return std::make_unique<OptContinuation>(model_, device_); }

std::vector<std::pair<size_t, size_t>> OptLanguageModel::plan_batches(
    const std::vector<std::vector<int32_t>>& sequences, const std::vector<size_t>& order, int64_t batch_tokens) {
  // order is longest first, so a batch [i, j) is padded to the length of its first sequence.
  // Minimise the padded tokens of all batches plus kBatchOverheadTokens per batch (the fixed
  // cost of a forward pass, in tokens): f[i] = min_j f[j] + (j - i) * len(i) + overhead.
  const int64_t overhead = kBatchOverheadTokens;
  const size_t n = order.size();
  std::vector<int64_t> f(n + 1, 0);
  std::vector<size_t> next(n + 1, n);
  for (size_t i = n; i-- > 0;) {
    const int64_t longest = static_cast<int64_t>(sequences[order[i]].size());
    const size_t rows = static_cast<size_t>(std::max<int64_t>(1, batch_tokens / longest));
    f[i] = std::numeric_limits<int64_t>::max();
    for (size_t j = i + 1; j <= std::min(n, i + rows); ++j) {
      const int64_t c = f[j] + static_cast<int64_t>(j - i) * longest + overhead;
      if (c < f[i]) {
        f[i] = c;
        next[i] = j;
      }
    }
  }
  std::vector<std::pair<size_t, size_t>> batches;
  for (size_t i = 0; i < n; i = next[i]) batches.emplace_back(i, next[i]);
  return batches;
}

void OptLanguageModel::score_batch(const std::vector<std::vector<int32_t>>& sequences,
                                   const std::vector<std::vector<uint8_t>>* wanted, const std::vector<size_t>& order, size_t begin, size_t end,
                                   std::vector<std::vector<float>>& out) {
  const int64_t B = static_cast<int64_t>(end - begin);
  const int64_t T = static_cast<int64_t>(sequences[order[begin]].size());
  // Right-padded token rows, the flat (row * T + t) index of every wanted scored position,
  // and its target token: the output layer runs only there.
  torch::Tensor tokens = torch::full({B, T}, kPadId, torch::kLong);
  auto tok = tokens.accessor<int64_t, 2>();
  std::vector<int64_t> rows, targets;
  for (int64_t b = 0; b < B; ++b) {
    const size_t i = order[begin + b];
    const auto& s = sequences[i];
    for (size_t t = 0; t < s.size(); ++t) tok[b][t] = s[t];
    for (size_t t = 0; t + 1 < s.size(); ++t) {
      if (wanted && !(*wanted)[i][t]) continue;
      rows.push_back(b * T + static_cast<int64_t>(t));
      targets.push_back(s[t + 1]);
    }
  }
  const int64_t n = static_cast<int64_t>(rows.size());
  torch::Tensor logp;
  {
    torch::NoGradGuard no_grad;
    torch::Tensor hidden;
    {
      // The transformer body may run in bf16; the tied head and log_softmax run in fp32, so
      // reported log-probabilities carry no bf16 rounding of the logits.
      AutocastGuard autocast(device_, use_bf16(device_));
      hidden = model_->hidden_states(tokens.to(device_));
    }
    const torch::Tensor flat = hidden.to(torch::kFloat).reshape({B * T, hidden.size(2)});
    const torch::Tensor row_idx = torch::tensor(rows, torch::kLong).to(device_);
    const torch::Tensor tgt = torch::tensor(targets, torch::kLong).to(device_);
    const int64_t chunk = std::max<int64_t>(1, kLogitElements / model_->config().vocab_size);
    std::vector<torch::Tensor> parts = {torch::empty({0}, torch::TensorOptions().device(device_))};
    for (int64_t r = 0; r < n; r += chunk) {
      const int64_t m = std::min(chunk, n - r);
      const torch::Tensor h = flat.index_select(0, row_idx.narrow(0, r, m));
      parts.push_back(target_log_probs(model_->logits(h), tgt.narrow(0, r, m)));
    }
    logp = torch::cat(parts).to(torch::kCPU, torch::kFloat).contiguous();
  }
  const float* v = logp.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const size_t i = order[begin + b];
    const size_t scored = sequences[i].size() - 1;
    if (!wanted) {
      out[i].assign(v, v + scored);
      v += scored;
      continue;
    }
    out[i].assign(scored, std::numeric_limits<float>::quiet_NaN());
    for (size_t t = 0; t < scored; ++t)
      if ((*wanted)[i][t]) out[i][t] = *v++;
  }
}

}  // namespace cbtm::models
