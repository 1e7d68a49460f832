// Baseline "moe": sparse upcycling (Komatsuzaki et al. 2022), the C-BTM paper's MoE baseline.
// The seed LM becomes a mixture-of-experts model -- every `every`-th FFN (blocks every-1,
// 2 every-1, ...) turns into `experts` copies of itself behind a new token router (top_k
// routing with a capacity factor and the load-balancing loss; models/opt/moe_ffn.h) -- which is
// then trained on the whole mix for the same total tokens as all C-BTM experts together.
//
//   baselines:
//     - {type: moe, experts: 8, every: 2, top_k: 2, capacity_factor: 2.0, aux_weight: 0.01}
#include <filesystem>

#include <spdlog/spdlog.h>

#include "cbtm/baseline.h"
#include "cbtm/language_model.h"
#include "cbtm/plugin.h"
#include "cbtm/registry.h"
#include "cbtm/runtime.h"
#include "cbtm/trainer.h"
#include "opt/opt.h"

namespace fs = std::filesystem;

namespace cbtm {

class MoeBaseline : public Baseline {
 public:
  struct Options {
    int64_t experts = 8;
    int64_t every = 2;
    int64_t top_k = 2;
    double capacity_factor = 2.0;
    double aux_weight = 0.01;
    double router_init_std = 0.02;
    double lr = 0;

    template <class V> void visit(V& v) {
      v("experts", experts, "experts E per mixture-of-experts FFN (>= 2)");
      v("every", every, "every N-th block's FFN becomes a mixture (2: every other, as in the paper)");
      v("top_k", top_k, "experts per token (in [1, experts])");
      v("capacity_factor", capacity_factor,
        "expert capacity = ceil(factor x tokens x top_k / experts) per forward pass in training (1 with top-2 is "
        "GShard's 2N/E); the rest is dropped and the token's weights renormalised; none at evaluation");
      v("aux_weight", aux_weight, "weight of the load-balancing loss (the mean over the mixture blocks)");
      v("router_init_std", router_init_std, "std of the new routers' normal initialisation");
      v("lr", lr,
        "peak learning rate of the MoE's training (0: branch.trainer's); the paper trained its MoE at a tenth of "
        "the dense rate, higher rates diverging");
    }
    void validate() const {
      require(experts >= 2, "experts", "must be >= 2, got " + std::to_string(experts));
      require(every >= 1, "every", "must be >= 1");
      require(top_k >= 1 && top_k <= experts, "top_k", "must be in [1, experts]");
      require(capacity_factor > 0, "capacity_factor", "must be positive");
      require(aux_weight >= 0, "aux_weight", "must be >= 0");
      require(router_init_std > 0, "router_init_std", "must be positive");
      require(lr >= 0, "lr", "must be >= 0 (0: the branch trainer's)");
    }
  };
  explicit MoeBaseline(const Options& o) : o_(o) {}

  TrainResult train(const BaselineContext& ctx) override {
    // The lead upcycles into the baseline's folder (the pipeline cleared it if it held another
    // attempt). Data-parallel ranks > 0 upcycle too (same seed: the same weights), each into a
    // folder of its own beside it, always afresh: the lead may be clearing the baseline's folder
    // while they start.
    const int rank = data_parallel_rank();
    const std::string upcycled =
        rank == 0 ? (fs::path(ctx.dir) / "upcycled").string() : ctx.dir + ".upcycled-rank" + std::to_string(rank);
    if (rank != 0) fs::remove_all(upcycled);
    if (!fs::exists(fs::path(upcycled) / "config.json")) {
      models::OptLM dense = models::load_checkpoint(ctx.seed_checkpoint);
      models::OptConfig c = dense->config();
      if (c.moe_experts > 0) throw Error("baseline moe: the seed " + ctx.seed_checkpoint + " is already a mixture of experts");
      c.moe_experts = o_.experts;
      c.moe_every = o_.every;
      c.moe_top_k = o_.top_k;
      c.moe_capacity_factor = o_.capacity_factor;
      c.moe_aux_weight = o_.aux_weight;
      c.init_std = o_.router_init_std;  // the routers' draw; every other weight comes from the seed
      models::OptLM moe(c);
      moe->init_weights(ctx.seed);
      models::upcycle(moe, dense);
      const auto seed_config = dense->config();
      spdlog::info("[moe] upcycled {} ({} parameters) into {} experts every {} blocks, top-{}: {} parameters",
                   ctx.seed_checkpoint, models::count_parameters(seed_config), c.moe_experts, c.moe_every, c.moe_top_k,
                   models::count_parameters(c));
      save_checkpoint(moe, upcycled, {{"upcycled_from", ctx.seed_checkpoint}});
    }
    TrainJob job;
    job.name = "moe";
    job.init = upcycled;
    job.data = ctx.all_data;
    job.tokens = ctx.tokens;
    job.out_dir = ctx.dir;
    job.seed = ctx.seed;
    job.bos_id = ctx.bos_id;
    job.eos_id = ctx.eos_id;
    job.pad_id = ctx.pad_id;
    // lr: the branch phase's trainer with its learning rate replaced
    std::unique_ptr<Trainer> own;
    Trainer* trainer = ctx.trainer;
    if (o_.lr > 0) {
      if (!ctx.registry || !ctx.trainer_config.node)
        throw Error("baseline moe: lr is set but the pipeline gave no trainer section to change");
      ConfigNode n = ctx.trainer_config;
      n.node = YAML::Clone(ctx.trainer_config.node);
      n.node["lr"] = o_.lr;
      own = ctx.registry->create<Trainer>(n);
      trainer = own.get();
    }
    TrainResult r = trainer->train(job);
    if (rank != 0) fs::remove_all(upcycled);
    return r;
  }

  std::unique_ptr<LanguageModel> model(const BaselineContext& ctx) override {
    return load_language_model(*ctx.registry, (fs::path(ctx.dir) / "final").string());
  }

 private:
  Options o_;
};

}  // namespace cbtm

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::MoeBaseline>(
      "moe", "sparse-upcycled mixture of experts from the seed (every other FFN -> E experts, top-2), same total tokens"));
}
