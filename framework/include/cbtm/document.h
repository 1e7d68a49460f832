#pragma once
/// \file document.h
/// One corpus document.
#include <map>
#include <string>

namespace cbtm {

struct Document {
  /// Stable id: the document's id field if it has one, else "<file stem>:<line>" (never an
  /// absolute path, so moving the data keeps every assignment valid).
  std::string id;
  std::string text;
  /// Other top-level string/number fields of the JSON object (e.g. "domain", "label").
  std::map<std::string, std::string> meta;

  /// meta[key] or "" when absent.
  const std::string& field(const std::string& key) const;
};

}  // namespace cbtm
