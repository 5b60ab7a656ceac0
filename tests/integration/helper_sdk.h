/* helper_sdk.h: scaffolding of the tests of the worker SDK (weft/worker.h) against a real weftd:
 * a thread that sits in weft_worker_run until the test stops it, and starting a workflow and
 * waiting for its result through a client, with the error printed when a call fails. */
#ifndef WEFT_TESTS_HELPER_SDK_H
#define WEFT_TESTS_HELPER_SDK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/worker.h"

/* A worker running on its own thread. */
typedef struct sdk_runner {
    weft_worker *w;   /* borrowed; the test frees it after the run returned */
    pthread_t thread; /* inside weft_worker_run */
    bool running;     /* started and not joined yet */
    int rc;           /* what weft_worker_run returned; -1 while it runs */
} sdk_runner;

/* Runs weft_worker_run(w) on a new thread (asserts that it started). */
void sdk_runner_start(sdk_runner *r, weft_worker *w);

/* Waits for weft_worker_run to return (after weft_worker_stop, or a signal the worker handles)
 * and returns what it returned; returns r->rc at once when the thread is not running. */
int sdk_runner_join(sdk_runner *r);

/* weft_worker_stop (a drain: tasks in hand finish and are reported), then sdk_runner_join. */
int sdk_runner_stop(sdk_runner *r);

/* Starts workflow `workflow_id` of `type` on `queue` with the string `input`; asserts that the
 * start succeeded. Copies the run id into run_id (capacity cap) unless run_id is NULL. */
void sdk_start(weft_client *c, const char *workflow_id, const char *type, const char *queue,
               const char *input, char *run_id, size_t cap);

/* Waits up to wait_ms for workflow `workflow_id` to close, following continue-as-new, and
 * returns its status (WEFT_STATUS_*); asserts that the call succeeded. Prints the status and
 * failure when it did not complete. Copies the result as text into buf (capacity cap, truncated)
 * unless buf is NULL. */
uint32_t sdk_result(weft_client *c, const char *workflow_id, uint32_t wait_ms, char *buf,
                    size_t cap);

#endif
