#pragma once
/// \file matrix.h
/// A dense row-major float matrix: document embeddings, cluster centres, routing weights.
/// Deliberately torch-free so that the headers of embedders, clusterers and routers stay
/// cheap to compile; plugins convert to torch::Tensor internally where they need to.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cbtm {

struct Matrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;  ///< rows * cols values, row-major

  Matrix() = default;
  Matrix(int64_t r, int64_t c, float fill = 0.f)
      : rows(r), cols(c), data(static_cast<size_t>(r * c), fill) {}

  float* row(int64_t i) { return data.data() + i * cols; }
  const float* row(int64_t i) const { return data.data() + i * cols; }
  float& at(int64_t i, int64_t j) { return data[static_cast<size_t>(i * cols + j)]; }
  float at(int64_t i, int64_t j) const { return data[static_cast<size_t>(i * cols + j)]; }
  bool empty() const { return rows == 0; }
};

/// Squared Euclidean distance between two rows of length n.
inline float squared_distance(const float* a, const float* b, int64_t n) {
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

}  // namespace cbtm
