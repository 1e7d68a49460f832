#!/usr/bin/env bash
# Compile-checks every LibTorch-using source against LibTorch 2.x headers (Debian 13's
# libtorch-dev 2.6), without installing anything: Debian 12 ships only LibTorch 1.13, and the
# code must build against both (2.x-only APIs are guarded with TORCH_VERSION_MAJOR/MINOR).
# Downloads the header package once into ${CACHE:-.cache/libtorch2}.
set -euo pipefail
cd "$(dirname "$0")/.."
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
status=0
for f in $(find models plugins/trainers embedders/tfidf -name '*.cpp' | sort); do
  if ! g++ -std=c++17 -fsyntax-only -fopenmp -D_GLIBCXX_USE_CXX11_ABI=1 -isystem "$inc" \
       -isystem "$inc/torch/csrc/api/include" -Iframework/include -Imodels -Iembedders/tfidf \
       -Iplugins/trainers/lm "$f"; then
    echo "FAILED against LibTorch 2.x: $f"; status=1
  fi
done
[ $status -eq 0 ] && echo "check-libtorch2: every LibTorch source compiles against LibTorch 2.x headers"
exit $status
