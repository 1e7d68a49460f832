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
namespace cbtm {

/// Unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set (a user's choice, a child process, or the
/// re-executed process, all kept as they are): samples /proc/stat for 0.1 s, and if other work
/// keeps at least half a core busy, prints one line to stderr (unless argv has -q/--quiet),
/// sets GOMP_SPINCOUNT=1000 and re-executes /proc/self/exe with the same arguments. Call it
/// first in main(), before any thread starts. Returns when nothing needs doing, or, with a
/// warning, when the re-execution fails (libgomp then keeps its defaults).
void apply_openmp_defaults(int argc, char** argv);

/// Cores' worth of CPU time used by all processes over `seconds` (from /proc/stat: user,
/// nice, system, irq, softirq and steal time); -1 if /proc/stat cannot be read.
double busy_cores(double seconds);

}  // namespace cbtm
