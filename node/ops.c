/* ops.c: one row per operation. weft_ops[] (proto/msg.h) gives each op's name, schemas,
 * whether it writes and its doc line; this table adds the node's handler. */
#include "ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "conn.h"
#include "req.h"

typedef struct op_row {
    uint32_t msg_type;       /* wire type, as in WEFT_OPS */
    weft_op_handler handler; /* who answers it */
} op_row;

static const op_row op_rows[] = {
    {WEFT_MSG_HELLO, weft_topology_hello},
    {WEFT_MSG_START_WORKFLOW, weft_writes_workflow},
    {WEFT_MSG_SIGNAL_WORKFLOW, weft_writes_workflow},
    {WEFT_MSG_SIGNAL_WITH_START, weft_writes_workflow},
    {WEFT_MSG_CANCEL_WORKFLOW, weft_writes_workflow},
    {WEFT_MSG_TERMINATE_WORKFLOW, weft_writes_workflow},
    {WEFT_MSG_DESCRIBE_WORKFLOW, weft_reads_run},
    {WEFT_MSG_GET_HISTORY, weft_reads_run},
    {WEFT_MSG_GET_RESULT, weft_reads_run},
    {WEFT_MSG_LIST_WORKFLOWS, weft_reads_fanout},
    {WEFT_MSG_COUNT_WORKFLOWS, weft_reads_fanout},
    {WEFT_MSG_POLL_WORKFLOW_TASK, weft_poll_start},
    {WEFT_MSG_COMPLETE_WORKFLOW_TASK, weft_writes_task},
    {WEFT_MSG_FAIL_WORKFLOW_TASK, weft_writes_task},
    {WEFT_MSG_POLL_ACTIVITY_TASK, weft_poll_start},
    {WEFT_MSG_COMPLETE_ACTIVITY, weft_writes_task},
    {WEFT_MSG_FAIL_ACTIVITY, weft_writes_task},
    {WEFT_MSG_HEARTBEAT_ACTIVITY, weft_writes_task},
    {WEFT_MSG_CLUSTER_STATUS, weft_topology_cluster_status},
    {WEFT_MSG_REGISTER_NAMESPACE, weft_writes_namespace},
    {WEFT_MSG_DESCRIBE_NAMESPACE, weft_reads_registry},
    {WEFT_MSG_LIST_NAMESPACES, weft_reads_registry},
    {WEFT_MSG_DESCRIBE_TASK_QUEUE, weft_taskqueue_describe},
};

static const op_row *ops_row(uint32_t msg_type) {
    for (unsigned i = 0; i < WEFT_ARRAY_LEN(op_rows); i++) {
        if (op_rows[i].msg_type == msg_type) return &op_rows[i];
    }
    return NULL;
}

void weft_ops_check(void) {
    WEFT_ASSERT(weft_ops_count == WEFT_ARRAY_LEN(op_rows));
    for (unsigned i = 0; i < weft_ops_count; i++) {
        const op_row *row = ops_row(weft_ops[i].msg_type);
        WEFT_ASSERT(row != NULL && row->handler != NULL);
    }
}

static void ops_refuse(weft_conn *c, uint64_t request_id, uint8_t *body, int code,
                       const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void ops_refuse(weft_conn *c, uint64_t request_id, uint8_t *body, int code,
                       const char *field, const char *fmt, ...) {
    free(body);
    weft_err err = {0};
    err.code = code;
    snprintf(err.field, sizeof err.field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    weft_conn_send_error(c, request_id, &err, 0);
}

void weft_ops_dispatch(weft_conn *c, uint32_t msg_type, uint64_t request_id, uint8_t *body,
                       size_t body_len) {
    WEFT_ASSERT(c != NULL && body != NULL && body_len > 0);
    weft_node *n = c->node;
    const weft_op *op = weft_op_find(msg_type);
    const op_row *row = op != NULL ? ops_row(msg_type) : NULL;
    if (row == NULL) {
        ops_refuse(c, request_id, body, WEFT_E_INVALID_ARGUMENT, "msg_type",
                   "unknown message type %u; the request types are listed in docs/protocol.md",
                   msg_type);
        return;
    }
    if (weft_conn_hello_pending(c) && msg_type != WEFT_MSG_HELLO) {
        ops_refuse(
            c, request_id, body, WEFT_E_FAILED_PRECONDITION, "msg_type",
            "send Hello first: %s is accepted only after a successful Hello on this connection",
            op->name);
        return;
    }
    /* A peer's forwarding connection carries many clients' requests: its own limit. */
    uint32_t inflight_max =
        c->forwarding_node != 0 ? n->cfg.forward_inflight_max : n->cfg.conn_inflight_max;
    if (c->inflight_count >= inflight_max) {
        ops_refuse(
            c, request_id, body, WEFT_E_RESOURCE_EXHAUSTED, "",
            "this connection has %u requests in flight, the limit (%s); wait for responses "
            "before sending more, or open another connection",
            c->inflight_count,
            c->forwarding_node != 0 ? "forward-inflight-max" : "conn-inflight-max");
        return;
    }
    /* A stopping node proposes nothing new (weft_ops[].writes: writes, polls, completions);
     * reads are still answered until raft closes. */
    if (!weft_node_serving(n) && op->writes) {
        ops_refuse(c, request_id, body, WEFT_E_UNAVAILABLE, "",
                   "node is shutting down; retry %s on another node or after it restarts",
                   op->name);
        return;
    }
    weft_req *r = weft_req_new(c, op, request_id, body, body_len);
    if (r == NULL) {
        ops_refuse(c, request_id, body, WEFT_E_RESOURCE_EXHAUSTED, "",
                   "node is out of memory; retry later");
        return;
    }
    WEFT_LOGF(WEFT_LOG_TRACE, WEFT_LOG_NO_SHARD, "request %s id %llu (%zu bytes)", op->name,
              (unsigned long long)request_id, body_len);
    row->handler(r);
}
