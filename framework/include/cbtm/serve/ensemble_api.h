#pragma once
/// \file ensemble_api.h
/// The JSON API of `cbtm serve` over a RunEnsemble:
///
///   GET  /health    -> {"status": "ok", "run", "ensemble", "router", "experts", ...} (HEAD too)
///   POST /score     {"text": S, "tokens": false}
///                   -> {"tokens", "nll", "ppl", "bits_per_byte", "mean_active_experts"
///                       (+ "token_logprobs", "token_pieces" when "tokens": true)}
///                   {"texts": [S, ...]} (1 to 256, scored as one evaluation)
///                   -> {"results": [one answer as above per text], "tokens", "nll", "ppl",
///                       "bits_per_byte" (over all of them)}
///   POST /generate  {"prompt": S, "max_tokens": 64, "temperature": 1.0, "top_p": 1.0, "seed": 0}
///                   -> {"text", "tokens", "stop_reason", "experts" (per token)}
///
/// Errors get {"error": message}: a body that is not a JSON object (numbers out of range
/// included), an unknown key, a key of the wrong type or out of range (400), an unknown path
/// (404), the wrong method (405, with an Allow header), a well-formed request the ensemble
/// cannot do (422: a prompt that leaves no room in the model's length), a call the ensemble
/// did not run or stopped because the server is shutting down (503: ShuttingDown) or a
/// generation stopped because its client hung up (503: GenerationCancelled; a generation is
/// given HttpRequest::client_gone as GenerateOptions::cancelled); anything else the ensemble
/// throws is an internal error (500, logged).
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/serve/http_server.h"
#include "cbtm/serve/run_ensemble.h"

namespace cbtm {

/// A well-formed request that the ensemble cannot do (e.g. a prompt longer than the model):
/// the API answers 422 with its message.
class UnprocessableRequest : public Error {
 public:
  using Error::Error;
};

/// What the API calls: a RunEnsemble's methods (tests substitute their own). Whatever they
/// throw other than UnprocessableRequest, ShuttingDown and GenerationCancelled is answered as
/// an internal error (500).
struct EnsembleBackend {
  std::function<nlohmann::json()> info;
  std::function<TextScore(const std::string&)> score;
  std::function<std::vector<TextScore>(const std::vector<std::string>&)> score_many;
  std::function<Generation(const std::string&, const GenerateOptions&)> generate;
};

/// The handler over `ens` (thread-safe; `ens` must outlive it). A prompt too long for the
/// model (RunEnsemble::generate's Error) becomes an UnprocessableRequest.
HttpHandler ensemble_api(RunEnsemble& ens);

/// The handler over any backend (thread-safe if the backend's functions are).
HttpHandler ensemble_api(EnsembleBackend backend);

}  // namespace cbtm
