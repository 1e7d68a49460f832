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
    auto layer = std::make_shared<OptDecoderLayerImpl>(config_);
    layers->push_back(layer);  // registered as layers.{i}
    layers_.push_back(layer);
  }
  final_layer_norm_ = register_module(
      "final_layer_norm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5).elementwise_affine(true)));
  init_weights(0);
}

torch::Tensor OptLMImpl::embed(const torch::Tensor& tokens) {
  if (tokens.dim() != 2)
    throw Error("OptLM: tokens must be [batch, time], got " + std::to_string(tokens.dim()) +
                " dimensions");
  const int64_t T = tokens.size(1);
  if (T > config_.max_positions)
    throw Error("OptLM: sequence of " + std::to_string(T) + " tokens exceeds max_positions " +
                std::to_string(config_.max_positions));
  const torch::Tensor positions = torch::arange(
      kPositionOffset, T + kPositionOffset,
      torch::TensorOptions().dtype(torch::kLong).device(tokens.device()));
  return torch::embedding(embed_tokens_->weight, tokens) +
         torch::embedding(embed_positions_->weight, positions);
}

torch::Tensor OptLMImpl::hidden_states(const torch::Tensor& tokens) {
  torch::Tensor x = embed(tokens);
  for (const auto& layer : layers_) x = layer->forward(x);
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
    }
  }
}

}  // namespace cbtm::models
