// OptLM against an independent float64 reference of OPT's forward pass
// (tests/models/golden/make_opt_golden.py -> tests/data/opt-tiny).

#include "support/catch_torch.h"  // first: see the header
#include "cbtm/tensor_file.h"
#include "opt/opt.h"
#include "opt_test_util.h"
#include "support/test_support.h"

using namespace cbtm;

TEST_CASE("OptLM reproduces the golden logits of a Hugging Face-layout checkpoint", "[opt][golden]") {
  const std::string dir = test::source_path("tests/data/opt-tiny");
  models::OptLM model = models::load_checkpoint(dir);
  const models::OptConfig& c = model->config();
  CHECK(c.vocab_size == 50);
  CHECK(c.d_model == 16);
  CHECK(c.n_layers == 2);
  CHECK(c.n_heads == 2);
  CHECK(c.d_ff == 32);
  CHECK(c.max_positions == 16);
  CHECK_FALSE(model->is_training());

  const TensorFile expected = TensorFile::read(dir + "/expected.safetensors");
  std::vector<std::vector<int64_t>> seqs;
  std::vector<torch::Tensor> want;
  for (int i = 0; i < 2; ++i) {
    seqs.push_back(expected.i64("tokens_" + std::to_string(i)));
    std::vector<float> v = expected.f32("logits_" + std::to_string(i));
    want.push_back(torch::tensor(v).view({static_cast<int64_t>(seqs.back().size()), 50}));
  }

  SECTION("one sequence at a time") {
    for (int i = 0; i < 2; ++i) {
      const torch::Tensor got = test::logits_of(model, seqs[i]);
      REQUIRE(got.sizes() == want[i].sizes());
      CHECK(test::max_abs_diff(got, want[i]) < 1e-4);
    }
  }
  SECTION("both in one right-padded batch") {
    const int64_t T = static_cast<int64_t>(seqs[0].size());
    const int64_t n1 = static_cast<int64_t>(seqs[1].size());
    std::vector<int64_t> padded = seqs[1];
    padded.resize(T, 1);
    torch::Tensor batch = torch::stack({torch::tensor(seqs[0]), torch::tensor(padded)});
    torch::NoGradGuard g;
    const torch::Tensor got = model->forward(batch);
    CHECK(test::max_abs_diff(got[0], want[0]) < 1e-4);
    CHECK(test::max_abs_diff(got[1].narrow(0, 0, n1), want[1]) < 1e-4);
  }
}
