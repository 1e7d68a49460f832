#!/usr/bin/env bash
# Installs the Debian 12 packages cbtm needs to build and test (a no-op when all are present):
# the toolchain and libraries, Slurm + munge (the e2e_slurm_launch test starts a private
# single-node cluster), gnuplot (cbtm suite draws its figures with it) and python3-torch /
# python3-sklearn (the peers the benchmarks run).
set -euo pipefail
pkgs=(cmake g++ ninja-build ccache pkg-config zstd
      libtorch-dev libgloo-dev libopenblas0-openmp
      libyaml-cpp-dev libspdlog-dev libfmt-dev catch2 libboost-dev libboost-filesystem-dev
      nlohmann-json3-dev libcli11-dev libzstd-dev
      slurm-wlm munge
      gnuplot-nox
      python3-torch python3-sklearn)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
