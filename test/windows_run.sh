#!/bin/sh
# windows_run.sh PROGRAM [ARGS...]: how make check runs a test of a Windows build: a .exe
# under $WINE (default /usr/lib/wine/wine64), anything else (a TAP script) as it is.
# WINEPREFIX and WINEPATH come from the caller.
#
# Check cannot fork on Windows, so a suite's tests would share one process (a counter, the
# last error, ASYNC_set_mem_functions' one chance). Each test runs in a process of its own
# instead (ASYNCJOB_TEST_ONE=k, test/check_suite.h), each within $ASYNCJOB_TEST_TIMEOUT
# seconds (300); their TAP lines are numbered again into one stream. A test whose process
# prints no result line (a crash) is a "not ok" with its exit status.
wine=${WINE:-/usr/lib/wine/wine64}
limit=${ASYNCJOB_TEST_TIMEOUT:-300}
case $1 in
  *.exe) ;;
  *) exec "$@" ;;
esac

n=$(ASYNCJOB_TEST_COUNT=1 timeout "$limit" "$wine" "$@" 2>/dev/null | tr -d '\r')
case $n in
  '' | *[!0-9]*) echo "Bail out! $1 did not say how many tests it has"; exit 1 ;;
esac
out=${TMPDIR:-/tmp}/windows_run.$$
status=0
k=1
while [ "$k" -le "$n" ]; do
  ASYNCJOB_TEST_ONE=$k timeout "$limit" "$wine" "$@" >"$out" 2>"$out.err"
  rc=$?
  tr -d '\r' <"$out" | grep -v '^1\.\.' | grep -v '^ok\|^not ok' || true
  line=$(tr -d '\r' <"$out" | grep '^ok \|^not ok ' | head -1)
  case $line in
    'ok '*) echo "ok $k ${line#ok [0-9]* }" ;;
    'not ok '*) echo "not ok $k ${line#not ok [0-9]* }"; status=1 ;;
    *) echo "not ok $k - test $k of $1 printed no result (exit status $rc)"
       sed 's/^/# /' "$out.err" | tail -20; status=1 ;;
  esac
  [ "$rc" -eq 0 ] || status=1
  k=$((k + 1))
done
rm -f "$out" "$out.err"
echo "1..$n"
exit $status
