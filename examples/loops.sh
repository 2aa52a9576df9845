#!/bin/sh
# loops.sh (TAP): examples/epoll_jobs and examples/libuv_jobs each run 1,000 jobs that
# reuse fd numbers, under valgrind memcheck when it can run them (no sanitizer, native
# build, valgrind installed, valgrind.h usable by CC): every job must finish, with no
# memcheck error, no definite leak and no unannounced stack switch. libuv_jobs is a SKIP, with the reason, without libuv.
set -u
echo "1..2"
how=valgrind
if [ -n "${SAN_CFLAGS:-}" ]; then how="natively (a sanitizer build: valgrind cannot run it)"
elif [ "${CROSS_COMPILING:-no}" = yes ]; then how="natively (a cross build: this valgrind is the build machine's)"
elif ! command -v valgrind >/dev/null 2>&1; then how="natively (valgrind is not installed)"
elif [ "${HAVE_VALGRIND_H:-yes}" != yes ]; then
  how="natively (no valgrind.h for this compiler, so no job stack is announced to valgrind)"
fi
n=0
run() { # NAME
  n=$((n + 1))
  prog=./examples/$1 log=examples/$1.out
  if [ "$how" = valgrind ]; then
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
      "$prog" >"$log" 2>&1
  else
    "$prog" >"$log" 2>&1
  fi
  rc=$?
  if [ $rc -eq 0 ] && grep -q '^1000 jobs finished, 3000 waits$' "$log" &&
     ! grep -q 'client switching stacks' "$log"; then
    echo "ok $n - $1: 1000 jobs finished, 3000 waits, $how"
  else
    echo "not ok $n - $1: 1000 jobs finished, 3000 waits, $how (exit $rc)"
    sed 's/^/# /' "$log" | tail -40
  fi
}
run epoll_jobs
if [ -x ./examples/libuv_jobs ]; then
  run libuv_jobs
else
  echo "ok 2 # SKIP libuv_jobs not built: configure found no usable libuv${LIBUV_NOTE:+ $LIBUV_NOTE}"
fi
