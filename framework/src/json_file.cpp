// JSON files of a run directory, read with errors naming the file (json_file.h).
#include "cbtm/json_file.h"

#include "cbtm/error.h"
#include "cbtm/fs.h"

namespace cbtm {

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
}

std::string manifest_expert_checkpoint(const nlohmann::json& manifest, const std::string& manifest_path, size_t j) {
  if (!manifest.is_object() || !manifest.contains("experts") || !manifest["experts"].is_array() ||
      j >= manifest["experts"].size())
    throw Error(manifest_path + ": lists no expert " + std::to_string(j));
  const nlohmann::json& e = manifest["experts"][j];
  if (!e.is_object() || !e.value("trained", false) || !e.contains("checkpoint") || !e["checkpoint"].is_string())
    throw Error(manifest_path + ": expert " + std::to_string(j) +
                " is not trained yet (no checkpoint); finish the run (cbtm run / cbtm launch) first");
  return e["checkpoint"].get<std::string>();
}

}  // namespace cbtm
