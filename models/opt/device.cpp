// Where models run, and bf16 autocast as an RAII guard over LibTorch 1.13 and 2.x.
#include <mutex>

#include <ATen/autocast_mode.h>
#include <spdlog/spdlog.h>

#include "cbtm/runtime.h"
#include "opt/opt.h"

// LibTorch 2.4 replaced the per-device autocast functions by device-generic ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define CBTM_AUTOCAST_GENERIC 1
#else
#define CBTM_AUTOCAST_GENERIC 0
#endif

namespace cbtm::models {

torch::Device model_device(const std::string& device) {
  const std::string& want = device.empty() ? runtime().device : device;
  const std::string key = device.empty() ? "runtime.device" : "device";
  if (want == "cpu") return torch::kCPU;
  const bool have_cuda = torch::cuda::is_available();
  if (want.rfind("cuda:", 0) == 0) {
    int64_t index = -1;
    try {
      size_t used = 0;
      index = std::stoll(want.substr(5), &used);
      if (used != want.size() - 5) index = -1;
    } catch (const std::exception&) {
      index = -1;
    }
    if (index < 0) throw Error(key + ": unknown device '" + want + "' (auto | cpu | cuda | cuda:N)");
    const int64_t count = have_cuda ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    if (index >= count)
      throw Error(key + " is '" + want + "' but LibTorch sees " + std::to_string(count) + " CUDA device" +
                  (count == 1 ? "" : "s"));
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  if (want == "cuda" && !have_cuda)
    throw Error(key + " is 'cuda' but no CUDA device is available to LibTorch");
  if (want != "cuda" && want != "auto")
    throw Error(key + ": unknown device '" + want + "' (auto | cpu | cuda | cuda:N)");
  return have_cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

bool cpu_has_fast_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool fast = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                           __builtin_cpu_supports("avx512dq");
  return fast;
#else
  return true;  // other architectures: leave it to LibTorch
#endif
}

bool use_bf16(torch::Device device) {
  if (!runtime().bf16) return false;
  if (device.is_cuda()) return true;
  if (!device.is_cpu()) return false;
  if (cpu_has_fast_bf16()) return true;
  static std::once_flag warned;
  std::call_once(warned, [] {
    spdlog::info("runtime.bf16: this CPU has no AVX-512 (LibTorch's bf16 matmul would be a slow scalar loop): "
                 "models run in fp32");
  });
  return false;
}

namespace {
bool autocast_enabled(torch::DeviceType t) {
#if CBTM_AUTOCAST_GENERIC
  return at::autocast::is_autocast_enabled(t);
#else
  return t == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
void set_autocast_enabled(torch::DeviceType t, bool on) {
#if CBTM_AUTOCAST_GENERIC
  at::autocast::set_autocast_enabled(t, on);
#else
  if (t == torch::kCUDA) at::autocast::set_enabled(on);
  else at::autocast::set_cpu_enabled(on);
#endif
}
at::ScalarType autocast_dtype(torch::DeviceType t) {
#if CBTM_AUTOCAST_GENERIC
  return at::autocast::get_autocast_dtype(t);
#else
  return t == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                           : at::autocast::get_autocast_cpu_dtype();
#endif
}
void set_autocast_dtype(torch::DeviceType t, at::ScalarType dtype) {
#if CBTM_AUTOCAST_GENERIC
  at::autocast::set_autocast_dtype(t, dtype);
#else
  if (t == torch::kCUDA) at::autocast::set_autocast_gpu_dtype(dtype);
  else at::autocast::set_autocast_cpu_dtype(dtype);
#endif
}
}  // namespace

NoAutocastGuard::NoAutocastGuard(torch::Device device) : device_(device) {
  if (!device_.is_cpu() && !device_.is_cuda()) return;
  prev_ = autocast_enabled(device_.type());
  if (prev_) set_autocast_enabled(device_.type(), false);
}

NoAutocastGuard::~NoAutocastGuard() {
  if (prev_) set_autocast_enabled(device_.type(), true);
}

AutocastCacheScope::AutocastCacheScope() { at::autocast::increment_nesting(); }
AutocastCacheScope::~AutocastCacheScope() {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

AutocastGuard::AutocastGuard(torch::Device device, bool enabled)
    : device_(device), enabled_(enabled && (device.is_cpu() || device.is_cuda())) {
  if (!enabled_) return;
  const torch::DeviceType t = device_.type();
  prev_enabled_ = autocast_enabled(t);
  prev_dtype_ = autocast_dtype(t);
  set_autocast_enabled(t, true);
  set_autocast_dtype(t, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  const torch::DeviceType t = device_.type();
  // As Python's torch.autocast: the cast-weight cache lives until the outermost exit.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_enabled(t, prev_enabled_);
  set_autocast_dtype(t, prev_dtype_);
}

}  // namespace cbtm::models
