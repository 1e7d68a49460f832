#!/usr/bin/env bash
# Fetches, on a Debian 12 machine with network, the Debian packages that cbtm needs beyond
# LibTorch/CUDA, for a GPU machine that has PyTorch (pip, CUDA) but neither these libraries
# nor network access: .gpu/debs/*.deb (~13 MB; .gpu/ is git-ignored). scripts/gpu-check.sh
# unpacks them there into a private prefix (never into /).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/debs
cd .gpu/debs
rm -f ./*.deb
pkgs=(libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev
      libcli11-dev libboost1.74-dev libboost-filesystem1.74-dev libboost-filesystem1.74.0
      libboost-atomic1.74.0 libzstd-dev libzstd1 catch2)
apt-get download "${pkgs[@]}" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
n=$(find . -name '*.deb' | wc -l)
[ "$n" -ge "${#pkgs[@]}" ] || { echo "gpu-deps: only $n of ${#pkgs[@]} packages downloaded" >&2; exit 1; }
echo "gpu-deps: $n packages in .gpu/debs ($(du -sh . | cut -f1))"
