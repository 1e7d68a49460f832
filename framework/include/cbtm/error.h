#pragma once
/// \file error.h
/// User-facing errors. Everything a user can get wrong (a config key, a corpus line, a
/// truncated artifact) is reported by throwing cbtm::Error with a message that names the
/// file, key or line; the `cbtm` executable prints it and exits with status 2.
#include <stdexcept>
#include <string>

namespace cbtm {

/// An error caused by input (config, data, artifacts, plugins), not by a bug.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by an Options struct's validate(): names the offending key; the config layer
/// turns it into an Error carrying the file, line and full key path.
class OptionError : public std::runtime_error {
 public:
  OptionError(std::string key, const std::string& message)
      : std::runtime_error(message), key(std::move(key)) {}
  std::string key;
};

/// Throws OptionError(key, message) unless cond holds. For use in Options::validate().
inline void require(bool cond, const char* key, const std::string& message) {
  if (!cond) throw OptionError(key, message);
}

}  // namespace cbtm
