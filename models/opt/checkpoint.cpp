// OPT checkpoints in Hugging Face layout: config.json + model.safetensors.
#include <filesystem>
#include <set>
#include <sstream>

#include "cbtm/fs.h"
#include "cbtm/tensor_file.h"
#include "opt/opt.h"

namespace fs = std::filesystem;

namespace cbtm::models {

namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kWeightsFile = "model.safetensors";

/// The OptConfig YAML options, as stored under cbtm.options (parseable by the "opt" plugin).
struct JsonEmitter {
  nlohmann::json& out;
  template <class T> void operator()(const char* key, T& field, const char*) { out[key] = field; }
};

nlohmann::json hf_config(const OptConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  j["model_type"] = "opt";
  j["architectures"] = {"OPTForCausalLM"};
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.d_model;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["ffn_dim"] = c.d_ff;
  j["max_position_embeddings"] = c.max_positions;
  j["word_embed_proj_dim"] = c.d_model;
  j["do_layer_norm_before"] = true;
  j["dropout"] = c.dropout;
  j["attention_dropout"] = c.attention_dropout;
  j["activation_dropout"] = 0.0;
  j["activation_function"] = "relu";
  j["layerdrop"] = 0.0;
  j["init_std"] = c.init_std;
  j["enable_bias"] = true;
  j["layer_norm_elementwise_affine"] = true;
  j["tie_word_embeddings"] = true;
  // OPT's ids; save_checkpoint writes the run tokenizer's
  j["bos_token_id"] = 2;
  j["eos_token_id"] = 2;
  j["pad_token_id"] = 1;
  j["torch_dtype"] = "float32";
  if (c.moe_experts > 0) {  // cbtm's mixture-of-experts blocks (transformers cannot open these)
    j["architectures"] = {"CbtmOptMoeForCausalLM"};
    j["moe_num_experts"] = c.moe_experts;
    j["moe_every"] = c.moe_every;
    j["moe_top_k"] = c.moe_top_k;
    j["moe_capacity_factor"] = c.moe_capacity_factor;
    j["moe_aux_weight"] = c.moe_aux_weight;
  }
  return j;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

/// `dir` without trailing separators, so that temporary siblings land beside it.
std::string clean_dir(const std::string& dir) {
  std::string d = fs::path(dir).lexically_normal().string();
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

nlohmann::json read_config_json(const std::string& dir) {
  const std::string path = (fs::path(dir) / kConfigFile).string();
  if (!fs::exists(path)) throw Error("checkpoint " + dir + ": no " + kConfigFile);
  try {
    nlohmann::json j = nlohmann::json::parse(read_file(path));
    if (!j.is_object()) throw Error(path + ": expected a JSON object");
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

// ---- config ------------------------------------------------------------------------

OptConfig read_config(const std::string& dir) {
  const nlohmann::json j = read_config_json(dir);
  const std::string path = (fs::path(dir) / kConfigFile).string();
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) throw Error(path + ": missing key '" + key + "'");
    return j.at(key);
  };
  // A key describing a variant OptLM does not implement must have OptLM's value.
  auto expect = [&](const char* key, const nlohmann::json& value) {
    if (j.contains(key) && !j.at(key).is_null() && j.at(key) != value)
      throw Error(path + ": " + key + " = " + j.at(key).dump() + " is not supported (expected " +
                  value.dump() + ")");
  };
  OptConfig c;
  try {
    const std::string type = need("model_type").get<std::string>();
    if (type != "opt")
      throw Error(path + ": model_type is '" + type + "', not an OPT checkpoint ('opt')");
    c.vocab_size = need("vocab_size").get<int64_t>();
    c.d_model = need("hidden_size").get<int64_t>();
    c.n_layers = need("num_hidden_layers").get<int64_t>();
    c.n_heads = need("num_attention_heads").get<int64_t>();
    c.d_ff = need("ffn_dim").get<int64_t>();
    c.max_positions = need("max_position_embeddings").get<int64_t>();
    c.dropout = j.value("dropout", c.dropout);
    c.attention_dropout = j.value("attention_dropout", c.attention_dropout);
    c.init_std = j.value("init_std", c.init_std);
    c.moe_experts = j.value("moe_num_experts", c.moe_experts);
    c.moe_every = j.value("moe_every", c.moe_every);
    c.moe_top_k = j.value("moe_top_k", c.moe_top_k);
    c.moe_capacity_factor = j.value("moe_capacity_factor", c.moe_capacity_factor);
    c.moe_aux_weight = j.value("moe_aux_weight", c.moe_aux_weight);
    expect("do_layer_norm_before", true);
    expect("word_embed_proj_dim", c.d_model);
    expect("activation_function", "relu");
    expect("enable_bias", true);
    expect("layer_norm_elementwise_affine", true);
    expect("tie_word_embeddings", true);
    expect("_remove_final_layer_norm", false);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": " + e.what());
  }
  try {
    c.validate();
  } catch (const OptionError& e) {
    throw Error(path + ": " + e.key + ": " + e.what());
  }
  if (c.vocab_size <= 0) throw Error(path + ": vocab_size must be positive");
  return c;
}

nlohmann::json read_checkpoint_extra(const std::string& dir) {
  const nlohmann::json j = read_config_json(dir);
  if (j.contains("cbtm") && j.at("cbtm").is_object()) return j.at("cbtm");
  return nlohmann::json::object();
}

// ---- save --------------------------------------------------------------------------

void save_checkpoint(OptLM& model, const std::string& dir, const nlohmann::json& extra,
                     std::array<int32_t, 3> token_ids) {
  if (!extra.is_object()) throw Error("save_checkpoint(" + dir + "): extra must be a JSON object");
  const OptConfig& c = model->config();
  nlohmann::json config = hf_config(c);
  config["bos_token_id"] = token_ids[0];
  config["eos_token_id"] = token_ids[1];
  config["pad_token_id"] = token_ids[2];
  nlohmann::json options = nlohmann::json::object();
  options["type"] = "opt";
  JsonEmitter emit{options};
  OptConfig copy = c;
  copy.visit(emit);
  nlohmann::json cbtm_section = extra;
  cbtm_section["format"] = "cbtm-checkpoint";
  cbtm_section["format_version"] = kOptCheckpointVersion;
  cbtm_section["options"] = options;
  config["cbtm"] = cbtm_section;

  TensorFileWriter weights;
  weights.set_meta("format", "pt");  // what transformers expects of a PyTorch safetensors file
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : model->named_parameters()) {
      const torch::Tensor t = p.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
      weights.add(std::string(kOptTensorPrefix) + p.key(), DType::F32, t.sizes().vec(),
                  t.data_ptr(), t.numel() * sizeof(float));
    }
  }

  const std::string target = clean_dir(dir);
  const std::string tmp = temp_path_for(target);
  try {
    make_dirs(tmp);
    write_file_atomic((fs::path(tmp) / kConfigFile).string(), config.dump(2) + "\n");
    weights.write((fs::path(tmp) / kWeightsFile).string());
    replace_directory(tmp, target);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

// ---- load --------------------------------------------------------------------------

OptLM load_checkpoint(const std::string& dir) {
  const OptConfig c = read_config(dir);
  OptLM model(c);
  const std::string path = (fs::path(dir) / kWeightsFile).string();
  const TensorFile file = TensorFile::read(path);  // Error on a missing or truncated file

  // transformers writes "model.decoder.*"; some converted OPT checkpoints use "decoder.*".
  auto stored_name = [&](const std::string& name) -> std::string {
    for (const char* prefix : {kOptTensorPrefix, "decoder."})
      if (file.has(prefix + name)) return prefix + name;
    throw Error(path + ": missing tensor '" + kOptTensorPrefix + name + "'");
  };

  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    const std::string key = stored_name(p.key());
    const TensorFile::Info& info = file.info(key);
    const std::vector<int64_t> want = p.value().sizes().vec();
    if (info.shape != want)
      throw Error(path + ": tensor '" + key + "' has shape " + shape_str(info.shape) +
                  ", but " + kConfigFile + " implies " + shape_str(want));
    if (info.dtype != DType::F32 && info.dtype != DType::BF16 && info.dtype != DType::F16)
      throw Error(path + ": tensor '" + key + "' is " + dtype_name(info.dtype) +
                  ", expected F32, BF16 or F16");
    std::vector<float> values = file.f32(key);
    p.value().copy_(torch::from_blob(values.data(), want, torch::kFloat));
    used.insert(key);
  }
  for (const std::string& name : file.names()) {
    if (used.count(name)) continue;
    if (name == "lm_head.weight") {
      const std::string emb = stored_name("embed_tokens.weight");
      if (file.info(name).shape == file.info(emb).shape && file.f32(name) == file.f32(emb))
        continue;  // the tied head, stored explicitly
      throw Error(path + ": 'lm_head.weight' differs from the token embedding; OptLM "
                  "supports only tied output embeddings");
    }
    throw Error(path + ": unexpected tensor '" + name + "' (not part of an OPT model as " +
                "described by " + kConfigFile + ")");
  }
  model->eval();
  return model;
}

}  // namespace cbtm::models
