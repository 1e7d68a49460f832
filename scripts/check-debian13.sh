#!/usr/bin/env bash
# Builds cbtm and runs its whole test suite on Debian 13 (trixie) inside a chroot: LibTorch 2.6,
# GCC 14, Catch2 v3, CMake 3.31, Slurm 24.11 — the other platform cbtm supports besides this
# machine's Debian 12 (LibTorch 1.13, GCC 12, Catch2 v2), and the LibTorch generation a GPU
# machine's PyTorch has. The packages are the README's: scripts/install-deps.sh inside the chroot.
#
#   scripts/check-debian13.sh [ctest args...]      e.g. -R "data parallel"
#   scripts/check-debian13.sh --run 'COMMAND'      build, then run COMMAND in /src there instead of
#                                                  the tests (the build is /build: /build/bin/...)
#
# Needs root (chroot, mount) and Debian's mirror. Where either is missing it says SKIPPED, runs
# scripts/check-libtorch2.sh (a compile check of the LibTorch sources against 2.x headers)
# instead, and exits with that check's status.
#
# The chroot lives in ${CHROOT:-.cache/debian13} and is kept between runs (made by debootstrap
# once, ~25 s; the packages ~3 min; a first build ~15 min on 2 cores, later ones incremental
# through ccache and the kept build folder /build). The source tree is copied in (tracked and
# untracked, not ignored files), never mounted; ../shared and /dev are mounted read-only (and /sys,
# bound recursively, for the Slurm test's cgroups), all is unmounted on exit and before a rerun,
# and one run at a time holds ${CHROOT}.lock. After a run killed with SIGKILL, rerun the script
# (or `umount -R` what `findmnt -R .cache/debian13` lists) before removing the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(realpath -m "${CHROOT:-.cache/debian13}")
case "$root" in
  / | "$PWD" | /usr | /usr/* | /etc | /etc/* | /bin | /bin/* | /sbin | /sbin/* | /lib* | /proc* | /sys* | /dev* | /boot* | /var | /home | /root | /tmp)
    echo "check-debian13: CHROOT=$root: not a folder of its own" >&2; exit 2 ;;
esac
case "$PWD/" in "$root"/*) echo "check-debian13: CHROOT=$root holds the source tree" >&2; exit 2 ;; esac
shared=$(realpath -m ../shared)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

mounts=(proc sys dev dev/shm shared)
cleanup() {
  # daemons the tests started in the chroot (the Slurm test's munged) hold its mounts
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    if mountpoint -q "$root/${mounts[i]}"; then umount -R "$root/${mounts[i]}" || umount -R -l "$root/${mounts[i]}"; fi
  done
}
trap cleanup EXIT
skip() {
  echo "check-debian13: SKIPPED: $*; the LibTorch 2.x compile check instead"
  cleanup
  trap - EXIT
  exec scripts/check-libtorch2.sh
}

[ "$(id -u)" -eq 0 ] || skip "needs root (chroot and mounts)"
mkdir -p "$(dirname "$root")"
exec 9> "$root.lock"
flock -n 9 || { echo "check-debian13: another run holds $root.lock" >&2; trap - EXIT; exit 1; }
if ! command -v debootstrap > /dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap > /dev/null 2>&1 ||
    skip "debootstrap is not installed and cannot be"
fi

cleanup  # mounts (and daemons) left by a killed run, before anything below removes files
if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/.cbtm-debootstrap-done" ]; then
  echo "check-debian13: debootstrap trixie into $root"
  rm -rf "$root"
  mkdir -p "$root"
  debootstrap --variant=minbase trixie "$root" "$mirror" > "$root.debootstrap.log" 2>&1 ||
    { tail -5 "$root.debootstrap.log"; rm -rf "$root"; skip "debootstrap of trixie failed (no network?)"; }
  touch "$root/.cbtm-debootstrap-done"
fi

mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/shared"
mount -t proc proc "$root/proc" || skip "cannot mount proc in the chroot"
# /sys with its submounts: slurmd (the Slurm test's private cluster) reads the host's cgroups
{ mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"; } || skip "cannot mount /sys in the chroot"
# make-rslave: on a host whose /dev is a shared mount, the tmpfs below must not appear there too
{ mount --bind /dev "$root/dev" && mount --make-rslave "$root/dev" && mount -o remount,bind,ro "$root/dev"; } ||
  skip "cannot mount /dev in the chroot"
mount -t tmpfs -o size=2g tmpfs "$root/dev/shm" || skip "cannot mount /dev/shm in the chroot"
if [ -d "$shared" ]; then
  { mount --bind "$shared" "$root/shared" && mount -o remount,bind,ro "$root/shared"; } ||
    skip "cannot mount ../shared in the chroot"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"

# the source tree, as git sees it (mtimes kept, so the kept build is incremental)
rm -rf "$root/src"
mkdir -p "$root/src"
# (--ignore-failed-read: files deleted but not yet committed are still listed)
git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$root/src"

proxies=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -n "${!v:-}" ] && proxies+=("$v=${!v}")
done
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  TERM=dumb "${proxies[@]}" /bin/bash -c "$1"; }
# the mirror unreachable: skipped; anything else going wrong with the packages: a failure
in_root "apt-get update -qq > /install.log 2>&1" ||
  { tail -5 "$root/install.log"; skip "Debian's mirror cannot be reached from the chroot"; }
in_root "cd /src && scripts/install-deps.sh >> /install.log 2>&1" ||
  { tail -20 "$root/install.log"; echo "check-debian13: FAILED: installing the Debian 13 packages"; exit 1; }
in_root '. /etc/os-release; echo "check-debian13: $PRETTY_NAME, $(g++ --version | head -1), LibTorch $(dpkg-query -W -f="\${Version}" libtorch-dev), Catch2 $(dpkg-query -W -f="\${Version}" catch2)"'
start=$(date +%s)
in_root "cd /src && BUILD_DIR=/build JOBS=${JOBS:-$(nproc)} scripts/build.sh > /build.log 2>&1" ||
  { tail -40 "$root/build.log"; echo "check-debian13: FAILED: the build (log: $root/build.log)"; exit 1; }
echo "check-debian13: built in $(($(date +%s) - start)) s"
if [ "${1:-}" = "--run" ]; then
  shift
  in_root "cd /src && $*"
  exit
fi
args=${*:+$(printf '%q ' "$@")}
in_root "cd /build && ctest --output-on-failure -j ${JOBS:-$(nproc)} $args" ||
  { echo "check-debian13: FAILED: tests on Debian 13"; exit 1; }
echo "check-debian13: passed"
