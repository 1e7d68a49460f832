#pragma once
/// \file results_table.h
/// Renders results.json as the plain-text tables `cbtm run` / `cbtm eval` print.
#include <string>

#include <nlohmann/json.hpp>

namespace cbtm {

/// The main table (one row per model: ppl, bits/byte, ratio to the dense baseline, experts
/// used) followed by a per-domain perplexity table when domains are present.
std::string format_results(const nlohmann::json& results);

}  // namespace cbtm
