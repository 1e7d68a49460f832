// The linear-decay schedule against hand-computed values of its formula.

#include "support/catch_torch.h"  // first: see the header
#include "lr_schedule.h"

TEST_CASE("lm lr schedule: linear decay to 0 without warmup (the paper)", "[lm_trainer]") {
  const cbtm::lm::LrSchedule s{1e-3, 0, 100};
  CHECK(s.at(0) == Approx(1e-3));
  CHECK(s.at(1) == Approx(9.9e-4));
  CHECK(s.at(50) == Approx(5e-4));
  CHECK(s.at(99) == Approx(1e-5));
  CHECK(s.at(100) == 0.0);
  CHECK(s.at(150) == 0.0);
}

TEST_CASE("lm lr schedule: linear warmup then linear decay", "[lm_trainer]") {
  const cbtm::lm::LrSchedule s{2e-3, 10, 110};
  CHECK(s.at(0) == Approx(2e-4));   // 2e-3 * 1/10
  CHECK(s.at(4) == Approx(1e-3));   // 2e-3 * 5/10
  CHECK(s.at(9) == Approx(2e-3));   // warmup ends at the peak
  CHECK(s.at(10) == Approx(2e-3));  // decay starts at the peak
  CHECK(s.at(60) == Approx(1e-3));  // half way through 100 decay steps
  CHECK(s.at(109) == Approx(2e-5));
  const cbtm::lm::LrSchedule one{1e-3, 0, 1};
  CHECK(one.at(0) == Approx(1e-3));
}
