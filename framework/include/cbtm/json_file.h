#pragma once
/// \file json_file.h
/// Reading the JSON files of a run directory (records, manifest, results) with errors that
/// name the file.
#include <string>

#include <nlohmann/json.hpp>

namespace cbtm {

/// Parses the JSON file at `path`; Error naming it if it cannot be read or is not valid JSON.
nlohmann::json read_json_file(const std::string& path);

/// The manifest's checkpoint of expert j (manifest.json, `cbtm-manifest`): Error naming
/// `manifest_path` if the expert is missing or not trained yet.
std::string manifest_expert_checkpoint(const nlohmann::json& manifest, const std::string& manifest_path, size_t j);

}  // namespace cbtm
