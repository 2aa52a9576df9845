#!/bin/sh
# gdb_jobs.sh: gdb/asyncjob-gdb.py on test/gdb_jobs_target, stopped inside a running job
# with three jobs paused on the main thread (alpha, beta, regs chains), one on a second
# thread (gamma) and two idle ones. "info asyncjobs", "asyncjob bt" (brief and -full) and
# "asyncjob frame" must show them live, from core files written by asyncjob gcore and
# gcore (default and mprotect guards) and from a kernel core dump, with a libasyncjob that
# has full debug information, none, or not even a symbol table: frame #0 of each paused
# job is the library's switch and regs_pause's callee-saved registers read back as set,
# which a wrong save-area layout breaks. The process must go on unchanged afterwards.
# Prints TAP; every check skips, with the reason, without gdb.
set -u
srcdir=${srcdir:-.}
ext=$srcdir/gdb/asyncjob-gdb.py
prog=test/gdb_jobs_target
prog_core=test/gdb_jobs_target_core
N=17
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
for p in "$prog" "$prog_core"; do
  [ -x "$p" ] || { echo "Bail out! $p not built"; exit 1; }
done

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
# What is asked of every process or core file: the list, the backtraces (brief, then with
# the library's frames), the regs job's registers and beta_middle's local in a selected
# frame, then the thread's own backtrace once the job is let go. Job numbers are those
# the program gives (3 regs_job, 4 beta_outer; checked against the list).
inspect="-ex 'info asyncjobs' -ex 'echo @@brief\n' -ex 'asyncjob bt all' \
  -ex 'echo @@full\n' -ex 'asyncjob bt -full all' -ex 'echo @@regs\n' -ex 'asyncjob frame 3' \
  -ex 'info registers rbx rbp r12 r13 r14 r15' -ex 'echo @@locals\n' -ex 'asyncjob frame 4' \
  -ex up -ex 'print beta_mark' -ex 'echo @@off\n' -ex 'asyncjob frame off' -ex bt \
  -ex 'echo @@end\n'"
# A live session: stop in the running job, inspect, then let the program finish.
live() { # OUTPUT GDB-COMMAND-AT-THE-STOP PROGRAM [PROGRAM-ARGUMENTS...]
  out=$1 extra=$2 p=$3; shift 3
  eval "run_gdb \"\$out\" -ex 'break gdb_jobs_stop' -ex run \
    -ex 'info sharedlibrary asyncjob' $inspect -ex 'asyncjob bt 1' -ex 'asyncjob bt 2' \
    -ex \"\$extra\" -ex continue --args \"\$p\" \"\$@\""
}
on_core() { # OUTPUT PROGRAM CORE
  eval "run_gdb \"\$1\" $inspect \"\$2\" \"\$3\""
}

# The lines of section @@NAME of an output.
section() { awk -v s="@@$2" '/^@@/ { on = ($0 == s); next } on' "$1"; }
# The frames printed under the header of the job started as function $3, in section $2.
frames_of() {
  section "$1" "$2" | awk -v f="$3" '$0 ~ "^Job .*started as " f "\\):" { on = 1; next }
                                      on && /^#/ { print; next } { on = 0 }'
}
# Each pattern on a later frame than the one before.
in_order() { # FRAMES PATTERN...
  fr=$1; shift
  [ -n "$fr" ] && [ "$(echo "$fr" | wc -l)" -le 16 ] || return 1
  echo "$fr" | awk -v pats="$*" 'BEGIN { k = split(pats, p, " "); i = 1 }
    i <= k && $0 ~ p[i] { i++ } END { exit i <= k }'
}
lib_frame='ASYNC_pause_job|fiber_|pool_job_main|make_fcontext|jump_fcontext|\?\? \(\)'
# Brief: exactly the job's own frames, its start function last, the library's hidden.
# Full: frame #0 is in the library's switch (a wrong save-area layout makes it "??" outside it), then
# ASYNC_pause_job, the job's frames, and the library's entry last.
chain() { # OUTPUT START-FUNCTION PATTERN...
  f=$1 start=$2; shift 2
  brief=$(frames_of "$f" brief "$start") full=$(frames_of "$f" full "$start")
  in_order "$brief" "$@" || return 1
  ! echo "$brief" | grep -Eq "$lib_frame" &&
    echo "$brief" | tail -n 1 | grep -q " in $start " &&
    echo "$brief" | awk -v n="$#" 'END { exit NR != n }' &&
    section "$f" brief | grep -q "frames of libasyncjob hidden: asyncjob bt -full" || return 1
  echo "$full" | head -n 1 | grep -Eq '^#0 +0x[0-9a-f]+ in ((fiber_[a-z_]+|ASYNC_pause_job) |\?\? \(\) from .*libasyncjob)' &&
    in_order "$full" ASYNC_pause_job "$@" &&
    echo "$full" | tail -n 1 | grep -Eq 'make_fcontext|fiber_trampoline|\?\? \(\) from .*libasyncjob'
}
# Column 3 of info asyncjobs is gdb's thread number, 6 the state, 7 the start function.
thread_of() { awk -v s="$2" -v f="$3" '$6 == s && $7 == f { print $3 }' "$1"; }
idle_on() { awk -v t="$2" '$6 == "idle" && $3 == t' "$1" | wc -l; }
listing() { # OUTPUT: seven jobs in the expected states, threads, numbers and handles
  grep -q '^7 jobs: 1 running, 4 paused, 2 idle$' "$1" || return 1
  main=$(thread_of "$1" running running_job) other=$(thread_of "$1" paused gamma_leaf)
  [ -n "$main" ] && [ -n "$other" ] && [ "$main" != "$other" ] &&
    [ "$(thread_of "$1" paused alpha_outer)" = "$main" ] &&
    [ "$(thread_of "$1" paused beta_outer)" = "$main" ] &&
    [ "$(thread_of "$1" paused regs_job)" = "$main" ] &&
    [ "$(idle_on "$1" "$main")" -eq 1 ] && [ "$(idle_on "$1" "$other")" -eq 1 ] &&
    grep -Eq '^3 +0x[0-9a-f]+ .* paused +regs_job ' "$1" &&
    grep -Eq '^4 +0x[0-9a-f]+ .* paused +beta_outer ' "$1" &&
    [ "$(grep -Ec '^[0-9]+ +0x[0-9a-f]{6,} ' "$1")" -eq 7 ] &&
    ! grep -q 'Traceback\|Python Exception' "$1"
}
all_chains() { # OUTPUT: the four paused jobs, each unwound to its entry
  [ "$(section "$1" brief | grep -c '^Job [0-9]* (paused')" -eq 4 ] &&
    chain "$1" alpha_outer alpha_inner alpha_outer &&
    chain "$1" beta_outer beta_inner beta_middle beta_outer &&
    chain "$1" regs_job regs_pause regs_job &&
    chain "$1" gamma_leaf gamma_leaf &&
    ! grep -q 'Backtrace stopped' "$1"
}
# The regs job's frame selected: regs_pause, with its callee-saved registers as it set
# them (x86-64; elsewhere regs_pause is plain C and only the selection is checked).
regs() { # OUTPUT
  section "$1" regs | grep -Eq '^#[0-9]+ .* in regs_pause \(\)' || return 1
  [ "$(uname -m)" = x86_64 ] || return 0
  for rv in rbx:1 rbp:2 r12:3 r13:4 r14:5 r15:6; do
    section "$1" regs | grep -Eq "^${rv%:*} +0x${rv#*:}{16}( |$)" || return 1
  done
}
# beta_middle's local read through the selected job frame; the thread's own backtrace back
# (the running job) once the job is let go.
locals_and_off() { # OUTPUT
  section "$1" locals | grep -Eq '^#[0-9]+ .* in beta_inner \(x=([^)]*x@entry=)?3\)' &&
    section "$1" locals | grep -Eq '^#[0-9]+ .* in beta_middle \(x=2\)' &&
    section "$1" locals | grep -q '^\$1 = 207$' &&
    section "$1" off | grep -q 'Job 4 let go' &&
    section "$1" off | grep -Eq '^#[0-9]+ .* in running_job ' &&
    ! section "$1" off | grep -q 'beta_'
}
inspected() { # OUTPUT [LIBRARY-THAT-MUST-BE-LOADED]
  { [ -z "${2:-}" ] || grep -q "$2" "$1"; } && listing "$1" && all_chains "$1" &&
    regs "$1" && locals_and_off "$1"
}

# 1-8: live, the library as built (with debug information unless CFLAGS dropped -g).
live "$tmp/live.out" echo "$prog"
check "live: info asyncjobs lists 7 jobs, their handles, states, start functions and threads" \
  "$tmp/live.out" listing "$tmp/live.out"
check "live: the job paused in alpha_inner unwinds to its entry, frame #0 the switch" \
  "$tmp/live.out" chain "$tmp/live.out" alpha_outer alpha_inner alpha_outer
check "live: the job paused in beta_inner unwinds through beta_middle to its entry" \
  "$tmp/live.out" chain "$tmp/live.out" beta_outer beta_inner beta_middle beta_outer
check "live: the second thread's job paused in gamma_leaf unwinds to its entry" \
  "$tmp/live.out" chain "$tmp/live.out" gamma_leaf gamma_leaf
check "live: regs_pause's callee-saved registers read back as it set them" \
  "$tmp/live.out" regs "$tmp/live.out"
check "live: asyncjob frame selects a job's frame: up, print of a local; off restores bt" \
  "$tmp/live.out" locals_and_off "$tmp/live.out"
check "live: bt of the idle job 1 and the running job 2 is refused" "$tmp/live.out" \
  sh -c "grep -q 'job 1 is idle, not paused' '$tmp/live.out' &&
         grep -q 'job 2 is running, not paused' '$tmp/live.out'"
# (The program exits 0 only if every job then finishes with its expected result, regs_pause's
# registers intact.)
check "live: the process is unchanged: every job finishes afterwards" "$tmp/live.out" \
  grep -q 'exited normally' "$tmp/live.out"

# 9-11: core files written by asyncjob gcore, of the default stacks (guard regions on Linux
# 6.13+, which gdb's own gcore leaves out of its file), of mprotect guards (the core
# library's program), and of the default stacks by plain gcore under mprotect guards.
gcore_case() { # DESCRIPTION GCORE-COMMAND PROGRAM [ARGUMENTS...]
  d=$1 cmd=$2 p=$3; shift 3
  c=$tmp/core.$n
  if [ $sanitized = yes ]; then
    skip "$d" "sanitizer build: the core file would hold its shadow memory"
    return
  fi
  live "$tmp/gcore-live.$n" "$cmd $c" "$p" "$@"
  if [ -s "$c" ] && grep -q 'exited normally' "$tmp/gcore-live.$n"; then
    on_core "$tmp/gcore.$n" "$p" "$c"
    check "$d" "$tmp/gcore.$n" inspected "$tmp/gcore.$n"
  else
    not_ok "$d" "$tmp/gcore-live.$n"
  fi
  rm -f "$c"
}
gcore_case "asyncjob gcore, default stacks: listed, unwound, registers and locals read" \
  "asyncjob gcore" "$prog"
gcore_case "asyncjob gcore, mprotect guards: listed, unwound, registers and locals read" \
  "asyncjob gcore" "$prog_core" mprotect
gcore_case "plain gcore, mprotect guards: listed, unwound, registers and locals read" \
  gcore "$prog_core" mprotect

# 12: a core dump written by the kernel, of the library's default (guarded) stacks.
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
    kcore=$(ls "$tmp"/core* 2>/dev/null | grep -v 'core\.[0-9]*$' | head -n 1)
    if [ -z "$kcore" ]; then
      skip "kernel core dump" "no core file was written (ulimit -c or kernel.core_pattern)"
    else
      on_core "$tmp/kcore.out" "$prog" "$kcore"
      check "kernel core dump: listed, unwound, registers and locals read" "$tmp/kcore.out" \
        inspected "$tmp/kcore.out"
    fi ;;
esac

# 13-14: the same library without debug information, then without a symbol table too.
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
  live "$tmp/strip$how.out" echo "$prog"
  libpath=
  check "$what: listed, unwound, registers and locals read live, the stripped copy loaded" \
    "$tmp/strip$how.out" inspected "$tmp/strip$how.out" "$d/libasyncjob.so.0"
done

# 15: the layout version the extension reads is the library's.
lib_v=$(sed -n 's/^#define DEBUG_REGISTRY_VERSION \([0-9]*\)$/\1/p' "$srcdir/lib/debug_registry.h")
ext_v=$(sed -n 's/^LAYOUT_VERSION = \([0-9]*\)$/\1/p' "$ext")
check "the extension reads layout version $ext_v, the library writes $lib_v" /dev/null \
  test -n "$lib_v" -a "$lib_v" = "$ext_v"
# 16: an extension expecting another version refuses the descriptor instead of misreading.
sed 's/^LAYOUT_VERSION = .*/LAYOUT_VERSION = 999/' "$ext" >"$tmp/other-gdb.py"
$to gdb -q -nx -batch -ex "source $tmp/other-gdb.py" -ex 'break gdb_jobs_stop' -ex run \
  -ex 'info asyncjobs' "$prog" >"$tmp/version.out" 2>&1
check "an extension for another layout version refuses the registry" "$tmp/version.out" \
  sh -c "grep -q 'layout version $lib_v; this extension reads version 999' '$tmp/version.out' &&
         ! grep -q '^7 jobs' '$tmp/version.out'"
# 17: without a process, or before the library is loaded, the commands say so.
run_gdb "$tmp/noproc.out" -ex 'info asyncjobs' -ex starti -ex 'info asyncjobs' \
  "$prog"
check "without a process or the library: a clear error" "$tmp/noproc.out" \
  sh -c "grep -q 'asyncjob: no process' '$tmp/noproc.out' &&
         grep -q 'libasyncjob is not loaded in this process' '$tmp/noproc.out'"
rm -rf "$tmp"
trap - EXIT INT TERM
