/* jepsen.h: what the subcommands of weft-jepsen share: the names of jepsen/FORMAT.md, JSON lines
 * appended with one write(2) each, the outcome of an operation (ok, fail or info), a seeded
 * random generator, and the flag parser. */
#ifndef WEFT_JEPSEN_H
#define WEFT_JEPSEN_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/base.h"
#include "weft/client.h"
#include "weft/json.h"
#include "weft/worker.h"

/* ---- Names shared with the driver and the checkers (jepsen/FORMAT.md) ---- */
#define JEPSEN_TASK_QUEUE "jepsen"
#define JEPSEN_WF_LEDGER "jepsen-ledger"
#define JEPSEN_WF_TIMERS "jepsen-timers"
#define JEPSEN_WF_SIGNALS "jepsen-signals"
#define JEPSEN_ACT_STEP "jepsen-step"
#define JEPSEN_SIGNAL_NAME "jepsen"
/* Probes write into their own namespace, so that their runs never mix with a workload's. */
#define JEPSEN_PROBE_NAMESPACE "jepsen-probe"
#define JEPSEN_PROBE_TYPE "jepsen-probe"

/* ---- Limits ---- */
/* One JSON line of a history, ledger or wakes file; a longer one is a bug of ours. */
#define JEPSEN_LINE_BYTES_MAX (1024u * 1024u)
/* Client processes (threads) of one `run`. */
#define JEPSEN_PROCESSES_MAX 64u
/* Signals one jepsen-signals run waits for (its input's "expect"). */
#define JEPSEN_SIGNALS_EXPECT_MAX 10000u
/* Steps of one jepsen-ledger run and timers of one jepsen-timers run. */
#define JEPSEN_STEPS_MAX 100u
#define JEPSEN_TIMERS_MAX 100u
/* A process name ("c12") or a node name ("n3"). */
#define JEPSEN_NAME_BYTES_MAX 64u
/* A workflow id this client builds. */
#define JEPSEN_ID_BYTES_MAX 128u

/* Milliseconds of CLOCK_REALTIME: FORMAT.md's time_ms. */
uint64_t jepsen_now_ms(void);
/* Sleeps `ms` milliseconds (restarting after signals). */
void jepsen_sleep_ms(uint64_t ms);

/* ---- JSON lines ---- */

/* A file that several threads and processes append whole lines to. */
typedef struct jepsen_log {
    int fd;          /* opened O_WRONLY|O_APPEND|O_CREAT, or -1 */
    char path[4096]; /* for messages */
} jepsen_log;

/* Opens (creating) `path` for appending. Returns 0, or -1 after printing why. */
int jepsen_log_open(jepsen_log *l, const char *path);
void jepsen_log_close(jepsen_log *l);
/* Appends `obj` (borrowed) as one compact line with a single write(2), so lines written by
 * several processes never interleave. Returns 0, or -1 after printing why. */
int jepsen_log_write(jepsen_log *l, const json_t *obj);

/* ---- Operations ---- */

/* How an operation ended (FORMAT.md "Operations"). */
typedef enum jepsen_outcome {
    JEPSEN_OK,   /* it happened */
    JEPSEN_FAIL, /* it certainly did not happen */
    JEPSEN_INFO, /* unknown: it may have happened, now or later */
} jepsen_outcome;

/* The outcome of a call that returned `rc` (0 or -WEFT_E_*): only answers a leader gives after
 * deciding (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION) are definite
 * failures; everything else (UNAVAILABLE, DEADLINE_EXCEEDED, NOT_LEADER after the retries,
 * RESOURCE_EXHAUSTED, INTERNAL) may have been applied, so it is info. */
jepsen_outcome jepsen_outcome_of(int rc);
const char *jepsen_outcome_name(jepsen_outcome o);

/* One client process: its history file and its name. */
typedef struct jepsen_history {
    jepsen_log log;                      /* history/<process>.jsonl */
    char process[JEPSEN_NAME_BYTES_MAX]; /* "c1" */
} jepsen_history;

/* Writes the invoke line of operation `f` with `value` (borrowed). Returns its time_ms. */
uint64_t jepsen_history_invoke(jepsen_history *h, const char *f, const json_t *value);
/* Writes the completion of `f`: ok with `value` (borrowed; NULL = {}), or fail / info with the
 * error "CODE message" taken from rc and err. `node_id` is the node whose reply decided it
 * (weft_response_node), written "n<id>" as the harness names its nodes; 0 (no reply) is null. */
void jepsen_history_complete(jepsen_history *h, const char *f, int rc, const weft_err *err,
                             const json_t *value, uint64_t node_id);

/* ---- Random numbers (seeded, so that a run replays from its seed) ---- */
typedef struct jepsen_rng {
    uint64_t s; /* splitmix64 state */
} jepsen_rng;
void jepsen_rng_seed(jepsen_rng *r, uint64_t seed, const char *salt);
uint64_t jepsen_rng_next(jepsen_rng *r);
/* Uniform in [lo, hi] (inclusive). */
uint64_t jepsen_rng_range(jepsen_rng *r, uint64_t lo, uint64_t hi);

/* ---- Flags ---- */

/* One flag of a subcommand: `--name VALUE`, or `--name` alone for a switch (`set` not NULL). */
typedef struct jepsen_flag {
    const char *name;   /* without "--" */
    const char **value; /* where the value goes (borrowed from argv); NULL for a switch */
    bool *set;          /* a switch: set to true when given; NULL for a flag with a value */
    const char *doc;    /* one line of usage */
} jepsen_flag;

/* Parses argv[first..] against `flags` (ending with a NULL name). Returns 0, or -1 after
 * printing the usage of `cmd` to stderr. */
int jepsen_flags_parse(const char *cmd, const jepsen_flag *flags, int argc, char **argv, int first);
/* Parses a decimal number in [lo, hi] from flag `name`'s `text`. Returns 0 or -1 after
 * printing which flag was wrong and what it takes. */
int jepsen_parse_u64(const char *name, const char *text, uint64_t lo, uint64_t hi, uint64_t *out);

/* Opens a client for `addresses` with the harness's timeouts. Returns 0 or -1 after printing
 * why. `call_timeout_ms` and `retries` as in weft_client_opts (0 = no retries). */
int jepsen_client_open(const char *addresses, const char *name, uint32_t call_timeout_ms,
                       uint32_t retries, weft_client **out);

/* ---- Subcommands ---- */
int jepsen_cmd_worker(int argc, char **argv);
int jepsen_cmd_run(int argc, char **argv);
int jepsen_cmd_dump(int argc, char **argv);
int jepsen_cmd_probe(int argc, char **argv);
int jepsen_cmd_status(int argc, char **argv);

/* JSON from a payload: the parsed value when it is JSON, else the text as a string, or null
 * when empty. A new reference. */
json_t *jepsen_payload_json(weft_bytes b);

#endif
