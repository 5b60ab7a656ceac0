/* base.h: assertions that stay on in release builds, and the small types every layer shares. */
#ifndef WEFT_PROTO_BASE_H
#define WEFT_PROTO_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/types.h" /* weft_str, weft_bytes and their helpers */

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

/* A weft_str over a string literal. C only (a compound literal); internal code uses it. */
#define WEFT_STR_LIT(s) ((weft_str){.ptr = (s), .len = (uint32_t)(sizeof(s) - 1)})

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
