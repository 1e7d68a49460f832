#include "support/catch.h"

#include "cbtm/router.h"
#include "support/test_support.h"

TEST_CASE("uniform router: every expert gets 1/K everywhere") {
  cbtm::ConfigNode n;
  n.node = YAML::Load("{type: uniform}");
  auto r = cbtm::test::plugins().registry().create<cbtm::Router>(n);
  r->bind({nullptr, nullptr, 4});
  const cbtm::Matrix w = r->route({}, {"", "a", "b"});
  REQUIRE(w.rows == 3);
  REQUIRE(w.cols == 4);
  for (float v : w.data) CHECK(v == 0.25f);
}
