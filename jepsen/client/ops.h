/* ops.h: the operations a workload client issues, each recorded in its process's history. */
#ifndef WEFT_JEPSEN_OPS_H
#define WEFT_JEPSEN_OPS_H

#include "jepsen.h"

/* A run id as the server returns it (32 hex digits), with room to spare. */
#define JEPSEN_RUN_ID_BYTES 128u
/* A start's JSON input. */
#define JEPSEN_INPUT_BYTES_MAX 512u

/* Everything a StartWorkflow carries, so that it can be sent again unchanged (G4). */
typedef struct jepsen_start_spec {
    char workflow_id[JEPSEN_ID_BYTES_MAX];
    const char *workflow_type;          /* static: JEPSEN_WF_* */
    char input[JEPSEN_INPUT_BYTES_MAX]; /* JSON */
    char request_id[WEFT_CLIENT_REQUEST_ID_BYTES];
    uint32_t reuse;    /* enum weft_reuse_policy */
    uint32_t conflict; /* enum weft_conflict_policy */
} jepsen_start_spec;

/* Starts `s` in namespace `ns`. On success run_id and *started hold the answer. Returns the
 * call's rc (0 or -WEFT_E_*); the history holds the operation either way. */
int jepsen_op_start(jepsen_history *h, weft_client *c, const char *ns, const jepsen_start_spec *s,
                    char run_id[JEPSEN_RUN_ID_BYTES], bool *started);
/* Sends signal JEPSEN_SIGNAL_NAME with input {"process": h->process, "seq": seq}. */
int jepsen_op_signal(jepsen_history *h, weft_client *c, const char *ns, const char *workflow_id,
                     const char *request_id, uint64_t seq);
/* Waits for the outcome of run `run_id` ("" = the current run) until it closes or deadline_ms
 * (CLOCK_REALTIME) passes; the latter is info. */
int jepsen_op_result(jepsen_history *h, weft_client *c, const char *ns, const char *workflow_id,
                     const char *run_id, uint64_t deadline_ms);

#endif
