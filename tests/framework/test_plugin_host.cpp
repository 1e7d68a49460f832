#include "support/catch.h"

#include "cbtm/abi.h"
#include "cbtm/plugin_host.h"
#include "cbtm/router.h"
#include "support/test_support.h"

namespace {
std::string lib(const std::string& name) { return std::string(CBTM_TEST_PLUGIN_DIR) + "/libcbtm_test_" + name + ".so"; }
std::string load_error(cbtm::PluginHost& h, const std::string& path) {
  try {
    h.load(path);
  } catch (const cbtm::Error& e) {
    return e.what();
  }
  return "";
}
cbtm::ConfigNode yaml(const std::string& text) {
  cbtm::ConfigNode n;
  n.node = YAML::Load(text);
  n.path = "router";
  n.file = "t.yaml";
  return n;
}
}  // namespace

TEST_CASE("plugin host: built-in plugins register by kind and name") {
  cbtm::PluginHost& h = cbtm::test::plugins();
  CHECK(h.registry().has("router", "cluster_distance"));
  CHECK(h.registry().has("router", "uniform"));
  CHECK(h.registry().has("baseline", "dense"));
  for (const auto* p : h.registry().list()) {
    CHECK_FALSE(p->kind.empty());
    CHECK(p->library.find("libcbtm_") != std::string::npos);
  }
}

TEST_CASE("plugin host: an out-of-tree plugin loads and creates components from YAML") {
  cbtm::PluginHost h;
  h.load(lib("good_plugin"));
  h.load(lib("good_plugin"));  // loading twice is a no-op
  CHECK(h.libraries().size() == 1);
  auto r = h.registry().create<cbtm::Router>(yaml("{type: test_first, bonus: 5}"));
  r->bind({nullptr, nullptr, 3});
  cbtm::Matrix w = r->route({}, {"", "a", "b"});
  CHECK(w.rows == 3);
  CHECK(w.at(2, 0) == 1.f);
  CHECK(w.at(2, 1) == 0.f);
  // unknown option key -> error naming the key and the plugin
  try {
    h.registry().create<cbtm::Router>(yaml("{type: test_first, bonsu: 5}"));
    FAIL("expected an error");
  } catch (const cbtm::Error& e) {
    CHECK(std::string(e.what()).find("router.bonsu") != std::string::npos);
    CHECK(std::string(e.what()).find("router 'test_first'") != std::string::npos);
  }
}

TEST_CASE("plugin host: an unknown name lists what exists") {
  cbtm::PluginHost& h = cbtm::test::plugins();
  try {
    h.registry().create<cbtm::Router>(yaml("{type: nearest}"));
    FAIL("expected an error");
  } catch (const cbtm::Error& e) {
    const std::string m = e.what();
    CHECK(m.find("unknown router 'nearest'") != std::string::npos);
    CHECK(m.find("cluster_distance") != std::string::npos);
    CHECK(m.find("uniform") != std::string::npos);
  }
  try {
    h.registry().create<cbtm::Router>(yaml("{temperature: 1}"));
    FAIL("expected an error");
  } catch (const cbtm::Error& e) {
    CHECK(std::string(e.what()).find("missing `type:`") != std::string::npos);
  }
}

TEST_CASE("plugin host: ABI mismatch - non-plugins - missing files and duplicates fail clearly") {
  cbtm::PluginHost h;
  std::string e = load_error(h, lib("bad_abi_plugin"));
  CHECK(e.find("ABI version " + std::to_string(CBTM_PLUGIN_ABI_VERSION + 41)) != std::string::npos);
  CHECK(e.find("ABI version " + std::to_string(CBTM_PLUGIN_ABI_VERSION)) != std::string::npos);
  CHECK(e.find("rebuild") != std::string::npos);
  e = load_error(h, lib("not_a_plugin"));
  CHECK(e.find("is not a cbtm plugin") != std::string::npos);
  e = load_error(h, "/nonexistent/libcbtm_x.so");
  CHECK(e.find("does not exist") != std::string::npos);
  h.load_directory(CBTM_PLUGIN_DIR);
  e = load_error(h, lib("duplicate_plugin"));
  CHECK(e.find("duplicate plugin router 'uniform'") != std::string::npos);
  CHECK(h.registry().list("router").size() >= 2);
}
