#!/bin/sh
# smoke.sh: make check's run of `bench/run --quick`, so the benchmarks never rot (TAP): it
# printed its table, wrote its CSV, and `bench/run --from` prints the same report from the
# saved samples. It never looks at the timings.
srcdir=${srcdir:-.}
echo "1..4"
# Raw stack switches without fiber annotations are outside what the sanitizers support
# (and their timings mean nothing there): a sanitizer build skips, and says so.
if grep -q '^#define ASYNCJOB_[AT]SAN 1' config.h 2>/dev/null; then
  echo "ok 1 # SKIP bench/run is not run in a sanitizer build"
  echo "ok 2 # SKIP bench/run is not run in a sanitizer build"
  echo "ok 3 # SKIP bench/run is not run in a sanitizer build"
  echo "ok 4 # SKIP bench/run is not run in a sanitizer build"
  exit 0
fi
log=bench/results/smoke.log
err=bench/results/smoke.err
mkdir -p bench/results
doc_before=$(cksum <"$srcdir/doc/PERFORMANCE.md" 2>/dev/null)
if BENCH_BUILDDIR=$(pwd) "$srcdir/bench/run" --quick --no-build >"$log" 2>"$err" &&
   grep -q '^| ASYNC_start_job resume + ASYNC_pause_job | ns/round trip | [0-9]' "$log" &&
   grep -q '^| 1000 paused jobs: resident memory |' "$log"; then
  echo "ok 1 - bench/run --quick printed the table"
else
  echo "not ok 1 - bench/run --quick printed the table"
  sed 's/^/# /' "$log" "$err"
fi
csv=bench/results/latest.csv
if [ -s "$csv" ] && [ "$(wc -l <"$csv")" -ge 20 ] &&
   grep -q '^"switch: fcontext, inline ping-pong",ns/round trip,[0-9]' "$csv"; then
  echo "ok 2 - bench/run --quick wrote $csv"
else
  echo "not ok 2 - bench/run --quick wrote $csv"
fi
# The report depends on the samples alone: the saved ones give the same report again.
again=bench/results/smoke-again.log
if cp bench/results/raw.txt bench/results/smoke-raw.txt &&
   "$srcdir/bench/run" --from bench/results/smoke-raw.txt >"$again" 2>&1 && cmp -s "$log" "$again"; then
  echo "ok 3 - bench/run --from printed the same report from the saved samples"
else
  echo "not ok 3 - bench/run --from printed the same report from the saved samples"
  diff "$log" "$again" | sed 's/^/# /'
fi
# The report as doc/PERFORMANCE.md: written into bench/results, the tree's copy left alone.
perf=bench/results/PERFORMANCE.md
if grep -q '^## The run$' "$perf" && grep -q '^  machine:   ' "$perf" &&
   grep -q '^| ASYNC_start_job resume + ASYNC_pause_job | ns/round trip | [0-9]' "$perf" &&
   [ "$(cksum <"$srcdir/doc/PERFORMANCE.md" 2>/dev/null)" = "$doc_before" ]; then
  echo "ok 4 - bench/run wrote $perf and left doc/PERFORMANCE.md alone (--quick)"
else
  echo "not ok 4 - bench/run wrote $perf and left doc/PERFORMANCE.md alone (--quick)"
fi
