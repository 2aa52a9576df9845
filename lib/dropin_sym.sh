#!/bin/sh
# dropin_sym.sh LIBCRYPTO_SO ABI_FILE [NAME...]: libasyncjob-openssl.so's version script.
# LIBCRYPTO_SO's ASYNC_* names and each NAME go in the nodes it gives them, ABI_FILE's
# asyncjob_* in its own; all else is local. Fails if asyncjob lacks an ASYNC_* or NAME.
NM=${NM:-nm}
so=$1
abi=$2
shift 2
extra="$*"
if [ ! -f "$so" ] || [ ! -f "$abi" ]; then
  echo "usage: $0 LIBCRYPTO_SO ABI_FILE (got '$so', '$abi')" >&2
  exit 1
fi
syms=`$NM -D --defined-only --with-symbol-versions "$so" |
  awk '$2 != "A" && $3 ~ /@@/ { split($3, v, "@@"); print v[1], v[2] }'` || exit 1
tab=`echo "$syms" | grep '^ASYNC_' | LC_ALL=C sort`
for name in $extra; do
  line=`echo "$syms" | grep "^$name "`
  if [ -z "$line" ]; then
    echo "$0: $so does not export $name, which the drop-in defines" >&2
    exit 1
  fi
  tab="$tab
$line"
done
if [ -z "$tab" ]; then
  echo "$0: $so exports no versioned ASYNC_* name: not an OpenSSL 3 libcrypto?" >&2
  exit 1
fi
missing=`echo "$tab" | grep '^ASYNC_' | while read name node; do
  grep -qx "$name" "$abi" || echo "$name"; done`
if [ -n "$missing" ]; then
  echo "$0: $so exports ASYNC_ names asyncjob does not implement:" $missing >&2
  exit 1
fi
echo "/* Generated from the dynamic symbols of $so by dropin_sym.sh. */"
for node in `echo "$tab" | awk '{ print $2 }' | LC_ALL=C sort -u`; do
  echo "$node {"
  echo "global:"
  echo "$tab" | awk -v n="$node" '$2 == n { print "    " $1 ";" }'
  echo "};"
done
# ABI_FILE's asyncjob_* names by node: "# node NAME" starts a group; before any, ASYNCJOB_1.0.
awk 'BEGIN { node = "ASYNCJOB_1.0" }
     /^# node / { node = $3; next }
     /^asyncjob_/ { if (!(node in seen)) { seen[node] = 1; order[++n] = node }
                    names[node] = names[node] "    " $1 ";\n" }
     END { for (i = 1; i <= n; i++) {
             printf "%s {\nglobal:\n%s", order[i], names[order[i]]
             if (i == 1) printf "local:\n    *;\n}"; else printf "} %s", order[i - 1]
             print ";" } }' "$abi"
