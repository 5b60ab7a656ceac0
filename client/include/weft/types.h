/* types.h: the small types every part of libweft's API shares (borrowed strings and byte
 * strings), and the markers that wrap each public header.
 *
 * The public headers (<weft/...h>) are self-contained: they include only the C library, these
 * headers and, for weft/json.h, jansson. They compile as C11 and as C++ (each is wrapped in
 * extern "C"). */
#ifndef WEFT_TYPES_H
#define WEFT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* WEFT_BEGIN_DECLS / WEFT_END_DECLS wrap the declarations of each public header: C linkage for
 * C++ callers, and default symbol visibility, so that libweft.so (built with
 * -fvisibility=hidden) exports exactly what the public headers declare. */
#ifdef __cplusplus
#define WEFT_EXTERN_C_BEGIN extern "C" {
#define WEFT_EXTERN_C_END }
#else
#define WEFT_EXTERN_C_BEGIN
#define WEFT_EXTERN_C_END
#endif
#if defined(__GNUC__) || defined(__clang__)
#define WEFT_BEGIN_DECLS WEFT_EXTERN_C_BEGIN _Pragma("GCC visibility push(default)")
#define WEFT_END_DECLS _Pragma("GCC visibility pop") WEFT_EXTERN_C_END
#define WEFT_PRINTF_FORMAT(fmt_arg, first_arg) __attribute__((format(printf, fmt_arg, first_arg)))
#else
#define WEFT_BEGIN_DECLS WEFT_EXTERN_C_BEGIN
#define WEFT_END_DECLS WEFT_EXTERN_C_END
#define WEFT_PRINTF_FORMAT(fmt_arg, first_arg)
#endif

WEFT_BEGIN_DECLS

/* A borrowed string: not NUL-terminated, valid as long as the buffer it points into. */
typedef struct weft_str {
    const char *ptr; /* first byte, or NULL when absent */
    uint32_t len;    /* length in bytes */
} weft_str;

/* A borrowed byte string (payloads: inputs, results, details). Same lifetime rule as weft_str. */
typedef struct weft_bytes {
    const uint8_t *ptr; /* first byte, or NULL when absent */
    uint32_t len;       /* length in bytes */
} weft_bytes;

/* Builds a weft_str over a NUL-terminated C string (borrowed; NULL gives the empty string). */
weft_str weft_str_c(const char *s);

/* True when two strings have the same bytes. */
bool weft_str_eq(weft_str a, weft_str b);

/* True when `s` equals the NUL-terminated C string `c`. */
bool weft_str_eq_c(weft_str a, const char *c);

/* Copies `s` into `dst` (capacity `cap`, NUL-terminated, truncated if needed). Returns dst. */
char *weft_str_copy(char *dst, size_t cap, weft_str s);

WEFT_END_DECLS

#endif
