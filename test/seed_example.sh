#!/bin/sh
# seed_example.sh: builds the example program of OpenSSL's ASYNC_start_job(3) page (the seed
# page the project started from) against this build of asyncjob, with only its includes
# changed (<sys/select.h> added for its select(), which glibc's headers bring in unasked and
# musl's do not) and OPENSSL_malloc/OPENSSL_free mapped to malloc/free (<asyncjob.h>
# declares no allocation functions), and compares its output with the output the page
# prints. The page is OpenSSL's text, so it is not part of this repository: the script
# reads it from $ASYNCJOB_SEED_PAGE, or from the shared/seed folder beside the source tree,
# and reports SKIP when neither exists.
# Prints TAP.
srcdir=${srcdir:-.}
echo "1..1"
page=${ASYNCJOB_SEED_PAGE:-}
if test -z "$page"; then
  for d in "$srcdir/../shared/seed" "$srcdir/../../shared/seed" /work/shared/seed; do
    if test -f "$d/ASYNC_start_job.3ossl.txt"; then page=$d/ASYNC_start_job.3ossl.txt; break; fi
  done
fi
if test -z "$page" || test ! -f "$page"; then
  echo "ok 1 - seed example # SKIP the seed manual page is not available (set ASYNCJOB_SEED_PAGE)"
  exit 0
fi
work=examples/seed-example.tmp
rm -rf "$work" && mkdir -p "$work" || { echo "not ok 1 - seed example: cannot make $work"; exit 0; }

# The program runs from its first "#ifdef _WIN32" line to the sentence introducing the
# expected output; the expected output is the indented block after that sentence.
awk '/^ #ifdef _WIN32/ { on = 1 } /^The expected output/ { on = 0 } on' "$page" |
  sed -e 's/^ //' \
      -e 's|#include <openssl/async.h>|#include <asyncjob.h>|' \
      -e 's|#include <openssl/crypto.h>|#include <stdlib.h>\
#include <sys/select.h>|' \
      -e 's/OPENSSL_malloc/malloc/g' -e 's/OPENSSL_free/free/g' > "$work/seed.c"
awk '/^The expected output/ { on = 1; next } on && /^ / { print substr($0, 2); seen = 1; next }
     on && seen && !/^ / { exit }' "$page" > "$work/expected"
if ! grep -q 'ASYNC_start_job' "$work/seed.c" || ! test -s "$work/expected"; then
  echo "not ok 1 - seed example: could not find the program or its output in $page"
  exit 0
fi

# Build it as a user of the library would, against the just-built libasyncjob.la.
if ! ${LIBTOOL:-./libtool} --mode=link --tag=CC ${CC:-cc} ${SAN_CFLAGS:-} -w \
     -I"$srcdir/include" -o "$work/seed" "$work/seed.c" lib/libasyncjob.la \
     >"$work/build.log" 2>&1; then
  echo "not ok 1 - seed example: does not build against asyncjob"
  sed 's/^/# /' "$work/build.log"
  exit 0
fi
"$work/seed" > "$work/out"
status=$?
if test $status -ne 0; then
  echo "not ok 1 - seed example: exited with status $status"
elif cmp -s "$work/expected" "$work/out"; then
  echo "ok 1 - seed example: builds unchanged but for its includes and prints the page's output"
  rm -rf "$work"
else
  echo "not ok 1 - seed example: output differs from the page's"
  diff "$work/expected" "$work/out" | sed 's/^/# /'
fi
exit 0
