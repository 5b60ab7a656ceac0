#!/usr/bin/env bash
# test_deb.sh BUILD_DIR SOURCE_DIR: the Debian packages (issue 10, "The .deb"). Builds them with
# CPack from the build tree, checks their control data, unpacks them into a clean root
# (dpkg-deb -x), runs the weftd and the weft CLI found there against each other, builds and runs
# a libweft program with the unpacked libweft-dev, checks the systemd unit with
# `systemd-analyze verify` and that its system call filter admits what weftd does (strace),
# and runs lintian: an error fails the test, warnings are printed.
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

step "the unit's SystemCallFilter and MemoryDenyWriteExecute allow what weftd does"
# No systemd runs here to start the unit itself, so weftd runs under strace through a start,
# a workflow start and a clean stop, and every system call it made must be in the unit's
# filter (@system-service, as systemd-analyze expands it), and no mapping writable and
# executable (which MemoryDenyWriteExecute refuses).
command -v strace >/dev/null || fail "strace is missing (deploy/install-deps.sh installs it)"
check_syscalls() {
    grep -qx 'SystemCallFilter=@system-service' "$unit" || fail "the unit's SystemCallFilter changed; update this test"
    expand_filter() {
        local s
        for s in $(systemd-analyze syscall-filter "$1" | awk 'NR > 1 && $1 !~ /^#/ && NF {print $1}'); do
            case $s in @*) expand_filter "$s" ;; *) echo "$s" ;; esac
        done
    }
    expand_filter @system-service | sort -u >"$SCRATCH/allowed.txt"
    [ "$(wc -l <"$SCRATCH/allowed.txt")" -gt 100 ] || fail "systemd-analyze syscall-filter gave too few calls"
    port=$(port_pair_pick)
    # (LeakSanitizer cannot run under ptrace: a sanitized build's leak check is off for this run.)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -qq -o "$SCRATCH/trace" "$ROOT/usr/bin/weftd" --config "$ROOT/etc/weft/weftd.conf" \
        --data "$SCRATCH/traced" --listen "127.0.0.1:$port" --raft-listen "127.0.0.1:$((port + 1))" \
        >"$SCRATCH/traced.log" 2>&1 &
    tracer=$!
    WEFTD_PIDS+=("$tracer")
    deadline=$((SECONDS + WEFTD_READY_TIMEOUT_S))
    until "$ROOT/usr/bin/weft" --address "127.0.0.1:$port" cluster status >/dev/null 2>&1; do
        kill -0 "$tracer" 2>/dev/null || { cat "$SCRATCH/traced.log" >&2; fail "weftd under strace exited"; }
        [ "$SECONDS" -lt "$deadline" ] || fail "weftd under strace did not answer"
        sleep 0.2
    done
    "$ROOT/usr/bin/weft" --address "127.0.0.1:$port" workflow start --id traced --type t --task-queue q \
        >/dev/null || fail "workflow start on the traced weftd failed"
    traced=$(pgrep -P "$tracer" -x weftd) || fail "no weftd under strace"
    kill -TERM "$traced"
    wait "$tracer" || fail "strace (weftd) exited $? after SIGTERM"
    grep -q 'stopped' "$SCRATCH/traced.log" || fail "the traced weftd did not stop cleanly"
    awk '{print $2}' "$SCRATCH/trace" | grep -oE '^[a-z0-9_]+\(' | tr -d '(' | sort -u >"$SCRATCH/used.txt"
    outside=$(comm -23 "$SCRATCH/used.txt" "$SCRATCH/allowed.txt")
    [ -z "$outside" ] || fail "weftd makes system calls outside @system-service: $outside"
    ! grep -E 'PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE' "$SCRATCH/trace" ||
        fail "weftd maps memory writable and executable (MemoryDenyWriteExecute would refuse)"
    echo "$(wc -l <"$SCRATCH/used.txt") system calls, all in @system-service"
}
if strace -qq -o /dev/null true 2>/dev/null; then
    check_syscalls
else
    echo "NOT RUN: strace cannot trace processes here (ptrace is not allowed)"
fi

step "lintian"
command -v lintian >/dev/null || fail "lintian is missing (deploy/install-deps.sh installs it)"
lintian --tag-display-limit 0 "$SERVER" "$RUNTIME" "$DEV" >"$SCRATCH/lintian.txt" 2>&1 || true
grep -v 'running with root privileges' "$SCRATCH/lintian.txt" || true
if grep -q '^E: ' "$SCRATCH/lintian.txt"; then
    fail "lintian reports errors"
fi
echo "PASS"
