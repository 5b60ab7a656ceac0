/* errors.h: weft's error codes, one X-macro table for the enum, names and default advice, and
 * weft_err, the error every libweft function fills. Public (installed as <weft/errors.h>); the
 * server shares it through proto/errors.h. */
#ifndef WEFT_ERRORS_H
#define WEFT_ERRORS_H

#include <stddef.h>

#include "weft/types.h"

WEFT_BEGIN_DECLS

/* X(name, wire value, default advice). The wire value is what travels in a response's `code`
 * field; it never changes once released. Functions return 0 or -WEFT_E_<name>. */
#define WEFT_ERRORS(X)                                                                              \
    X(OK, 0, "success")                                                                             \
    X(INVALID_ARGUMENT, 1, "fix the named field and send the request again")                       \
    X(NOT_FOUND, 2, "check the namespace, workflow id and run id")                                  \
    X(ALREADY_EXISTS, 3, "use another id, or choose an id-reuse or conflict policy that allows it") \
    X(FAILED_PRECONDITION, 4, "the target is not in a state that allows this request")             \
    X(NOT_LEADER, 5, "send the request to the leader named in leader_hint, or to any node")        \
    X(UNAVAILABLE, 6, "retry with the same request id after a short backoff")                      \
    X(RESOURCE_EXHAUSTED, 7, "a limit was hit; the message names it and what to do")               \
    X(DEADLINE_EXCEEDED, 8, "the outcome is unknown; retry with the same request id")              \
    X(UNAUTHENTICATED, 9, "send valid credentials in Hello")                                        \
    X(PERMISSION_DENIED, 10, "the credentials do not allow this request")                          \
    X(INTERNAL, 11, "a bug or a storage failure; see the server log")

enum weft_error {
#define WEFT_ERROR_ENUM(name, value, advice) WEFT_E_##name = value,
    WEFT_ERRORS(WEFT_ERROR_ENUM)
#undef WEFT_ERROR_ENUM
        WEFT_E__COUNT
};

/* The wire name of an error code ("INVALID_ARGUMENT"). Accepts a code or its negation.
 * Returns "UNKNOWN" for a value outside the table. The string is static. */
const char *weft_error_name(int code);

/* The default advice for an error code, as a static string. */
const char *weft_error_advice(int code);

/* Parses a wire name back into its code; returns -1 if the name is unknown. */
int weft_error_from_name(const char *name);

/* An error on its way up: the code, the field it is about (may be empty) and a message that
 * gains context as it travels. Messages say what was wrong and what to do about it. */
#define WEFT_ERR_FIELD_BYTES_MAX 64
#define WEFT_ERR_MESSAGE_BYTES_MAX 512
typedef struct weft_err {
    int code;                                 /* a WEFT_E_* value, positive; 0 when no error */
    char field[WEFT_ERR_FIELD_BYTES_MAX];     /* offending request field, "" if none */
    char message[WEFT_ERR_MESSAGE_BYTES_MAX]; /* human-readable: what was wrong, what to do */
} weft_err;

/* Fills `err` (may be NULL) and returns -code, so callers can `return weft_err_set(...)`. */
int weft_err_set(weft_err *err, int code, const char *field, const char *fmt, ...)
    WEFT_PRINTF_FORMAT(4, 5);

/* Prepends context to err->message ("apply start: " + old message). Keeps code and field. */
void weft_err_prefix(weft_err *err, const char *fmt, ...) WEFT_PRINTF_FORMAT(2, 3);

/* Resets an error to "no error". */
void weft_err_clear(weft_err *err);

WEFT_END_DECLS

#endif
