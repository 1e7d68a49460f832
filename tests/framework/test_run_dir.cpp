#include "support/catch.h"

#include "cbtm/pipeline/run_dir.h"
#include "support/test_support.h"

TEST_CASE("run dir: finished stages are recognised by fingerprint") {
  cbtm::test::TempDir t("rundir");
  cbtm::RunDir d(t.path());
  CHECK_FALSE(d.finished("cluster", "f1", "k: 4\n"));
  d.finish("cluster", "f1", "k: 4\nseed: 0\n", {{"sizes", {1, 2}}});
  CHECK(d.finished("cluster", "f1", "k: 4\nseed: 0\n"));
  CHECK(d.record("cluster")["summary"]["sizes"][1] == 2);
  const std::string run_id = d.record("cluster")["run_id"];
  CHECK(run_id.size() == 16);
  // same config, other inputs: not finished (recompute), no error
  CHECK_FALSE(d.finished("cluster", "f2", "k: 4\nseed: 0\n"));
  // another config: an error naming the changed line and how to redo
  try {
    d.finished("cluster", "f3", "k: 8\nseed: 0\n");
    FAIL("expected an error");
  } catch (const cbtm::Error& e) {
    const std::string m = e.what();
    CHECK(m.find("was: k: 4") != std::string::npos);
    CHECK(m.find("now: k: 8") != std::string::npos);
    CHECK(m.find("--redo cluster") != std::string::npos);
  }
  d.finish("cluster", "f3", "k: 8\n", {});
  CHECK(d.record("cluster")["run_id"] != run_id);  // a new run id for dependants' fingerprints
  d.forget("cluster");
  CHECK(d.record("cluster").is_null());
}

TEST_CASE("run dir: fingerprints are stable hashes") {
  CHECK(cbtm::fingerprint("abc") == cbtm::fingerprint("abc"));
  CHECK(cbtm::fingerprint("abc") != cbtm::fingerprint("abd"));
  CHECK(cbtm::fingerprint("") == "cbf29ce484222325");  // FNV-1a offset basis
}

TEST_CASE("run dir: same_settings compares numbers as numbers and everything else exactly") {
  using cbtm::same_settings;
  CHECK(same_settings("a: 1\n", "a: 1\n"));
  // one build wrote %g, the next writes YAML 1.1 floats: the same settings
  CHECK(same_settings("seed_lm: {lr: 0.002, adam_eps: 1e-06, every: 3e+01}\nk: 4\n",
                      "seed_lm: {lr: 0.002, adam_eps: 1.0e-06, every: 30.0}\nk: 4\n"));
  CHECK(same_settings("l: [1e-06, 2]\n", "l: [1.0e-06, 2.0]\n"));
  CHECK_FALSE(same_settings("seed_lm: {lr: 0.002}\n", "seed_lm: {lr: 0.003}\n"));
  CHECK_FALSE(same_settings("a: {x: 1}\n", "a: {y: 1}\n"));
  CHECK_FALSE(same_settings("a: {x: 1}\n", "b: {x: 1}\n"));            // another key
  CHECK_FALSE(same_settings("a: text\n", "a: text2\n"));
  CHECK_FALSE(same_settings("a: 1\n", "a: 1\nb: 2\n"));                // a line more
  CHECK_FALSE(same_settings("a: [1, 2]\n", "a: [1, 2, 3]\n"));
  CHECK_FALSE(same_settings("a: {x: 1}\n", "a: [1]\n"));               // map vs list
}
