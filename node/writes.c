/* writes.c: requests that change a workflow. Each becomes one shard command proposed through
 * raft, and the client hears back only from the command's apply (G1: committed, fsynced and
 * applied before the reply). Workflow requests route by (namespace, workflow id); task
 * completions route by the shard their task token names. A shard another node leads gets the
 * request forwarded there (forward.h). */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "disk.h"
#include "forward.h"
#include "ids.h"
#include "namespaces.h"
#include "ops.h"
#include "replica.h"
#include "req.h"
#include "router.h"

static void writes_applied_cb(void *data, weft_reply *reply) {
    weft_req *r = data;
    WEFT_ASSERT(r->async_pending > 0);
    r->async_pending--;
    weft_req_reply(r, reply); /* dropped silently if the connection is gone */
}

/* Wraps the body as the op's shard command and proposes it on r->shard's replica. */
static void writes_propose(weft_req *r, weft_str run_id) {
    weft_replica *rep = &r->node->replicas[r->shard];
    weft_err err = {0};
    uint64_t hint = 0;
    if (weft_replica_check_leader(rep, &err, &hint) != 0) {
        /* Another node leads the shard: it answers, through this node (forward.h). */
        if (err.code == WEFT_E_NOT_LEADER && weft_forward_req(r, hint, 0)) return;
        weft_req_err(r, &err, hint);
        return;
    }
    /* This node would write it: not new work while its disk is low (disk.c). */
    if (weft_disk_refuses(r->node, r->op->msg_type, &err)) {
        weft_req_err(r, &err, 0);
        return;
    }
    uint8_t *cmd = NULL;
    size_t cmd_len = 0;
    int rc = weft_shard_client_cmd(rep->shard, r->op->msg_type, r->body, r->body_len, run_id, &cmd,
                                   &cmd_len, &err);
    if (rc != 0) {
        if (err.code == 0)
            weft_err_set(&err, WEFT_E_INTERNAL, "", "cannot build the shard command (%s)",
                         weft_error_name(rc));
        weft_req_err(r, &err, 0);
        return;
    }
    if (weft_replica_propose(rep, cmd, cmd_len, writes_applied_cb, r, &err) != 0) {
        weft_req_err(r, &err, err.code == WEFT_E_NOT_LEADER ? weft_group_leader_id(rep->group) : 0);
        return;
    }
    r->async_pending++;
}

/* The workflow key of START, SIGNAL, SIGNAL_WITH_START, CANCEL and TERMINATE requests. */
static int writes_decode_key(weft_req *r, msgpack_unpacked *up, weft_str *ns, weft_str *wid,
                             weft_err *err) {
    union {
        weft_start_req start;
        weft_signal_req signal;
        weft_close_req close;
    } u;
    int rc = weft_schema_decode_buf(r->op->req_schema, r->body, r->body_len, &u, up,
                                    &r->node->cfg.limits, err);
    if (rc != 0) return rc;
    switch (r->op->msg_type) {
    case WEFT_MSG_START_WORKFLOW:
    case WEFT_MSG_SIGNAL_WITH_START:
        *ns = u.start.namespace_;
        *wid = u.start.workflow_id;
        break;
    case WEFT_MSG_SIGNAL_WORKFLOW:
        *ns = u.signal.namespace_;
        *wid = u.signal.workflow_id;
        break;
    case WEFT_MSG_CANCEL_WORKFLOW:
    case WEFT_MSG_TERMINATE_WORKFLOW:
        *ns = u.close.namespace_;
        *wid = u.close.workflow_id;
        break;
    default:
        WEFT_ASSERT(!"not a workflow write");
    }
    if (wid->len == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "workflow_id", "workflow_id is required");
    }
    return 0;
}

/* The namespace check (namespaces.h) is done: propose, or answer its refusal. */
static void writes_workflow_checked(weft_req *r, const weft_err *ns_err) {
    if (ns_err != NULL) {
        weft_req_err(r, ns_err, 0);
        return;
    }
    int rc;
    char run_id[WEFTD_ID_HEX_BYTES + 1] = "";
    bool starts =
        r->op->msg_type == WEFT_MSG_START_WORKFLOW || r->op->msg_type == WEFT_MSG_SIGNAL_WITH_START;
    if (starts && (rc = weft_id_random_hex(run_id, sizeof run_id)) != 0) {
        weft_req_fail(r, WEFT_E_UNAVAILABLE, "", "cannot generate a run id (getrandom: %s); retry",
                      strerror(-rc));
        return;
    }
    writes_propose(r, weft_str_c(run_id));
}

void weft_writes_workflow(weft_req *r) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_str ns = {0}, wid = {0};
    weft_err err = {0};
    int rc = writes_decode_key(r, &up, &ns, &wid, &err);
    if (rc == 0) {
        r->shard = weft_router_shard(r->node, ns, wid);
        weft_namespaces_check(r, ns, writes_workflow_checked); /* copies ns */
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0) weft_req_err(r, &err, 0);
}

void weft_writes_namespace(weft_req *r) {
    r->shard = WEFT_NAMESPACE_REGISTRY_SHARD;
    writes_propose(r, (weft_str){0});
}

void weft_writes_task(weft_req *r) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    union {
        weft_complete_wft_req complete;
        weft_fail_wft_req fail;
        weft_activity_req activity;
    } u;
    weft_err err = {0};
    int rc = weft_schema_decode_buf(r->op->req_schema, r->body, r->body_len, &u, &up,
                                    &r->node->cfg.limits, &err);
    if (rc == 0) {
        weft_bytes token = r->op->msg_type == WEFT_MSG_COMPLETE_WORKFLOW_TASK
                               ? u.complete.task_token
                           : r->op->msg_type == WEFT_MSG_FAIL_WORKFLOW_TASK ? u.fail.task_token
                                                                            : u.activity.task_token;
        rc = weft_router_token_shard(r->node, token, &r->shard, &err);
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        weft_req_err(r, &err, 0);
        return;
    }
    writes_propose(r, (weft_str){0});
}
