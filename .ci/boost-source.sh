#!/usr/bin/env bash
# boost-source.sh DIR: as root on Debian 12, Boost.Context's fcontext assembly sources from
# Boost's Debian source package ($BOOST_SOURCE_PACKAGE, default boost1.81) into
# DIR/libs/context/src/asm, for configure --with-boost-source=DIR; reused when already
# there. Only that folder is unpacked; nothing of Boost goes into the tree. Prints it.
set -uo pipefail
die() { echo "boost-source: $*" >&2; exit 1; }
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
pkg=${BOOST_SOURCE_PACKAGE:-boost1.81}
asm=$dir/libs/context/src/asm
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=.ci/apt-src.sh
. "$here/apt-src.sh"

if ! ls "$asm"/jump_*_gas.* >/dev/null 2>&1; then
  mkdir -p "$dir" || die "cannot create $dir"
  dir=$(cd "$dir" && pwd) asm=$dir/libs/context/src/asm
  apt_src_init "$dir/.apt"
  echo "fetching the source package $pkg"
  apt_src_fetch "$pkg" "$dir/.src"
  orig=$(ls "$dir"/.src/*.orig.tar.* 2>/dev/null | head -1)
  [ -n "$orig" ] || die "$pkg has no .orig tarball in $dir/.src"
  # The upstream tarball's one top folder is stripped; only the asm folder is written.
  tar -xf "$orig" -C "$dir" --strip-components=1 --wildcards '*/libs/context/src/asm/*' ||
    die "unpacking libs/context/src/asm from $orig failed"
  # Debian's patches to that folder, if any, applied as the package would.
  deb=$(ls "$dir"/.src/*.debian.tar.* 2>/dev/null | head -1)
  if [ -n "$deb" ]; then
    mkdir -p "$dir/.src/debian" && tar -xf "$deb" -C "$dir/.src" || die "unpacking $deb failed"
    series=$dir/.src/debian/patches/series
    if [ -f "$series" ]; then
      sed 's/#.*//' "$series" | while read -r p _; do
        [ -n "$p" ] || continue
        if grep -q '^+++ [^ ]*libs/context/src/asm/' "$dir/.src/debian/patches/$p"; then
          echo "applying Debian's $p"
          command -v patch >/dev/null || apt-get -q -o DPkg::Lock::Timeout=300 install -y patch >/dev/null
          patch -d "$dir" -p1 -s <"$dir/.src/debian/patches/$p" || exit 1
        fi
      done || die "a Debian patch to libs/context/src/asm does not apply"
    fi
  fi
  rm -rf "$dir/.src" "$dir/.apt"
  echo "$pkg: $(basename "$orig")" >"$dir/.source"
fi
ls "$asm"/jump_*_gas.* >/dev/null 2>&1 || die "no fcontext assembly in $asm"
echo "Boost.Context's fcontext sources ($(cat "$dir/.source" 2>/dev/null || echo "$pkg")):"
echo "$(cd "$dir" && pwd)/libs/context/src/asm: $(ls "$asm" | wc -l) files"
