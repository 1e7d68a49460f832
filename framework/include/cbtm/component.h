#pragma once
/// \file component.h
/// Base of everything a plugin creates. Each extension point (Embedder, Clusterer, Router,
/// Trainer, Baseline, Tokenizer, ModelArchitecture) derives from Component and declares its
/// kind as `static constexpr const char* kKind`.
namespace cbtm {

class Component {
 public:
  virtual ~Component();
};

}  // namespace cbtm
