/* helper_example.h: runs the example workers and the `weft` CLI as subprocesses for the example
 * tests (tests/integration/test_example_*.c): spawn, kill -9, restart and cleanup at exit of a
 * worker, one CLI command with its output captured, and a reader of the order ledger. */
#ifndef WEFT_TESTS_HELPER_EXAMPLE_H
#define WEFT_TESTS_HELPER_EXAMPLE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "helper_proc.h"

/* Arguments of one worker process (including argv[0]). */
#define EX_PROC_ARGS_MAX 24u
/* Output of one CLI command kept by ex_cli (more is read and dropped). */
#define EX_CLI_OUTPUT_BYTES 65536u
/* How long one CLI command (or ex_run program) may run before it is killed. */
#define EX_CLI_TIMEOUT_MS 90000u
/* How long a SIGTERM'd worker may take to drain (its poll wait plus a task). */
#define EX_PROC_STOP_TIMEOUT_MS 20000u
/* Lines the ledger reader keeps. */
#define EX_LEDGER_LINES_MAX 256u
/* Output lines printed when a test fails. */
#define EX_LOG_TAIL_LINES 40u

/* A worker process. */
typedef struct ex_proc {
    proc_child proc;                  /* the process: pid (0 when stopped), starts, status */
    char *argv[EX_PROC_ARGS_MAX + 1]; /* copies, NULL-terminated; argv[0] is the binary */
    char log_path[PATH_MAX];          /* stdout and stderr of every start, appended */
} ex_proc;

/* Starts `argv` (NULL-terminated, borrowed; argv[0] is the binary's path) with stdout and
 * stderr appended to `log_path`, dying with the test process. Registers `p` for the exit hook
 * that kills it. Does not wait for readiness: a worker polls once it has connected. Returns 0
 * or -1 (printed). */
int ex_proc_start(ex_proc *p, const char *const *argv, const char *log_path);

/* Starts the same command again after a stop or a kill. Returns 0 or -1. */
int ex_proc_restart(ex_proc *p);

/* kill -9 and reap. No-op when not running. */
void ex_proc_kill9(ex_proc *p);

/* SIGTERM and wait up to EX_PROC_STOP_TIMEOUT_MS. Returns the exit code, 128+signal, or -1
 * when it hung (then it is kill -9'd). */
int ex_proc_stop(ex_proc *p);

/* True while the process runs (reaps it if it exited). */
bool ex_proc_alive(ex_proc *p);

/* Kills the process if running and frees the copies. Idempotent. */
void ex_proc_destroy(ex_proc *p);

/* Prints the last `lines` lines of the process's log to stderr. */
void ex_proc_print_log(const ex_proc *p, unsigned lines);

/* Runs `argv` (NULL-terminated, borrowed; argv[0] is the binary's path) to its exit, stdin
 * from /dev/null, stdout and stderr captured together into `out` (capacity `cap`,
 * NUL-terminated, truncated). Echoes the command and its output to stderr for the test log.
 * Returns the exit code, or -1 when it could not run, was killed, or ran longer than
 * EX_CLI_TIMEOUT_MS. */
int ex_run(const char *const *argv, char *out, size_t cap);

/* Runs the CLI (WEFT_CLI_PATH) as `weft --address <address> <args...>` (args NULL-terminated,
 * borrowed) with ex_run. */
int ex_cli(const char *address, const char *const *args, char *out, size_t cap);

/* One ledger line: "<workflow-id> <activity> <attempt>". */
typedef struct ex_ledger_line {
    char workflow_id[128]; /* truncated */
    char activity[64];     /* truncated */
    unsigned attempt;      /* 0 when the line did not parse */
} ex_ledger_line;

/* Reads the lines of `path` that belong to `workflow_id` (all when NULL), in file order, into
 * `lines` (capacity `cap`); *count receives how many. A missing file has no lines. Returns 0,
 * or -1 when a line does not parse or there are more than `cap`. */
int ex_ledger_read(const char *path, const char *workflow_id, ex_ledger_line *lines, size_t cap,
                   size_t *count);

/* Waits until the ledger holds the line (workflow_id, activity, attempt), at most timeout_ms.
 * Returns 0, or -1 on timeout. */
int ex_ledger_wait(const char *path, const char *workflow_id, const char *activity,
                   unsigned attempt, uint32_t timeout_ms);

/* True when the ledger lines hold no (workflow, activity, attempt) twice. */
bool ex_ledger_unique(const ex_ledger_line *lines, size_t count);

/* Formats the lines as "activity attempt, ..." into buf, for assertion messages. */
const char *ex_ledger_format(const ex_ledger_line *lines, size_t count, char *buf, size_t cap);

#endif
