#!/bin/sh
# windows_run.sh PROGRAM [ARGS...]: how make check runs a test of a Windows build: a .exe
# under $WINE (default /usr/lib/wine/wine64) within $ASYNCJOB_TEST_TIMEOUT seconds (300),
# anything else (a TAP script) as it is. WINEPREFIX and WINEPATH come from the caller.
case $1 in
  *.exe) exec timeout "${ASYNCJOB_TEST_TIMEOUT:-300}" "${WINE:-/usr/lib/wine/wine64}" "$@" ;;
  *) exec "$@" ;;
esac
