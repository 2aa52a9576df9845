#!/bin/sh
# seed_example.sh: builds the example program of OpenSSL's ASYNC_start_job(3) page against
# this build, with its includes changed (<asyncjob.h>; <sys/select.h>, which musl does not
# bring in unasked) and OPENSSL_malloc/free mapped to malloc/free, and compares its output
# with the output the page prints. The page is read from $ASYNCJOB_SEED_PAGE (plain text)
# or from Debian's libssl-doc, rendered with groff; SKIP when neither is there. Prints TAP.
srcdir=${srcdir:-.}
echo "1..1"
work=examples/seed-example.tmp
rm -rf "$work" && mkdir -p "$work" || { echo "not ok 1 - seed example: cannot make $work"; exit 0; }
page=${ASYNCJOB_SEED_PAGE:-}
debian_page=/usr/share/man/man3/ASYNC_start_job.3ssl.gz
if test -z "$page" && test -f "$debian_page" && command -v groff >/dev/null 2>&1; then
  gzip -dc "$debian_page" | groff -man -Tascii -P-c -P-b -P-u 2>/dev/null > "$work/page.txt"
  page=$work/page.txt
fi
if test -z "$page" || test ! -s "$page"; then
  echo "ok 1 - seed example # SKIP OpenSSL's ASYNC_start_job(3) page is not available (install libssl-doc, or set ASYNCJOB_SEED_PAGE)"
  rm -rf "$work"
  exit 0
fi

# The program runs from its "#ifdef _WIN32" line to the sentence introducing the expected
# output, which is the block indented deeper than that sentence; both lose the program's
# indentation.
awk '/^ *#ifdef _WIN32/ { on = 1; ind = index($0, "#") - 1 }
     /^ *The expected output/ { on = 0 } on { print substr($0, ind + 1) }' "$page" |
  sed -e 's|#include <openssl/async.h>|#include <asyncjob.h>|' \
      -e 's|#include <openssl/crypto.h>|#include <stdlib.h>\
#include <sys/select.h>|' \
      -e 's/OPENSSL_malloc/malloc/g' -e 's/OPENSSL_free/free/g' > "$work/seed.c"
awk '/^ *#ifdef _WIN32/ { ind = index($0, "#") - 1 }
     /^ *The expected output/ { on = 1; lead = index($0, "T") - 1; next }
     on && /^ *$/ { next }
     on { d = match($0, /[^ ]/) - 1; if (d <= lead) exit; print substr($0, ind + 1) }' \
  "$page" > "$work/expected"
if ! grep -q 'ASYNC_start_job' "$work/seed.c" || ! test -s "$work/expected"; then
  echo "not ok 1 - seed example: could not find the program or its output in $page"
  exit 0
fi

# Build it as a user of the library would, against the just-built libasyncjob.la.
if ! ${LIBTOOL:-./libtool} --mode=link --tag=CC ${CC:-cc} ${SAN_CFLAGS:-} -w \
     -I"$srcdir/include" -Iinclude -o "$work/seed" "$work/seed.c" lib/libasyncjob.la \
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
