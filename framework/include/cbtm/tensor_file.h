#pragma once
/// \file tensor_file.h
/// The on-disk container of every cbtm artifact: the safetensors format (an 8-byte header
/// length, a JSON header of tensor names/dtypes/shapes/offsets plus a string map
/// `__metadata__`, then the raw data). Readable by the Python `safetensors` package.
///
/// cbtm artifacts carry `format: cbtm`, `format_version`, `artifact` (what it is) and
/// further self-description in the metadata; TensorFile::read checks the size against the
/// header so that a truncated file is reported as such.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cbtm {

enum class DType { F32, F64, F16, BF16, I64, I32, I16, I8, U8, U16, U32, BOOL };

/// Bytes per element and the safetensors name ("F32", "I64", ...).
size_t dtype_size(DType t);
const char* dtype_name(DType t);

/// Builds a file in memory, then writes it atomically (temporary name + rename).
class TensorFileWriter {
 public:
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
           size_t nbytes);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v);
  void add_i64(const std::string& name, std::vector<int64_t> shape,
               const std::vector<int64_t>& v);
  void add_i32(const std::string& name, std::vector<int64_t> shape,
               const std::vector<int32_t>& v);
  /// Stores a list of byte strings as `<name>.bytes` (U8) + `<name>.offsets` (I64).
  void add_strings(const std::string& name, const std::vector<std::string>& v);
  void set_meta(const std::string& key, const std::string& value) { meta_[key] = value; }
  /// Writes to `path` atomically; creates parent directories.
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> meta_;
};

/// A read-only view of a whole file loaded into memory.
class TensorFile {
 public:
  struct Info {
    DType dtype;
    std::vector<int64_t> shape;
    size_t begin = 0, end = 0;  ///< byte offsets into the data section
    int64_t numel() const;
  };
  /// Reads and validates `path`: Error naming the file if missing, not safetensors, or
  /// truncated ("expected N bytes, found M").
  static TensorFile read(const std::string& path);
  /// read() plus: `format` must be "cbtm", `artifact` must equal `artifact` (unless empty),
  /// and `format_version` must be <= max_version.
  static TensorFile read_artifact(const std::string& path, const std::string& artifact,
                                  int max_version);

  bool has(const std::string& name) const { return index_.count(name) > 0; }
  const Info& info(const std::string& name) const;  ///< Error if absent
  std::vector<std::string> names() const;
  const void* data(const std::string& name) const;
  std::vector<float> f32(const std::string& name) const;   ///< F32 (or BF16/F16 widened)
  std::vector<int64_t> i64(const std::string& name) const;
  std::vector<int32_t> i32(const std::string& name) const;  ///< I32, U16 or I64 narrowed
  std::vector<std::string> strings(const std::string& name) const;

  bool has_meta(const std::string& key) const { return meta_.count(key) > 0; }
  const std::string& meta(const std::string& key) const;  ///< Error if absent
  const std::map<std::string, std::string>& metadata() const { return meta_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string buffer_;
  size_t data_start_ = 0;
  std::map<std::string, Info> index_;
  std::map<std::string, std::string> meta_;
};

}  // namespace cbtm
