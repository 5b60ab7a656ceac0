/* duration.c: durations as people write them ("30s", "5m", "48h", "7d", "250ms"), parsed and
 * formatted for flags, config and messages (client.h documents both functions). */
#include <stdio.h>
#include <string.h>

#include "proto/base.h"
#include "weft/client.h"

/* Bytes of the caller's text quoted back in an error message: enough to recognise it. */
#define DURATION_QUOTE_BYTES_MAX 40

/* One unit: its suffix and its length in milliseconds. Largest first, which is the order
 * weft_duration_format tries them in; "ms" must be tried before "m" when parsing. */
typedef struct duration_unit {
    const char *suffix; /* as written after the number */
    uint64_t ms;        /* milliseconds in one unit */
} duration_unit;

static const duration_unit duration_units[] = {
    {"d", 24ull * 3600ull * 1000ull},
    {"h", 3600ull * 1000ull},
    {"m", 60ull * 1000ull},
    {"s", 1000ull},
    {"ms", 1ull},
};

/* The unit whose suffix is exactly `suffix`, or NULL. */
static const duration_unit *duration_unit_find(const char *suffix) {
    for (size_t i = 0; i < WEFT_ARRAY_LEN(duration_units); i++) {
        if (strcmp(duration_units[i].suffix, suffix) == 0) return &duration_units[i];
    }
    return NULL;
}

static int duration_refuse(const char *text, const char *field, const char *why, weft_err *err) {
    return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, field ? field : "",
                        "%s%s'%.*s' is not a valid duration (%s): write a positive whole number "
                        "and one unit, as in 250ms, 30s, 5m, 48h or 7d",
                        field ? field : "", field ? " " : "", DURATION_QUOTE_BYTES_MAX, text, why);
}

int weft_duration_parse(const char *text, const char *field, uint64_t *ms_out, weft_err *err) {
    if (text == NULL || ms_out == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, field ? field : "",
                            "%s: a duration and its output must not be NULL",
                            field ? field : "duration");
    }
    uint64_t value = 0;
    size_t i = 0;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10u) {
            return duration_refuse(text, field, "the number is too large", err);
        }
        value = value * 10u + digit;
    }
    if (i == 0) return duration_refuse(text, field, "it must start with a number", err);
    if (text[i] == '\0') return duration_refuse(text, field, "the unit is missing", err);
    const duration_unit *u = duration_unit_find(text + i);
    if (u == NULL) return duration_refuse(text, field, "unknown unit", err);
    if (value == 0) return duration_refuse(text, field, "it must be more than zero", err);
    if (value > UINT64_MAX / u->ms) return duration_refuse(text, field, "it is too long", err);
    *ms_out = value * u->ms;
    WEFT_ASSERT(*ms_out >= value);
    return 0;
}

char *weft_duration_format(uint64_t ms, char *buf, size_t cap) {
    WEFT_ASSERT(buf != NULL && cap > 0);
    const duration_unit *u = &duration_units[WEFT_ARRAY_LEN(duration_units) - 1];
    for (size_t i = 0; ms > 0 && i < WEFT_ARRAY_LEN(duration_units); i++) {
        if (ms % duration_units[i].ms == 0) {
            u = &duration_units[i];
            break;
        }
    }
    WEFT_ASSERT(u->ms > 0 && ms % u->ms == 0);
    snprintf(buf, cap, "%llu%s", (unsigned long long)(ms / u->ms), u->suffix);
    return buf;
}
