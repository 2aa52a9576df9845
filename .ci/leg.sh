# leg.sh: sourced by .ci/cross.sh and .ci/musl.sh, which build in $build and run the whole
# make check there. Defines banner/die (prefixed with $leg) and the check-and-count tail.

banner() { printf '\n=== %s: %s ===\n' "$leg" "$*"; }
die() { echo "$leg: $*"; echo "0 passed, 0 skipped, 1 failed"; exit 1; }

# leg_check [VAR=VALUE...]: make check in $build with those settings; prints every result
# that is not a PASS and the tail of each failing log; sets check_status.
leg_check() {
  banner "make check"
  (cd "$build" && env "$@" make -j2 check) >"$build/check.out" 2>&1
  check_status=$?
  grep -E '^(PASS|FAIL|SKIP|ERROR|XPASS|XFAIL):' "$build/check.out" | grep -v '^PASS' || true
  find "$build" -name '*.log' \( -path '*test*' -o -path '*examples*' -o -path '*bench*' \) \
    -exec grep -l '^FAIL\|^ERROR\|^not ok' {} + 2>/dev/null | grep -v test-suite.log |
    while read -r l; do echo "--- $l"; tail -40 "$l"; done
}

# leg_finish: the counts of every .trs under $build as the closing line; fails on any
# failure, or when make check failed without one.
leg_finish() {
  local passed skipped failed
  passed=$(($(leg_trs PASS) + $(leg_trs XFAIL)))
  skipped=$(leg_trs SKIP)
  failed=$(($(leg_trs FAIL) + $(leg_trs XPASS) + $(leg_trs ERROR)))
  [ "$check_status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
  echo
  echo "$leg: $(($(date +%s) - start)) s"
  echo "$passed passed, $skipped skipped, $failed failed"
  [ "$failed" -eq 0 ]
}
leg_trs() { find "$build" -name '*.trs' -exec grep -h "^:test-result: $1" {} + | wc -l; }

# plain_build [CONFIGURE-ARGS...]: what a new user would do, in $build/plain: configure with
# only those arguments (pkg-config left to find the build machine's Check, which does not
# link for this host), make, make install into a DESTDIR, make check. Passes when configure
# says the tests are off and why, the library, header, .pc and pages install, and make
# check fails saying what to install. Three results in $build/plain/plain.trs.
plain_build() {
  banner "plain configure $*"
  local dir=$build/plain src=$PWD r1=FAIL r2=FAIL r3=FAIL f
  rm -rf "$dir" && mkdir -p "$dir" || die "cannot create $dir"
  dir=$(cd "$dir" && pwd) # absolute: make install wants an absolute DESTDIR
  if (cd "$dir" && env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_PATH -u PKG_CONFIG_SYSROOT_DIR \
        "$src/configure" "$@" >configure.out 2>&1); then
    sed -n '/configured$/,$p' "$dir/configure.out" | grep -E 'host:|fcontext from:|tests \(make check\)'
    grep -q "tests (make check): no (.*Check" "$dir/configure.out" && r1=PASS
  else
    tail -20 "$dir/configure.out"
  fi
  if [ -f "$dir/Makefile" ] && (cd "$dir" && make -j2 >make.out 2>&1 &&
       make install DESTDIR="$dir/inst" >install.out 2>&1); then
    r2=PASS
    for f in lib/libasyncjob.so lib/libasyncjob.a include/asyncjob.h lib/pkgconfig/asyncjob.pc \
             share/man/man3/ASYNC_start_job.3 share/man/man7/asyncjob.7; do
      [ -e "$dir/inst/usr/local/$f" ] || { echo "not installed: $f"; r2=FAIL; }
    done
  else
    tail -20 "$dir"/make.out "$dir"/install.out 2>/dev/null
  fi
  if [ -f "$dir/Makefile" ]; then
    if (cd "$dir" && make check >check.out 2>&1); then
      echo "make check passed without Check"
    else
      grep -q 'make check needs Check' "$dir/check.out" && r3=PASS
      grep -A1 'needs Check' "$dir/check.out"
    fi
  fi
  echo "$r1: configure says make check is off, and why"
  echo "$r2: make && make install (library, header, .pc, man pages)"
  echo "$r3: make check fails saying what to install"
  printf ':test-result: %s\n' $r1 $r2 $r3 >"$dir/plain.trs"
}
