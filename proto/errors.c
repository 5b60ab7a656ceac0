/* errors.c: the error table's names and advice, and the weft_err helpers. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base.h"

static const char *const error_names[] = {
#define WEFT_ERROR_NAME(name, value, advice) [value] = #name,
    WEFT_ERRORS(WEFT_ERROR_NAME)
#undef WEFT_ERROR_NAME
};

static const char *const error_advice[] = {
#define WEFT_ERROR_ADVICE(name, value, advice) [value] = advice,
    WEFT_ERRORS(WEFT_ERROR_ADVICE)
#undef WEFT_ERROR_ADVICE
};

static int error_index(int code) {
    int c = code < 0 ? -code : code;
    return (c >= 0 && c < WEFT_E__COUNT) ? c : -1;
}

const char *weft_error_name(int code) {
    int i = error_index(code);
    return i < 0 ? "UNKNOWN" : error_names[i];
}

const char *weft_error_advice(int code) {
    int i = error_index(code);
    return i < 0 ? "unknown error code" : error_advice[i];
}

int weft_error_from_name(const char *name) {
    for (int i = 0; i < WEFT_E__COUNT; i++) {
        if (strcmp(error_names[i], name) == 0) return i;
    }
    return -1;
}

int weft_err_set(weft_err *err, int code, const char *field, const char *fmt, ...) {
    WEFT_ASSERT(code > 0 && code < WEFT_E__COUNT);
    if (err != NULL) {
        err->code = code;
        snprintf(err->field, sizeof err->field, "%s", field ? field : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -code;
}

void weft_err_prefix(weft_err *err, const char *fmt, ...) {
    if (err == NULL) return;
    char prefix[WEFT_ERR_MESSAGE_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Truncation is acceptable here: the prefix is context, the tail is the original. */
    char joined[2 * WEFT_ERR_MESSAGE_BYTES_MAX + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->message);
    size_t n = strnlen(joined, sizeof err->message - 1);
    memcpy(err->message, joined, n);
    err->message[n] = '\0';
}

void weft_err_clear(weft_err *err) {
    if (err == NULL) return;
    err->code = 0;
    err->field[0] = '\0';
    err->message[0] = '\0';
}
