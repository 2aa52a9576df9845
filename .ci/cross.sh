#!/usr/bin/env bash
# cross.sh ARCH: as root on Debian 12, cross-build for one Debian architecture (i386, armhf,
# arm64, ppc64el, s390x, mips64el, riscv64) in build/cross-ARCH and run the whole make check
# there under qemu-user (i386 natively where the kernel runs 32-bit x86 programs); ends with
# "N passed, N skipped, N failed". arm64 also runs plain_build (.ci/leg.sh). riscv64, which
# Debian 12 has no binary packages for, takes Boost and Check from their source packages.
# doc/DESIGN.md: "CI".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
arch=${1:-}
start=$(date +%s)
leg="cross $arch"
# shellcheck source=.ci/leg.sh
. .ci/leg.sh
# shellcheck source=.ci/apt-src.sh
. .ci/apt-src.sh

# ARCH -> GNU triplet of Debian's cross gcc, and the qemu-user binfmt entry (for i386, only
# where the kernel cannot run its programs: probe_native).
case $arch in
  i386)     triplet=i686-linux-gnu;          qemu=qemu-i386 ;;
  armhf)    triplet=arm-linux-gnueabihf;     qemu=qemu-arm ;;
  arm64)    triplet=aarch64-linux-gnu;       qemu=qemu-aarch64 ;;
  ppc64el)  triplet=powerpc64le-linux-gnu;   qemu=qemu-ppc64le ;;
  s390x)    triplet=s390x-linux-gnu;         qemu=qemu-s390x ;;
  mips64el) triplet=mips64el-linux-gnuabi64; qemu=qemu-mips64el ;;
  riscv64)  triplet=riscv64-linux-gnu;       qemu=qemu-riscv64 ;;
  *) echo "usage: $0 i386|armhf|arm64|ppc64el|s390x|mips64el|riscv64"; exit 2 ;;
esac
# Architectures without Debian 12 binary packages: the target's libc is the cross
# toolchain's (libc6-riscv64-cross, in /usr/$triplet), whose loader the programs name
# directly; fcontext is assembled from Boost's source package (.ci/boost-source.sh) and
# Check built from its own; no libcrypto for the target, so the drop-in is left out.
from_source=no
[ "$arch" = riscv64 ] && from_source=yes
build=build/cross-$arch
sysroot=$PWD/$build/sysroot
# What the build takes from the target, unpacked into the sysroot: the target's -dev
# packages cannot always be installed beside amd64's (Multi-Arch version skew on a mirror).
TARGET_DEBS="libboost-context1.74-dev libboost-context1.74.0 check libsubunit-dev libsubunit0
  libssl-dev libssl3"
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt-get or dpkg (a second session on the machine) instead of failing.
APT_LOCK="-o DPkg::Lock::Timeout=300"

# apt-get with one retry; $1 names what is fetched, for the failure message.
apt_retry() {
  local what=$1; shift
  apt-get -q $APT_LOCK "$@" >/dev/null 2>&1 && return 0
  echo "apt-get $* failed; retrying once"
  apt-get -q $APT_LOCK "$@" >/dev/null || die "apt-get failed twice for $what (apt-get $*)"
}

install_tools() {
  banner "packages"
  if [ $from_source = yes ]; then
    apt_retry "gcc-$triplet" install -y "gcc-$triplet" qemu-user qemu-user-binfmt dpkg-dev
    return
  fi
  dpkg --add-architecture "$arch" || die "dpkg --add-architecture $arch failed"
  # A mirror whose index of some architecture is out of step makes apt-get update exit
  # non-zero while the rest is usable: go on, and let the installs below say what is missing.
  apt-get $APT_LOCK update -q >/dev/null 2>&1 || apt-get $APT_LOCK update -q >/dev/null 2>&1 ||
    echo "apt-get update reported errors (some index files were ignored); going on"
  local pkgs="gcc-$triplet libc6:$arch qemu-user qemu-user-binfmt"
  # shellcheck disable=SC2086
  apt_retry "$pkgs" install -y $pkgs
}

unpack_target() {
  rm -rf "$build" && mkdir -p "$build/debs" "$sysroot" || die "cannot create $build"
  if [ $from_source = yes ]; then
    banner "Boost.Context's fcontext from Boost's source package"
    bash .ci/boost-source.sh build/boost-source || die "no Boost source"
    banner "Check for $arch, from its Debian source package"
    check_from_source "$PWD/$build" --host="$triplet" CC="$cross_cc"
    return
  fi
  banner "target packages into $sysroot"
  local p
  for p in $TARGET_DEBS; do
    (cd "$build/debs" && apt_retry "$p:$arch" download "$p:$arch") || exit 1
  done
  for p in "$build"/debs/*.deb; do
    dpkg-deb -x "$p" "$sysroot" || die "dpkg-deb -x $p failed"
  done
  ls "$build/debs"
}

# i386: build a tiny program and run it with any qemu-i386 entry of ours disabled. If the
# kernel runs it, the leg is native; if not ("Exec format error": no IA-32 emulation in the
# kernel, as on some cloud machines), the leg registers qemu-i386 below.
probe_native() {
  [ "$arch" = i386 ] || return 0
  banner "can this kernel run $arch programs?"
  local bf=/proc/sys/fs/binfmt_misc probe=$build/probe-native
  [ -e "$bf/register" ] || mount -t binfmt_misc binfmt_misc "$bf" || die "cannot mount binfmt_misc"
  [ -e "$bf/$qemu" ] && { echo 0 >"$bf/$qemu" || die "cannot disable $bf/$qemu"; }
  printf 'int main(void) { return 42; }\n' >"$probe.c"
  "$triplet-gcc" -o "$probe" "$probe.c" || die "$triplet-gcc cannot build a program"
  "$probe" 2>"$probe.err"
  if [ $? -eq 42 ]; then
    echo "yes: the tests run natively"
    qemu=
  else
    echo "no ($(sed -n '1s/.*: //p' "$probe.err")): the tests run under $qemu"
  fi
}

# Register the qemu-user binfmt entry if the kernel has not seen it (systemd-binfmt does
# this at boot, which a container or a freshly mounted binfmt_misc has not had). Tests run
# through it with no QEMU_LD_PREFIX, which makes qemu-user hang when a child dies of a signal.
# Debian ships no qemu-i386 entry (an amd64 kernel normally runs i386 programs): the leg
# writes one, for i386 ELF executables and shared objects, and takes it out at the end.
register_binfmt() {
  [ -n "$qemu" ] || return 0
  banner "binfmt_misc"
  local bf=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/$qemu.conf
  [ -e "$bf/register" ] || mount -t binfmt_misc binfmt_misc "$bf" || die "cannot mount binfmt_misc"
  if [ "$arch" = i386 ]; then
    if [ -e "$bf/$qemu" ]; then
      echo 1 >"$bf/$qemu" || die "cannot enable $bf/$qemu"
    else
      printf '%s' ':qemu-i386:M::\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00:\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-i386:' \
        >"$bf/register" || die "cannot register $qemu with binfmt_misc"
    fi
    trap 'echo -1 >/proc/sys/fs/binfmt_misc/qemu-i386 2>/dev/null' EXIT
    "$build/probe-native"
    [ $? -eq 42 ] || die "an i386 program does not run under $qemu either"
  elif [ ! -e "$bf/$qemu" ]; then
    [ -f "$conf" ] || die "$conf missing (qemu-user-binfmt)"
    cat "$conf" >"$bf/register" || die "cannot register $qemu with binfmt_misc"
  fi
  grep -q '^enabled' "$bf/$qemu" || die "$qemu binfmt entry is disabled"
  head -2 "$bf/$qemu"
}

configure_build() {
  banner "configure --host=$triplet"
  local libdir=$sysroot/usr/lib/$multiarch boost=$PWD/build/boost-source
  if [ $from_source = yes ]; then
    ( cd "$build" && PKG_CONFIG_LIBDIR=$PWD/check/lib/pkgconfig ../../configure \
        --host="$triplet" --enable-werror CC="$cross_cc" --with-boost-source="$boost" \
        >configure.out 2>&1 ) || { tail -30 "$build/configure.out"; die "configure failed"; }
  else
    ( cd "$build" && PKG_CONFIG_LIBDIR=$libdir/pkgconfig:$sysroot/usr/share/pkgconfig \
        PKG_CONFIG_SYSROOT_DIR=$sysroot ../../configure --host="$triplet" --enable-werror \
        --with-boost-context="$libdir" CPPFLAGS="-isystem $sysroot/usr/include/$multiarch" \
        LDFLAGS="-Wl,-rpath-link,$libdir" >configure.out 2>&1 ) ||
      { tail -30 "$build/configure.out"; die "configure failed"; }
  fi
  sed -n '/configured$/,$p' "$build/configure.out"
  if [ $from_source = yes ]; then
    grep -q "fcontext from: *$boost/libs/context/src/asm" "$build/configure.out" ||
      die "configure did not take fcontext from $boost"
    echo "no libcrypto for $arch in Debian 12: the coexistence test skips, no drop-in"
  else
    grep -q "fcontext from: *$libdir/libboost_context.a" "$build/configure.out" ||
      die "configure did not pick the $arch libboost_context.a"
    grep -q 'libcrypto (bench, tests, drop-in): yes' "$build/configure.out" ||
      die "configure did not take the $arch libcrypto"
  fi
  grep -q 'tests (make check): yes' "$build/configure.out" || die "configure turned the tests off"
  banner "make"
  ( cd "$build" && make -j2 >make.out 2>&1 ) || { tail -30 "$build/make.out"; die "make failed"; }
  file -L "$build/lib/.libs/libasyncjob.so"
}

[ -x configure ] || ./autogen.sh >/dev/null || die "autogen failed"
install_tools
# Without the target's libc6 package, programs name the cross toolchain's loader and libc.
cross_cc=$triplet-gcc
if [ $from_source = yes ]; then
  loader=$(ls /usr/"$triplet"/lib/ld-linux-*.so.* 2>/dev/null | head -1)
  [ -n "$loader" ] || die "no loader in /usr/$triplet/lib (libc6-$arch-cross)"
  # DT_RPATH, not DT_RUNPATH: it also serves what the C library dlopen()s itself (libgcc_s,
  # which pthread_exit needs), where the loader's default paths are the build machine's.
  cross_cc="$triplet-gcc -Wl,--dynamic-linker=$loader -Wl,--disable-new-dtags -Wl,-rpath,/usr/$triplet/lib"
fi
multiarch=$(dpkg-architecture -a"$arch" -qDEB_HOST_MULTIARCH 2>/dev/null) ||
  die "dpkg-architecture does not know $arch"
unpack_target
probe_native
register_binfmt
configure_build
leg="$arch${qemu:+ under $qemu}"
leg_check LD_LIBRARY_PATH="$sysroot/usr/lib/$multiarch"
# A plain cross configure, as a user with only the target's Boost would run it.
[ "$arch" = arm64 ] && plain_build --host="$triplet" --with-boost-context="$sysroot/usr/lib/$multiarch"
leg_finish
