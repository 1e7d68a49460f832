// OptLM's structure and behaviour: names, sizes, causality, padding, init, dropout, autocast.
#include "support/catch_torch.h"  // first: see the header
#include <algorithm>
#include <fstream>
#include <set>
#include <string>


#include "cbtm/runtime.h"
#include "opt/opt.h"
#include "opt_test_util.h"

using namespace cbtm;
using cbtm::models::OptConfig;
using cbtm::models::OptLM;

namespace {
std::vector<int64_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::Tensor t = torch::randint(vocab, {n}, g, torch::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
}
}  // namespace

TEST_CASE("OptLM parameters carry Hugging Face OPT names", "[opt]") {
  const OptConfig c = test::tiny_opt_config();
  OptLM m(c);
  std::set<std::string> want = {"embed_tokens.weight", "embed_positions.weight",
                                "final_layer_norm.weight", "final_layer_norm.bias"};
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string l = "layers." + std::to_string(i) + ".";
    for (const char* p : {"q_proj", "k_proj", "v_proj", "out_proj"})
      for (const char* wb : {".weight", ".bias"}) want.insert(l + "self_attn." + p + wb);
    for (const char* p : {"self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"})
      for (const char* wb : {".weight", ".bias"}) want.insert(l + p + wb);
  }
  std::set<std::string> got;
  for (const auto& p : m->named_parameters()) got.insert(p.key());
  CHECK(got == want);

  auto params = m->named_parameters();
  CHECK(params["embed_positions.weight"].sizes() == torch::IntArrayRef({c.max_positions + 2, 16}));
  CHECK(params["layers.1.fc1.weight"].sizes() == torch::IntArrayRef({24, 16}));
  CHECK(params["layers.1.fc2.weight"].sizes() == torch::IntArrayRef({16, 24}));
}

TEST_CASE("count_parameters matches the module and a hand count", "[opt]") {
  // V=40, d=16, ff=24, P=20, l=2: embeddings 40*16 + 22*16 = 992; per layer
  // 4*(256+16) + (384+24) + (384+16) + 4*16 = 1960; final LayerNorm 32.
  CHECK(models::count_parameters(test::tiny_opt_config()) == 992 + 2 * 1960 + 32);
  for (OptConfig c : {test::tiny_opt_config(), test::tiny_opt_config(97)}) {
    c.n_layers = 3;
    OptLM m(c);
    int64_t sum = 0;
    for (const auto& p : m->parameters()) sum += p.numel();
    CHECK(models::count_parameters(c) == sum);
  }
}

TEST_CASE("training_flops follows the paper's A.2 formula", "[opt]") {
  OptConfig c;
  c.vocab_size = 8192;
  c.d_model = 256;
  c.n_layers = 4;
  // 96 * 4 * 256^2 * 1e6 * (1 + 128/1536 + 8192/16384) = 2.5165824e13 * 19/12
  CHECK(models::training_flops(c, 128, 1000000) == Approx(3.9845888e13).epsilon(1e-12));
  // Linear in tokens: k experts on T/k tokens cost one model on T tokens.
  CHECK(4 * models::training_flops(c, 128, 250000) ==
        Approx(models::training_flops(c, 128, 1000000)).epsilon(1e-12));
}

TEST_CASE("model_flops_per_token counts every matmul of a training step", "[opt]") {
  OptConfig c;
  c.vocab_size = 8192;
  c.d_model = 512;
  c.n_layers = 8;
  c.d_ff = 2048;
  // weights: 8 * (4 * 512^2 + 2 * 512 * 2048) + 8192 * 512 = 29,360,128; 6x that plus
  // attention 12 * 8 * 512 * 512 = 25,165,824
  CHECK(models::model_flops_per_token(c, 512) == 6.0 * 29360128.0 + 25165824.0);
  // The same count as the forward pass's multiply-adds of one token, x2 (FMA) x3 (fwd + bwd):
  // q,k,v,o (4 d^2), fc1+fc2 (2 d d_ff), output projection V d, and per layer s d for the
  // scores plus s d for the values.
  const double fwd_macs = 8.0 * (4 * 512.0 * 512 + 2 * 512.0 * 2048 + 2 * 512.0 * 512) + 8192.0 * 512;
  CHECK(models::model_flops_per_token(c, 512) == 2 * 3 * fwd_macs);
}

TEST_CASE("OptConfig::validate rejects inconsistent sizes", "[opt]") {
  OptConfig c = test::tiny_opt_config();
  CHECK_NOTHROW(c.validate());
  c.n_heads = 5;
  CHECK_THROWS_AS(c.validate(), OptionError);
  c = test::tiny_opt_config();
  c.dropout = 1.0;
  CHECK_THROWS_AS(c.validate(), OptionError);
  c = test::tiny_opt_config();
  c.d_ff = 0;
  CHECK_THROWS_AS(c.validate(), OptionError);
  c = test::tiny_opt_config(0);
  CHECK_NOTHROW(c.validate());  // vocabulary not known yet
  CHECK_THROWS_AS(OptLM(c), Error);
}

TEST_CASE("OptLM is causal and ignores right padding", "[opt]") {
  const OptConfig c = test::tiny_opt_config();
  OptLM m(c);
  m->init_weights(3);
  m->eval();
  const std::vector<int64_t> a = random_tokens(12, c.vocab_size, 1);
  const torch::Tensor la = test::logits_of(m, a);
  REQUIRE(la.sizes() == torch::IntArrayRef({12, c.vocab_size}));

  SECTION("changing tokens after t leaves positions <= t unchanged") {
    for (int64_t t : {0, 4, 10}) {
      std::vector<int64_t> b = a;
      for (size_t i = t + 1; i < b.size(); ++i) b[i] = (b[i] + 7) % c.vocab_size;
      const torch::Tensor lb = test::logits_of(m, b);
      CHECK(test::max_abs_diff(la.narrow(0, 0, t + 1), lb.narrow(0, 0, t + 1)) < 1e-6);
      CHECK(test::max_abs_diff(la.narrow(0, t + 1, 11 - t), lb.narrow(0, t + 1, 11 - t)) > 1e-3);
    }
  }
  SECTION("right padding does not change the real positions") {
    const std::vector<int64_t> s = random_tokens(5, c.vocab_size, 2);
    std::vector<int64_t> padded = s;
    padded.resize(12, 1);
    torch::NoGradGuard g;
    const torch::Tensor batch = torch::stack({torch::tensor(a), torch::tensor(padded)});
    const torch::Tensor lb = m->forward(batch);
    CHECK(test::max_abs_diff(lb[0], la) < 1e-5);
    CHECK(test::max_abs_diff(lb[1].narrow(0, 0, 5), test::logits_of(m, s)) < 1e-5);
  }
  SECTION("sequences longer than max_positions are an Error") {
    CHECK_THROWS_AS(test::logits_of(m, random_tokens(c.max_positions + 1, c.vocab_size, 3)),
                    Error);
    CHECK_NOTHROW(test::logits_of(m, random_tokens(c.max_positions, c.vocab_size, 3)));
  }
}

TEST_CASE("init_weights is deterministic and follows OPT's initialisation", "[opt]") {
  OptConfig c = test::tiny_opt_config(500);
  c.d_model = 64;
  c.d_ff = 128;
  c.init_std = 0.05;
  OptLM a(c), b(c), other(c);
  a->init_weights(7);
  b->init_weights(7);
  other->init_weights(8);
  auto pa = a->named_parameters(), pb = b->named_parameters(), po = other->named_parameters();
  for (const auto& p : pa) {
    INFO(p.key());
    CHECK(torch::equal(p.value(), pb[p.key()]));
    const std::string& k = p.key();
    const bool is_norm = k.find("layer_norm") != std::string::npos;
    const bool is_bias = k.size() > 5 && k.compare(k.size() - 5, 5, ".bias") == 0;
    if (is_norm && !is_bias) {
      CHECK(torch::all(p.value() == 1).item<bool>());
    } else if (is_bias) {
      CHECK(torch::all(p.value() == 0).item<bool>());
    } else {
      CHECK_FALSE(torch::equal(p.value(), po[k]));
      CHECK(p.value().mean().item<double>() == Approx(0).margin(0.01));
      CHECK(p.value().std().item<double>() == Approx(0.05).epsilon(0.1));
    }
  }
}

TEST_CASE("dropout is active only in training mode", "[opt]") {
  const OptConfig c = test::tiny_opt_config();
  OptLM m(c);
  m->init_weights(1);
  const std::vector<int64_t> s = random_tokens(10, c.vocab_size, 4);
  m->train();
  const torch::Tensor t1 = test::logits_of(m, s), t2 = test::logits_of(m, s);
  CHECK(test::max_abs_diff(t1, t2) > 1e-4);
  m->eval();
  const torch::Tensor e1 = test::logits_of(m, s), e2 = test::logits_of(m, s);
  CHECK(torch::equal(e1, e2));

  OptConfig nodrop = c;
  nodrop.dropout = 0.0;
  OptLM n(nodrop);
  n->init_weights(1);
  n->train();
  const torch::Tensor n1 = test::logits_of(n, s);
  n->eval();
  CHECK(test::max_abs_diff(n1, test::logits_of(n, s)) < 1e-6);
  CHECK(test::max_abs_diff(n1, e1) < 1e-6);  // same weights, dropout aside
}

TEST_CASE("OptLM trains end to end and runs under bf16 autocast", "[opt]") {
  const OptConfig c = test::tiny_opt_config();
  OptLM m(c);
  m->init_weights(2);
  const torch::Tensor tokens = torch::tensor(random_tokens(24, c.vocab_size, 5)).view({2, 12});

  SECTION("every parameter gets a gradient") {
    m->train();
    const torch::Tensor logits = m->forward(tokens);
    const torch::Tensor loss = torch::cross_entropy_loss(
        logits.narrow(1, 0, 11).reshape({-1, c.vocab_size}), tokens.narrow(1, 1, 11).reshape(-1));
    loss.backward();
    for (const auto& p : m->named_parameters()) {
      INFO(p.key());
      REQUIRE(p.value().grad().defined());
      CHECK(p.value().grad().abs().sum().item<double>() > 0);
    }
  }
  SECTION("autocast gives bf16 logits close to fp32, and is undone by the guard") {
    m->eval();
    torch::NoGradGuard g;
    const torch::Tensor fp32 = m->forward(tokens);
    torch::Tensor bf16;
    {
      models::AutocastGuard autocast(torch::kCPU, true);
      bf16 = m->forward(tokens);
    }
    CHECK(bf16.scalar_type() == torch::kBFloat16);
    CHECK(test::max_abs_diff(bf16, fp32) < 0.05);
    CHECK(m->forward(tokens).scalar_type() == torch::kFloat);
    {
      models::AutocastGuard off(torch::kCPU, false);
      CHECK(m->forward(tokens).scalar_type() == torch::kFloat);
    }
  }
}

TEST_CASE("model_device follows runtime().device", "[opt]") {
  const std::string saved = runtime().device;
  runtime().device = "cpu";
  CHECK(models::model_device() == torch::Device(torch::kCPU));
  runtime().device = "auto";
  CHECK(models::model_device().is_cuda() == torch::cuda::is_available());
  runtime().device = "cuda";
  if (torch::cuda::is_available())
    CHECK(models::model_device().is_cuda());
  else
    CHECK_THROWS_WITH(models::model_device(), ContainsText("cuda"));
  runtime().device = saved;
  // an explicit device (runtime.expert_devices) wins over runtime().device
  runtime().device = "auto";
  CHECK(models::model_device("cpu") == torch::Device(torch::kCPU));
  const int64_t gpus = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  if (gpus > 0) CHECK(models::model_device("cuda:" + std::to_string(gpus - 1)) == torch::Device(torch::kCUDA, gpus - 1));
  CHECK_THROWS_WITH(models::model_device("cuda:" + std::to_string(gpus)),
                    ContainsText("cuda:" + std::to_string(gpus)) && ContainsText("sees " + std::to_string(gpus) + " CUDA device"));
  CHECK_THROWS_WITH(models::model_device("cuda:1x"), ContainsText("unknown device 'cuda:1x'"));
  CHECK_THROWS_WITH(models::model_device("tpu"), ContainsText("unknown device 'tpu'"));
  runtime().device = saved;
}

TEST_CASE("use_bf16: runtime().bf16 on CUDA and on CPUs with AVX-512 BW/VL/DQ only", "[opt]") {
  // Independent of the compiler builtin: the kernel's CPU flags.
  std::ifstream info("/proc/cpuinfo");
  std::string line, flags;
  while (std::getline(info, line))
    if (line.rfind("flags", 0) == 0) {
      flags = " " + line.substr(line.find(':') + 1) + " ";
      break;
    }
  if (!flags.empty()) {
    const auto has = [&](const char* f) { return flags.find(" " + std::string(f) + " ") != std::string::npos; };
    CHECK(models::cpu_has_fast_bf16() == (has("avx512bw") && has("avx512vl") && has("avx512dq")));
  }
  const bool saved = runtime().bf16;
  runtime().bf16 = true;
  CHECK(models::use_bf16(torch::kCPU) == models::cpu_has_fast_bf16());
  CHECK(models::use_bf16(torch::kCUDA));
  runtime().bf16 = false;
  CHECK_FALSE(models::use_bf16(torch::kCPU));
  CHECK_FALSE(models::use_bf16(torch::kCUDA));
  runtime().bf16 = saved;
}

TEST_CASE("OptLM::logits: one row (matrix-vector) equals the tied head of many", "[opt]") {
  const OptConfig c = test::tiny_opt_config();
  OptLM m(c);
  torch::manual_seed(3);
  const torch::Tensor h = torch::randn({5, c.d_model});
  const torch::Tensor many = m->logits(h);
  for (int64_t r = 0; r < 5; ++r) {
    const torch::Tensor one = m->logits(h.narrow(0, r, 1));
    REQUIRE(one.sizes() == torch::IntArrayRef({1, c.vocab_size}));
    CHECK((one[0] - many[r]).abs().max().item<float>() < 1e-5f);
  }
  const torch::Tensor want = torch::matmul(h, m->named_parameters()["embed_tokens.weight"].t());
  CHECK((many - want).abs().max().item<float>() < 1e-5f);
}
