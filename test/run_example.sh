#!/bin/sh
# run_example.sh: runs one example program and compares its standard output byte for byte
# with the expected output kept beside its source. Called by make check with the path of
# examples/NAME.expected; the program is the build tree's examples/NAME. Prints TAP.
expected=$1
if test -z "$expected" || test ! -f "$expected"; then
  echo "Bail out! usage: run_example.sh path/to/NAME.expected"
  exit 1
fi
name=`basename "$expected" .expected`
prog=./examples/$name
out=examples/$name.out
echo "1..1"
if test ! -x "$prog"; then
  echo "not ok 1 - examples/$name: program $prog not built"
  exit 0
fi
"$prog" > "$out"
status=$?
if test $status -ne 0; then
  echo "not ok 1 - examples/$name: exited with status $status"
  sed 's/^/# /' "$out"
elif cmp -s "$expected" "$out"; then
  echo "ok 1 - examples/$name: output matches $name.expected"
  rm -f "$out"
else
  echo "not ok 1 - examples/$name: output differs from $name.expected"
  diff "$expected" "$out" | sed 's/^/# /'
fi
exit 0
