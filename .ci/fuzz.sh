#!/usr/bin/env bash
# fuzz.sh [SECONDS]: a bounded libFuzzer run of test/fuzz/fuzz_api (default 60 s) in
# build/fuzz with clang (installed when missing, as root); exits non-zero if the fuzzer
# finds a mismatch, a crash or a leak.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

if ! command -v clang >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang >/dev/null ||
      { echo "fuzz: cannot install clang"; exit 1; }
  else
    echo "fuzz: clang not found (install the Debian package clang)"; exit 1
  fi
fi
[ -x configure ] || ./autogen.sh >/dev/null 2>&1 || { echo "fuzz: autogen failed"; exit 1; }

rm -rf build/fuzz && mkdir -p build/fuzz
( cd build/fuzz && ../../configure >configure.out 2>&1 ) ||
  { tail -30 build/fuzz/configure.out; echo "fuzz: configure failed"; exit 1; }
grep -q 'builds -fsanitize=fuzzer.*yes' build/fuzz/config.log build/fuzz/configure.out ||
  { echo "fuzz: clang cannot build libFuzzer targets here"; exit 1; }
( cd build/fuzz && make -j"$(nproc)" >make.out 2>&1 ) ||
  { tail -30 build/fuzz/make.out; echo "fuzz: build failed"; exit 1; }
if ( cd build/fuzz && make fuzz FUZZ_SECONDS="$seconds" ) >build/fuzz/fuzz.out 2>&1; then
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' build/fuzz/fuzz.out
  echo "fuzz: ok (${seconds}s)"
else
  tail -60 build/fuzz/fuzz.out
  echo "fuzz: FAILED (crash inputs, if any, are in build/fuzz)"
  exit 1
fi
