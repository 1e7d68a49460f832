#!/usr/bin/env bash
# Compile-checks every LibTorch-using source against LibTorch 2.x headers (Debian 13's
# libtorch-dev 2.6), without installing anything: Debian 12 ships only LibTorch 1.13, and the
# code must build against both (2.x-only APIs are guarded with TORCH_VERSION_MAJOR/MINOR).
# Downloads the header package once into ${CACHE:-.cache/libtorch2}.
#
# The compile commands (include paths, defines) come from the build's compile_commands.json
# (${BUILD_DIR:-build}, configured here if missing), so the check follows the CMake targets:
# every translation unit that sees LibTorch's include path is checked, with that path pointed
# at the 2.x headers and the precompiled header left out.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
cache=$(realpath -m "${CACHE:-.cache/libtorch2}")
mkdir -p "$cache/lists" "$cache/debs" "$cache/apt"
A=(-o Dir::Etc::SourceList="$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o Dir::State::Lists="$cache/lists" -o Dir::Cache="$cache/apt")
if [ ! -d "$cache/root/usr/include/torch" ]; then
  echo "deb http://deb.debian.org/debian trixie main" > "$cache/sources.list"
  if ! { apt-get "${A[@]}" update -qq && (cd "$cache/debs" && apt-get "${A[@]}" download libtorch-dev 2>/dev/null); }; then
    echo "check-libtorch2: SKIPPED: cannot download Debian 13's libtorch-dev (no network?)"
    exit 0
  fi
  dpkg -x "$cache"/debs/libtorch-dev_*.deb "$cache/root"
fi
inc="$cache/root/usr/include"
grep -h "define TORCH_VERSION_M" "$inc/torch/csrc/api/include/torch/version.h"
if [ ! -f "$build/compile_commands.json" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
fi
list="$cache/commands.txt"
/usr/bin/python3 - "$build/compile_commands.json" "$inc" "$PWD" > "$list" <<'EOF'
import json, re, shlex, sys
db, inc, root = sys.argv[1], sys.argv[2], sys.argv[3]
for e in json.load(open(db)):
    cmd = e["command"]
    if "torch/csrc/api/include" not in cmd or "/CMakeFiles/" in e["file"]:
        continue
    args = shlex.split(cmd)
    out, i = [args[0], "-fsyntax-only", "-isystem", inc, "-isystem", inc + "/torch/csrc/api/include"], 1
    while i < len(args):
        a = args[i]
        if a in ("-include", "-o", "-c") or (a == "-isystem" and "torch" in args[i + 1]):
            i += 2; continue
        if a in ("-Winvalid-pch",):
            i += 1; continue
        out.append(a); i += 1
    out.append(e["file"])
    print(e["directory"] + "\t" + e["file"].replace(root + "/", "") + "\t" + shlex.join(out))
EOF
echo "check-libtorch2: $(wc -l < "$list") translation units"
status=0
check() {  # directory, file, command
  if ! (cd "$1" && eval "$3"); then echo "FAILED against LibTorch 2.x: $2"; return 1; fi
}
export -f check
if ! tr '\t\n' '\0\0' < "$list" | xargs -0 -n 3 -P "${JOBS:-$(nproc)}" bash -c 'check "$0" "$1" "$2"'; then
  status=1
fi
[ $status -eq 0 ] && echo "check-libtorch2: every LibTorch source compiles against LibTorch 2.x headers"
exit $status
