// Registers the `byte` tokenizer.
#include "byte_tokenizer.h"
#include "cbtm/plugin.h"

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::byte_tok::ByteTokenizer>(
      "byte", "fixed vocabulary of the 256 bytes (ids 4..259)"));
}
