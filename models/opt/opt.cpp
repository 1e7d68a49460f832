// OptLM: embeddings, the stack of decoder layers, final LayerNorm, tied head.
#include "opt/opt.h"

#include <ATen/CPUGeneratorImpl.h>

#include "opt_layers.h"

namespace cbtm::models {

namespace {
constexpr int64_t kPositionOffset = 2;  // OPT's learned positions start at row 2

OptConfig checked(const OptConfig& c) {
  try {
    c.validate();
  } catch (const OptionError& e) {
    throw Error("OPT config: " + e.key + ": " + e.what());
  }
  if (c.vocab_size <= 0)
    throw Error("OPT config: vocab_size must be positive, got " + std::to_string(c.vocab_size));
  return c;
}
}  // namespace

OptLMImpl::OptLMImpl(const OptConfig& config) : config_(checked(config)) {
  const int64_t d = config_.d_model;
  embed_tokens_ = register_module("embed_tokens", torch::nn::Embedding(config_.vocab_size, d));
  embed_positions_ = register_module(
      "embed_positions", torch::nn::Embedding(config_.max_positions + kPositionOffset, d));
  auto layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.n_layers; ++i) {
    auto layer = std::make_shared<OptDecoderLayerImpl>(config_, config_.moe_layer(i));
    layers->push_back(layer);  // registered as layers.{i}
    layers_.push_back(layer);
  }
  final_layer_norm_ = register_module(
      "final_layer_norm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5).elementwise_affine(true)));
  init_weights(0);
}

torch::Tensor OptLMImpl::embed(const torch::Tensor& tokens, int64_t start) {
  if (tokens.dim() != 2)
    throw Error("OptLM: tokens must be [batch, time], got " + std::to_string(tokens.dim()) +
                " dimensions");
  const int64_t T = tokens.size(1);
  if (start + T > config_.max_positions)
    throw Error("OptLM: sequence of " + std::to_string(start + T) + " tokens exceeds max_positions " +
                std::to_string(config_.max_positions));
  const torch::Tensor positions = torch::arange(
      start + kPositionOffset, start + T + kPositionOffset,
      torch::TensorOptions().dtype(torch::kLong).device(tokens.device()));
  return torch::embedding(embed_tokens_->weight, tokens) +
         torch::embedding(embed_positions_->weight, positions);
}

torch::Tensor OptLMImpl::hidden_states(const torch::Tensor& tokens) {
  torch::Tensor x = embed(tokens);
  for (const auto& layer : layers_) x = layer->forward(x);
  return apply_layer_norm(final_layer_norm_, x);
}

torch::Tensor OptLMImpl::hidden_states_cached(const torch::Tensor& tokens, std::vector<KVCache>& cache) {
  if (cache.empty()) cache.resize(layers_.size());
  if (cache.size() != layers_.size())
    throw Error("OptLM: a cache of " + std::to_string(cache.size()) + " layers for a model of " +
                std::to_string(layers_.size()));
  torch::Tensor x = embed(tokens, cache.front().length());
  for (size_t i = 0; i < layers_.size(); ++i) x = layers_[i]->forward(x, &cache[i]);
  return apply_layer_norm(final_layer_norm_, x);
}

torch::Tensor OptLMImpl::layer_states(const torch::Tensor& tokens, int64_t layer) {
  if (layer < 0 || layer > config_.n_layers)
    throw Error("OptLM: layer " + std::to_string(layer) + " is outside [0, " +
                std::to_string(config_.n_layers) + "] (0: embeddings, " +
                std::to_string(config_.n_layers) + ": final LayerNorm output)");
  if (layer == config_.n_layers) return hidden_states(tokens);
  torch::Tensor x = embed(tokens);
  for (int64_t i = 0; i < layer; ++i) x = layers_[static_cast<size_t>(i)]->forward(x);
  return x;
}

torch::Tensor OptLMImpl::logits(const torch::Tensor& hidden) {
  // One row (a generation step): a matrix-vector product, which BLAS runs without first
  // packing the whole [vocab, d_model] weight as its matrix-matrix product does.
  if (hidden.dim() == 2 && hidden.size(0) == 1 && hidden.scalar_type() == embed_tokens_->weight.scalar_type())
    return torch::mv(embed_tokens_->weight, hidden[0]).unsqueeze(0);
  return torch::linear(hidden, embed_tokens_->weight);
}

torch::Tensor OptLMImpl::forward(const torch::Tensor& tokens) {
  return logits(hidden_states(tokens));
}

void OptLMImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto normal = [&](torch::Tensor& w) {
    // Drawn on the CPU so that a seed gives the same weights on every device.
    torch::Tensor cpu = torch::empty(w.sizes(), torch::kFloat);
    cpu.normal_(0.0, config_.init_std, gen);
    w.copy_(cpu);
  };
  // named_modules() lists modules in registration order, so the draws are deterministic.
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      normal(lin->weight);
      lin->bias.zero_();
    } else if (auto* emb = m->as<torch::nn::Embedding>()) {
      normal(emb->weight);
    } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    } else if (auto* moe = m->as<MoeFfnImpl>()) {
      normal(moe->gate);
      normal(moe->fc1_weight);
      moe->fc1_bias.zero_();
      normal(moe->fc2_weight);
      moe->fc2_bias.zero_();
    }
  }
}

torch::Tensor OptLMImpl::aux_loss() const {
  // the mean over the mixture layers (fairseq's default combination), so that moe_aux_weight
  // means the same whatever the number of mixture layers
  torch::Tensor total;
  int64_t n = 0;
  for (const auto& layer : layers_)
    if (layer->moe) {
      total = total.defined() ? total + layer->moe->last_aux_loss : layer->moe->last_aux_loss;
      ++n;
    }
  return total.defined() ? total / static_cast<double>(n) : torch::zeros({});
}

double OptLMImpl::dropped_fraction() const {
  double sum = 0;
  int n = 0;
  for (const auto& layer : layers_)
    if (layer->moe) {
      sum += layer->moe->last_dropped;
      ++n;
    }
  return n ? sum / n : 0.0;
}

void upcycle(OptLM& moe, OptLM& dense) {
  const OptConfig &m = moe->config(), &d = dense->config();
  if (m.vocab_size != d.vocab_size || m.d_model != d.d_model || m.n_layers != d.n_layers || m.n_heads != d.n_heads ||
      m.d_ff != d.d_ff || m.max_positions != d.max_positions)
    throw Error("upcycle: the mixture model's dimensions differ from the dense model's");
  if (m.moe_experts == 0) throw Error("upcycle: the target model has no mixture-of-experts blocks (moe_experts 0)");
  torch::NoGradGuard no_grad;
  auto target = moe->named_parameters();
  for (const auto& p : dense->named_parameters()) {
    if (auto* t = target.find(p.key())) {
      t->copy_(p.value());
      continue;
    }
    // fc1/fc2 of a block that became a mixture: copied into every expert below
  }
  for (size_t i = 0; i < moe->layers().size(); ++i) {
    const auto& ml = moe->layers()[i];
    if (!ml->moe) continue;
    const auto& dl = dense->layers()[i];
    ml->moe->upcycle_from(dl->fc1->weight, dl->fc1->bias, dl->fc2->weight, dl->fc2->bias);
  }
}

}  // namespace cbtm::models
