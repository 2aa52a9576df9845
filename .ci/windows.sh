#!/usr/bin/env bash
# windows.sh: as root on Debian 12, cross-build for Windows x86-64 with mingw-w64 in
# build/windows (Check built for mingw from its Debian source package, Boost's ms_pe
# fcontext assembly from boost1.81's), run the whole make check under Wine (wine64, a
# prefix inside the build folder), install into build/windows/inst and build two programs
# against it with pkg-config as a user would, run under Wine too; ends with
# "N passed, N skipped, N failed". doc/DESIGN.md: "Windows".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
start=$(date +%s)
build=$PWD/build/windows
leg=windows
triplet=x86_64-w64-mingw32
# shellcheck source=.ci/leg.sh
. .ci/leg.sh
# shellcheck source=.ci/apt-src.sh
. .ci/apt-src.sh
export DEBIAN_FRONTEND=noninteractive
APT_LOCK="-o DPkg::Lock::Timeout=300"
WINE=/usr/lib/wine/wine64

install_tools() {
  banner "packages"
  local p="gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 wine64 dpkg-dev"
  # shellcheck disable=SC2086
  apt-get $APT_LOCK install -y -q $p >/dev/null 2>&1 || apt-get $APT_LOCK install -y -q $p >/dev/null ||
    die "apt-get could not install $p"
}

build_check() {
  banner "Check for mingw-w64"
  apt_src_init "$build/apt"
  apt_src_fetch check "$build/check-src"
  (cd "$build/check-src" && dpkg-source -x check_*.dsc src >/dev/null) ||
    die "dpkg-source -x of Check's source package failed"
  # mingw's own printf: Check prints its messages with %j, which msvcrt lacks.
  (cd "$build/check-src/src" && ./configure --host=$triplet --prefix="$build/check" \
     CPPFLAGS=-D__USE_MINGW_ANSI_STDIO=1 --disable-subunit --disable-shared --enable-static \
     --disable-build-docs >configure.out 2>&1 && make -j2 >make.out 2>&1 &&
     make install >install.out 2>&1) ||
    { tail -20 "$build"/check-src/src/*.out; die "building Check with mingw-w64 failed"; }
  cp "$build/check/lib/libcheck.a" "$build/check/lib/libcheck_pic.a" || die "no libcheck.a"
}

# A Wine prefix of the leg's own; console programs need no display.
wine_setup() {
  banner "Wine"
  export WINEPREFIX=$build/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  local dlls
  dlls=$(dirname "$(readlink -f "$($triplet-gcc -print-file-name=libwinpthread-1.dll)")")
  [ -f "$dlls/libwinpthread-1.dll" ] || dlls=/usr/$triplet/lib
  # Windows paths: Wine looks for DLLs in WINEPATH's folders by their Z: names.
  export WINEPATH="Z:$build/lib/.libs;Z:$dlls"
  timeout 300 "$WINE" cmd /c exit >/dev/null 2>&1 || die "wine64 cannot start in $WINEPREFIX"
  "$WINE" --version
}

build_asyncjob() {
  banner "configure --host=$triplet"
  bash .ci/boost-source.sh "$build/boost" || die "Boost's fcontext sources not fetched"
  (cd "$build" && PKG_CONFIG_LIBDIR=$build/check/lib/pkgconfig ../../configure \
     --host=$triplet --with-boost-source="$build/boost" --prefix="$build/inst" \
     --enable-werror >configure.out 2>&1) || { tail -30 "$build/configure.out"; die "configure failed"; }
  sed -n '/configured$/,$p' "$build/configure.out"
  banner "make"
  (cd "$build" && make -j2 >make.out 2>&1) || { tail -30 "$build/make.out"; die "make failed"; }
  ls "$build/lib/.libs"/*.dll "$build/lib/.libs"/*.a
}

# One .trs under $build/user for each result of the installed tree, as make check writes.
result() {
  echo "$1: $2"
  echo ":test-result: $1" >"$build/user/$(echo "$2" | tr -c 'A-Za-z0-9_\n' _).trs"
}

# The DLL's export table is exactly lib/asyncjob.abi's names.
check_exports() {
  local dll want got
  dll=$(ls "$build"/inst/bin/libasyncjob-*.dll 2>/dev/null | head -1)
  want=$(grep -v '^#' lib/asyncjob.abi | grep . | LC_ALL=C sort)
  got=$($triplet-objdump -p "$dll" 2>/dev/null |
    sed -n '/Ordinal\/Name Pointer/,/^$/p' | sed -n 's/^[[:space:]]*\[ *[0-9]*\] //p' | LC_ALL=C sort)
  if [ -n "$dll" ] && [ "$want" = "$got" ]; then result PASS "DLL exports = lib/asyncjob.abi"
  else result FAIL "DLL exports = lib/asyncjob.abi"; diff <(echo "$want") <(echo "$got"); fi
}

# Install; build hello_event and test_windows against the prefix with pkg-config, as a user
# would; run both under Wine.
installed_tree() {
  banner "make install, and programs built against it"
  mkdir -p "$build/user"
  (cd "$build" && make install >install.out 2>&1) || { tail -20 "$build/install.out"; die "make install failed"; }
  ls "$build/inst/bin" "$build/inst/lib" "$build/inst/include"
  check_exports
  local pc="PKG_CONFIG_LIBDIR=$build/inst/lib/pkgconfig:$build/check/lib/pkgconfig" flags
  flags=$(env "$pc" pkg-config --cflags --libs asyncjob) || die "pkg-config asyncjob failed"
  echo "$triplet-gcc prog.c $flags"
  export WINEPATH="Z:$build/inst/bin;${WINEPATH#*;}"
  if $triplet-gcc -Wall -Werror -o "$build/user/hello_event.exe" examples/hello_event.c $flags &&
     timeout 120 "$WINE" "$build/user/hello_event.exe" | tr -d '\r' >"$build/user/hello_event.out" &&
     cmp "$build/user/hello_event.out" examples/hello_async.expected; then
    result PASS "hello_event (the seed's example with an event HANDLE)"
  else
    result FAIL "hello_event (the seed's example with an event HANDLE)"
  fi
  # The page's own expected output, when Debian's libssl-doc has it.
  local page=/usr/share/man/man3/ASYNC_start_job.3ssl.gz
  if [ -f "$page" ] && command -v groff >/dev/null; then
    gzip -dc "$page" | groff -man -Tascii -P-c -P-b -P-u 2>/dev/null |
      awk '/^ *The expected output/ { on = 1; lead = index($0, "T") - 1; next }
           on && /^ *$/ { next }
           on { d = match($0, /[^ ]/) - 1; if (d <= lead) exit; sub(/^ +/, ""); print }' \
      >"$build/user/seed.expected"
    if [ -s "$build/user/seed.expected" ] && cmp "$build/user/seed.expected" "$build/user/hello_event.out"
    then result PASS "hello_event prints ASYNC_start_job(3)'s expected output"
    else result FAIL "hello_event prints ASYNC_start_job(3)'s expected output"; fi
  else
    result SKIP "hello_event against the page (libssl-doc not installed)"
  fi
  flags=$(env "$pc" pkg-config --cflags --libs asyncjob check)
  if $triplet-gcc -Wall -Wno-format -D__USE_MINGW_ANSI_STDIO=1 -Itest \
       -o "$build/user/test_windows.exe" test/test_windows.c $flags &&
     WINE=$WINE sh test/windows_run.sh "$build/user/test_windows.exe" | tee "$build/user/test_windows.out" &&
     grep -q '^1\.\.9$' "$build/user/test_windows.out" && [ "$(grep -c '^ok ' "$build/user/test_windows.out")" = 9 ]
  then result PASS "test_windows built against the installed tree (threads, wrong thread, guard, thread exit)"
  else result FAIL "test_windows built against the installed tree (threads, wrong thread, guard, thread exit)"; fi
}

[ -x configure ] || ./autogen.sh >/dev/null || die "autogen failed"
rm -rf "$build" && mkdir -p "$build" || die "cannot create $build"
install_tools
build_check
wine_setup
build_asyncjob
leg_check ASYNCJOB_TEST_TIMEOUT=300
installed_tree
leg_finish
