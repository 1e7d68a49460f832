#pragma once
/// \file options.h
/// Options structs mirrored 1:1 in YAML.
///
/// Every component (and every framework section) declares its options as a plain struct
/// with defaults and a `visit` member that names each field and documents it:
///
/// \code
///   struct Options {
///     int dims = 100;
///     std::string normalize = "l2";
///     template <class V> void visit(V& v) {
///       v("dims", dims, "SVD components kept");
///       v("normalize", normalize, "row normaliser: l2 | standardize | none");
///     }
///     void validate() const {                          // optional
///       require(dims > 0, "dims", "must be positive");
///       require_one_of(normalize, {"l2", "standardize", "none"}, "normalize");
///     }
///   };
/// \endcode
///
/// From that one declaration the framework parses YAML (unknown keys and type errors name
/// file, line, key and plugin), fills defaults, emits the resolved config, and documents
/// the options in `cbtm plugins`. Supported field types: bool, int, int64_t, uint64_t,
/// double, std::string, std::vector of int / int64_t / double / std::string, and YAML::Node
/// (a raw sub-tree, e.g. a nested component such as `seed_lm.trainer`, resolved by its owner).
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "cbtm/config_node.h"
#include "cbtm/error.h"

namespace cbtm {

/// One documented option, as listed by `cbtm plugins`.
struct OptionInfo {
  std::string name;
  std::string type;           ///< "int", "float", "string", "bool", "list of int", ...
  std::string default_value;  ///< rendered as YAML
  std::string doc;
};

/// Throws OptionError unless value is one of `allowed`.
void require_one_of(const std::string& value, std::initializer_list<const char*> allowed,
                    const char* key);

namespace detail {
// Scalar conversion with messages naming the location; defined in options.cpp.
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, bool& out);
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, int& out);
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, int64_t& out);
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, uint64_t& out);
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key, double& out);
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key,
                std::string& out);
inline void read_value(const ConfigNode&, const YAML::Node& n, const std::string&,
                       YAML::Node& out) {
  out.reset(n);  // keep the parsed node (and its line marks) for the owner to resolve
}
template <class T>
void read_value(const ConfigNode& at, const YAML::Node& n, const std::string& key,
                std::vector<T>& out) {
  if (n.IsScalar()) {  // a single value is accepted where a list is expected
    T v{};
    read_value(at, n, key, v);
    out = {v};
    return;
  }
  if (!n.IsSequence()) throw Error(at.where(n) + ": " + at.key_path(key) + ": expected a list");
  out.clear();
  for (const auto& item : n) {
    T v{};
    read_value(at, item, key, v);
    out.push_back(v);
  }
}

template <class T> const char* type_name();
template <> inline const char* type_name<bool>() { return "bool"; }
template <> inline const char* type_name<int>() { return "int"; }
template <> inline const char* type_name<int64_t>() { return "int"; }
template <> inline const char* type_name<uint64_t>() { return "int"; }
template <> inline const char* type_name<double>() { return "float"; }
template <> inline const char* type_name<std::string>() { return "string"; }
template <> inline const char* type_name<YAML::Node>() { return "map"; }
template <class T> std::string type_name_of(const T*) { return type_name<T>(); }
template <class T> std::string type_name_of(const std::vector<T>*) {
  return std::string("list of ") + type_name<T>();
}

std::string render(const YAML::Node& n);  // one-line YAML
/// The shortest decimal text that reads back as exactly `v` ("0.1", not "0.10000000000000001").
std::string shortest(double v);
/// A YAML node for an option value (doubles in their shortest form).
template <class T> YAML::Node to_node(const T& v) { return YAML::Node(v); }
inline YAML::Node to_node(const double& v) { return YAML::Node(shortest(v)); }
inline YAML::Node to_node(const std::vector<double>& v) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (double x : v) n.push_back(shortest(x));
  return n;
}

struct Reader {
  const ConfigNode& at;
  std::set<std::string>& seen;
  template <class T> void operator()(const char* key, T& field, const char* /*doc*/) {
    seen.insert(key);
    YAML::Node n = at.node[key];
    if (n && !n.IsNull()) read_value(at, n, key, field);
  }
};
struct Emitter {
  YAML::Node& out;
  template <class T> void operator()(const char* key, T& field, const char* /*doc*/) {
    out[key] = to_node(field);
  }
};
struct Describer {
  std::vector<OptionInfo>& out;
  template <class T> void operator()(const char* key, T& field, const char* doc) {
    out.push_back({key, type_name_of(&field), render(to_node(field)), doc});
  }
};

template <class T, class = void> struct has_validate : std::false_type {};
template <class T>
struct has_validate<T, std::void_t<decltype(std::declval<const T&>().validate())>>
    : std::true_type {};

/// Throws an Error naming the first key of `at` that is not in `seen` (nor "type").
void reject_unknown_keys(const ConfigNode& at, const std::set<std::string>& seen,
                         const std::string& owner);
/// Rethrows an OptionError from validate() with location and key path.
[[noreturn]] void rethrow_option_error(const ConfigNode& at, const OptionError& e,
                                       const std::string& owner);
}  // namespace detail

/// Parses `at.node` (a map, or null for all defaults) into T. `owner` names the component in
/// messages, e.g. "embedder 'tfidf'". Unknown keys, wrong types and failed validation throw
/// Error with file, line and key path.
template <class T>
T parse_options(const ConfigNode& at, const std::string& owner) {
  T opts{};
  if (at.node && !at.node.IsNull() && !at.node.IsMap())
    throw Error(at.where() + ": " + (at.path.empty() ? std::string("config") : at.path) +
                ": expected a map of options for " + owner);
  std::set<std::string> seen;
  detail::Reader reader{at, seen};
  opts.visit(reader);
  detail::reject_unknown_keys(at, seen, owner);
  if constexpr (detail::has_validate<T>::value) {
    try {
      opts.validate();
    } catch (const OptionError& e) {
      detail::rethrow_option_error(at, e, owner);
    }
  }
  return opts;
}

/// The options as a YAML map with every field (defaults included), in declaration order.
template <class T>
YAML::Node emit_options(T opts) {
  YAML::Node out(YAML::NodeType::Map);
  detail::Emitter e{out};
  opts.visit(e);
  return out;
}

/// Name, type, default and documentation of every field of T.
template <class T>
std::vector<OptionInfo> describe_options() {
  T opts{};
  std::vector<OptionInfo> out;
  detail::Describer d{out};
  opts.visit(d);
  return out;
}

}  // namespace cbtm
