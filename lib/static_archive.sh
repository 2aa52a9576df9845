#!/bin/sh
# static_archive.sh IN.a OUT.a ABI: the static library as installed. Its members become one
# relocatable object in which only the names of ABI (lib/asyncjob.abi) stay global, and
# those hidden: a program links them, but never exports them to the shared libraries it
# loads (libssl would bind to them). Uses $AR, $LD, $OBJCOPY, $RANLIB and $CC.
set -e
in=$1 out=$2 abi=$3
t=`mktemp -d`
trap 'rm -rf "$t"' EXIT
case $in in /*) ;; *) in=`pwd`/$in ;; esac
(cd "$t" && ${AR:-ar} x "$in")
# An object that only declares the names hidden: the linker gives each symbol the most
# restrictive visibility among its objects.
{ grep -v '^#' "$abi" | sed 's/^/.hidden /'
  echo '.section .note.GNU-stack,"",%progbits'; } >"$t/hide.s"
${CC:-cc} -c -o "$t/hide.o" "$t/hide.s"
${LD:-ld} -r -o "$t/asyncjob.lo.o" "$t"/*.o
${OBJCOPY:-objcopy} --keep-global-symbols="$abi" "$t/asyncjob.lo.o"
rm -f "$out"
${AR:-ar} cr "$out" "$t/asyncjob.lo.o"
${RANLIB:-ranlib} "$out"
