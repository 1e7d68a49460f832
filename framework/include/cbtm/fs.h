#pragma once
/// \file fs.h
/// Atomic file output: every artifact is written under a temporary name in the same
/// directory and renamed into place, so a killed job never leaves a half-written file.
#include <memory>
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
/// fsync of a file written by other means (e.g. torch::save), so that it is on disk before
/// something that relies on it happens (older checkpoints deleted). Error naming it on failure.
void sync_file(const std::string& path);
bool path_exists(const std::string& path);

/// An exclusive lock on the file `path` (created if missing), held until the object is
/// destroyed or the process ends. The holder writes "pid P on HOST" into the file, for the
/// message of whoever finds it held.
///
/// It is an advisory flock -- never stale: the kernel releases it with the process -- where the
/// filesystem has them. Where it has none (flock fails with ENOSYS, EOPNOTSUPP or ENOLCK:
/// Lustre mounted without `flock`, some FUSE filesystems), or with `CBTM_LOCKS=file` (Lustre's
/// `localflock`, whose flocks other nodes do not see), it is an owner file `path.owner` made with
/// O_EXCL and touched by a heartbeat thread every `CBTM_LOCK_HEARTBEAT_S` seconds (10). An owner
/// file belongs to a dead process -- and is taken over, under an O_EXCL `.takeover` guard -- when
/// its last heartbeat is older than 6 beats (by this host's clock), or at once when it names a
/// process of this host that is gone (pid and start time). `CBTM_LOCKS=none` turns locking off
/// (every lock is taken); any other value than flock, file or none is an Error.
class FileLock {
 public:
  /// wait: block until the lock is free; otherwise try once (see locked()).
  FileLock(const std::string& path, bool wait);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool locked() const { return locked_; }
  /// When not locked: who holds it ("pid 123 on node7"), as that holder wrote it (owner files:
  /// with the age of its last heartbeat).
  const std::string& holder() const { return holder_; }
  /// "flock", "owner file" or "none": how this lock is kept.
  const std::string& kind() const { return kind_; }

 private:
  struct Heartbeat;
  int fd_ = -1;
  bool locked_ = false;
  std::string holder_, kind_ = "flock";
  std::unique_ptr<Heartbeat> heartbeat_;
  bool take_owner_file(const std::string& path);
};
void make_dirs(const std::string& path);

}  // namespace cbtm
