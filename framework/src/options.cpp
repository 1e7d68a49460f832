#include "cbtm/options.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace cbtm {

void require_one_of(const std::string& value, std::initializer_list<const char*> allowed,
                    const char* key) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return;
    list += list.empty() ? a : std::string(" | ") + a;
  }
  throw OptionError(key, "'" + value + "' is not one of: " + list);
}

namespace detail {
namespace {

[[noreturn]] void bad(const ConfigNode& at, const YAML::Node& n, const std::string& key,
                      const char* expected) {
  std::string got = n.IsScalar() ? "'" + n.Scalar() + "'" : (n.IsMap() ? "a map" : "a list");
  throw Error(at.where(n) + ": " + at.key_path(key) + ": expected " + expected + ", got " + got);
}

template <class T>
void read_integer(const ConfigNode& at, const YAML::Node& n, const std::string& key, T& out) {
  if (!n.IsScalar()) bad(at, n, key, "an integer");
  // Accept 4e6 and 4_000_000 style too: parse as double when needed, require integrality.
  std::string s = n.Scalar();
  std::string clean;
  for (char c : s)
    if (c != '_') clean += c;
  try {
    size_t pos = 0;
    long double v = std::stold(clean, &pos);
    if (pos != clean.size() || std::floor(v) != v ||
        v < static_cast<long double>(std::numeric_limits<T>::lowest()) ||
        v > static_cast<long double>(std::numeric_limits<T>::max()))
      bad(at, n, key, "an integer");
    out = static_cast<T>(v);
  } catch (const std::logic_error&) {
    bad(at, n, key, "an integer");
  }
}

}  // namespace

void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, bool& out) {
  if (!n.IsScalar()) bad(at, n, key, "true or false");
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "yes" || s == "on" || s == "1") out = true;
  else if (s == "false" || s == "False" || s == "no" || s == "off" || s == "0") out = false;
  else bad(at, n, key, "true or false");
}
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, int& out) {
  read_integer(at, n, key, out);
}
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, int64_t& out) {
  read_integer(at, n, key, out);
}
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, uint64_t& out) {
  read_integer(at, n, key, out);
}
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, double& out) {
  if (!n.IsScalar()) bad(at, n, key, "a number");
  try {
    size_t pos = 0;
    out = std::stod(n.Scalar(), &pos);
    if (pos != n.Scalar().size()) bad(at, n, key, "a number");
  } catch (const std::logic_error&) {
    bad(at, n, key, "a number");
  }
}
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key,
                std::string& out) {
  if (!n.IsScalar()) bad(at, n, key, "a string");
  out = n.Scalar();
}

std::string shortest(double v) {
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  // "%g" writes 30 as "3e+01": plain digits read better, for magnitudes that have them
  if (s.find('e') != std::string::npos && std::isfinite(v) && std::fabs(v) >= 1e-4 && std::fabs(v) < 1e15) {
    for (int digits = 0; digits <= 20; ++digits) {
      std::snprintf(buf, sizeof buf, "%.*f", digits, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
    s = buf;
  }
  // Keep it a float for every YAML reader (YAML 1.1 ones such as PyYAML want a '.'):
  // "1" -> "1.0", "1e-06" -> "1.0e-06" (but not "inf" or "nan").
  const size_t e = s.find('e');
  if (s.find('.') == std::string::npos && s.find('n') == std::string::npos)
    s = e == std::string::npos ? s + ".0" : s.substr(0, e) + ".0" + s.substr(e);
  return s;
}

std::string render(const YAML::Node& n) {
  YAML::Emitter e;
  e.SetMapFormat(YAML::Flow);
  e.SetSeqFormat(YAML::Flow);
  e << n;
  return e.c_str();
}

void reject_unknown_keys(const ConfigNode& at, const std::set<std::string>& seen,
                         const std::string& owner) {
  if (!at.node || !at.node.IsMap()) return;
  for (auto it = at.node.begin(); it != at.node.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (key == "type" || seen.count(key)) continue;
    std::string known;
    for (const auto& k : seen) known += (known.empty() ? "" : ", ") + k;
    throw Error(at.where(it->first) + ": " + at.key_path(key) + ": unknown key for " + owner +
                " (known keys: " + (known.empty() ? "none" : known) + ")");
  }
}

void rethrow_option_error(const ConfigNode& at, const OptionError& e, const std::string& owner) {
  YAML::Node n = (at.node && at.node.IsMap()) ? at.node[e.key] : YAML::Node();
  throw Error(at.where(n ? n : at.node) + ": " + at.key_path(e.key) + " (" + owner +
              "): " + e.what());
}

}  // namespace detail
}  // namespace cbtm
