#!/bin/sh
# valgrind-check.sh: how `make check-valgrind` runs valgrind. It runs the real valgrind
# with the given arguments, passes its output on, and fails the test if valgrind warned
# that the client switches stacks (an unregistered job stack: results unreliable after it).
# Check's per-test timeouts are stretched, since valgrind runs tests many times slower.
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}
export CK_TIMEOUT_MULTIPLIER

out=`mktemp "${TMPDIR:-/tmp}/valgrind-check.XXXXXX"` || exit 99
valgrind "$@" 2>"$out"
status=$?
cat "$out" >&2
if grep -q 'client switching stacks' "$out"; then
  echo "valgrind-check.sh: valgrind saw an unannotated stack switch (see above)" >&2
  status=1
fi
rm -f "$out"
exit $status
