// Baseline "dense": one model, branched from the seed like every expert, trained on the
// whole training mix for the same total number of tokens as all experts together (k=1).
#include <filesystem>

#include "cbtm/baseline.h"
#include "cbtm/language_model.h"
#include "cbtm/plugin.h"
#include "cbtm/registry.h"
#include "cbtm/trainer.h"

namespace cbtm {

class DenseBaseline : public Baseline {
 public:
  struct Options {
    template <class V> void visit(V&) {}
  };
  explicit DenseBaseline(const Options&) {}

  TrainResult train(const BaselineContext& ctx) override {
    TrainJob job;
    job.name = "dense";
    job.init = ctx.seed_checkpoint;
    job.data = ctx.all_data;
    job.tokens = ctx.tokens;
    job.out_dir = ctx.dir;
    job.seed = ctx.seed;
    job.bos_id = ctx.bos_id;
    job.eos_id = ctx.eos_id;
    job.pad_id = ctx.pad_id;
    return ctx.trainer->train(job);
  }

  std::unique_ptr<LanguageModel> model(const BaselineContext& ctx) override {
    return load_language_model(*ctx.registry, (std::filesystem::path(ctx.dir) / "final").string());
  }
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::DenseBaseline>(
      "dense", "one model on the whole mix, same total tokens as all experts (k=1)"));
}
