/* base.h: assertions that stay on in release builds, and the small types every layer shares. */
#ifndef WEFT_PROTO_BASE_H
#define WEFT_PROTO_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Debian's libraft is built with NDEBUG, so these are the only assertions left in the process.
 * They are never compiled out (STYLE rule 8). */
#define WEFT_ASSERT(cond)                                                                           \
    do {                                                                                            \
        if (__builtin_expect(!(cond), 0)) weft_assert_fail(#cond, __FILE__, __LINE__, __func__);   \
    } while (0)

_Noreturn void weft_assert_fail(const char *expr, const char *file, int line, const char *func);

#define WEFT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WEFT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define WEFT_MAX(a, b) ((a) > (b) ? (a) : (b))

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

#define WEFT_STR_LIT(s) ((weft_str){.ptr = (s), .len = (uint32_t)(sizeof(s) - 1)})

/* Builds a weft_str over a NUL-terminated C string (borrowed; NULL gives the empty string). */
weft_str weft_str_c(const char *s);

/* True when two strings have the same bytes. */
bool weft_str_eq(weft_str a, weft_str b);

/* True when `s` equals the NUL-terminated C string `c`. */
bool weft_str_eq_c(weft_str a, const char *c);

/* Copies `s` into `dst` (capacity `cap`, NUL-terminated, truncated if needed). Returns dst. */
char *weft_str_copy(char *dst, size_t cap, weft_str s);

/* True when the bytes are valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
bool weft_utf8_valid(const char *p, size_t len);
/* Replaces each byte of s[0, len) that does not start a valid UTF-8 sequence (a sequence cut
 * by a fixed buffer, or invalid input) with '?', so that peers, which refuse invalid UTF-8,
 * accept the text. Afterwards weft_utf8_valid(s, len) holds. */
void weft_utf8_repair(char *s, size_t len);

/* Milliseconds of the wall clock (CLOCK_REALTIME). Only node/ and raft/ may call it: the shard
 * state machine gets time from the entry it applies (DESIGN section 9). */
uint64_t weft_wall_ms(void);

/* Milliseconds of the monotonic clock, for timeouts that must not jump. */
uint64_t weft_mono_ms(void);

#endif
