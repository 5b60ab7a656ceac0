/* example.h: what every example worker binary shares, so that each example's folder holds only
 * its own workflow and activity code. The binary side: the common flags (--address, --namespace,
 * --task-queue, --identity, --no-sticky-cache, --help, plus an example's own), and the run of a
 * worker that SIGTERM or Ctrl-C drains. The workflow side: reading the JSON input, durations,
 * arena strings, and a log line that is not printed again during replay. */
#ifndef WEFT_EXAMPLE_COMMON_H
#define WEFT_EXAMPLE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/json.h"
#include "weft/worker.h"

/* Exit codes: 0 after a clean stop or --help, 1 when the worker cannot run, 2 for bad flags. */
#define EXAMPLE_EXIT_FAILURE 1
#define EXAMPLE_EXIT_USAGE 2
/* The weftd to connect to when neither --address nor $WEFT_ADDRESS is given (weftd's own
 * default), as for the CLI. */
#define EXAMPLE_ADDRESS_DEFAULT "127.0.0.1:7400"
/* How long a worker keeps trying to reach --address at start before it gives up, printing
 * each refusal (a weftd that starts along with its workers is up within this). */
#define EXAMPLE_CONNECT_WAIT_MS 10000u
/* Pause between two tries: doubling from the first, capped at the max. */
#define EXAMPLE_CONNECT_BACKOFF_INITIAL_MS 100u
#define EXAMPLE_CONNECT_BACKOFF_MAX_MS 2000u
/* At most one "still cannot reach" line per this long. */
#define EXAMPLE_CONNECT_PROGRESS_MS 2000u
/* Flags one example may add to the common ones. */
#define EXAMPLE_EXTRA_FLAGS_MAX 8u

/* ---- The worker binary ---- */

/* A flag of one example only: `--name VALUE` stores VALUE in *value; `--name` alone (value
 * NULL) sets *set. Lists of them end with an entry whose name is NULL. */
typedef struct example_flag {
    const char *name;   /* without the leading "--" */
    const char **value; /* for a flag with a value; borrows from argv */
    bool *set;          /* for a flag without a value */
} example_flag;

/* The flags every example worker takes. Strings borrow from argv. */
typedef struct example_flags {
    const char *address;    /* --address: weftd seeds, "host:port[,host:port...]" */
    const char *namespace_; /* --namespace: NULL = the default namespace */
    const char *task_queue; /* --task-queue */
    const char *identity;   /* --identity: NULL = "<host>:<pid>" */
    bool no_sticky_cache;   /* --no-sticky-cache: replay every task from the full history */
} example_flags;

/* Registers an example's workflow and activity types on `w`. Returns 0 or the error of
 * weft_worker_register_workflow / weft_worker_register_activity. */
typedef int (*example_register_fn)(weft_worker *w, void *arg, weft_err *err);

/* One example worker binary. */
typedef struct example_worker {
    const char *name;                   /* "order-worker": the client's name, prefix of messages */
    const char *usage;                  /* printed by --help, and after a bad flag */
    const char *task_queue;             /* default of --task-queue */
    const example_flag *extra;          /* the example's own flags, or NULL */
    example_register_fn register_types; /* what the worker runs */
    void *arg;                          /* passed to register_types */
    bool no_workflows;                  /* poll activity tasks only (weft_worker_opts) */
    bool no_activities;                 /* poll workflow tasks only (weft_worker_opts) */
    const char *note;                   /* added to the "serving" line, or NULL */
} example_worker;

/* Parses argv: the common flags into *f (defaults: EXAMPLE_ADDRESS_DEFAULT and x->task_queue)
 * and x->extra's flags into their variables (left alone when absent). Returns 0 to run, 1
 * after --help (usage printed to stdout), -1 for a bad flag (usage printed to stderr). */
int example_flags_parse(const example_worker *x, int argc, char **argv, example_flags *f);

/* Runs the worker until SIGTERM or Ctrl-C drains it: opens a client to f->address, creates the
 * worker from the flags, registers x's types, prints that it serves, runs, and prints what it
 * did. Prints any error. Returns the exit code: 0 after a clean stop, else
 * EXAMPLE_EXIT_FAILURE. */
int example_worker_run(const example_worker *x, const example_flags *f);

/* The whole main() of an example without flags or setup of its own: stdout line by line (also
 * into a file or a pipe), example_flags_parse, then example_worker_run. Returns the exit code. */
int example_main(const example_worker *x, int argc, char **argv);

/* ---- Helpers for workflow code ---- */

/* Prints "<kind> <workflow-id>: <message>", except while replaying: the line was printed when
 * the code ran first. */
void example_wf_log(weft_wf *wf, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The workflow input as JSON: `{}` when the input is empty. Returns a new reference (the caller
 * json_decrefs it before the first blocking call: no jansson memory may be held across a
 * suspension point), or NULL with a message in msg. */
json_t *example_input_json(weft_bytes input, char *msg, size_t cap);

/* Parses the duration `text` ("250ms", "30s", "48h") of input key `key` into *ms; keeps *ms
 * when text is NULL (the key was absent). Returns 0, or -1 with a message in msg. */
int example_duration(const char *text, const char *key, uint64_t *ms, char *msg, size_t cap);

/* A copy of `s` in the run's arena: it outlives the jansson value it came from. Returns "" when
 * out of memory. */
const char *example_wf_strdup(weft_wf *wf, const char *s);

#endif
