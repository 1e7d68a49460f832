// The launcher's log tails (framework/src/pipeline/child_process.h): what `cbtm launch`
// prints of a running child's log every launch.progress_s.
#include "support/catch.h"

#include "pipeline/child_process.h"
#include "support/test_support.h"

using cbtm::test::TempDir;
using cbtm::test::write_text;

TEST_CASE("child logs: tail_lines and last_line - including an empty or missing log") {
  TempDir t("child-log");
  CHECK(cbtm::detail::tail_lines(t / "missing.log", 2) == "");
  write_text(t / "empty.log", "");  // a child polled before its first line (a suite crashed on this)
  CHECK(cbtm::detail::tail_lines(t / "empty.log", 2) == "");
  CHECK(cbtm::detail::last_line(t / "empty.log") == "");
  write_text(t / "blank.log", "\n\n");
  CHECK(cbtm::detail::last_line(t / "blank.log") == "");
  write_text(t / "a.log", "one\ntwo\nthree\n");
  CHECK(cbtm::detail::tail_lines(t / "a.log", 2) == "two\nthree");
  CHECK(cbtm::detail::tail_lines(t / "a.log", 5) == "one\ntwo\nthree");
  write_text(t / "p.log", "start\n 10% step 1\r 20% step 2\r");  // progress redrawn with \r
  CHECK(cbtm::detail::last_line(t / "p.log") == " 20% step 2");
}
