// OPT checkpoints: Hugging Face layout, round trip, and errors on damaged files.
#include "support/catch_torch.h"  // first: see the header
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cbtm/fs.h"
#include "cbtm/tensor_file.h"
#include "opt/opt.h"
#include "opt_test_util.h"
#include "support/test_support.h"

using namespace cbtm;
using cbtm::models::OptConfig;
using cbtm::models::OptLM;
namespace fs = std::filesystem;

namespace {

OptLM make_model(uint64_t seed) {
  OptLM m(test::tiny_opt_config());
  m->init_weights(seed);
  m->eval();
  return m;
}

torch::Tensor batch_logits(OptLM m) {
  torch::NoGradGuard g;
  const torch::Tensor tokens = torch::arange(24, torch::kLong).remainder(37).view({2, 12});
  return m->forward(tokens);
}

/// Rewrites dir/model.safetensors with each tensor passed through `convert` (name, tensor)
/// -> (dtype, tensor or undefined to drop it); `extra` tensors are appended.
template <class F>
void rewrite_weights(const std::string& dir, F convert,
                     std::vector<std::pair<std::string, torch::Tensor>> extra = {}) {
  const TensorFile in = TensorFile::read(dir + "/model.safetensors");
  TensorFileWriter out;
  auto add = [&](const std::string& name, DType dt, torch::Tensor t) {
    t = t.contiguous();
    out.add(name, dt, t.sizes().vec(), t.data_ptr(), t.numel() * t.element_size());
  };
  for (const std::string& name : in.names()) {
    std::vector<float> v = in.f32(name);
    torch::Tensor t = torch::tensor(v).view(in.info(name).shape);
    auto [dtype, converted] = convert(name, t);
    if (converted.defined()) add(name, dtype, converted);
  }
  for (auto& [name, t] : extra) add(name, DType::F32, t);
  out.write(dir + "/model.safetensors");
}

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(read_file(path));
}

}  // namespace

TEST_CASE("save_checkpoint writes a Hugging Face OPT directory", "[opt][checkpoint]") {
  test::TempDir tmp("opt-ckpt");
  OptLM m = make_model(11);
  models::save_checkpoint(m, tmp / "ckpt", {{"step", 42}, {"note", "unit test"}});

  const nlohmann::json j = read_json(tmp / "ckpt/config.json");
  CHECK(j["model_type"] == "opt");
  CHECK(j["architectures"] == nlohmann::json::array({"OPTForCausalLM"}));
  CHECK(j["vocab_size"] == 40);
  CHECK(j["hidden_size"] == 16);
  CHECK(j["num_hidden_layers"] == 2);
  CHECK(j["num_attention_heads"] == 4);
  CHECK(j["ffn_dim"] == 24);
  CHECK(j["max_position_embeddings"] == 20);
  CHECK(j["word_embed_proj_dim"] == 16);
  CHECK(j["do_layer_norm_before"] == true);
  CHECK(j["activation_function"] == "relu");
  CHECK(j["tie_word_embeddings"] == true);
  CHECK(j["pad_token_id"] == 1);
  CHECK(j["eos_token_id"] == 2);
  CHECK(j["torch_dtype"] == "float32");
  const nlohmann::json& cb = j["cbtm"];
  CHECK(cb["format"] == "cbtm-checkpoint");
  CHECK(cb["format_version"] == 1);
  CHECK(cb["step"] == 42);
  CHECK(cb["note"] == "unit test");
  CHECK(cb["options"] == nlohmann::json({{"type", "opt"}, {"d_model", 16}, {"n_layers", 2},
                                          {"n_heads", 4}, {"d_ff", 24}, {"max_positions", 20},
                                          {"dropout", 0.1}, {"attention_dropout", 0.0},
                                          {"init_std", 0.02}, {"moe_experts", 0}, {"moe_every", 2},
                                          {"moe_top_k", 2}, {"moe_capacity_factor", 2.0},
                                          {"moe_aux_weight", 0.01}}));
  CHECK(models::read_checkpoint_extra(tmp / "ckpt") == cb);

  const TensorFile f = TensorFile::read(tmp / "ckpt/model.safetensors");
  CHECK(f.meta("format") == "pt");
  CHECK_FALSE(f.has("lm_head.weight"));
  size_t n = 0;
  for (const auto& p : m->named_parameters()) {
    const std::string key = std::string("model.decoder.") + p.key();
    REQUIRE(f.has(key));
    CHECK(f.info(key).dtype == DType::F32);
    CHECK(f.info(key).shape == p.value().sizes().vec());
    ++n;
  }
  CHECK(f.names().size() == n);
}

TEST_CASE("checkpoint round trip gives bit-identical logits", "[opt][checkpoint]") {
  test::TempDir tmp("opt-ckpt");
  OptLM m = make_model(12);
  models::save_checkpoint(m, tmp / "ckpt/");
  OptLM back = models::load_checkpoint(tmp / "ckpt");
  CHECK_FALSE(back->is_training());
  CHECK(torch::equal(batch_logits(m), batch_logits(back)));
  auto pb = back->named_parameters();
  for (const auto& p : m->named_parameters()) CHECK(torch::equal(p.value(), pb[p.key()]));
  const OptConfig c = models::read_config(tmp / "ckpt");
  CHECK(c.vocab_size == 40);
  CHECK(c.dropout == 0.1);

  SECTION("saving again replaces the directory atomically") {
    OptLM other = make_model(13);
    models::save_checkpoint(other, tmp / "ckpt");
    OptLM again = models::load_checkpoint(tmp / "ckpt");
    CHECK(torch::equal(batch_logits(other), batch_logits(again)));
    std::vector<std::string> entries;
    for (const auto& e : fs::directory_iterator(tmp.path())) entries.push_back(e.path().filename());
    CHECK(entries == std::vector<std::string>{"ckpt"});  // no temporaries left behind
  }
  SECTION("BF16 and F16 tensors are accepted, and a tied lm_head is ignored") {
    for (DType dt : {DType::BF16, DType::F16}) {
      const auto st = dt == DType::BF16 ? torch::kBFloat16 : torch::kHalf;
      models::save_checkpoint(m, tmp / "half");
      rewrite_weights(
          tmp / "half",
          [&](const std::string&, const torch::Tensor& t) { return std::make_pair(dt, t.to(st)); },
          {});
      OptLM h = models::load_checkpoint(tmp / "half");
      auto ph = h->named_parameters();
      for (const auto& p : m->named_parameters())
        CHECK(torch::equal(ph[p.key()], p.value().to(st).to(torch::kFloat)));
    }
    const torch::Tensor emb = m->named_parameters()["embed_tokens.weight"].detach().clone();
    rewrite_weights(
        tmp / "ckpt",
        [](const std::string&, const torch::Tensor& t) { return std::make_pair(DType::F32, t); },
        {{"lm_head.weight", emb}});
    CHECK(torch::equal(batch_logits(m), batch_logits(models::load_checkpoint(tmp / "ckpt"))));
    rewrite_weights(
        tmp / "ckpt",
        [](const std::string& name, const torch::Tensor& t) {
          return std::make_pair(DType::F32, name == "lm_head.weight" ? t + 1 : t);
        });
    CHECK_THROWS_WITH(models::load_checkpoint(tmp / "ckpt"), ContainsText("lm_head.weight"));
  }
}

TEST_CASE("damaged checkpoints are Errors naming the file", "[opt][checkpoint]") {
  test::TempDir tmp("opt-ckpt");
  OptLM m = make_model(14);
  const std::string dir = tmp / "ckpt";
  models::save_checkpoint(m, dir);
  const std::string weights = dir + "/model.safetensors";

  SECTION("truncated weights") {
    fs::resize_file(weights, fs::file_size(weights) - 100);
    CHECK_THROWS_WITH(models::load_checkpoint(dir),
                      ContainsText("truncated") && ContainsText("model.safetensors"));
  }
  SECTION("a corrupt header") {
    std::string bytes = read_file(weights);
    bytes[8] = '#';  // the header's JSON starts at byte 8
    test::write_text(weights, bytes);
    CHECK_THROWS_WITH(models::load_checkpoint(dir), ContainsText("model.safetensors"));
    bytes[0] = '\xff';  // a header length past the end of the file
    bytes[5] = '\x7f';
    test::write_text(weights, bytes);
    CHECK_THROWS_WITH(models::load_checkpoint(dir), ContainsText("model.safetensors"));
  }
  SECTION("a shape that disagrees with config.json") {
    nlohmann::json j = read_json(dir + "/config.json");
    j["ffn_dim"] = 32;
    test::write_text(dir + "/config.json", j.dump(2));
    CHECK_THROWS_WITH(models::load_checkpoint(dir),
                      ContainsText("model.safetensors") && ContainsText("fc1.weight") &&
                          ContainsText("[24, 16]"));
  }
  SECTION("a missing tensor") {
    rewrite_weights(dir, [](const std::string& name, const torch::Tensor& t) {
      return std::make_pair(DType::F32, name.find("layers.1.fc2.bias") != std::string::npos
                                            ? torch::Tensor()
                                            : t);
    });
    CHECK_THROWS_WITH(models::load_checkpoint(dir),
                      ContainsText("missing tensor 'model.decoder.layers.1.fc2.bias'"));
  }
  SECTION("an unexpected tensor") {
    rewrite_weights(
        dir, [](const std::string&, const torch::Tensor& t) { return std::make_pair(DType::F32, t); },
        {{"model.decoder.project_in.weight", torch::zeros({16, 16})}});
    CHECK_THROWS_WITH(models::load_checkpoint(dir), ContainsText("project_in"));
  }
  SECTION("config.json of another architecture or variant") {
    nlohmann::json j = read_json(dir + "/config.json");
    j["model_type"] = "gpt2";
    test::write_text(dir + "/config.json", j.dump());
    CHECK_THROWS_WITH(models::load_checkpoint(dir),
                      ContainsText("config.json") && ContainsText("gpt2"));
    j["model_type"] = "opt";
    j["do_layer_norm_before"] = false;
    test::write_text(dir + "/config.json", j.dump());
    CHECK_THROWS_WITH(models::load_checkpoint(dir), ContainsText("do_layer_norm_before"));
    j["do_layer_norm_before"] = true;
    j.erase("num_attention_heads");
    test::write_text(dir + "/config.json", j.dump());
    CHECK_THROWS_WITH(models::load_checkpoint(dir), ContainsText("num_attention_heads"));
    j["num_attention_heads"] = 3;
    test::write_text(dir + "/config.json", j.dump());
    CHECK_THROWS_WITH(models::load_checkpoint(dir), ContainsText("n_heads"));
  }
  SECTION("no checkpoint at all") {
    CHECK_THROWS_AS(models::load_checkpoint(tmp / "nothing"), Error);
  }
}
