#pragma once
/// \file ensemble_api.h
/// The JSON API of `cbtm serve` over a RunEnsemble:
///
///   GET  /health    -> {"status": "ok", "run", "ensemble", "router", "experts", ...}
///   POST /score     {"text": S, "tokens": false}
///                   -> {"tokens", "nll", "ppl", "bits_per_byte", "mean_active_experts"
///                       (+ "token_logprobs", "token_pieces" when "tokens": true)}
///                   {"texts": [S, ...]} (1 to 256, scored as one evaluation)
///                   -> {"results": [one answer as above per text], "tokens", "nll", "ppl",
///                       "bits_per_byte" (over all of them)}
///   POST /generate  {"prompt": S, "max_tokens": 64, "temperature": 1.0, "top_p": 1.0, "seed": 0}
///                   -> {"text", "tokens", "stop_reason", "experts" (per token)}
///
/// Bad requests get 4xx with {"error": message}: a body that is not a JSON object, an unknown
/// key, a key of the wrong type or out of range (400), an unknown path (404), the wrong
/// method (405).
#include "cbtm/serve/http_server.h"

namespace cbtm {

class RunEnsemble;

/// The handler (thread-safe; `ens` must outlive it).
HttpHandler ensemble_api(RunEnsemble& ens);

}  // namespace cbtm
