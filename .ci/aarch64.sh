#!/usr/bin/env bash
# aarch64.sh: cross-build asyncjob for aarch64 with Debian's toolchain and run the whole
# `make check` under qemu-user. Run as root on Debian 12 (it installs packages and
# registers qemu with binfmt_misc). Ends with "N passed, N skipped, N failed".
#
# How the aarch64 programs run: every test is an aarch64 ELF (or a libtool wrapper script
# that execs one, or a .test script that runs one), so qemu is hooked in through the
# kernel's binfmt_misc rather than a LOG_COMPILER; the arm64 libc comes from the multiarch
# package libc6:arm64 (pulled in by check:arm64), whose loader sits at the path the
# binaries name, so no QEMU_LD_PREFIX is needed. (With QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
# a test child that dies of SIGSEGV hung qemu here; the multiarch libc avoids that.)
#
# What qemu-user cannot emulate is reported as SKIP by the tests themselves, never PASS:
# it accepts madvise(MADV_GUARD_INSTALL) without installing a guard and ignores RLIMIT_AS.
# The library detects the faked guard and uses mprotect guards instead, which qemu honours
# (test_fiber's guard_page_default_faults checks exactly that).
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n=== %s ===\n' "$*"; }
die() { echo "aarch64: $*"; echo "0 passed, 0 skipped, 1 failed"; exit 1; }

step "packages"
export DEBIAN_FRONTEND=noninteractive
dpkg --add-architecture arm64 || die "dpkg --add-architecture arm64 failed"
apt-get update -q >/dev/null || die "apt-get update failed"
apt-get install -y -q build-essential autoconf automake libtool pkg-config autoconf-archive \
  gcc-aarch64-linux-gnu qemu-user qemu-user-binfmt \
  libboost-context-dev:arm64 check:arm64 libssl-dev:arm64 >/dev/null ||
  die "apt-get install failed"

step "binfmt_misc"
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
  mount -t binfmt_misc binfmt_misc "$binfmt" || die "cannot mount binfmt_misc"
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  # qemu-user-binfmt ships the registration; systemd-binfmt applies it at boot, which a
  # container or a freshly mounted binfmt_misc has not seen.
  conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || die "$conf missing (qemu-user-binfmt)"
  cat "$conf" >"$binfmt/register" || die "cannot register qemu-aarch64 with binfmt_misc"
fi
grep -q '^enabled' "$binfmt/qemu-aarch64" || die "qemu-aarch64 binfmt entry is disabled"
cat "$binfmt/qemu-aarch64"

step "autogen"
[ -x configure ] || ./autogen.sh || die "autogen failed"

step "configure --host=aarch64-linux-gnu"
rm -rf build/aarch64 && mkdir -p build/aarch64
export PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
( cd build/aarch64 && ../../configure --host=aarch64-linux-gnu --enable-werror \
    >configure.out 2>&1 ) || { tail -30 build/aarch64/configure.out; die "configure failed"; }
sed -n '/configured$/,$p' build/aarch64/configure.out
# configure finds libboost_context.a through `$CC -print-multiarch`.
grep -q 'fcontext from: */usr/lib/aarch64-linux-gnu/libboost_context.a' \
  build/aarch64/configure.out || die "configure did not pick the arm64 libboost_context.a"

step "make"
( cd build/aarch64 && make -j2 >make.out 2>&1 ) || { tail -30 build/aarch64/make.out; die "make failed"; }
file build/aarch64/lib/.libs/libasyncjob.so.0.0.0

step "make check under qemu-user"
( cd build/aarch64 && make -j2 check ) >build/aarch64/check.out 2>&1
check_status=$?
grep -E '^(PASS|FAIL|SKIP|ERROR|XPASS|XFAIL):' build/aarch64/check.out
find build/aarch64 -name '*.log' \( -path '*test*' -o -path '*examples*' \) \
  -exec grep -l '^FAIL\|^ERROR' {} + 2>/dev/null | grep -v test-suite.log |
  while read -r l; do echo "--- $l"; tail -40 "$l"; done

trs() { find build/aarch64 -name '*.trs' -exec grep -h "^:test-result: $1" {} + | wc -l; }
passed=$(( $(trs PASS) + $(trs XFAIL) ))
skipped=$(trs SKIP)
failed=$(( $(trs FAIL) + $(trs XPASS) + $(trs ERROR) ))
[ "$check_status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo
echo "aarch64 under qemu-user: $(( $(date +%s) - start )) s"
echo "$passed passed, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ]
