// Registers the "lm" trainer (lm_trainer.h).
#include "cbtm/plugin.h"

#include "lm_trainer.h"

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::lm::LmTrainer>(
      "lm",
      "trains an OPT-style LM on token shards with the paper's recipe (Adam, linear decay, "
      "clipping, bf16), resumable and exactly reproducible"));
}
