/* cli.h: the private parts of the `weft` command-line interface: the command table that drives
 * dispatch and help, flag parsing, and output helpers. docs/cli.md is the manual. */
#ifndef WEFT_CLI_H
#define WEFT_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/limits.h"
#include "proto/msg.h" /* the CLI is part of the tree: schemas, limits, WEFT_ASSERT */
#include "weft/client.h"
#include "weft/json.h"

/* ---- Exit codes (docs/cli.md, and every --help, list them) ---- */
#define CLI_EXIT_OK 0      /* success; for `workflow result`: the run completed */
#define CLI_EXIT_ERROR 1   /* a usage, connection or server error */
#define CLI_EXIT_CLOSED 2  /* `workflow result`: failed, canceled, terminated or timed out */
#define CLI_EXIT_RUNNING 3 /* `workflow result`: the run is still open */

/* ---- Limits and defaults ---- */

/* Flag rows of one command (the table's arrays have this many slots). */
#define CLI_FLAGS_MAX 16u
/* Where the CLI connects when neither --address nor $WEFT_ADDRESS says otherwise. */
#define CLI_ADDRESS_DEFAULT "127.0.0.1:7400"
#define CLI_ADDRESS_ENV "WEFT_ADDRESS"
/* Rows `workflow list` prints when --limit is not given, and the most it accepts. */
#define CLI_LIST_LIMIT_DEFAULT 100u
#define CLI_LIST_LIMIT_MAX 1000000u
/* One long-poll of `workflow result --wait` and `workflow show --follow`. A wait longer than
 * this is a loop of such polls, so an unbounded wait never needs an unbounded call timeout. */
#define CLI_LONG_POLL_MS 60000u
/* Retries of one call after the first attempt (backoff 50 ms doubling, capped at
 * CLI_CALL_BACKOFF_MAX_MS, with jitter): at most about 4.5 s of backoff, 5 s in all, which
 * outlasts a leader's failover (an election timeout, 2 s by default, plus the election). */
#define CLI_CALL_RETRIES 8u
#define CLI_CALL_BACKOFF_MAX_MS 1000u
/* How long the CLI keeps trying to reach a node of --address before it gives up, printing
 * each refusal as it goes (a node restarting is back within this; a wrong address is
 * reported after it, not after the library's 10 s of silent retries). */
#define CLI_CONNECT_WAIT_MS 5000u
/* Pause between two tries to reach --address: doubling from the first, capped at the max. */
#define CLI_CONNECT_BACKOFF_INITIAL_MS 100u
#define CLI_CONNECT_BACKOFF_MAX_MS 1000u
/* At most one "still cannot reach" line per this long. */
#define CLI_CONNECT_PROGRESS_MS 1000u
/* The largest payload a flag reads (from the text, a file or stdin): the server's default
 * payload_bytes_max. A bigger one would be refused by a server with default settings, and the
 * CLI says so naming the flag instead. */
#define CLI_PAYLOAD_BYTES_MAX WEFT_PAYLOAD_BYTES_MAX_DEFAULT
/* Payload flags of one command that read a file or stdin (--input, --signal-input, ...). */
#define CLI_PAYLOADS_MAX 4u
/* Hex digits of randomness in a generated workflow id ("<type>-<hex>"). */
#define CLI_GENERATED_ID_HEX_DIGITS 16u
/* "2024-05-01T10:00:00.123Z" plus NUL, with room to spare. */
#define CLI_TIME_BYTES 32u

_Static_assert(CLI_LONG_POLL_MS <= WEFT_LONG_POLL_MS_MAX, "the server caps one long-poll");
_Static_assert(CLI_GENERATED_ID_HEX_DIGITS < WEFT_CLIENT_REQUEST_ID_BYTES,
               "a generated id takes its hex from one request id");

/* printf arguments for "%.*s" of a weft_str whose pointer may be NULL when it is empty. */
#define CLI_STR(s) (int)(s).len, ((s).ptr != NULL ? (s).ptr : "")

typedef enum cli_output {
    CLI_OUTPUT_TABLE, /* aligned text for people */
    CLI_OUTPUT_JSON,  /* the JSON form of json.h, one object per line */
} cli_output;

/* One flag of a command. */
typedef struct cli_flag {
    const char *name;    /* long name without the dashes: "task-queue"; NULL ends a table */
    const char *metavar; /* placeholder of its value in help ("Q"); NULL: a switch */
    bool required;       /* absent is a usage error */
    const char *help;    /* one line for --help */
} cli_flag;

typedef struct cli_ctx cli_ctx;

/* A command's handler. Returns the process's exit code (CLI_EXIT_*); prints its own errors. */
typedef int (*cli_run_fn)(cli_ctx *ctx);

/* One command: a row of cli_commands, from which dispatch, flag parsing and help all come
 * (STYLE rule 16). */
typedef struct cli_command {
    const char *group;             /* first word: "workflow", "cluster" */
    const char *name;              /* second word: "start" */
    uint32_t msg_type;             /* the WEFT_OPS row it sends: its doc line is the summary;
                                      0 for a command that sends nothing (completion) */
    const char *summary;           /* the summary when msg_type is 0, else NULL */
    cli_run_fn run;                /* the handler */
    const char *details;           /* help text after the flags: output, exit codes; or NULL */
    cli_flag flags[CLI_FLAGS_MAX]; /* rows until the first with a NULL name */
} cli_command;

/* Everything a handler needs: the global flags, its own flags, the connection. */
struct cli_ctx {
    const char *address;               /* --address, else $WEFT_ADDRESS, else the default */
    const char *namespace_;            /* --namespace, else "default" */
    cli_output output;                 /* --output */
    const cli_command *cmd;            /* the command being run */
    const char *values[CLI_FLAGS_MAX]; /* per row of cmd->flags: the value ("" for a given
                                          switch), or NULL when the flag is absent */
    weft_client *client;               /* opened by cli_connect; closed by main */
    char *payloads[CLI_PAYLOADS_MAX];  /* payloads read from files or stdin; freed by main */
    bool stdin_used;                   /* a flag already read stdin ("-") */
    char request_id[WEFT_CLIENT_REQUEST_ID_BYTES]; /* of the write being sent, for messages */
};

/* The flags accepted before the command (main.c), ended by a row with a NULL name. */
extern const cli_flag cli_global_flags[];

/* The command table (main.c). */
extern const cli_command cli_commands[];
extern const unsigned cli_commands_count;

/* ---- Flags (args.c) ---- */

/* A table of flags and the values parsed for it: one slot per row, NULL when absent, "" for a
 * given switch, else the argument (borrowed from argv). */
typedef struct cli_flagset {
    const cli_flag *flags; /* rows until a NULL name (or CLI_FLAGS_MAX) */
    const char **values;   /* CLI_FLAGS_MAX slots */
} cli_flagset;

/* Parses `--name value`, `--name=value`, switches, and -h / --help from argv[0, argc) into
 * `own` (whose values are reset first), or into `also` (may be NULL; its values are kept, so a
 * flag given before the command and again after it is "given twice"). With stop_at_word,
 * parsing stops at the first argument that is not a flag (the command), and *used (may be
 * NULL) receives how many arguments were consumed; otherwise every argument must be a flag.
 * `where` names the command in messages ("workflow start", or "" for the global flags).
 * *help is set when -h or --help was given (required flags are then not checked). Returns 0
 * or -WEFT_E_INVALID_ARGUMENT naming the flag. */
int cli_flags_parse(const cli_flagset *own, const cli_flagset *also, const char *where, int argc,
                    char **argv, bool stop_at_word, int *used, bool *help, weft_err *err);

/* Sets a usage error (INVALID_ARGUMENT) on `field` whose message ends by pointing at the
 * command's --help. Returns -WEFT_E_INVALID_ARGUMENT. */
int cli_usage_error(const cli_ctx *ctx, weft_err *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The value of the current command's flag `name` (a row that must exist), or NULL. */
const char *cli_arg(const cli_ctx *ctx, const char *name);
/* True when switch `name` was given. */
bool cli_switch(const cli_ctx *ctx, const char *name);
/* Flag `name` as a duration into *ms (left alone when the flag is absent). */
int cli_arg_duration(const cli_ctx *ctx, const char *name, uint64_t *ms, weft_err *err);
/* Flag `name` as one of `names` (NULL-terminated; entry 0 is not accepted when skip_first)
 * into *out (left alone when absent). */
int cli_arg_enum(const cli_ctx *ctx, const char *name, const char *const *names, bool skip_first,
                 uint32_t *out, weft_err *err);
/* Flag `name` as a point in time into *ms since the epoch (left alone when absent): a UTC time
 * "2024-05-01T10:00:00Z" (seconds, ".123" milliseconds and the "Z" optional), a day
 * "2024-05-01" (its midnight, UTC), or a duration "90m" meaning that long before now. */
int cli_arg_time(const cli_ctx *ctx, const char *name, uint64_t *ms, weft_err *err);
/* Flag `name` as a whole number in [min, max] into *out (left alone when absent). */
int cli_arg_u32(const cli_ctx *ctx, const char *name, uint32_t min, uint32_t max, uint32_t *out,
                weft_err *err);
/* Flag `name` as a payload that must be valid JSON, at most CLI_PAYLOAD_BYTES_MAX bytes: the
 * JSON itself, "@PATH" for a file's contents, or "-" for stdin (one flag per command). *out
 * borrows the flag's text or the bytes read, which ctx keeps until main frees them (empty
 * when absent). Errors name the flag (and the file). */
int cli_arg_json(cli_ctx *ctx, const char *name, weft_bytes *out, weft_err *err);
/* The request id of a write: --request-id when given, else a fresh one. Kept in
 * ctx->request_id (which *out borrows) so that a failure whose outcome is unknown can say how
 * to send the same request again. */
int cli_request_id(cli_ctx *ctx, weft_str *out, weft_err *err);
/* cli_fail for a write: when the outcome is unknown (UNAVAILABLE, DEADLINE_EXCEEDED), adds how
 * to send it again without applying it twice (--request-id). */
int cli_fail_write(const cli_ctx *ctx, weft_err *err);

/* ---- Connection and output (output.c) ---- */

/* Opens ctx->client to ctx->address. */
int cli_connect(cli_ctx *ctx, weft_err *err);
/* Prints "weft: <ERROR_NAME>: <message>" (and the field) to stderr; returns CLI_EXIT_ERROR. */
int cli_fail(const weft_err *err);
/* Writes `ms` since the epoch as UTC ("2024-05-01T10:00:00.123Z"), or "-" for 0. Returns buf. */
char *cli_time(uint64_t ms, char buf[CLI_TIME_BYTES]);
/* Prints the JSON form of `in` (a `schema` struct) on one line of stdout, keys in schema order. */
int cli_print_struct_json(const weft_schema *schema, const void *in, weft_err *err);
/* Prints a JSON value compactly on one line of stdout (keys in their order). */
int cli_print_json(const json_t *v, weft_err *err);
/* Prints `s` (borrowed) to `f` bare when it is a plain word, else as a quoted JSON string. */
void cli_print_word(FILE *f, weft_str s);
/* Prints a payload to `f` as text when it is UTF-8, else as {"base64": "..."}. */
void cli_print_payload(FILE *f, weft_bytes b);
/* Prints the fields of a JSON object (borrowed) as `key=value` pairs separated by spaces,
 * skipping `skip` (NULL-terminated): durations (`*_ms` integers) as "30s", strings as words. */
void cli_print_attrs(FILE *f, const json_t *obj, const char *const *skip);
/* The name of a run status ("running"), or "?" for a value outside the table. */
const char *cli_status_name(uint32_t status);

/* ---- Handlers (one file per concern) ---- */

int cli_workflow_start(cli_ctx *ctx);             /* workflow.c */
int cli_workflow_signal_with_start(cli_ctx *ctx); /* workflow.c */
int cli_workflow_signal(cli_ctx *ctx);            /* workflow.c */
int cli_workflow_cancel(cli_ctx *ctx);            /* workflow.c */
int cli_workflow_terminate(cli_ctx *ctx);         /* workflow.c */
int cli_workflow_describe(cli_ctx *ctx);          /* describe.c */
int cli_workflow_show(cli_ctx *ctx);              /* history.c */
int cli_workflow_result(cli_ctx *ctx);            /* result.c */
int cli_workflow_list(cli_ctx *ctx);              /* list.c */
int cli_workflow_count(cli_ctx *ctx);             /* list.c */
int cli_cluster_status(cli_ctx *ctx);             /* cluster.c */
int cli_namespace_register(cli_ctx *ctx);         /* namespace.c */
int cli_namespace_describe(cli_ctx *ctx);         /* namespace.c */
int cli_namespace_list(cli_ctx *ctx);             /* namespace.c */
int cli_task_queue_describe(cli_ctx *ctx);        /* taskqueue.c */
/* With `workflow describe` of an open run: prints a hint line for each kind of task (workflow,
 * activity) that waits scheduled on the run's queue while no worker polled it within the
 * server's window (taskqueue.c). Errors asking the server are ignored: it is only a hint. */
void cli_task_queue_hint(cli_ctx *ctx, const weft_describe_resp *r);
int cli_completion_bash(cli_ctx *ctx);            /* completion.c */

/* ---- Version (main.c) ---- */

/* Prints "weft VERSION (commit HASH)" to stdout (cmake/weft_version.cmake). */
void cli_version_print(void);

#endif
