#pragma once
/// \file centroid_clusterer.h
/// Base of the clusterers whose fitted state is k centres (balanced_kmeans, kmeans,
/// random): k(), centers(), a checked greedy assign(), and save/load.
///
/// Saved tensors (prefix "clusterer" for example):
///   clusterer.centers          F32 [k, dim]
///   clusterer.k                I32 [1]
///   clusterer.plugin.bytes/.offsets   the plugin name that fitted them (add_strings)
/// plus whatever save_extra() adds. load() checks that the plugin name and k match this
/// object and that the centres are finite, and throws cbtm::Error naming the file otherwise.
#include <cstdint>
#include <string>

#include "cbtm/clusterer.h"
#include "cbtm/matrix.h"

namespace cbtm::kmeans {

class CentroidClusterer : public Clusterer {
 public:
  /// `plugin` is the registered name, used in messages and artifacts.
  CentroidClusterer(std::string plugin, int32_t k);

  int32_t k() const override { return k_; }
  /// k x dim after fit() or load(); empty before.
  const Matrix& centers() const override { return centers_; }
  /// Nearest centre (nearest_centers) after checking that the centres exist and that x has
  /// their dimension and finite values.
  Assignment assign(const Matrix& x) const override;
  void save(TensorFileWriter& out, const std::string& prefix) const override;
  void load(const TensorFile& in, const std::string& prefix) override;

  const std::string& plugin() const { return plugin_; }

 protected:
  /// "clusterer '<plugin>'", for messages.
  std::string owner() const;
  /// Throws Error unless fitted, then checks x (checks.h).
  void check_assignable(const Matrix& x) const;
  void set_centers(Matrix c) { centers_ = std::move(c); }
  /// Extra state of a subclass, saved and loaded under the same prefix.
  virtual void save_extra(TensorFileWriter&, const std::string&) const {}
  virtual void load_extra(const TensorFile&, const std::string&) {}

 private:
  std::string plugin_;
  int32_t k_;
  Matrix centers_;
};

}  // namespace cbtm::kmeans
