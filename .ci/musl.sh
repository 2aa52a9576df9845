#!/usr/bin/env bash
# musl.sh: as root on Debian 12, build with musl-gcc (x86-64) in build/musl, run the whole
# make check, a statically linked example and a plain configure (plain_build, .ci/leg.sh);
# ends with "N passed, N skipped, N failed".
# Debian has no musl build of Check: it is built here from its source (doc/DESIGN.md, "CI").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
start=$(date +%s)
build=$PWD/build/musl
leg=musl
# shellcheck source=.ci/leg.sh
. .ci/leg.sh
# shellcheck source=.ci/apt-src.sh
. .ci/apt-src.sh
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt-get or dpkg (a second session on the machine) instead of failing.
APT_LOCK="-o DPkg::Lock::Timeout=300"

install_tools() {
  banner "packages"
  apt-get $APT_LOCK install -y -q musl-tools dpkg-dev >/dev/null 2>&1 ||
    apt-get $APT_LOCK install -y -q musl-tools dpkg-dev >/dev/null ||
    die "apt-get could not install musl-tools dpkg-dev"
}

build_asyncjob() {
  banner "configure CC=musl-gcc"
  (cd "$build" && PKG_CONFIG_LIBDIR=$build/check/lib/pkgconfig ../../configure CC=musl-gcc \
     --enable-werror >configure.out 2>&1) || { tail -30 "$build/configure.out"; die "configure failed"; }
  sed -n '/configured$/,$p' "$build/configure.out"
  banner "make"
  (cd "$build" && make -j2 >make.out 2>&1) || { tail -30 "$build/make.out"; die "make failed"; }
  file -L "$build/lib/.libs/libasyncjob.so"
}

# examples/hello_async linked statically with musl against libasyncjob.a, run, and its
# output compared with the expected one; the result is written as one automake .trs.
static_example() {
  banner "static hello_async"
  local exe=$build/static/hello_async result=FAIL
  mkdir -p "$build/static"
  if musl-gcc -static -Iinclude -I"$build/include" -o "$exe" examples/hello_async.c "$build/lib/.libs/libasyncjob.a" \
       -pthread && file "$exe" | grep -q 'statically linked' &&
     "$exe" | cmp - examples/hello_async.expected; then
    result=PASS
  fi
  echo "$result: static musl examples/hello_async"
  echo ":test-result: $result" >"$build/static/hello_async.trs"
}

[ -x configure ] || ./autogen.sh >/dev/null || die "autogen failed"
rm -rf "$build" && mkdir -p "$build" || die "cannot create $build"
install_tools
banner "Check for musl, from its Debian source package"
check_from_source "$build" CC=musl-gcc
build_asyncjob
leg_check
static_example
# A plain CC=musl-gcc configure, beside the machine's glibc Check.
plain_build CC=musl-gcc
leg_finish
