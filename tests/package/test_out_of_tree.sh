#!/usr/bin/env bash
# test_out_of_tree.sh BUILD_DIR SOURCE_DIR: libweft used as an outside project uses it
# (issue 10, "Out of tree"). Installs the build into a scratch prefix with `cmake --install`,
# checks that every public header compiles alone as C11 and as C++ and that libweft.so exports
# only the public API, then copies examples/out-of-tree/ out of the tree and builds its program
# four ways: pkg-config and find_package(weft), each in C and in C++ (plus the static library
# through find_package). Each binary runs a workflow against a weftd started from the prefix.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
. "$SRC/tests/package/lib.sh"
scratch_init
PREFIX=$SCRATCH/prefix

step "cmake --install into $PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" >"$SCRATCH/install.log" 2>&1 ||
    { cat "$SCRATCH/install.log" >&2; fail "cmake --install failed"; }
for f in bin/weftd bin/weft lib/libweft.a lib/libweft.so lib/pkgconfig/weft.pc \
    lib/cmake/weft/weftConfig.cmake include/weft/client.h include/weft/worker.h \
    include/weft/json.h; do
    [ -e "$PREFIX/$f" ] || fail "cmake --install did not install $f"
done

step "the shared library: soname, version, exported symbols, dependencies"
soname=$(objdump -p "$PREFIX/lib/libweft.so" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libweft.so.1" ] || fail "libweft.so has soname '$soname', expected libweft.so.1"
[ -f "$PREFIX/lib/libweft.so.1.0.0" ] || fail "libweft.so.1.0.0 (the versioned file) is missing"
exported=$(nm -D --defined-only "$PREFIX/lib/libweft.so" | awk '{print $3}')
[ -n "$exported" ] || fail "libweft.so exports nothing"
# (An ASan build adds an __odr_asan.X marker for each exported variable X.)
stray=$(grep -v -e '^weft_' -e '^__odr_asan\.weft_' <<<"$exported" || true)
[ -z "$stray" ] || fail "libweft.so exports symbols outside the API: $stray"
for internal in weft_schema_decode weft_frame_parse weft_assert_fail client_exchange; do
    ! grep -qx "$internal" <<<"$exported" || fail "libweft.so exports the internal $internal"
done
for api in weft_client_open weft_worker_run weft_json_parse weft_str_c weft_error_name; do
    grep -qx "$api" <<<"$exported" || fail "libweft.so does not export $api"
done
needed=$(objdump -p "$PREFIX/lib/libweft.so" | awk '$1 == "NEEDED" {print $2}' | tr '\n' ' ')
for lib in libmsgpackc.so libjansson.so; do
    grep -q "$lib" <<<"$needed" || fail "libweft.so does not link the shared $lib (NEEDED: $needed)"
done

step "each public header alone, as C11 and as C++ (-pedantic)"
for h in "$PREFIX"/include/weft/*.h; do
    name=$(basename "$h")
    if grep -nE '#include *["<](proto/|msgpack)' "$h"; then
        fail "installed header $name includes proto/ or msgpack"
    fi
    printf '#include <weft/%s>\nint weft_header_check;\n' "$name" >"$SCRATCH/h.c"
    cp "$SCRATCH/h.c" "$SCRATCH/h.cpp"
    cc -std=c11 -pedantic -Wall -Wextra -Werror -I"$PREFIX/include" -fsyntax-only "$SCRATCH/h.c" ||
        fail "<weft/$name> does not compile alone as C11"
    c++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$PREFIX/include" -fsyntax-only \
        "$SCRATCH/h.cpp" || fail "<weft/$name> does not compile alone as C++11"
done

step "copy examples/out-of-tree out of the tree and build it four ways"
cp -r "$SRC/examples/out-of-tree" "$SCRATCH/hello"
cd "$SCRATCH/hello"
SAN=$(sanitizer_flags "$BUILD")
PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig make CFLAGS="-O2 -Wall -Wextra -Werror $SAN" \
    CXXFLAGS="-O2 -Wall -Wextra -Werror $SAN" LDFLAGS="$SAN" >"$SCRATCH/make.log" 2>&1 ||
    { cat "$SCRATCH/make.log" >&2; fail "the pkg-config build (make) failed"; }
CMAKE_FLAGS=(-DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $SAN"
    -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror $SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN")
cmake -S . -B build-shared "${CMAKE_FLAGS[@]}" >"$SCRATCH/cmake.log" 2>&1 &&
    cmake --build build-shared >>"$SCRATCH/cmake.log" 2>&1 ||
    { cat "$SCRATCH/cmake.log" >&2; fail "the find_package(weft) build failed"; }
cmake -S . -B build-static "${CMAKE_FLAGS[@]}" -Dweft_USE_STATIC_LIBS=ON \
    >"$SCRATCH/cmake-static.log" 2>&1 && cmake --build build-static >>"$SCRATCH/cmake-static.log" 2>&1 ||
    { cat "$SCRATCH/cmake-static.log" >&2; fail "the find_package(weft) static build failed"; }
for b in hello-c hello-cxx build-shared/hello-c build-shared/hello-cxx; do
    grep -q 'NEEDED *libweft.so.1' <<<"$(objdump -p "$b")" || fail "$b does not link libweft.so.1"
done
for b in build-static/hello-c build-static/hello-cxx; do
    ! grep -q 'NEEDED *libweft' <<<"$(objdump -p "$b")" || fail "$b links libweft.so, not libweft.a"
done

step "run each program against a weftd from the prefix"
weftd_start "$PREFIX/bin/weftd" "$PREFIX/bin/weft" "$SCRATCH/data" --shards 2
for b in hello-c hello-cxx build-shared/hello-c build-shared/hello-cxx build-static/hello-c \
    build-static/hello-cxx; do
    name="out of tree $b"
    out=$(LD_LIBRARY_PATH=$PREFIX/lib "./$b" "$WEFTD_ADDRESS" "$name" 2>&1) ||
        fail "$b exited $?: $out"
    grep -qF "{\"greeting\":\"Hello, $name!\"}" <<<"$out" ||
        fail "$b printed '$out', not the workflow's greeting"
    echo "$b: ok"
done
"$PREFIX/bin/weft" --address "$WEFTD_ADDRESS" workflow list >"$SCRATCH/list.txt" 2>&1 ||
    fail "weft workflow list failed: $(cat "$SCRATCH/list.txt")"
runs=$(grep -c 'hello-c' "$SCRATCH/list.txt" || true)
[ "$runs" -eq 6 ] || fail "weft workflow list shows $runs hello runs, expected 6: $(cat "$SCRATCH/list.txt")"
weftd_stop
echo "PASS"
