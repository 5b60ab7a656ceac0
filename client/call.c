/* call.c: one client operation end to end: fill the request id and identity, route to the
 * shard leader, and retry what is safe to retry (DESIGN section 10; G4 for the request ids). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"

/* Room for a copy of any request struct, so the client can fill in ids without touching the
 * caller's (const) request. */
typedef union call_req_copy {
    weft_start_req start;
    weft_signal_req signal;
    weft_close_req close;
    weft_describe_req describe;
    weft_history_req history;
    weft_result_req result;
    weft_list_req list;
    weft_poll_req poll;
    weft_complete_wft_req complete_wft;
    weft_fail_wft_req fail_wft;
    weft_activity_req activity;
    weft_cluster_status_req cluster_status;
} call_req_copy;

/* The request as it will be sent, plus what routing and timeouts need from it. */
typedef struct call_plan {
    const weft_op *op;                             /* the row of WEFT_OPS */
    call_req_copy req;                             /* the caller's request, ids filled in */
    char request_id[WEFT_CLIENT_REQUEST_ID_BYTES]; /* generated id, if the caller gave none */
    bool has_key;                                  /* routed by (namespace, workflow id) */
    weft_str ns;                                   /* routing namespace */
    weft_str workflow_id;                          /* routing workflow id */
    uint64_t wait_ms;                              /* long-poll time the server may hold the call */
} call_plan;

/* Fills an empty request id with a fresh random one (kept in plan for every retry, G4). */
static int call_fill_request_id(call_plan *p, weft_str *request_id, weft_err *err) {
    if (request_id->len > 0) return 0;
    int rc = weft_request_id_new(p->request_id, err);
    if (rc != 0) return rc;
    *request_id = weft_str_c(p->request_id);
    return 0;
}

static void call_fill_identity(const weft_client *c, weft_str *identity) {
    if (identity->len == 0) *identity = weft_str_c(c->identity);
}

static void call_set_key(call_plan *p, weft_str ns, weft_str workflow_id) {
    WEFT_ASSERT(!p->has_key);
    p->has_key = true;
    p->ns = ns.len > 0 ? ns : weft_str_c(WEFT_DEFAULT_NAMESPACE);
    p->workflow_id = workflow_id;
}

/* Long-polls may be held by the server this long; 0 in the request means the server's own
 * default, which we do not know, so the longest wait the protocol allows bounds it. */
static uint64_t call_wait_ms(bool waits, uint64_t asked_ms) {
    if (!waits) return 0;
    return asked_ms > 0 ? WEFT_MIN(asked_ms, (uint64_t)WEFT_LONG_POLL_MS_MAX)
                        : WEFT_LONG_POLL_MS_MAX;
}

/* Per-op fix-ups: the routing key, generated ids and default identity. Straight-line per op. */
static int call_prepare(const weft_client *c, call_plan *p, weft_err *err) {
    call_req_copy *r = &p->req;
    switch (p->op->msg_type) {
    case WEFT_MSG_START_WORKFLOW:
    case WEFT_MSG_SIGNAL_WITH_START:
        call_set_key(p, r->start.namespace_, r->start.workflow_id);
        call_fill_identity(c, &r->start.identity);
        return call_fill_request_id(p, &r->start.request_id, err);
    case WEFT_MSG_SIGNAL_WORKFLOW:
        call_set_key(p, r->signal.namespace_, r->signal.workflow_id);
        call_fill_identity(c, &r->signal.identity);
        return call_fill_request_id(p, &r->signal.request_id, err);
    case WEFT_MSG_CANCEL_WORKFLOW:
    case WEFT_MSG_TERMINATE_WORKFLOW:
        call_set_key(p, r->close.namespace_, r->close.workflow_id);
        call_fill_identity(c, &r->close.identity);
        return call_fill_request_id(p, &r->close.request_id, err);
    case WEFT_MSG_DESCRIBE_WORKFLOW:
        call_set_key(p, r->describe.namespace_, r->describe.workflow_id);
        return 0;
    case WEFT_MSG_GET_HISTORY:
        call_set_key(p, r->history.namespace_, r->history.workflow_id);
        p->wait_ms = call_wait_ms(r->history.wait_new_events, r->history.wait_timeout_ms);
        return 0;
    case WEFT_MSG_GET_RESULT:
        call_set_key(p, r->result.namespace_, r->result.workflow_id);
        p->wait_ms = call_wait_ms(r->result.wait, r->result.wait_timeout_ms);
        return 0;
    case WEFT_MSG_POLL_WORKFLOW_TASK:
    case WEFT_MSG_POLL_ACTIVITY_TASK:
        call_fill_identity(c, &r->poll.identity);
        p->wait_ms = call_wait_ms(true, r->poll.poll_timeout_ms);
        return 0;
    case WEFT_MSG_COMPLETE_WORKFLOW_TASK:
        call_fill_identity(c, &r->complete_wft.identity);
        return 0;
    case WEFT_MSG_FAIL_WORKFLOW_TASK:
        call_fill_identity(c, &r->fail_wft.identity);
        return 0;
    case WEFT_MSG_COMPLETE_ACTIVITY:
    case WEFT_MSG_FAIL_ACTIVITY:
    case WEFT_MSG_HEARTBEAT_ACTIVITY:
        call_fill_identity(c, &r->activity.identity);
        return 0;
    default:
        return 0; /* list, count, cluster status: no key, nothing to fill */
    }
}

/* Picks the node for the next attempt: the shard leader when known and not the node that just
 * failed, else the preferred node (moving past a node that failed; any node forwards). */
static uint32_t call_route(weft_client *c, const call_plan *p, uint32_t failed_node) {
    pthread_mutex_lock(&c->mu);
    WEFT_ASSERT(c->nodes_count > 0);
    uint32_t idx = UINT32_MAX;
    if (p->has_key && c->shard_count > 0) {
        uint32_t shard =
            weft_shard_for_hash(weft_partition_hash(p->ns, p->workflow_id), c->shard_count);
        idx = client_node_by_id(c, c->shard_leaders[shard]);
        if (idx == failed_node) idx = UINT32_MAX;
    }
    if (idx == UINT32_MAX) {
        if (c->preferred_node == failed_node) {
            c->preferred_node = (failed_node + 1) % c->nodes_count;
        }
        idx = c->preferred_node;
    }
    WEFT_ASSERT(idx < c->nodes_count);
    pthread_mutex_unlock(&c->mu);
    return idx;
}

/* NOT_LEADER: remember the named leader for this shard and return its node index, or
 * UINT32_MAX when the hint names no node with a known address. */
static uint32_t call_follow_leader(weft_client *c, const call_plan *p, const client_outcome *o) {
    pthread_mutex_lock(&c->mu);
    uint32_t idx = UINT32_MAX;
    if (o->leader_address[0] != '\0') idx = client_node_add(c, o->leader_address, o->leader_hint);
    if (idx == UINT32_MAX) idx = client_node_by_id(c, o->leader_hint);
    if (p->has_key && c->shard_count > 0 && o->leader_hint != 0) {
        uint32_t shard =
            weft_shard_for_hash(weft_partition_hash(p->ns, p->workflow_id), c->shard_count);
        c->shard_leaders[shard] = o->leader_hint;
    }
    pthread_mutex_unlock(&c->mu);
    return idx;
}

/* Sleeps before retry `attempt` (1-based): exponential, capped, with jitter of up to half so
 * that many clients retrying after one failure do not arrive together. */
static void call_backoff(weft_client *c, uint32_t attempt) {
    WEFT_ASSERT(attempt >= 1);
    uint64_t delay = (uint64_t)c->backoff_initial_ms << WEFT_MIN(attempt - 1, 20u);
    delay = WEFT_MIN(delay, (uint64_t)c->backoff_max_ms);
    pthread_mutex_lock(&c->mu);
    uint64_t jitter = client_rand(c) % (delay / 2 + 1);
    pthread_mutex_unlock(&c->mu);
    delay = delay - delay / 2 + jitter;
    struct timespec ts = {.tv_sec = (time_t)(delay / 1000),
                          .tv_nsec = (long)(delay % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Whether a failed attempt may be sent again. A request that never left the client, or that a
 * node refused without acting on (NOT_LEADER, or UNAVAILABLE in a reply), is always safe; a
 * request whose fate is unknown (lost connection after sending, timeout) only when idempotent. */
static bool call_retryable(const weft_op *op, int rc, const client_outcome *o) {
    if (rc == -WEFT_E_NOT_LEADER) return true;
    if (rc == -WEFT_E_UNAVAILABLE && (!o->sent || !o->conn_broken)) return true;
    if (rc == -WEFT_E_UNAVAILABLE || rc == -WEFT_E_DEADLINE_EXCEEDED) return op->idempotent;
    return false;
}

/* One attempt on node `node`. */
static int call_attempt(weft_client *c, const call_plan *p, uint32_t node, const char *body,
                        size_t body_len, void *resp, weft_response *holder, client_outcome *o,
                        weft_err *err) {
    memset(o, 0, sizeof *o);
    client_conn *conn = NULL;
    int rc = client_pool_get(c, node, &conn, err);
    if (rc != 0) return rc; /* o->sent stays false: safe to retry anything */
    uint64_t timeout_ms = (uint64_t)c->call_timeout_ms + p->wait_ms;
    rc = client_exchange(c, conn, p->op->msg_type, body, body_len, timeout_ms, p->op->resp_schema,
                         resp, holder, o, err);
    if (o->conn_broken) {
        client_pool_discard(conn);
        client_pool_drain(c, node);
    } else {
        client_pool_put(c, conn);
    }
    if (rc == 0) {
        pthread_mutex_lock(&c->mu);
        c->preferred_node = p->has_key ? c->preferred_node : node;
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

/* The retry loop around call_attempt. */
static int call_run(weft_client *c, const call_plan *p, const char *body, size_t body_len,
                    void *resp, weft_response *holder, weft_err *err) {
    WEFT_ASSERT(c != NULL && p != NULL && p->op != NULL);
    WEFT_ASSERT(body != NULL && body_len > 0 && holder != NULL);
    uint32_t failed_node = UINT32_MAX;
    uint32_t next_node = UINT32_MAX;
    int rc = 0;
    for (uint32_t attempt = 0;; attempt++) {
        uint32_t node = next_node != UINT32_MAX ? next_node : call_route(c, p, failed_node);
        next_node = UINT32_MAX;
        client_outcome o;
        rc = call_attempt(c, p, node, body, body_len, resp, holder, &o, err);
        if (rc == 0 || !call_retryable(p->op, rc, &o)) break;
        if (attempt >= c->retries_max) {
            if (attempt > 0)
                weft_err_prefix(err, "%s gave up after %u retries", p->op->name, attempt);
            break;
        }
        if (rc == -WEFT_E_NOT_LEADER) {
            next_node = call_follow_leader(c, p, &o);
            if (next_node != UINT32_MAX && next_node != node) continue; /* no backoff */
            next_node = UINT32_MAX;
        }
        failed_node = (rc == -WEFT_E_UNAVAILABLE && o.conn_broken) || !o.sent ? node : UINT32_MAX;
        call_backoff(c, attempt + 1);
    }
    return rc;
}

int weft_client_call(weft_client *c, uint32_t msg_type, const void *req, void *resp,
                     weft_response *holder, weft_err *err) {
    const weft_op *op = weft_op_find(msg_type);
    if (c == NULL || req == NULL || op == NULL || msg_type == WEFT_MSG_HELLO) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT,
                            c == NULL ? "c"
                            : req     ? "msg_type"
                                      : "req",
                            "weft_client_call needs a client, a request and a known message "
                            "type other than HELLO (got %u)",
                            msg_type);
    }
    if (resp != NULL && holder == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "holder",
                            "a response needs a weft_response holder to borrow from");
    }
    weft_response_free(holder); /* documented: the holder is reset even if no reply comes */
    call_plan *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory for a call");
    }
    WEFT_ASSERT(op->req_schema->size <= sizeof p->req);
    p->op = op;
    memcpy(&p->req, req, op->req_schema->size);
    uint8_t *body = NULL;
    size_t body_len = 0;
    weft_response local = {0};
    int rc = call_prepare(c, p, err);
    if (rc != 0) goto free_plan;
    if (weft_schema_encode_buf(op->req_schema, &p->req, &body, &body_len) != 0) {
        rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                          "out of memory encoding the %s request", op->name);
        goto free_plan;
    }
    rc = call_run(c, p, (const char *)body, body_len, resp, holder ? holder : &local, err);
    free(body);
free_plan:
    weft_response_free(&local);
    free(p);
    return rc;
}
