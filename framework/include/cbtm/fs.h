#pragma once
/// \file fs.h
/// Atomic file output: every artifact is written under a temporary name in the same
/// directory and renamed into place, so a killed job never leaves a half-written file.
#include <string>

namespace cbtm {

/// Writes `bytes` to `path` atomically (temp file, fsync, rename). Creates parent dirs.
void write_file_atomic(const std::string& path, const std::string& bytes);
/// Reads a whole file; Error naming the path if it cannot be read.
std::string read_file(const std::string& path);
/// A unique temporary sibling name for `path` (same directory, so rename is atomic).
std::string temp_path_for(const std::string& path);
/// Replaces directory `dst` by directory `src` (rename; an existing dst is removed first).
void replace_directory(const std::string& src, const std::string& dst);
bool path_exists(const std::string& path);
void make_dirs(const std::string& path);

}  // namespace cbtm
