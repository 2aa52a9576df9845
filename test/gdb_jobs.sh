#!/bin/sh
# gdb_jobs.sh: gdb/asyncjob-gdb.py on test/gdb_jobs_target, stopped inside a running job
# with two jobs paused on the main thread (alpha, beta chains), one on a second thread
# (gamma) and three idle ones. "info asyncjobs" and "asyncjob bt all" must show them
# live, from a gcore core file and from a kernel core dump, with a libasyncjob that has
# full debug information, none, or not even a symbol table; the process must go on
# unchanged afterwards. Prints TAP; every check skips, with the reason, without gdb.
set -u
srcdir=${srcdir:-.}
ext=$srcdir/gdb/asyncjob-gdb.py
prog=test/gdb_jobs_target
N=14
echo "1..$N"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && sed 's/^/# /' "$2"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { # description output-file command...
  d=$1 f=$2; shift 2
  if "$@"; then ok "$d"; else not_ok "$d" "$f"; fi
}
skip_rest() { while [ $n -lt $N ]; do skip "gdb extension" "$1"; done; exit 0; }

command -v gdb >/dev/null 2>&1 || skip_rest "gdb not found"
# The host's gdb cannot run a cross-compiled program (an emulator runs the tests then).
[ "${CROSS_COMPILING:-no}" = no ] || skip_rest "cross-compiled test program"
gdb -nx -batch -ex 'python import gdb.unwinder' >/dev/null 2>&1 ||
  skip_rest "this gdb has no Python support"
[ -x "$prog" ] || { echo "Bail out! $prog not built"; exit 1; }

tmp=$(mktemp -d) || exit 1
# Cleared at the end (dash under valgrind counts a trap still set at exit as a leak).
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
to=
command -v timeout >/dev/null 2>&1 && to="timeout 300"

# LeakSanitizer cannot run under ptrace: the program's exit status would say so.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export ASAN_OPTIONS
# A sanitizer's shadow memory would make a gcore core file tens of gigabytes.
sanitized=no
grep -q '^#define ASYNCJOB_[AT]SAN 1' config.h 2>/dev/null && sanitized=yes
case ${SAN_CFLAGS:-} in *-fsanitize=*) sanitized=yes ;; esac

# gdb OUTPUT [GDB-ARGS...]: a batch session with the extension loaded by hand, and the
# library taken from $libpath if set.
libpath=
run_gdb() {
  out=$1; shift
  $to env ${libpath:+LD_LIBRARY_PATH=$libpath} gdb -q -nx -batch -ex "source $ext" "$@" \
    >"$out" 2>&1
}
# A live session: stop in the running job, list, unwind, then let the program finish.
live() { # OUTPUT GDB-COMMAND-AT-THE-STOP [PROGRAM-ARGUMENTS...]
  out=$1 extra=$2; shift 2
  run_gdb "$out" -ex 'break gdb_jobs_stop' -ex run -ex 'info sharedlibrary asyncjob' \
    -ex 'info asyncjobs' -ex 'asyncjob bt all' -ex 'asyncjob bt 1' -ex 'asyncjob bt 3' \
    -ex "$extra" -ex continue --args "$prog" "$@"
}

# The frames printed under the header of the job started as function $2.
frames_of() {
  awk -v f="$2" '$0 ~ "^Job .*started as " f "\\):" { on = 1; next }
                 on && /^#/ { print; next } { on = 0 }' "$1"
}
# Each pattern on a later frame than the one before; the last frame is the job's entry.
chain() { # OUTPUT START-FUNCTION PATTERN...
  fr=$(frames_of "$1" "$2"); shift 2
  [ -n "$fr" ] || return 1
  [ "$(echo "$fr" | wc -l)" -le 16 ] || return 1
  echo "$fr" | awk -v pats="$*" 'BEGIN { k = split(pats, p, " "); i = 1 }
    i <= k && $0 ~ p[i] { i++ } END { exit i <= k }' || return 1
  echo "$fr" | tail -n 1 | grep -Eq 'make_fcontext|fiber_trampoline|\?\? \(\) from .*libasyncjob'
}
# Column 2 of info asyncjobs is gdb's thread number, 5 the state, 6 the start function.
thread_of() { awk -v s="$2" -v f="$3" '$5 == s && $6 == f { print $2 }' "$1"; }
idle_on() { awk -v t="$2" '$5 == "idle" && $2 == t' "$1" | wc -l; }
listing() { # OUTPUT: seven jobs in the expected states and threads
  grep -q '^7 jobs: 1 running, 3 paused, 3 idle$' "$1" || return 1
  main=$(thread_of "$1" running running_job) other=$(thread_of "$1" paused gamma_leaf)
  [ -n "$main" ] && [ -n "$other" ] && [ "$main" != "$other" ] &&
    [ "$(thread_of "$1" paused alpha_outer)" = "$main" ] &&
    [ "$(thread_of "$1" paused beta_outer)" = "$main" ] &&
    [ "$(idle_on "$1" "$main")" -eq 2 ] && [ "$(idle_on "$1" "$other")" -eq 1 ] &&
    ! grep -q 'Traceback\|Python Exception' "$1"
}
all_chains() { # OUTPUT: the three paused jobs, each unwound to its entry
  [ "$(grep -c '^Job [0-9]* (paused' "$1")" -eq 3 ] &&
    chain "$1" alpha_outer ASYNC_pause_job alpha_inner alpha_outer &&
    chain "$1" beta_outer ASYNC_pause_job beta_inner beta_middle beta_outer &&
    chain "$1" gamma_leaf ASYNC_pause_job gamma_leaf &&
    ! grep -q 'Backtrace stopped' "$1"
}

listed_and_unwound() { # OUTPUT [LIBRARY-THAT-MUST-BE-LOADED]
  { [ -z "${2:-}" ] || grep -q "$2" "$1"; } && listing "$1" && all_chains "$1"
}

# 1-6: live, the library as built (with debug information unless CFLAGS dropped -g).
live "$tmp/live.out" echo
check "live: info asyncjobs lists 7 jobs, their states, start functions and threads" \
  "$tmp/live.out" listing "$tmp/live.out"
check "live: the main thread's job paused in alpha_inner unwinds to its entry" \
  "$tmp/live.out" chain "$tmp/live.out" alpha_outer ASYNC_pause_job alpha_inner alpha_outer
check "live: the job paused in beta_inner unwinds through beta_middle to its entry" \
  "$tmp/live.out" chain "$tmp/live.out" beta_outer ASYNC_pause_job beta_inner beta_middle beta_outer
check "live: the second thread's job paused in gamma_leaf unwinds to its entry" \
  "$tmp/live.out" chain "$tmp/live.out" gamma_leaf ASYNC_pause_job gamma_leaf
check "live: bt of the idle job 1 and the running job 3 is refused" "$tmp/live.out" \
  sh -c "grep -q 'job 1 is idle, not paused' '$tmp/live.out' &&
         grep -q 'job 3 is running, not paused' '$tmp/live.out'"
# (The program exits 0 only if every job then finishes with its expected result.)
check "live: the process is unchanged: every job finishes afterwards" "$tmp/live.out" \
  grep -q 'exited normally' "$tmp/live.out"

# 7-8: a core file written by gcore. gdb 13's gcore leaves out a mapping it cannot read
# whole, and guard regions (MADV_GUARD_INSTALL) make the default stacks' slabs such
# mappings: this session's jobs run on stacks from malloc.
core=$tmp/gcore.core
if [ $sanitized = yes ]; then
  skip "gcore core file: info asyncjobs" "sanitizer build: the core file would hold its shadow memory"
  skip "gcore core file: asyncjob bt all" "sanitizer build: the core file would hold its shadow memory"
else
  live "$tmp/gcore-live.out" "gcore $core" heap-stacks
  if [ -s "$core" ]; then
    run_gdb "$tmp/gcore.out" -ex 'info asyncjobs' -ex 'asyncjob bt all' "$prog" "$core"
    check "gcore core file: info asyncjobs" "$tmp/gcore.out" listing "$tmp/gcore.out"
    check "gcore core file: asyncjob bt all unwinds the three paused jobs" "$tmp/gcore.out" \
      all_chains "$tmp/gcore.out"
  else
    not_ok "gcore core file: info asyncjobs" "$tmp/live.out"
    not_ok "gcore core file: asyncjob bt all"
  fi
fi

# 9: a core dump written by the kernel, of the library's default (guarded) stacks.
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo '|unknown')
abs_prog=$(pwd)/$prog
[ $sanitized = yes ] && pattern='|sanitizer'
case $pattern in
  '|sanitizer') skip "kernel core dump" "sanitizer build: its runtime turns core dumps off" ;;
  '|'* | /*) skip "kernel core dump" "kernel.core_pattern sends cores elsewhere: $pattern" ;;
  *)
    # A shell of its own waits for the crash, so that its report goes nowhere.
    (cd "$tmp" && ulimit -c unlimited 2>/dev/null
     sh -c '"$0" crash; true' "$abs_prog" >/dev/null 2>&1)
    kcore=$(ls "$tmp"/core* 2>/dev/null | grep -v gcore | head -n 1)
    if [ -z "$kcore" ]; then
      skip "kernel core dump" "no core file was written (ulimit -c or kernel.core_pattern)"
    else
      run_gdb "$tmp/kcore.out" -ex 'info asyncjobs' -ex 'asyncjob bt all' "$prog" "$kcore"
      check "kernel core dump: info asyncjobs and asyncjob bt all" "$tmp/kcore.out" \
        listed_and_unwound "$tmp/kcore.out"
    fi ;;
esac

# 10-11: the same library without debug information, then without a symbol table too.
STRIP=${STRIP:-strip}
so=$(ls lib/.libs/libasyncjob.so.*.* 2>/dev/null | head -n 1)
for how in --strip-debug --strip-all; do
  what="library $how"
  if [ -z "$so" ] || ! command -v "$STRIP" >/dev/null 2>&1; then
    skip "$what" "no shared library or no $STRIP"
    continue
  fi
  d=$tmp/lib$how && mkdir -p "$d" && cp "$so" "$d/libasyncjob.so.0" &&
    "$STRIP" $how "$d/libasyncjob.so.0" || { not_ok "$what: strip"; continue; }
  libpath=$d
  live "$tmp/strip$how.out" echo
  libpath=
  check "$what: listed and unwound live, the stripped copy loaded" "$tmp/strip$how.out" \
    listed_and_unwound "$tmp/strip$how.out" "$d/libasyncjob.so.0"
done

# 12: the layout version the extension reads is the library's.
lib_v=$(sed -n 's/^#define DEBUG_REGISTRY_VERSION \([0-9]*\)$/\1/p' "$srcdir/lib/debug_registry.h")
ext_v=$(sed -n 's/^LAYOUT_VERSION = \([0-9]*\)$/\1/p' "$ext")
check "the extension reads layout version $ext_v, the library writes $lib_v" /dev/null \
  test -n "$lib_v" -a "$lib_v" = "$ext_v"
# 13: an extension expecting another version refuses the descriptor instead of misreading.
sed 's/^LAYOUT_VERSION = .*/LAYOUT_VERSION = 999/' "$ext" >"$tmp/other-gdb.py"
$to gdb -q -nx -batch -ex "source $tmp/other-gdb.py" -ex 'break gdb_jobs_stop' -ex run \
  -ex 'info asyncjobs' "$prog" >"$tmp/version.out" 2>&1
check "an extension for another layout version refuses the registry" "$tmp/version.out" \
  sh -c "grep -q 'layout version $lib_v; this extension reads version 999' '$tmp/version.out' &&
         ! grep -q '^7 jobs' '$tmp/version.out'"
# 14: without a process, or before the library is loaded, the commands say so.
run_gdb "$tmp/noproc.out" -ex 'info asyncjobs' -ex starti -ex 'info asyncjobs' \
  "$prog"
check "without a process or the library: a clear error" "$tmp/noproc.out" \
  sh -c "grep -q 'asyncjob: no process' '$tmp/noproc.out' &&
         grep -q 'libasyncjob is not loaded in this process' '$tmp/noproc.out'"
rm -rf "$tmp"
trap - EXIT INT TERM
