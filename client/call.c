/* call.c: one client operation end to end: fill the request id and identity, route to the
 * shard leader (by workflow key or by the shard a task token names) or to a pinned node, and
 * retry what is safe to retry (DESIGN section 10; G4 for the request ids). */
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
    weft_register_ns_req register_ns;
    weft_describe_ns_req describe_ns;
    weft_list_ns_req list_ns;
    weft_task_queue_req task_queue;
} call_req_copy;

/* Kinds of task tokens (proto/msg.h, weft_task_token.kind). */
#define CALL_TOKEN_KIND_WORKFLOW 1u
#define CALL_TOKEN_KIND_ACTIVITY 2u

/* Where the attempts of a call go. */
typedef enum call_routing {
    CALL_ROUTE_ANY,   /* the preferred node (polls, lists, ClusterStatus, unreadable tokens) */
    CALL_ROUTE_KEY,   /* the leader of the shard of (ns, workflow_id) */
    CALL_ROUTE_SHARD, /* the leader of token_shard: a task token's, or the namespace registry's */
    CALL_ROUTE_NODE,  /* node pinned_node only (weft_client_poll_*_on) */
} call_routing;

/* The request as it will be sent, plus what routing and timeouts need from it. */
typedef struct call_plan {
    const weft_op *op;                             /* the row of WEFT_OPS */
    call_req_copy req;                             /* the caller's request, ids filled in */
    char request_id[WEFT_CLIENT_REQUEST_ID_BYTES]; /* generated id, if the caller gave none */
    call_routing routing;                          /* where attempts go */
    weft_str ns;                                   /* CALL_ROUTE_KEY: routing namespace */
    weft_str workflow_id;                          /* CALL_ROUTE_KEY: routing workflow id */
    uint32_t token_shard;                          /* CALL_ROUTE_SHARD: the token's shard */
    uint64_t pinned_node;                          /* CALL_ROUTE_NODE: the node's id */
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
    WEFT_ASSERT(p->routing == CALL_ROUTE_ANY);
    p->routing = CALL_ROUTE_KEY;
    p->ns = ns.len > 0 ? ns : weft_str_c(WEFT_DEFAULT_NAMESPACE);
    p->workflow_id = workflow_id;
}

/* Routes by the shard a task token names. The token is the server's msgpack weft_task_token;
 * one the client cannot read (garbage, or a newer server's format) leaves the request
 * unrouted: it goes to the preferred node, which refuses it (INVALID_ARGUMENT) or names the
 * leader (NOT_LEADER), so nothing breaks but a hop. */
static void call_set_token(const weft_client *c, call_plan *p, weft_bytes token) {
    WEFT_ASSERT(p->routing == CALL_ROUTE_ANY);
    if (token.len == 0 || token.len > CLIENT_TASK_TOKEN_BYTES_MAX) return;
    weft_task_token t;
    memset(&t, 0, sizeof t);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_err derr;
    weft_err_clear(&derr);
    int rc = weft_schema_decode_buf(&weft_task_token_schema, token.ptr, token.len, &t, &up,
                                    &c->limits, &derr);
    msgpack_unpacked_destroy(&up);
    if (rc != 0 || t.run_key == 0) return;
    if (t.kind != CALL_TOKEN_KIND_WORKFLOW && t.kind != CALL_TOKEN_KIND_ACTIVITY) return;
    p->routing = CALL_ROUTE_SHARD;
    p->token_shard = t.shard_id;
}

/* The shard whose leader the call wants, or UINT32_MAX (unrouted, or the topology does not
 * know the shard count, or the token names a shard the topology does not have). c->mu held. */
static uint32_t call_shard(const weft_client *c, const call_plan *p) {
    if (c->shard_count == 0) return UINT32_MAX;
    if (p->routing == CALL_ROUTE_KEY) {
        return weft_shard_for_hash(weft_partition_hash(p->ns, p->workflow_id), c->shard_count);
    }
    if (p->routing == CALL_ROUTE_SHARD && p->token_shard < c->shard_count) return p->token_shard;
    return UINT32_MAX;
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
        call_set_token(c, p, r->complete_wft.task_token);
        call_fill_identity(c, &r->complete_wft.identity);
        return 0;
    case WEFT_MSG_FAIL_WORKFLOW_TASK:
        call_set_token(c, p, r->fail_wft.task_token);
        call_fill_identity(c, &r->fail_wft.identity);
        return 0;
    case WEFT_MSG_COMPLETE_ACTIVITY:
    case WEFT_MSG_FAIL_ACTIVITY:
    case WEFT_MSG_HEARTBEAT_ACTIVITY:
        call_set_token(c, p, r->activity.task_token);
        call_fill_identity(c, &r->activity.identity);
        return 0;
    case WEFT_MSG_REGISTER_NAMESPACE:
        p->routing = CALL_ROUTE_SHARD;
        p->token_shard = WEFT_NAMESPACE_REGISTRY_SHARD;
        return call_fill_request_id(p, &r->register_ns.request_id, err);
    case WEFT_MSG_DESCRIBE_NAMESPACE:
    case WEFT_MSG_LIST_NAMESPACES:
        p->routing = CALL_ROUTE_SHARD;
        p->token_shard = WEFT_NAMESPACE_REGISTRY_SHARD;
        return 0;
    default:
        return 0; /* list, count, cluster status: no key, nothing to fill */
    }
}

/* Picks the node for the next attempt: the pinned node; else the shard leader when known and
 * not the node that just failed; else the preferred node (moving past a node that failed; the
 * next one names the leader). Returns UINT32_MAX only for a pinned node the client does not
 * know. */
static uint32_t call_route(weft_client *c, const call_plan *p, uint32_t failed_node) {
    pthread_mutex_lock(&c->mu);
    WEFT_ASSERT(c->nodes_count > 0);
    uint32_t idx = UINT32_MAX;
    if (p->routing == CALL_ROUTE_NODE) {
        idx = client_node_by_id(c, p->pinned_node);
        pthread_mutex_unlock(&c->mu);
        return idx;
    }
    uint32_t shard = call_shard(c, p);
    if (shard != UINT32_MAX) {
        idx = client_node_by_id(c, c->shard_leaders[shard]);
        if (idx == failed_node) idx = UINT32_MAX;
    }
    if (idx == UINT32_MAX) {
        c->preferred_node = client_node_canonical(c, c->preferred_node);
        for (uint32_t k = 1; k < c->nodes_count && c->preferred_node == failed_node; k++) {
            c->preferred_node = client_node_canonical(c, (failed_node + k) % c->nodes_count);
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
    WEFT_ASSERT(p->routing != CALL_ROUTE_NODE);
    pthread_mutex_lock(&c->mu);
    uint32_t idx = UINT32_MAX;
    if (o->leader_address[0] != '\0') idx = client_node_add(c, o->leader_address, o->leader_hint);
    if (idx == UINT32_MAX) idx = client_node_by_id(c, o->leader_hint);
    uint32_t shard = call_shard(c, p);
    if (shard != UINT32_MAX && o->leader_hint != 0) c->shard_leaders[shard] = o->leader_hint;
    pthread_mutex_unlock(&c->mu);
    return idx;
}

/* The pause before retry `attempt` (1-based): exponential, capped, with jitter of up to half so
 * that many clients retrying after one failure do not arrive together. */
static uint64_t call_backoff_ms(weft_client *c, uint32_t attempt) {
    WEFT_ASSERT(attempt >= 1);
    uint64_t delay = (uint64_t)c->backoff_initial_ms << WEFT_MIN(attempt - 1, 20u);
    delay = WEFT_MIN(delay, (uint64_t)c->backoff_max_ms);
    pthread_mutex_lock(&c->mu);
    uint64_t jitter = client_rand(c) % (delay / 2 + 1);
    pthread_mutex_unlock(&c->mu);
    return delay - delay / 2 + jitter;
}

static void call_sleep_ms(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Pauses before retry `attempt` unless the pause would end past the call's deadline; false
 * then, and the call gives up. */
static bool call_backoff(weft_client *c, uint32_t attempt, uint64_t deadline_ms) {
    uint64_t delay = call_backoff_ms(c, attempt);
    if (weft_mono_ms() + delay >= deadline_ms) return false;
    call_sleep_ms(delay);
    return true;
}

/* Whether a failed attempt may be sent again. A request that never left the client, or that a
 * node refused without acting on (NOT_LEADER, or UNAVAILABLE in a reply), is always safe; a
 * request whose fate is unknown (lost connection after sending, timeout) only when idempotent. */
static bool call_retryable(const call_plan *p, int rc, const client_outcome *o) {
    const weft_op *op = p->op;
    WEFT_ASSERT(p->routing != CALL_ROUTE_NODE); /* pinned calls have their own rule */
    if (rc == -WEFT_E_NOT_LEADER) return true;
    if (rc == -WEFT_E_UNAVAILABLE && (!o->sent || !o->conn_broken)) return true;
    if (rc == -WEFT_E_UNAVAILABLE || rc == -WEFT_E_DEADLINE_EXCEEDED) return op->idempotent;
    return false;
}

/* One attempt on node `node`, waiting for its reply no longer than the call timeout, nor past
 * the call's deadline (plus the long-poll wait the request asks for). */
static int call_attempt(weft_client *c, const call_plan *p, uint32_t node, uint64_t deadline_ms,
                        const char *body, size_t body_len, void *resp, weft_response *holder,
                        client_outcome *o, weft_err *err) {
    memset(o, 0, sizeof *o);
    client_conn *conn = NULL;
    int rc = client_pool_get(c, node, &conn, err);
    if (rc != 0) {
        o->no_conn = true; /* o->sent stays false: safe to retry anything */
        return rc;
    }
    uint64_t now_ms = weft_mono_ms();
    uint64_t left_ms = deadline_ms > now_ms ? deadline_ms - now_ms : 1u;
    uint64_t timeout_ms = WEFT_MIN((uint64_t)c->call_timeout_ms, left_ms) + p->wait_ms;
    rc = client_exchange(c, conn, p->op->msg_type, body, body_len, timeout_ms, p->op->resp_schema,
                         resp, holder, o, err);
    if (o->conn_broken) {
        client_pool_discard(conn);
        client_pool_drain(c, node);
    } else {
        client_pool_put(c, conn);
    }
    if (rc == 0 && p->routing == CALL_ROUTE_ANY) {
        pthread_mutex_lock(&c->mu);
        c->preferred_node = node;
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

/* Says why a call that may not retry any more stopped: the count or the deadline ran out
 * (nothing to say when retries are off). */
static void call_give_up(weft_client *c, const call_plan *p, uint32_t attempt, uint64_t start_ms,
                         weft_err *err) {
    if (c->retries_max == 0) return;
    weft_err_prefix(err, "%s gave up after %u retries in %llu ms (call deadline %u ms)",
                    p->op->name, attempt, (unsigned long long)(weft_mono_ms() - start_ms),
                    c->call_deadline_ms);
}

/* The retry loop around call_attempt. Every retry goes to another node than the one that just
 * failed, if the client knows another (call_route): a node that is down, hung or cut off from
 * its peers must not take every attempt while the others could answer. */
static int call_run(weft_client *c, const call_plan *p, const char *body, size_t body_len,
                    void *resp, weft_response *holder, weft_err *err) {
    WEFT_ASSERT(c != NULL && p != NULL && p->op != NULL);
    WEFT_ASSERT(body != NULL && body_len > 0 && holder != NULL);
    uint64_t start_ms = weft_mono_ms();
    uint64_t deadline_ms = start_ms + c->call_deadline_ms;
    uint32_t failed_node = UINT32_MAX;
    uint32_t next_node = UINT32_MAX;
    int rc = 0;
    for (uint32_t attempt = 0;; attempt++) {
        uint32_t node = next_node != UINT32_MAX ? next_node : call_route(c, p, failed_node);
        next_node = UINT32_MAX;
        if (node == UINT32_MAX) {
            WEFT_ASSERT(p->routing == CALL_ROUTE_NODE);
            rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "node_id",
                              "node %llu is not a node this client knows; pass an id that "
                              "weft_client_nodes lists",
                              (unsigned long long)p->pinned_node);
            break;
        }
        client_outcome o;
        rc = call_attempt(c, p, node, deadline_ms, body, body_len, resp, holder, &o, err);
        if (rc == 0) break;
        if (p->routing == CALL_ROUTE_NODE) {
            /* Pinned: the caller backs off. Only a pooled connection that turned out dead
             * before the request left is replaced, at once (the pool was drained). */
            bool stale = rc == -WEFT_E_UNAVAILABLE && !o.sent && !o.no_conn;
            if (stale && attempt == 0 && c->retries_max > 0) continue;
            break;
        }
        if (!call_retryable(p, rc, &o)) break;
        if (attempt >= c->retries_max || weft_mono_ms() >= deadline_ms) {
            call_give_up(c, p, attempt, start_ms, err);
            break;
        }
        if (rc == -WEFT_E_NOT_LEADER) {
            next_node = call_follow_leader(c, p, &o);
            if (next_node != UINT32_MAX && next_node != node && next_node != failed_node)
                continue; /* no backoff */
            next_node = UINT32_MAX;
            /* The hint names the node that just failed: a dead leader the others have not
             * given up on yet (they do after an election timeout). Back off, and keep asking
             * the other nodes until they name a new one. */
            if (failed_node != UINT32_MAX) {
                if (!call_backoff(c, attempt + 1, deadline_ms)) {
                    call_give_up(c, p, attempt, start_ms, err);
                    break;
                }
                continue;
            }
        }
        failed_node = node;
        if (!call_backoff(c, attempt + 1, deadline_ms)) {
            call_give_up(c, p, attempt, start_ms, err);
            break;
        }
    }
    return rc;
}

/* weft_client_call, pinned to node `pinned_node` unless it is 0. */
static int call_do(weft_client *c, uint32_t msg_type, uint64_t pinned_node, const void *req,
                   void *resp, weft_response *holder, weft_err *err) {
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
    if (pinned_node != 0) {
        p->routing = CALL_ROUTE_NODE; /* replaces whatever routing the op would have had */
        p->pinned_node = pinned_node;
    }
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

int weft_client_call(weft_client *c, uint32_t msg_type, const void *req, void *resp,
                     weft_response *holder, weft_err *err) {
    return call_do(c, msg_type, 0, req, resp, holder, err);
}

int client_call_on(weft_client *c, uint64_t node_id, uint32_t msg_type, const void *req, void *resp,
                   weft_response *holder, weft_err *err) {
    if (node_id == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "node_id",
                            "node_id 0 names no node; pass an id that weft_client_nodes lists");
    }
    return call_do(c, msg_type, node_id, req, resp, holder, err);
}
