// Registers the `bpe` tokenizer.
#include "bpe_tokenizer.h"
#include "cbtm/plugin.h"

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::bpe::BpeTokenizer>(
      "bpe", "GPT-2-style byte-level BPE trained on the corpus sample"));
}
