#!/usr/bin/env bash
# installcheck.sh [CONFIGURE_ARGS...]: install into a temporary prefix and check it as a user
# meets it (pkg-config consumers shared and static, symbols, dependencies, man pages, gdb,
# the drop-in, make uninstall); one PASS/FAIL line per check, exits 1 if any failed.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh) || { echo "FAIL: autogen"; exit 1; }

work=$(mktemp -d /tmp/asyncjob-installcheck.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
passed=0
failed=0
ok() { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { # description command...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

echo "=== configure, build and install into $prefix"
mkdir -p "$work/build"
if ! (cd "$work/build" && "$src/configure" --prefix="$prefix" "$@" >configure.out 2>&1 &&
      make -j2 >make.out 2>&1 && make install >install.out 2>&1); then
  tail -30 "$work"/build/*.out
  bad "build and make install"
  echo "$passed passed, $failed failed"
  exit 1
fi
ok "build and make install"
(cd "$prefix" && find . ! -type d | LC_ALL=C sort) >"$work/installed.txt"
echo "--- installed files:"
cat "$work/installed.txt"

libdir=$prefix/lib
so=$libdir/libasyncjob.so
export PKG_CONFIG_PATH=$libdir/pkgconfig
unset PKG_CONFIG_LIBDIR
CC=${CC:-cc}

check "asyncjob.h installed" test -f "$prefix/include/asyncjob.h"
check "shared library installed" test -f "$so"
check "static library installed" test -f "$libdir/libasyncjob.a"
check "asyncjob.pc installed and valid" pkg-config --exists asyncjob

# The consumer (test/consumers/consumer.c, also what the CMake and meson projects build): a
# job that pauses once, resumed by main; prints asyncjob_version(), ASYNC_is_capable() and
# the job's result.
version=$(pkg-config --modversion asyncjob)
echo "--- pkg-config --modversion asyncjob: $version"
expected="$version 1 42"

flags=$(pkg-config --cflags --libs asyncjob)
echo "--- pkg-config --cflags --libs asyncjob: $flags"
# shellcheck disable=SC2086
if $CC "$src/test/consumers/consumer.c" -o "$work/consumer" $flags; then
  out=$(LD_LIBRARY_PATH=$libdir "$work/consumer")
  check "shared consumer prints the version, ASYNC_is_capable() = 1 and the job's result" \
    test "$out" = "$expected"
  check "shared consumer is linked against the installed libasyncjob" \
    sh -c "LD_LIBRARY_PATH='$libdir' ldd '$work/consumer' | grep -q '$libdir/libasyncjob.so'"
else
  bad "shared consumer compiles with pkg-config flags only"
fi

sflags=$(pkg-config --static --cflags --libs asyncjob)
echo "--- pkg-config --static --cflags --libs asyncjob: $sflags"
# shellcheck disable=SC2086
if $CC -static "$src/test/consumers/consumer.c" -o "$work/consumer-static" $sflags; then
  out=$("$work/consumer-static")
  check "static consumer prints the version, ASYNC_is_capable() = 1 and the job's result" \
    test "$out" = "$expected"
  check "static consumer needs no shared library" \
    sh -c "! readelf -d '$work/consumer-static' 2>/dev/null | grep -q NEEDED"
else
  bad "static consumer links with pkg-config --static flags only"
fi

check "asyncjob.pc has a URL" sh -c "grep -q '^URL: https://' '$libdir/pkgconfig/asyncjob.pc'"
check "the installed man pages name the version in their title line" \
  grep -q "^\.TH ASYNC_START_JOB 3 .* \"asyncjob $version\" " "$prefix/share/man/man3/ASYNC_start_job.3"
check "the examples are installed with their index" \
  sh -c "test -f '$prefix/share/doc/asyncjob/examples/README' && test -f '$prefix/share/doc/asyncjob/examples/epoll_jobs.c'"

# CMake and meson projects (test/consumers) build against the installed library and run:
# the shared and the static variant, printing the same line as above.
consumer_ok() { # PROGRAM: prints "VERSION 1 42"
  test "$("$1")" = "$expected"
}
for tool in cmake meson ninja; do
  command -v $tool >/dev/null 2>&1 || bad "$tool is not installed (Debian packages cmake, meson, ninja-build)"
done
if command -v cmake >/dev/null 2>&1; then
  cp -r "$src/test/consumers/cmake" "$work/cmake-src" && cp "$src/test/consumers/consumer.c" "$work/cmake-src/"
  if (cmake -S "$work/cmake-src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DASYNCJOB_VERSION="$version" && cmake --build "$work/cmake-build") >"$work/cmake.out" 2>&1; then
    ok "a CMake project builds with find_package(asyncjob $version CONFIG REQUIRED)"
    check "CMake: asyncjob::asyncjob runs against the installed library" \
      sh -c "LD_LIBRARY_PATH='$libdir' ldd '$work/cmake-build/consumer' | grep -q '$libdir/libasyncjob.so' && LD_LIBRARY_PATH='$libdir' '$work/cmake-build/consumer' | grep -qx '$expected'"
    check "CMake: asyncjob::asyncjob_static runs and needs no libasyncjob.so" \
      sh -c "! readelf -d '$work/cmake-build/consumer_static' | grep -q 'libasyncjob' && '$work/cmake-build/consumer_static' | grep -qx '$expected'"
  else
    tail -30 "$work/cmake.out"
    bad "a CMake project builds with find_package(asyncjob $version CONFIG REQUIRED)"
  fi
  # A request for the next major version must be refused by the version file.
  next=$(( ${version%%.*} + 1 )).0
  check "CMake: find_package(asyncjob $next) is refused" sh -c \
    "! cmake -S '$work/cmake-src' -B '$work/cmake-build-next' -DCMAKE_PREFIX_PATH='$prefix' -DASYNCJOB_VERSION=$next >/dev/null 2>&1"
fi
if command -v meson >/dev/null 2>&1 && command -v ninja >/dev/null 2>&1; then
  cp -r "$src/test/consumers/meson" "$work/meson-src" && cp "$src/test/consumers/consumer.c" "$work/meson-src/"
  if (meson setup "$work/meson-build" "$work/meson-src" && ninja -C "$work/meson-build") \
       >"$work/meson.out" 2>&1; then
    ok "a meson project builds with dependency('asyncjob')"
    check "meson: the shared consumer runs against the installed library" \
      sh -c "LD_LIBRARY_PATH='$libdir' '$work/meson-build/consumer' | grep -qx '$expected'"
    check "meson: the static consumer runs and needs no libasyncjob.so" \
      sh -c "! readelf -d '$work/meson-build/consumer_static' | grep -q 'libasyncjob' && '$work/meson-build/consumer_static' | grep -qx '$expected'"
  else
    tail -30 "$work/meson.out"
    bad "a meson project builds with dependency('asyncjob')"
  fi
fi

# Symbols: the switch is inside the library but not exported.
check "libasyncjob.so holds jump_fcontext" sh -c "nm '$so' | grep -qw jump_fcontext"
check "libasyncjob.so does not export jump_fcontext" \
  sh -c "! nm -D '$so' | grep -q fcontext"
check "libasyncjob.so exports only symbols of its ASYNCJOB_1.x nodes" \
  sh -c "nm -D --defined-only '$so' | awk '\$2 != \"A\"' | grep -v '@@ASYNCJOB_1\.[0-9]*\$' | grep -q . && exit 1 || exit 0"
# The static library: the same API and nothing else global (install-exec-hook).
static_globals() {
  nm --defined-only "$libdir/libasyncjob.a" | awk 'NF == 3 && $2 ~ /^[A-Z]$/ { print $3 }' |
    LC_ALL=C sort
}
api_names() { grep -v '^#' "$src/lib/asyncjob.abi" | LC_ALL=C sort; }
check "libasyncjob.a defines exactly the API names as globals" \
  sh -c "[ \"\$1\" = \"\$2\" ]" _ "$(static_globals)" "$(api_names)"
check "libasyncjob.a holds jump_fcontext as a local symbol" \
  sh -c "nm '$libdir/libasyncjob.a' | grep -q ' t jump_fcontext\$'"
check "libasyncjob.so does not NEED libstdc++" \
  sh -c "! readelf -d '$so' | grep NEEDED | grep -q 'libstdc++'"
echo "--- NEEDED: $(readelf -d "$so" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"

# Man pages: every API name, the extensions and asyncjob(7).
names=$(sed -n 's/^ASYNCJOB_API [^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' \
  "$src/include/asyncjob.h")
napi=$(echo "$names" | grep -c '^ASYNC_')
check "the header declares the 22 ASYNC_* functions" test "$napi" -eq 22
command -v man >/dev/null || bad "man is not installed (Debian package man-db): cannot check the pages"
missing=
for n in $names; do
  MANPATH=$prefix/share/man man -w "$n" >/dev/null 2>&1 || missing="$missing $n"
done
check "man -w finds a page for every API name${missing:+ (missing:$missing)}" test -z "$missing"
check "man -w finds asyncjob(7)" sh -c "MANPATH='$prefix/share/man' man -w 7 asyncjob >/dev/null 2>&1"
check "an alias page shows its family's page" \
  sh -c "MANPATH='$prefix/share/man' MANWIDTH=80 man ASYNC_WAIT_CTX_clear_fd 2>/dev/null | grep -q 'ASYNC_WAIT_CTX_new'"

# The gdb extension, where gdb auto-loads it: the auto-load directory, then the library's
# real file name, then -gdb.py; gdb must then know the jobs of the consumer.
script=$prefix/share/gdb/auto-load$(readlink -f "$so")-gdb.py
check "the gdb extension is installed as $script" test -f "$script"
if command -v gdb >/dev/null 2>&1; then
  al=$prefix/share/gdb/auto-load
  gout=$(LD_LIBRARY_PATH=$libdir gdb -nx -batch -iex "add-auto-load-scripts-directory $al" \
    -iex "add-auto-load-safe-path $al" -ex 'break job' -ex run -ex 'info asyncjobs' \
    "$work/consumer" 2>&1)
  check "gdb auto-loads the extension: info asyncjobs shows the consumer's running job" \
    sh -c "echo \"\$1\" | grep -Eq '^1 .* running +job '" _ "$gout"
else
  bad "gdb is not installed (Debian package gdb): cannot check the extension"
fi
# OpenSSL drop-in, when configure built it: installed with its launcher and page, the
# launcher runs openssl on it, and libasyncjob.so does not depend on it.
dropin=$libdir/libasyncjob-openssl.so
if grep -q 'OpenSSL drop-in (libasyncjob-openssl.so): yes' "$work/build/configure.out"; then
  check "libasyncjob-openssl.so installed" test -f "$dropin"
  check "asyncjob-openssl installed and names the installed drop-in" \
    grep -q "$dropin" "$prefix/bin/asyncjob-openssl"
  check "man -w finds asyncjob-openssl(1)" \
    sh -c "MANPATH='$prefix/share/man' man -w 1 asyncjob-openssl >/dev/null 2>&1"
  check "asyncjob-openssl without a program fails" sh -c "! '$prefix/bin/asyncjob-openssl' 2>/dev/null"
  if command -v openssl >/dev/null; then
    check "asyncjob-openssl runs openssl speed -async_jobs on the drop-in" sh -c \
      "LD_DEBUG=bindings '$prefix/bin/asyncjob-openssl' openssl speed -async_jobs 2 -seconds 1 -bytes 64 -evp sha256 2>&1 >/dev/null |
       grep -q 'libasyncjob-openssl.so \\[0\\]: normal symbol .ASYNC_start_job'"
  else
    echo "--- no openssl program: the launcher's run is not checked"
  fi
else
  echo "--- OpenSSL drop-in not configured: its checks are skipped"
fi
check "libasyncjob.so does not NEED the drop-in" \
  sh -c "! readelf -d '$so' | grep NEEDED | grep -q 'libasyncjob-openssl'"

echo "=== make uninstall"
if (cd "$work/build" && make uninstall >uninstall.out 2>&1); then
  left=$(cd "$prefix" && find . ! -type d)
  check "make uninstall removes every installed file${left:+ (left: $left)}" test -z "$left"
else
  bad "make uninstall"
fi

# A sanitizer build must not be installable under the plain library's name.
echo "=== a sanitizer build: make install must refuse it"
mkdir -p "$work/asan" && sprefix=$work/asan-prefix
if (cd "$work/asan" && "$src/configure" --prefix="$sprefix" --enable-sanitizers=address,undefined \
      >configure.out 2>&1 && make -j2 >make.out 2>&1); then
  (cd "$work/asan" && make install >install.out 2>&1)
  rc=$?
  check "make install of a sanitizer build fails" test "$rc" -ne 0
  check "and says why" grep -q 'only programs built with the same sanitizer can load' "$work/asan/install.out"
  check "and installs nothing" sh -c "! find '$sprefix' ! -type d 2>/dev/null | grep -q ."
else
  tail -20 "$work"/asan/*.out
  bad "a sanitizer build (configure --enable-sanitizers=address,undefined, make)"
fi

echo
echo "installcheck: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
