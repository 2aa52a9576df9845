#!/bin/sh
# check_exports.sh: the installed library exports the public API and nothing else; in
# particular the test-only allocation-failure hook of lib/alloc.h stays internal.
# Run by make check from the build directory; prints TAP.
so=lib/.libs/libasyncjob.so
core=lib/.libs/libasyncjob_core.a
NM=${NM:-nm}
echo 1..3
if [ ! -f "$so" ]; then
  echo "ok 1 # SKIP no shared library built"
  echo "ok 2 # SKIP no shared library built"
else
  hooks=`$NM -D --defined-only "$so" | grep -E ' (alloc_fail_after|alloc_count|alloc_[a-z_]*)(@.*)?$'`
  if [ -z "$hooks" ]; then echo "ok 1 - no alloc_* hook is exported"
  else echo "not ok 1 - exported test hooks: $hooks"; fi
  # Every defined dynamic symbol is an ASYNC_ or asyncjob_ name (the version node's own
  # absolute symbol aside).
  extra=`$NM -D --defined-only "$so" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
    grep -v -E '^(ASYNC_|asyncjob_)'`
  if [ -z "$extra" ]; then echo "ok 2 - only ASYNC_* and asyncjob_* are exported"
  else echo "not ok 2 - unexpected exports:" $extra; fi
fi
# The hook does exist inside the library, so the checks above are not vacuous.
if $NM "$core" 2>/dev/null | grep -q ' T alloc_fail_after$'; then
  echo "ok 3 - alloc_fail_after is defined in the internal core library"
else
  echo "not ok 3 - alloc_fail_after not found in $core"
fi
