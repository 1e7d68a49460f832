// Registers the `gpt2` tokenizer.
#include "cbtm/plugin.h"
#include "gpt2_tokenizer.h"

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::gpt2::Gpt2Tokenizer>(
      "gpt2", "pretrained GPT-2 / OPT byte-level BPE from tokenizer.json or vocab.json + merges.txt"));
}
