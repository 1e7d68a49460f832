#!/usr/bin/env bash
# The GPU checks of issues 4 and 5, as one script for a machine with an NVIDIA GPU, pip's
# PyTorch (CUDA) as `python3`, a C++ compiler, CMake and Ninja, but neither cbtm's other
# libraries nor network access -- the lent device machines. Before, on a Debian 12 machine
# with network: `scripts/gpu-deps.sh` (fills .gpu/debs); then bring .gpu/debs along (not .gpu/prefix, which this script fills) and run
#
#   scripts/gpu-check.sh            # writes $OUT (default gpu-check-out/): summary.txt + logs
#
# GPU_CHECK_SKIP="ctest build_all" skips steps by name (a rerun after a partial one);
# BUILD_DIR (build-gpu) and CBTM_DEPS_PREFIX (.gpu/prefix) move its folders.
#
# Steps (each logged; a failed step is reported and the later ones still run where they can),
# the most wanted results first in case the time runs out:
#   1. the machine: GPU, driver, PyTorch, compilers
#   2. .gpu/debs unpacked into a private prefix (.gpu/prefix, never /), their CMake and
#      pkg-config files pointed at it
#   3. configure against PyTorch's LibTorch (torch.utils.cmake_prefix_path; CMake reports
#      whether NCCL was found); build cbtm, its plugins and train_bench (build-gpu/)
#   4. train_bench on the GPU for an OPT-125M-sized model (issue 4: >= 40% MFU), with the
#      Python peer on the same GPU
#   5. configs/tiny.yaml end to end on the GPU; its eval again with the experts on two devices
#      (runtime.expert_devices [cuda:0, cpu]) and all on the CPU: the perplexities must agree;
#      infer_bench on that run (the sparse ensemble's tokens/s on the GPU)
#   6. the rest of the build, and the whole test suite but the Slurm test, on the GPU machine
#      (models run on the GPU wherever runtime.device is auto)
# Budget: about 8 minutes on 16 cores (the build is most of it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}   # what comes back: summary.txt, logs.txt and the results' JSON (few files)
LOGS=${LOGS:-/tmp/gpu-check-logs}
mkdir -p "$OUT" "$LOGS"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
: > "$OUT/logs.txt"
log() { echo "[gpu-check $(date +%T)] $*" | tee -a "$SUMMARY"; }
step() {  # name, command...: runs it with its output in $LOGS/<name>.log (tail appended to $OUT/logs.txt)
  local name=$1; shift
  local t0=$SECONDS rc=0
  if [[ " ${GPU_CHECK_SKIP:-} " == *" $name "* ]]; then log "$name: skipped (GPU_CHECK_SKIP)"; return 0; fi
  "$@" > "$LOGS/$name.log" 2>&1 || rc=$?
  { echo "===== $name (exit $rc, $((SECONDS - t0)) s): $*"; tail -c 300000 "$LOGS/$name.log"; } >> "$OUT/logs.txt"
  if [ $rc -eq 0 ]; then
    log "$name: ok ($((SECONDS - t0)) s)"
  else
    log "$name: FAILED (exit $rc, $((SECONDS - t0)) s); last lines:"
    tail -n 25 "$LOGS/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY"
  fi
  return $rc
}
jobs=$(nproc)
deps=${CBTM_DEPS_PREFIX:-$PWD/.gpu/prefix}
build=${BUILD_DIR:-build-gpu}

# 1. the machine
{
  nvidia-smi -L 2>&1 | head -4
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())' 2>&1
  c++ --version 2>&1 | head -1
  cmake --version 2>&1 | head -1
  echo "ninja $(ninja --version 2>&1)"
  echo "pkg-config: $(command -v pkg-config || echo none)"
  echo "nvcc: $(command -v nvcc || echo "not on PATH") CUDA_HOME=${CUDA_HOME:-unset} /usr/local/cuda: $(ls -d /usr/local/cuda 2>/dev/null || echo absent)"
} | tee -a "$SUMMARY"
# Debian's libraries use the C++11 ABI; PyTorch wheels do from 2.7 on (older ones cannot be
# linked with them)
abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null)
if [ "$abi" != 1 ]; then
  log "PyTorch's LibTorch uses the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=${abi:-unknown}): it cannot link with Debian's libraries; use PyTorch >= 2.7 (or a cxx11-ABI LibTorch). Stopping."
  exit 1
fi

# 2. the libraries
unpack() {
  ls .gpu/debs/*.deb > /dev/null || { echo "no .gpu/debs: run scripts/gpu-deps.sh on a machine with network and bring .gpu/debs"; return 1; }
  mkdir -p "$deps"
  for f in .gpu/debs/*.deb; do
    if command -v dpkg-deb > /dev/null; then dpkg-deb -x "$f" "$deps" || return 1
    else  # no dpkg: a .deb is an ar archive holding data.tar.xz (binutils' ar comes with the compiler)
      (cd "$deps" && ar p "$OLDPWD/$f" "$(ar t "$OLDPWD/$f" | grep '^data\.tar')" | tar -xJ) || return 1
    fi
  done
  # their CMake files name /usr/include and /usr/lib...: point them at the prefix
  grep -rlE '/usr/(include|lib|share)' "$deps/usr/lib" "$deps/usr/share" --include='*.cmake' 2>/dev/null |
    xargs -r sed -i -E "s#(^|[\";= (])/usr/(include|lib|share)#\\1$deps/usr/\\2#g"
  grep -rl '^prefix=/usr' "$deps/usr" --include='*.pc' 2>/dev/null | xargs -r sed -i "s#^prefix=/usr#prefix=$deps/usr#"
  ls "$deps/usr/lib/x86_64-linux-gnu" | head -40
}
step deps unpack

# 3. configure and build
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_PATH="$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/share/pkgconfig"
configure() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" -DBoost_NO_SYSTEM_PATHS=ON -DBOOST_ROOT="$deps/usr" \
    -DCUDAToolkit_ROOT="${CUDA_HOME:-/usr/local/cuda}" &&
    grep -E "NCCL|Torch|CUDA" "$build/CMakeCache.txt" | grep -vE "^//|INTERNAL" | head -20
}
step configure configure && grep -h "NCCL for data parallelism" "$LOGS/configure.log" | tee -a "$SUMMARY"
step build ninja -C "$build" -j "$jobs" cbtm train_bench infer_bench

# 4. training throughput on the GPU, OPT-125M-sized (issue 4: >= 40% MFU), Python peer in the same run
step train_bench "$build/bin/train_bench" --device cuda --d-model 768 --layers 12 --heads 12 --d-ff 3072 \
  --vocab 50272 --seq 2048 --batch 8 --steps 12 --python "$(command -v python3)" --json "$OUT/train_bench_gpu.json"
grep -iE "mfu|tokens/s|ratio" "$LOGS/train_bench.log" | tail -6 | tee -a "$SUMMARY"
# 5. the pipeline on the GPU, and an ensemble over two devices
cbtm="$build/bin/cbtm"
run=/tmp/cbtm-gpu-tiny
rm -rf "$run"
if step tiny "$cbtm" run configs/tiny.yaml --out "$run"; then
  cp "$run/results.json" "$OUT/tiny_gpu_results.json"
  step eval_two_devices "$cbtm" eval configs/tiny.yaml --out "$run" --redo eval \
    --set 'runtime.expert_devices=[cuda:0, cpu]' && cp "$run/results.json" "$OUT/tiny_two_devices_results.json"
  step eval_cpu "$cbtm" eval configs/tiny.yaml --out "$run" --redo eval --set runtime.device=cpu &&
    cp "$run/results.json" "$OUT/tiny_cpu_results.json"
  python3 - "$OUT" <<'PY' 2>&1 | tee -a "$SUMMARY"
import json, sys, os
out = sys.argv[1]
def ppl(name):
    p = os.path.join(out, name)
    if not os.path.exists(p): return None
    r = json.load(open(p))
    return {m["name"]: m["ppl"] for m in r["models"] if "ppl" in m}
gpu, two, cpu = ppl("tiny_gpu_results.json"), ppl("tiny_two_devices_results.json"), ppl("tiny_cpu_results.json")
print("perplexities (all on GPU / experts on cuda:0 and cpu / all on CPU):")
for k in sorted((gpu or {}).keys()):
    row = [d.get(k) if d else None for d in (gpu, two, cpu)]
    print("  %-20s %s" % (k, "  ".join("%.4f" % v if v is not None else "-" for v in row)))
if two and cpu:
    worst = max(abs(two[k] / cpu[k] - 1) for k in two if k in cpu)
    print("two devices vs CPU: largest relative difference %.2e (%s)" % (worst, "ok" if worst < 2e-2 else "TOO LARGE"))
PY
  # the sparse ensemble's speed on the GPU (K = 2 here: top-1 is half the experts)
  step infer_bench "$build/bin/infer_bench" --run "$run" --repeat 3 --docs 200 --json "$OUT/infer_bench_gpu.json"
  grep -E "^(top-|all)|cost ratio" "$LOGS/infer_bench.log" | tee -a "$SUMMARY"
fi

# 6. everything else, and the test suite on the GPU machine
step build_all ninja -C "$build" -j "$jobs"
step ctest ctest --test-dir "$build" -j 12 --timeout 300 -E slurm --output-on-failure
grep -E "tests passed|tests failed|\(Failed\)|\(Timeout\)|\*\*\*" "$LOGS/ctest.log" | head -40 | tee -a "$SUMMARY"
log "done; files in $OUT"
