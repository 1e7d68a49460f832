#pragma once
/// \file fs.h
/// Atomic file output: every artifact is written under a temporary name in the same
/// directory and renamed into place, so a killed job never leaves a half-written file.
#include <string>

namespace cbtm {

/// Writes `bytes` to `path` atomically: a new temp file, fsync (a failure there, or at close --
/// a full disk or quota on a network filesystem -- throws, naming the path, and leaves `path`
/// as it was), rename, then fsync of the directory. Creates parent dirs.
void write_file_atomic(const std::string& path, const std::string& bytes);
/// Reads a whole file; Error naming the path if it cannot be read.
std::string read_file(const std::string& path);
/// A unique temporary sibling name for `path` (same directory, so rename is atomic):
/// `path.tmp-HOST-PID-N`, unique across processes and across the nodes sharing a filesystem.
std::string temp_path_for(const std::string& path);
/// Replaces directory `dst` by directory `src` (an existing dst is moved aside, src renamed in,
/// the old one removed; if the rename fails the old one is put back).
void replace_directory(const std::string& src, const std::string& dst);
/// fsync of a directory, so that renames in it survive a crash (best effort: ignored where the
/// filesystem cannot).
void sync_directory(const std::string& dir);
bool path_exists(const std::string& path);

/// An exclusive advisory lock (flock) on the file `path` (created if missing), held until the
/// object is destroyed or the process ends -- never stale. The holder writes "pid P on HOST"
/// into the file, for the message of whoever finds it held. Where the filesystem has no locks
/// (ENOLCK, EOPNOTSUPP) it counts as taken: a best effort, never an error.
class FileLock {
 public:
  /// wait: block until the lock is free; otherwise try once (see locked()).
  FileLock(const std::string& path, bool wait);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool locked() const { return locked_; }
  /// When not locked: who holds it ("pid 123 on node7"), as that holder wrote it.
  const std::string& holder() const { return holder_; }

 private:
  int fd_ = -1;
  bool locked_ = false;
  std::string holder_;
};
void make_dirs(const std::string& path);

}  // namespace cbtm
