#include "cbtm/tensor_file.h"

#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cbtm/error.h"
#include "cbtm/fs.h"

namespace cbtm {
namespace {

struct DTypeRow {
  DType t;
  const char* name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::F32, "F32", 4}, {DType::F64, "F64", 8}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2}, {DType::I8, "I8", 1}, {DType::U8, "U8", 1},
    {DType::U16, "U16", 2}, {DType::U32, "U32", 4}, {DType::BOOL, "BOOL", 1},
};

DType parse_dtype(const std::string& s, const std::string& path) {
  for (const auto& r : kDTypes)
    if (s == r.name) return r.t;
  throw Error(path + ": unsupported tensor dtype '" + s + "'");
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {  // subnormal
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) { mant <<= 1; --exp; }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
  else bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

size_t dtype_size(DType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r.size;
  return 0;
}
const char* dtype_name(DType t) {
  for (const auto& r : kDTypes)
    if (r.t == t) return r.name;
  return "?";
}

int64_t TensorFile::Info::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- writer ------------------------------------------------------------------
void TensorFileWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                           const void* data, size_t nbytes) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (static_cast<size_t>(n) * dtype_size(dtype) != nbytes)
    throw std::logic_error("tensor " + name + ": shape does not match byte count");
  for (const auto& e : entries_)
    if (e.name == name) throw std::logic_error("tensor " + name + " added twice");
  entries_.push_back({name, dtype, std::move(shape),
                      std::string(static_cast<const char*>(data), nbytes)});
}
void TensorFileWriter::add_f32(const std::string& name, std::vector<int64_t> shape,
                               const std::vector<float>& v) {
  add(name, DType::F32, std::move(shape), v.data(), v.size() * 4);
}
void TensorFileWriter::add_i64(const std::string& name, std::vector<int64_t> shape,
                               const std::vector<int64_t>& v) {
  add(name, DType::I64, std::move(shape), v.data(), v.size() * 8);
}
void TensorFileWriter::add_i32(const std::string& name, std::vector<int64_t> shape,
                               const std::vector<int32_t>& v) {
  add(name, DType::I32, std::move(shape), v.data(), v.size() * 4);
}
void TensorFileWriter::add_strings(const std::string& name, const std::vector<std::string>& v) {
  std::string bytes;
  std::vector<int64_t> offsets{0};
  for (const auto& s : v) {
    bytes += s;
    offsets.push_back(static_cast<int64_t>(bytes.size()));
  }
  add(name + ".bytes", DType::U8, {static_cast<int64_t>(bytes.size())}, bytes.data(), bytes.size());
  add_i64(name + ".offsets", {static_cast<int64_t>(offsets.size())}, offsets);
}

void TensorFileWriter::write(const std::string& path) const {
  nlohmann::ordered_json header;
  if (!meta_.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : meta_) m[k] = v;
    header["__metadata__"] = m;
  }
  size_t offset = 0;
  for (const auto& e : entries_) {
    header[e.name] = {{"dtype", dtype_name(e.dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';  // safetensors aligns the data section to 8 bytes
  std::string out;
  out.reserve(8 + h.size() + offset);
  const uint64_t hlen = h.size();
  out.append(reinterpret_cast<const char*>(&hlen), 8);
  out += h;
  for (const auto& e : entries_) out += e.bytes;
  write_file_atomic(path, out);
}

// ---- reader ------------------------------------------------------------------
TensorFile TensorFile::read(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
  TensorFile f;
  f.path_ = path;
  f.buffer_ = read_file(path);
  const std::string& b = f.buffer_;
  if (b.size() < 8) throw Error(path + ": truncated or not a tensor file (" + std::to_string(b.size()) + " bytes)");
  uint64_t hlen = 0;
  std::memcpy(&hlen, b.data(), 8);
  if (hlen > b.size() - 8)
    throw Error(path + ": truncated: header says " + std::to_string(hlen) +
                " header bytes, the file has " + std::to_string(b.size()) + " bytes in all");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(b.begin() + 8, b.begin() + 8 + static_cast<long>(hlen));
  } catch (const std::exception& e) {
    throw Error(path + ": not a safetensors/cbtm file (bad header: " + e.what() + ")");
  }
  if (!header.is_object()) throw Error(path + ": not a safetensors/cbtm file");
  f.data_start_ = 8 + hlen;
  size_t max_end = 0;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw Error(path + ": not a safetensors/cbtm file (__metadata__ is not an object)");
      for (auto m = it->begin(); m != it->end(); ++m)
        f.meta_[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    try {
      Info info;
      info.dtype = parse_dtype(it->at("dtype").get<std::string>(), path);
      info.shape = it->at("shape").get<std::vector<int64_t>>();
      // every dimension >= 0 and their product (in bytes) representable: a shape of two 2^32s
      // would overflow to 0 elements and pass the size check below
      int64_t elements = 1;
      for (int64_t d : info.shape) {
        if (d < 0) throw Error("negative dimension in shape");
        if (d > 0 && elements > (int64_t{1} << 62) / d) throw Error("shape too large");
        elements *= d;
      }
      auto offs = it->at("data_offsets").get<std::vector<size_t>>();
      if (offs.size() != 2 || offs[1] < offs[0]) throw Error("bad data_offsets");
      info.begin = offs[0];
      info.end = offs[1];
      if (static_cast<size_t>(info.numel()) * dtype_size(info.dtype) != info.end - info.begin)
        throw Error("size does not match shape");
      max_end = std::max(max_end, info.end);
      f.index_[it.key()] = info;
    } catch (const Error& e) {
      throw Error(path + ": tensor '" + it.key() + "': " + e.what());
    } catch (const std::exception& e) {
      throw Error(path + ": tensor '" + it.key() + "': malformed entry (" + e.what() + ")");
    }
  }
  const size_t have = b.size() - f.data_start_;
  if (have < max_end)
    throw Error(path + ": truncated: expected " + std::to_string(f.data_start_ + max_end) +
                " bytes, found " + std::to_string(b.size()));
  return f;
}

TensorFile TensorFile::read_artifact(const std::string& path, const std::string& artifact,
                                     int max_version) {
  TensorFile f = read(path);
  if (!f.has_meta("format") || f.meta("format") != "cbtm")
    throw Error(path + ": not a cbtm artifact (no `format: cbtm` in its metadata)");
  int version = 0;
  try {
    version = std::stoi(f.meta("format_version"));
  } catch (const std::exception&) {
    throw Error(path + ": bad or missing format_version");
  }
  if (version > max_version)
    throw Error(path + ": format version " + std::to_string(version) +
                " is newer than this cbtm reads (" + std::to_string(max_version) + ")");
  if (!artifact.empty() && (!f.has_meta("artifact") || f.meta("artifact") != artifact))
    throw Error(path + ": expected a '" + artifact + "' artifact, found '" +
                (f.has_meta("artifact") ? f.meta("artifact") : std::string("?")) + "'");
  return f;
}

const TensorFile::Info& TensorFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(path_ + ": has no tensor '" + name + "'");
  return it->second;
}
std::vector<std::string> TensorFile::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : index_) out.push_back(k);
  return out;
}
const void* TensorFile::data(const std::string& name) const {
  return buffer_.data() + data_start_ + info(name).begin;
}
const std::string& TensorFile::meta(const std::string& key) const {
  auto it = meta_.find(key);
  if (it == meta_.end()) throw Error(path_ + ": metadata has no '" + key + "'");
  return it->second;
}

std::vector<float> TensorFile::f32(const std::string& name) const {
  const Info& in = info(name);
  const int64_t n = in.numel();
  std::vector<float> out(static_cast<size_t>(n));
  const char* p = static_cast<const char*>(data(name));
  if (in.dtype == DType::F32) std::memcpy(out.data(), p, n * 4);
  else if (in.dtype == DType::BF16) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      uint32_t bits = static_cast<uint32_t>(h) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
  } else if (in.dtype == DType::F16) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = half_to_float(h);
    }
  } else throw Error(path_ + ": tensor '" + name + "' is " + dtype_name(in.dtype) + ", expected a float type");
  return out;
}
std::vector<int64_t> TensorFile::i64(const std::string& name) const {
  const Info& in = info(name);
  if (in.dtype != DType::I64) throw Error(path_ + ": tensor '" + name + "' is " + dtype_name(in.dtype) + ", expected I64");
  std::vector<int64_t> out(static_cast<size_t>(in.numel()));
  std::memcpy(out.data(), data(name), out.size() * 8);
  return out;
}
std::vector<int32_t> TensorFile::i32(const std::string& name) const {
  const Info& in = info(name);
  const int64_t n = in.numel();
  std::vector<int32_t> out(static_cast<size_t>(n));
  const char* p = static_cast<const char*>(data(name));
  if (in.dtype == DType::I32) std::memcpy(out.data(), p, n * 4);
  else if (in.dtype == DType::U16) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      out[i] = v;
    }
  } else if (in.dtype == DType::I64) {
    for (int64_t i = 0; i < n; ++i) {
      int64_t v;
      std::memcpy(&v, p + 8 * i, 8);
      out[i] = static_cast<int32_t>(v);
    }
  } else throw Error(path_ + ": tensor '" + name + "' is " + dtype_name(in.dtype) + ", expected an integer type");
  return out;
}
std::vector<std::string> TensorFile::strings(const std::string& name) const {
  const Info& bi = info(name + ".bytes");
  std::vector<int64_t> offs = i64(name + ".offsets");
  const char* p = static_cast<const char*>(data(name + ".bytes"));
  const int64_t nbytes = bi.numel();
  std::vector<std::string> out;
  out.reserve(offs.empty() ? 0 : offs.size() - 1);
  for (size_t i = 0; i + 1 < offs.size(); ++i) {
    if (offs[i] < 0 || offs[i + 1] < offs[i] || offs[i + 1] > nbytes)
      throw Error(path_ + ": string list '" + name + "' has bad offsets");
    out.emplace_back(p + offs[i], static_cast<size_t>(offs[i + 1] - offs[i]));
  }
  return out;
}

}  // namespace cbtm
