#pragma once
/// \file process_defaults.h
/// The OpenMP wait policy of a cbtm process, chosen before the OpenMP runtime starts.
///
/// libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, in its constructor, before main(). A
/// thread that reaches the barrier ending a parallel region first spins GOMP_SPINCOUNT times,
/// then sleeps in the kernel, and the next region must wake it. Measured here (2 cores,
/// quickstart-sized model; bench/README.md, "OpenMP wait policy"):
///
/// | spin count | quiet machine | beside another busy process |
/// |---|---|---|
/// | libgomp's default, 300000 (~3 ms) | fastest | collapses: scoring 2.8k tokens/s (quiet: 10.6-11.9k), two tiny runs at once 22.7 s (one alone: 2.9-4.4 s) |
/// | 1000 (~10 us) | 0-22% slower | scoring 6.0k, two tiny runs 7.2 s; and the other process is not dragged down |
/// | 0 (OMP_WAIT_POLICY=PASSIVE) | 30-40% slower | scoring 6.6k, two tiny runs 4.2 s |
///
/// So cbtm keeps libgomp's default on a quiet machine and spins 1000 times when the cores are
/// already busy as it starts. Setting the variable from inside the process cannot work
/// (libgomp has read it; an environment changed in a preinit function is reset by libc's own
/// initialisation), so apply_openmp_defaults() re-executes the program with it set.
///
/// The sample of /proc/stat cannot see a process that starts at the same moment (two runs
/// started together both kept long spinning: 22.7 s for two tiny runs). So every cbtm process
/// also holds a shared lock on a marker file for its lifetime (hold_cpu_marker), and one that
/// finds the marker held by another cbtm process treats the cores as busy without sampling.
#include <string>
#include <vector>

namespace cbtm {

/// Names the environment variable through which a cbtm process tells its children what it
/// chose: "default", "spin1000" (it set GOMP_SPINCOUNT=1000) or "user" (the user set
/// OMP_WAIT_POLICY or GOMP_SPINCOUNT). A child that finds it set keeps its parent's policy and
/// marker: a cbtm child (a `cbtm launch` job, a benchmark's helper) belongs to its parent's work,
/// and its parent does not compute while it waits for it.
inline constexpr const char* kOpenmpPolicyVariable = "CBTM_OPENMP_POLICY";

/// The marker file's path: $CBTM_CPU_MARKER if set (empty or "none": no marker), else
/// /tmp/cbtm-<uid>.cpu.lock. Processes of other users use other files.
std::string cpu_marker_path();

/// Takes a shared flock on `path` (created if missing) and keeps it until the process exits:
/// the descriptor is not close-on-exec, so it survives re-execution and children share it.
/// Returns true when another process already held the marker (tested with an exclusive
/// non-blocking lock first), false when none did or the file cannot be opened or locked.
bool hold_cpu_marker(const std::string& path);

/// Call it first in main(), before any thread starts. If $CBTM_OPENMP_POLICY is set (a cbtm
/// parent chose), returns at once. Otherwise holds the marker (cpu_marker_path()); unless
/// OMP_WAIT_POLICY or GOMP_SPINCOUNT is set (the user's choice, kept), decides whether the
/// cores are busy: another cbtm process holds the marker, or a 0.1 s sample of /proc/stat
/// shows other work keeping at least half a core busy. If busy: prints one line to stderr
/// (unless argv has -q/--quiet), sets GOMP_SPINCOUNT=1000 and re-executes /proc/self/exe with
/// the same arguments (returning, with a warning, only if that fails). Sets
/// $CBTM_OPENMP_POLICY for the children in every case.
void apply_openmp_defaults(int argc, char** argv);

/// The variables apply_openmp_defaults() set in this process's environment (empty when it did
/// not run or the user chose). A job that will run on another machine with this environment (a
/// Slurm batch script: sbatch exports it) must unset them so that it chooses for its own cores.
std::vector<std::string> openmp_variables_set_here();

/// Cores' worth of CPU time used by all processes over `seconds` (from /proc/stat: user,
/// nice, system, irq, softirq and steal time); -1 if /proc/stat cannot be read.
double busy_cores(double seconds);

}  // namespace cbtm
