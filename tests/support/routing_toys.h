#pragma once
/// \file routing_toys.h
/// Toys for router tests: an embedder simple enough to compute eq. 3 by hand, and a clusterer
/// with given centres.
#include <cmath>
#include <string>
#include <vector>

#include "cbtm/clusterer.h"
#include "cbtm/embedder.h"

namespace cbtm::test {

/// h(text) = the counts of the letters a, b, c, l2-normalised (the zero vector for none). Its
/// context() is Embedder's default (re-embedding the text so far).
class LetterEmbedder : public Embedder {
 public:
  void fit(const std::vector<std::string>&) override {}
  Matrix embed(const std::vector<std::string>& texts) const override {
    Matrix m(static_cast<int64_t>(texts.size()), 3);
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto r = static_cast<int64_t>(i);
      for (char ch : texts[i])
        if (ch >= 'a' && ch <= 'c') m.at(r, ch - 'a') += 1;
      float n = 0;
      for (int j = 0; j < 3; ++j) n += m.at(r, j) * m.at(r, j);
      if (n > 0)
        for (int j = 0; j < 3; ++j) m.at(r, j) /= std::sqrt(n);
    }
    return m;
  }
  int64_t dim() const override { return 3; }
  void save(TensorFileWriter&, const std::string&) const override {}
  void load(const TensorFile&, const std::string&) override {}
};

/// A clusterer whose centres are given (row j = centre j).
class FixedCenters : public Clusterer {
 public:
  explicit FixedCenters(Matrix c) : c_(std::move(c)) {}
  void fit(const Matrix&) override {}
  int32_t k() const override { return static_cast<int32_t>(c_.rows); }
  const Matrix& centers() const override { return c_; }
  void save(TensorFileWriter&, const std::string&) const override {}
  void load(const TensorFile&, const std::string&) override {}

 private:
  Matrix c_;
};

}  // namespace cbtm::test
