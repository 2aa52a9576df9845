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
