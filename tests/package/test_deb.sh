#!/usr/bin/env bash
# test_deb.sh BUILD_DIR SOURCE_DIR: the Debian packages (issue 10, "The .deb"). Builds them with
# CPack from the build tree, checks their control data, unpacks them into a clean root
# (dpkg-deb -x), runs the weftd and the weft CLI found there against each other, builds and runs
# a libweft program with the unpacked libweft-dev, checks the systemd unit with
# `systemd-analyze verify`, and runs lintian: an error fails the test, warnings are printed.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
. "$SRC/tests/package/lib.sh"
scratch_init
ROOT=$SCRATCH/root
VERSION=$(awk -F'"' '/^set\(CPACK_PACKAGE_VERSION /{print $2}' "$BUILD/CPackConfig.cmake")
[ -n "$VERSION" ] || fail "no CPACK_PACKAGE_VERSION in $BUILD/CPackConfig.cmake (is CPack set up?)"

step "cpack -G DEB"
cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$SCRATCH/pkgs" >"$SCRATCH/cpack.log" 2>&1 ||
    { cat "$SCRATCH/cpack.log" >&2; fail "cpack -G DEB failed"; }
arch=$(dpkg --print-architecture)
SERVER=$SCRATCH/pkgs/weft_${VERSION}-1_$arch.deb
RUNTIME=$SCRATCH/pkgs/libweft1_${VERSION}-1_$arch.deb
DEV=$SCRATCH/pkgs/libweft-dev_${VERSION}-1_$arch.deb
for deb in "$SERVER" "$RUNTIME" "$DEV"; do
    [ -f "$deb" ] || fail "cpack did not build $(basename "$deb"); it built: $(ls "$SCRATCH/pkgs")"
done

step "control data"
field() { dpkg-deb -f "$1" "$2"; }
grep -q 'libraft2' <<<"$(field "$SERVER" Depends)" || fail "weft's Depends lack libraft2 (dpkg-shlibdeps)"
grep -q 'adduser' <<<"$(field "$SERVER" Depends)" || fail "weft's Depends lack adduser (postinst uses it)"
grep -q 'libmsgpackc2' <<<"$(field "$RUNTIME" Depends)" ||
    fail "libweft1's Depends lack libmsgpackc2: $(field "$RUNTIME" Depends)"
grep -q "libweft1 (= ${VERSION}-1)" <<<"$(field "$DEV" Depends)" ||
    fail "libweft-dev does not depend on its libweft1: $(field "$DEV" Depends)"
dpkg-deb -e "$SERVER" "$SCRATCH/ctl-server"
dpkg-deb -e "$RUNTIME" "$SCRATCH/ctl-runtime"
grep -qx '/etc/weft/weftd.conf' "$SCRATCH/ctl-server/conffiles" || fail "weftd.conf is not a conffile"
grep -q '^libweft 1 libweft1' "$SCRATCH/ctl-runtime/shlibs" || fail "libweft1 has no shlibs entry"
grep -q 'activate-noawait ldconfig' "$SCRATCH/ctl-runtime/triggers" || fail "libweft1 has no ldconfig trigger"
for s in postinst prerm postrm; do
    sh -n "$SCRATCH/ctl-server/$s" || fail "weft's $s is not valid sh"
done
grep -q 'adduser --system' "$SCRATCH/ctl-server/postinst" || fail "postinst does not create the weft user"

step "unpack into a clean root"
mkdir -p "$ROOT"
for deb in "$SERVER" "$RUNTIME" "$DEV"; do
    dpkg-deb -x "$deb" "$ROOT"
done
for f in usr/bin/weftd usr/bin/weft etc/weft/weftd.conf lib/systemd/system/weftd.service \
    usr/include/weft/client.h usr/share/doc/weft/copyright usr/share/doc/libweft1/changelog.Debian.gz \
    usr/share/man/man8/weftd.8.gz usr/share/man/man1/weft.1.gz; do
    [ -e "$ROOT/$f" ] || fail "the packages do not install /$f"
done
libdir=$(dirname "$(find "$ROOT/usr/lib" -name 'libweft.so.1' | head -n 1)")
[ -n "$libdir" ] || fail "libweft.so.1 is in none of the packages"

step "run the unpacked weftd (with the packaged config file) and CLI"
# The packaged config is used as it is; flags override its data dir and ports.
weftd_start "$ROOT/usr/bin/weftd" "$ROOT/usr/bin/weft" "$SCRATCH/data" --config "$ROOT/etc/weft/weftd.conf"
WEFT=("$ROOT/usr/bin/weft" --address "$WEFTD_ADDRESS")
"${WEFT[@]}" cluster status >"$SCRATCH/status.txt" 2>&1 || fail "weft cluster status: $(cat "$SCRATCH/status.txt")"
"${WEFT[@]}" workflow start --id deb-1 --type deb-check --task-queue deb --input '{"n":1}' \
    >"$SCRATCH/start.txt" 2>&1 || fail "weft workflow start: $(cat "$SCRATCH/start.txt")"
"${WEFT[@]}" workflow describe --id deb-1 >"$SCRATCH/describe.txt" 2>&1 ||
    fail "weft workflow describe: $(cat "$SCRATCH/describe.txt")"
grep -q 'deb-check' "$SCRATCH/describe.txt" || fail "describe does not show the run: $(cat "$SCRATCH/describe.txt")"

step "build a program with the unpacked libweft-dev (pkg-config) and run it"
cp -r "$SRC/examples/out-of-tree" "$SCRATCH/hello"
SAN=$(sanitizer_flags "$BUILD")
PKG_CONFIG_PATH=$libdir/pkgconfig make -C "$SCRATCH/hello" CFLAGS="-O2 -Wall -Wextra -Werror $SAN" \
    LDFLAGS="$SAN" hello-c >"$SCRATCH/make.log" 2>&1 ||
    { cat "$SCRATCH/make.log" >&2; fail "building against libweft-dev failed"; }
out=$(LD_LIBRARY_PATH=$libdir "$SCRATCH/hello/hello-c" "$WEFTD_ADDRESS" deb 2>&1) ||
    fail "hello-c against the packaged libweft1 exited $?: $out"
grep -q '"Hello, deb!"' <<<"$out" || fail "hello-c printed '$out'"
grep -q "$libdir/libweft.so.1" <<<"$(LD_LIBRARY_PATH=$libdir ldd "$SCRATCH/hello/hello-c")" ||
    fail "hello-c did not load the packaged libweft.so.1"
weftd_stop

step "systemd-analyze verify"
# Verify inside the unpacked root (so that ExecStart's /usr/bin/weftd is the packaged one),
# with the system's own units copied beside it for the targets the unit orders against.
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (deploy/install-deps.sh installs systemd)"
cp -rn /lib/systemd/system/. "$ROOT/lib/systemd/system/"
if ! systemd-analyze verify --root="$ROOT" weftd.service >"$SCRATCH/verify.txt" 2>&1 ||
    grep -q 'weftd' "$SCRATCH/verify.txt"; then
    cat "$SCRATCH/verify.txt" >&2
    fail "systemd-analyze verify found problems in weftd.service"
fi
unit=$ROOT/lib/systemd/system/weftd.service
for want in 'User=weft' 'StateDirectory=weft' 'KillSignal=SIGTERM' 'Restart=on-failure' \
    'ExecStart=/usr/bin/weftd --config /etc/weft/weftd.conf'; do
    grep -qx "$want" "$unit" || fail "weftd.service lacks '$want'"
done
grep -qx 'data = /var/lib/weft' "$ROOT/etc/weft/weftd.conf" || fail "weftd.conf does not keep data in /var/lib/weft"

step "lintian"
command -v lintian >/dev/null || fail "lintian is missing (deploy/install-deps.sh installs it)"
lintian --tag-display-limit 0 "$SERVER" "$RUNTIME" "$DEV" >"$SCRATCH/lintian.txt" 2>&1 || true
grep -v 'running with root privileges' "$SCRATCH/lintian.txt" || true
if grep -q '^E: ' "$SCRATCH/lintian.txt"; then
    fail "lintian reports errors"
fi
echo "PASS"
