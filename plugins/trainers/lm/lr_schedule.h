#pragma once
/// \file lr_schedule.h
/// The paper's learning-rate schedule: linear decay from the peak to 0 over the run, after
/// an optional linear warmup (the paper uses none). LibTorch's C++ API has no such
/// scheduler; the trainer sets every parameter group's lr to `at(step)` before each update.
///
///   warmup (s < W):  lr(s) = peak * (s + 1) / W
///   decay  (s >= W): lr(s) = peak * (1 - (s - W) / (S - W))
///
/// for the 0-based update index s of S updates (fairseq's polynomial_decay, power 1, end 0):
/// the first decaying update uses the peak, the last uses peak / (S - W), and 0 is reached
/// one step after the end.
#include <algorithm>
#include <cstdint>

namespace cbtm::lm {

struct LrSchedule {
  double peak = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  /// The learning rate of update `step` (0-based).
  double at(int64_t step) const {
    if (step < warmup_steps) return peak * static_cast<double>(step + 1) / warmup_steps;
    const int64_t decay = std::max<int64_t>(1, total_steps - warmup_steps);
    const double left = 1.0 - static_cast<double>(step - warmup_steps) / decay;
    return peak * std::max(0.0, left);
  }
};

}  // namespace cbtm::lm
