// The "opt" model architecture: fresh checkpoints and scoring LanguageModels for OptLM.
#include <memory>

#include "cbtm/language_model.h"
#include "cbtm/plugin.h"
#include "opt/opt.h"
#include "opt_language_model.h"

namespace cbtm::models {
namespace {

class OptArchitecture : public ModelArchitecture {
 public:
  using Options = OptConfig;  // vocab_size comes from the tokenizer, not the YAML
  explicit OptArchitecture(const Options& options) : options_(options) {}

  void init_checkpoint(const std::string& dir, int32_t vocab_size,
                       uint64_t seed) const override {
    OptLM model(with_vocab(vocab_size));
    model->init_weights(seed);
    save_checkpoint(model, dir, {{"init_seed", seed}, {"tokens_trained", 0}});
  }

  std::unique_ptr<LanguageModel> load(const std::string& dir) const override {
    return std::make_unique<OptLanguageModel>(load_checkpoint(dir), model_device());
  }
  std::unique_ptr<LanguageModel> load_on(const std::string& dir, const std::string& device) const override {
    const torch::Device d = model_device(device);  // checked before the checkpoint is read
    return std::make_unique<OptLanguageModel>(load_checkpoint(dir), d);
  }

  int64_t parameters(int32_t vocab_size) const override {
    return count_parameters(with_vocab(vocab_size));
  }

 private:
  OptConfig with_vocab(int32_t vocab_size) const {
    if (vocab_size <= 0)
      throw Error("model 'opt': vocabulary size must be positive, got " +
                  std::to_string(vocab_size));
    OptConfig c = options_;
    c.vocab_size = vocab_size;
    return c;
  }

  OptConfig options_;
};

}  // namespace
}  // namespace cbtm::models

CBTM_PLUGIN_LIBRARY(registry) {
  registry.add(cbtm::make_plugin<cbtm::models::OptArchitecture>(
      "opt", "OPT-style decoder-only transformer (pre-LN, ReLU FFN, tied embeddings)"));
}
