#include "support/catch.h"

#include "cbtm/progress.h"

TEST_CASE("progress: human units and durations") {
  CHECK(cbtm::Progress::human(950) == "950");
  CHECK(cbtm::Progress::human(12345) == "12.3k");
  CHECK(cbtm::Progress::human(4e6) == "4.00M");
  CHECK(cbtm::Progress::human(2.5e9) == "2.50G");
  CHECK(cbtm::Progress::duration(5) == "5s");
  CHECK(cbtm::Progress::duration(86) == "1m26s");
  CHECK(cbtm::Progress::duration(7380) == "2h03m");
}
