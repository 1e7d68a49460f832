#include "support/catch.h"

#include <regex>

#include "cbtm/options.h"

using cbtm::ConfigNode;

namespace {
struct Opts {
  int dims = 100;
  double temperature = 0.1;
  bool flag = false;
  std::string mode = "l2";
  int64_t tokens = 5;
  std::vector<int> sizes = {1, 2};
  template <class V> void visit(V& v) {
    v("dims", dims, "components");
    v("temperature", temperature, "T");
    v("flag", flag, "a flag");
    v("mode", mode, "l2 | none");
    v("tokens", tokens, "budget");
    v("sizes", sizes, "list");
  }
  void validate() const {
    cbtm::require(dims > 0, "dims", "must be positive");
    cbtm::require_one_of(mode, {"l2", "none"}, "mode");
  }
};

ConfigNode node(const std::string& yaml) {
  ConfigNode n;
  n.node = YAML::Load(yaml);
  n.path = "embedder";
  n.file = "run.yaml";
  return n;
}

std::string error_of(const std::string& yaml) {
  try {
    cbtm::parse_options<Opts>(node(yaml), "embedder 'toy'");
  } catch (const cbtm::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("options: defaults when absent - values when present") {
  Opts o = cbtm::parse_options<Opts>(node("{type: toy}"), "embedder 'toy'");
  CHECK(o.dims == 100);
  CHECK(o.mode == "l2");
  o = cbtm::parse_options<Opts>(node("type: toy\ndims: 8\ntemperature: 0.5\nflag: true\nmode: none\ntokens: 4e6\nsizes: [3, 4, 5]"),
                                "embedder 'toy'");
  CHECK(o.dims == 8);
  CHECK(o.temperature == 0.5);
  CHECK(o.flag);
  CHECK(o.mode == "none");
  CHECK(o.tokens == 4000000);
  CHECK(o.sizes == std::vector<int>{3, 4, 5});
  // a null node means all defaults
  ConfigNode empty;
  CHECK(cbtm::parse_options<Opts>(empty, "x").dims == 100);
}

TEST_CASE("options: unknown key names the key - its line and the plugin") {
  const std::string e = error_of("type: toy\ndims: 8\ndimz: 9\n");
  CHECK(e.find("run.yaml:3:1") != std::string::npos);
  CHECK(e.find("embedder.dimz") != std::string::npos);
  CHECK(e.find("embedder 'toy'") != std::string::npos);
  CHECK(e.find("dims") != std::string::npos);  // lists the known keys
}

TEST_CASE("options: type errors and validation name the key and line") {
  std::string e = error_of("type: toy\n\ndims: many\n");
  CHECK(e.find("run.yaml:3:7") != std::string::npos);
  CHECK(e.find("embedder.dims") != std::string::npos);
  CHECK(e.find("integer") != std::string::npos);
  CHECK(error_of("dims: 2.5").find("integer") != std::string::npos);
  CHECK(error_of("flag: maybe").find("true or false") != std::string::npos);
  CHECK(error_of("sizes: {a: 1}").find("list") != std::string::npos);
  e = error_of("type: toy\ndims: -3\n");
  CHECK(e.find("run.yaml:2:7") != std::string::npos);
  CHECK(e.find("must be positive") != std::string::npos);
  CHECK(error_of("mode: cosine").find("'cosine' is not one of: l2 | none") != std::string::npos);
  CHECK(error_of("[1, 2]").find("expected a map") != std::string::npos);
}

TEST_CASE("options: emit round-trips and describe documents every field") {
  Opts o;
  o.dims = 7;
  o.temperature = 0.3;
  YAML::Node y = cbtm::emit_options(o);
  CHECK(y["dims"].as<int>() == 7);
  CHECK(y["temperature"].Scalar() == "0.3");  // shortest text, not 0.29999999999999999
  ConfigNode n;
  n.node = y;
  Opts back = cbtm::parse_options<Opts>(n, "x");
  CHECK(back.dims == 7);
  CHECK(back.temperature == 0.3);
  CHECK(back.sizes == o.sizes);
  auto info = cbtm::describe_options<Opts>();
  REQUIRE(info.size() == 6);
  CHECK(info[0].name == "dims");
  CHECK(info[0].type == "int");
  CHECK(info[0].default_value == "100");
  CHECK(info[1].default_value == "0.1");
  CHECK(info[5].type == "list of int");
  CHECK(info[5].default_value == "[1, 2]");
}

TEST_CASE("options: shortest double text reads back exactly") {
  for (double v : {0.1, 1e-6, 2e-4, 1.0, 3.0, 0.95, 1234567.125, 1.0 / 3.0}) {
    const std::string s = cbtm::detail::shortest(v);
    CHECK(std::stod(s) == v);
    CHECK(s.find_first_of(".eE") != std::string::npos);
  }
  CHECK(cbtm::detail::shortest(0.1) == "0.1");
  CHECK(cbtm::detail::shortest(2.0) == "2.0");
  // plain digits where %g would write an exponent, and always a '.' (YAML 1.1 readers such as
  // PyYAML take "3e+01" and "1e-06" for strings)
  CHECK(cbtm::detail::shortest(30.0) == "30.0");
  CHECK(cbtm::detail::shortest(1e-6) == "1.0e-06");
  CHECK(cbtm::detail::shortest(250000.0) == "250000.0");
  CHECK(cbtm::detail::shortest(1e20) == "1.0e+20");
  CHECK(cbtm::detail::shortest(-0.5) == "-0.5");
  for (double v : {30.0, 1e-6, 1e20, 12345678.5, 6e-5}) {
    const std::string s = cbtm::detail::shortest(v);
    CHECK(std::stod(s) == v);
    // the YAML 1.1 float pattern: digits, '.', digits, optional exponent with a sign
    CHECK(std::regex_match(s, std::regex(R"([-+]?[0-9]*\.[0-9]*([eE][-+][0-9]+)?)")));
  }
}
