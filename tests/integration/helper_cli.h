/* helper_cli.h: runs a weft program (the `weft` CLI, weftd, a shell) once as a user would, and
 * keeps what it printed: stdout and stderr apart, the exit code, how long it ran, and when it
 * first wrote to stderr. For tests that assert the messages a user sees. */
#ifndef WEFT_TESTS_HELPER_CLI_H
#define WEFT_TESTS_HELPER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Arguments of one run, the program included. */
#define HCLI_ARGS_MAX 40u
/* A run that takes longer than this is hung: killed, and its code is -1. */
#define HCLI_RUN_TIMEOUT_MS 60000u

/* What one run printed, and how it ended. */
typedef struct hcli_result {
    int code;              /* exit code, or -1 when killed or hung */
    char *out;             /* stdout, NUL-terminated, malloc'd */
    char *err;             /* stderr, NUL-terminated, malloc'd */
    uint64_t elapsed_ms;   /* from the spawn to the exit */
    uint64_t first_err_ms; /* from the spawn to the first stderr byte seen; 0 when none */
} hcli_result;

/* Options of one run; zero means the default. */
typedef struct hcli_opts {
    const char *stdin_path;   /* file for stdin; NULL: /dev/null */
    const char *weft_address; /* $WEFT_ADDRESS; NULL: unset */
    const char *dir;          /* where the output files go; NULL: $TMPDIR or /tmp */
} hcli_opts;

/* Runs argv (NULL-terminated; argv[0] is the program's path) and waits for it (at most
 * HCLI_RUN_TIMEOUT_MS), filling *r. Fails the test when the program cannot be started. */
void hcli_run(const char *const *argv, const hcli_opts *opts, hcli_result *r);

/* Frees what *r holds. */
void hcli_result_free(hcli_result *r);

/* Fails the test, printing both streams, unless the run exited with `code`. */
void hcli_expect_code(const hcli_result *r, int code);

/* Fails the test unless `needle` is in `haystack` (printing both). */
void hcli_expect_in(const char *haystack, const char *needle);

/* Fails the test if `needle` is in `haystack`. */
void hcli_expect_not_in(const char *haystack, const char *needle);

#endif
