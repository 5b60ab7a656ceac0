/* errors.c: counting a scenario's failed calls by weft error code, with the first message of
 * each code, so a report says what went wrong and not only how often. */
#include <stdio.h>

#include "bench.h"

/* The code of a failed call: the client returns -code; anything outside the table is INTERNAL
 * so that it is still counted. */
static int errors_code(int rc) {
    int code = rc < 0 ? -rc : rc;
    if (code <= 0 || code >= WEFT_E__COUNT) return WEFT_E_INTERNAL;
    return code;
}

void bench_errors_add(bench_errors *e, int rc, const weft_err *err) {
    WEFT_ASSERT(e != NULL && rc != 0);
    int code = errors_code(rc);
    if (e->by_code[code]++ == 0 && err != NULL) {
        snprintf(e->first_message[code], sizeof e->first_message[code], "%s", err->message);
    }
    WEFT_ASSERT(e->by_code[code] > 0);
}

void bench_errors_merge(bench_errors *into, const bench_errors *from) {
    WEFT_ASSERT(into != NULL && from != NULL);
    for (int code = 0; code < WEFT_E__COUNT; code++) {
        if (from->by_code[code] == 0) continue;
        if (into->by_code[code] == 0) {
            snprintf(into->first_message[code], sizeof into->first_message[code], "%s",
                     from->first_message[code]);
        }
        into->by_code[code] += from->by_code[code];
    }
}

uint64_t bench_errors_total(const bench_errors *e) {
    WEFT_ASSERT(e != NULL);
    uint64_t total = 0;
    for (int code = 0; code < WEFT_E__COUNT; code++)
        total += e->by_code[code];
    return total;
}
