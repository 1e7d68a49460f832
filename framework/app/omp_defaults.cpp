// OpenMP defaults for the `cbtm` process, applied before any shared library initialises.
//
// libgomp reads OMP_WAIT_POLICY once, in its own constructor, which runs before main(). With
// the default (active spinning), LibTorch's and the plugins' parallel regions collapse when
// the cores are shared with other work: measured here, a 2000x110 QR took 6.7 s on 2 threads
// against 7 ms on one, and fp32 attention matmuls ran ~150x slower. PASSIVE avoids that. An
// executable's .preinit_array runs before every shared library's constructor, so setting the
// variable there takes effect; a value the user set is kept.
#include <cstdlib>

namespace {
void set_omp_defaults(int, char**, char**) { setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0); }
}  // namespace

__attribute__((section(".preinit_array"), used)) static void (*const cbtm_preinit)(int, char**, char**) =
    &set_omp_defaults;
