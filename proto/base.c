/* base.c: assertion failure, borrowed strings, UTF-8 validation and clocks. */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Noreturn void weft_assert_fail(const char *expr, const char *file, int line, const char *func) {
    fprintf(stderr, "weft: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
    fflush(stderr);
    abort();
}

weft_str weft_str_c(const char *s) {
    if (s == NULL) return (weft_str){.ptr = NULL, .len = 0};
    size_t n = strlen(s);
    WEFT_ASSERT(n <= UINT32_MAX);
    return (weft_str){.ptr = s, .len = (uint32_t)n};
}

bool weft_str_eq(weft_str a, weft_str b) {
    if (a.len != b.len) return false;
    return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
}

bool weft_str_eq_c(weft_str a, const char *c) { return weft_str_eq(a, weft_str_c(c)); }

char *weft_str_copy(char *dst, size_t cap, weft_str s) {
    WEFT_ASSERT(dst != NULL && cap > 0);
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n > 0) memcpy(dst, s.ptr, n);
    dst[n] = '\0';
    return dst;
}

/* Strict UTF-8 (RFC 3629): rejects overlong forms, surrogates and code points past U+10FFFF. */
bool weft_utf8_valid(const char *p, size_t len) {
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (len - i <= need) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= need; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
        }
        i += need + 1;
    }
    return true;
}

void weft_utf8_repair(char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
        if (need > 0 && need <= len - i && weft_utf8_valid(s + i, need)) {
            i += need;
        } else {
            s[i++] = '?';
        }
    }
}

static uint64_t clock_ms(clockid_t id) {
    struct timespec ts;
    int rc = clock_gettime(id, &ts);
    WEFT_ASSERT(rc == 0);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t weft_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

uint64_t weft_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
