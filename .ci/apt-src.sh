# apt-src.sh: sourced by the .ci scripts that build something from its Debian source
# package. A private apt folder holds deb-src lines made from the machine's own sources, so
# that the machine's apt configuration stays as it is. The caller defines die().

# apt_src_init DIR: the private apt folder in DIR, with its index fetched (some index may
# fail on a mirror out of step: the download that follows says if a package is missing).
apt_src_init() {
  apt_src_dir=$1
  mkdir -p "$apt_src_dir/parts" "$apt_src_dir/lists/partial" || die "cannot create $apt_src_dir"
  local f
  : >"$apt_src_dir/sources.list"
  [ -f /etc/apt/sources.list ] &&
    sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list >"$apt_src_dir/sources.list"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed 's/^Types: *deb$/Types: deb-src/' "$f" >"$apt_src_dir/parts/$(basename "$f")"
  done
  apt_src update >/dev/null 2>&1 || apt_src update >/dev/null 2>&1 ||
    echo "apt-get update (deb-src) reported errors; going on"
}

# apt_src ARGS...: apt-get with the private folder's source lists.
apt_src() {
  apt-get -q -o Dir::Etc::SourceList="$apt_src_dir/sources.list" \
    -o Dir::Etc::SourceParts="$apt_src_dir/parts" -o Dir::State::Lists="$apt_src_dir/lists" "$@"
}

# apt_src_fetch PACKAGE DEST: the source package's files (.dsc and tarballs) into DEST,
# with one retry.
apt_src_fetch() {
  mkdir -p "$2" || die "cannot create $2"
  (cd "$2" && { apt_src source --download-only "$1" >/dev/null 2>&1 ||
     apt_src source --download-only "$1" >/dev/null; }) ||
    die "apt-get source could not fetch the source package $1"
}

# check_from_source DIR [CONFIGURE-ARGS...]: Check from its Debian source package, built
# static without subunit for the compiler those arguments name (CC=musl-gcc, --host=...)
# and installed into DIR/check; pkg-config finds it in DIR/check/lib/pkgconfig.
check_from_source() {
  local dir=$1; shift
  apt_src_init "$dir/apt"
  apt_src_fetch check "$dir/check-src"
  (cd "$dir/check-src" && dpkg-source -x check_*.dsc src >/dev/null) ||
    die "dpkg-source -x of Check's source package failed"
  (cd "$dir/check-src/src" && ./configure "$@" --prefix="$dir/check" \
     --disable-subunit --disable-shared --enable-static --with-pic --disable-build-docs \
     >configure.out 2>&1 && make -j2 >make.out 2>&1 && make install >install.out 2>&1) ||
    { tail -20 "$dir"/check-src/src/*.out; die "building Check ($*) failed"; }
  # Debian's check.pc names the PIC archive libcheck_pic.a, which its packaging installs.
  cp "$dir/check/lib/libcheck.a" "$dir/check/lib/libcheck_pic.a" || die "no libcheck.a"
  ls "$dir/check/lib"
}
