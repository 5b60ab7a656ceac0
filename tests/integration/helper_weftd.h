/* helper_weftd.h: runs real weftd processes for integration tests: fresh data dirs, free
 * loopback ports, readiness, SIGTERM / kill -9 / restart, stderr capture, and cleanup at exit. */
#ifndef WEFT_TESTS_HELPER_WEFTD_H
#define WEFT_TESTS_HELPER_WEFTD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "helper_proc.h"
#include "proto/msg.h" /* tests see the tree's internals: schemas, limits, WEFT_ASSERT */
#include "weft/client.h"

/* Extra flags one weftd may be given. */
#define WEFTD_EXTRA_ARGS_MAX 24u
/* Environment variables one weftd may be given on top of the test's (weftd_set_env). */
#define WEFTD_ENV_MAX 8u
/* Longest "127.0.0.1:port". */
#define WEFTD_ADDR_BYTES 32u
/* How long weftd may take to answer Hello and make every shard ready after a (re)start. */
#define WEFTD_READY_TIMEOUT_MS 30000u
/* How long a SIGTERM'd weftd may take to exit before the helper calls it hung and kills it. */
#define WEFTD_STOP_TIMEOUT_MS 30000u
/* The temp dir's path; short enough that its children fit in PATH_MAX. */
#define WEFTD_DIR_BYTES 1024u
/* Stderr lines printed when a test fails. */
#define WEFTD_STDERR_TAIL_LINES 60u

typedef struct weftd {
    proc_child proc;                    /* the process: pid (0 when stopped), starts, status */
    char dir[WEFTD_DIR_BYTES];          /* mkdtemp'd root, removed by weftd_destroy */
    char data_dir[PATH_MAX];            /* dir/data: the --data directory */
    char stderr_path[PATH_MAX];         /* dir/weftd.stderr: every run's stderr, appended */
    char listen[WEFTD_ADDR_BYTES];      /* --listen 127.0.0.1:port */
    char raft_listen[WEFTD_ADDR_BYTES]; /* --raft-listen 127.0.0.1:port */
    char *extra[WEFTD_EXTRA_ARGS_MAX];  /* copies of the extra flags, NULL-terminated */
    unsigned extra_count;               /* entries used in extra */
    char *env[WEFTD_ENV_MAX];           /* copies of "NAME=value" added, NULL-terminated */
    unsigned env_count;                 /* entries used in env */
} weftd;

/* Creates a fresh temp dir, picks two free loopback ports and starts weftd with `extra`
 * (a NULL-terminated list of flags, borrowed; may be NULL), then waits until it is ready.
 * Registers `w` for the exit hook that kills it and removes its dir. Returns 0 or -1 (after
 * printing why and the stderr tail). */
int weftd_start(weftd *w, const char *const *extra);

/* What weftd_start does before it spawns: creates the temp dir, registers `w` for the exit
 * hook, sets --listen and --raft-listen (NULL: a free loopback port each) and the extra flags.
 * Does not start the process: weftd_spawn does. For processes that are not ready on their own,
 * such as the nodes of a cluster (helper_cluster). Returns 0 or -1 (printed). */
int weftd_prepare(weftd *w, const char *listen, const char *raft_listen, const char *const *extra);

/* Starts the process again on the same data dir and ports (after a stop or a kill), with the
 * same flags, and waits until it is ready. Returns 0 or -1. */
int weftd_restart(weftd *w);

/* Replaces the extra flags (NULL-terminated, borrowed) used by the next (re)start. */
void weftd_set_extra(weftd *w, const char *const *extra);
/* Replaces the "NAME=value" variables (NULL-terminated, borrowed; NULL: none) the next
 * (re)start adds to the test's environment, through /usr/bin/env (e.g. libfaketime's). */
void weftd_set_env(weftd *w, const char *const *env);

/* Spawns the process without waiting for readiness. Returns 0 or -1. */
int weftd_spawn(weftd *w);

/* Waits until a Hello succeeds and ClusterStatus shows every shard ready, at most timeout_ms.
 * Returns 0, or -1 if the process exited or the time ran out. */
int weftd_wait_ready(weftd *w, uint32_t timeout_ms);

/* Waits for the process to exit on its own, at most timeout_ms; stores its status. Returns the
 * exit code (0..255), 128+signal when killed by a signal, or -1 on timeout (still running). */
int weftd_wait_exit(weftd *w, uint32_t timeout_ms);

/* SIGTERM, then waits up to WEFTD_STOP_TIMEOUT_MS. Returns the exit code as weftd_wait_exit
 * (the tests assert 0); a hung process is kill -9'd and -1 returned. */
int weftd_stop(weftd *w);

/* kill -9 and reap. */
void weftd_kill9(weftd *w);

/* Kills the process if running, frees the flag copies and removes the temp dir. Idempotent. */
void weftd_destroy(weftd *w);

/* Prints the last `lines` lines of the captured stderr to stderr. */
void weftd_print_stderr(const weftd *w, unsigned lines);

/* True when the captured stderr contains `needle`. */
bool weftd_stderr_contains(const weftd *w, const char *needle);

/* Opens a client to w with test-friendly options: short backoff and enough retries to ride
 * out a restart (about 20 s). Returns 0 or the client error (printed). */
int weftd_client(const weftd *w, const char *name, weft_client **out);
/* The same for any address list ("host:port[,host:port...]"), such as a cluster's. */
int weftd_client_at(const char *addresses, const char *name, weft_client **out);

/* Writes "127.0.0.1:port" with a loopback port nobody listens on right now into out (cap
 * bytes). Returns 0 or -1. */
int weftd_free_addr(char *out, size_t cap);
/* True when loopback `port` cannot be bound now (SO_REUSEADDR set): something holds it. */
bool weftd_port_busy(uint16_t port);

/* Milliseconds sleep. */
void weftd_sleep_ms(uint32_t ms);

#endif
