/* poll.c: task long-polls (DESIGN sections 7 and 8). A popped task becomes a Started command
 * (WFT_STARTED or ACT_STARTED), and the poller is answered with that command's apply reply,
 * which carries the task: a task leaves the node only after its Started entry has committed and
 * applied, so an attempt is dispatched at most once, whatever happens to the leader. A task
 * popped for a poller that vanished goes back: unpopped if nothing was proposed yet,
 * TASK_REQUEUE once its Started has committed. */
#include "poll.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "cluster.h"
#include "ids.h"
#include "namespaces.h"
#include "ops.h"
#include "replica.h"
#include "req.h"

/* Distinct (queue, kind) pairs remembered as empty during one pass over a bucket. */
#define POLL_EXHAUSTED_MAX 8u

typedef enum poll_outcome {
    POLL_HANDED, /* the request was answered, or its WFT_STARTED is in flight */
    POLL_STALE,  /* the popped task was no longer current and was dropped: pop again */
    POLL_SKIP,   /* this shard cannot dispatch now (leadership moving, a limit): task unpopped */
} poll_outcome;

static uint32_t poll_bucket_of(const char *queue, uint8_t kind) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)queue; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ kind) * 1099511628211ull;
    return (uint32_t)(h % WEFTD_POLL_BUCKETS);
}

static void poll_answer_empty(weft_req *r) {
    uint8_t *body = malloc(1);
    WEFT_ASSERT(body != NULL);
    body[0] = 0x80; /* an empty map: no task_token means no task */
    weft_req_ok(r, body, 1);
}

static void poll_timeout_cb(uv_timer_t *t) {
    weft_req *r = t->data;
    if (r->wait != WEFT_REQ_WAIT_POLL) return;
    weft_poll_remove(r);
    poll_answer_empty(r);
}

/* Parks `r` at the tail of its bucket with `timeout_ms` left. */
static void poll_park(weft_req *r, uint64_t timeout_ms) {
    WEFT_ASSERT(r->wait == WEFT_REQ_WAIT_NONE && !r->finished);
    weft_poll_bucket *b = &r->node->pollers.buckets[r->poll_bucket];
    r->wait = WEFT_REQ_WAIT_POLL;
    r->wait_next = NULL;
    r->wait_prev = b->tail;
    if (b->tail != NULL) {
        b->tail->wait_next = r;
    } else {
        b->head = r;
    }
    b->tail = r;
    r->node->pollers.waiting_count++;
    weft_req_timer_start(r, timeout_ms, poll_timeout_cb);
}

void weft_poll_remove(weft_req *r) {
    WEFT_ASSERT(r->wait == WEFT_REQ_WAIT_POLL);
    weft_pollers *p = &r->node->pollers;
    weft_poll_bucket *b = &p->buckets[r->poll_bucket];
    WEFT_ASSERT(p->waiting_count > 0);
    if (r->wait_prev != NULL)
        r->wait_prev->wait_next = r->wait_next;
    else
        b->head = r->wait_next;
    if (r->wait_next != NULL)
        r->wait_next->wait_prev = r->wait_prev;
    else
        b->tail = r->wait_prev;
    r->wait_prev = r->wait_next = NULL;
    r->wait = WEFT_REQ_WAIT_NONE;
    p->waiting_count--;
    weft_req_timer_stop(r);
}

static void poll_unpark(weft_req *r) {
    if (r->wait == WEFT_REQ_WAIT_POLL) weft_poll_remove(r);
}

/* ---- handing a task over ---- */

/* A Started entry for a popped task failed, and the poller is not handed the task.
 * - NOT_FOUND: the entry applied and found the task stale (started by another pop, canceled,
 *   closed): it is gone.
 * - Leadership lost (this replica no longer ready): the entry may be lost, or may still commit
 *   under the next leader. Lost: the ready row still stands, and the next leader's FIFOs, rebuilt
 *   from the ready table, hand the attempt out. Committed: the attempt is started with no worker
 *   holding it, and its start-to-close timeout (every activity has one; a workflow task has its
 *   task timeout) makes the next attempt. Putting it back in a queue here could hand out an
 *   attempt whose Started commits later, which is the double dispatch this file exists to
 *   prevent; the timeout is the price of at most once.
 * - Anything else while this replica still leads (the entry may not have applied, and then
 *   nothing but this FIFO would hand the task out again): back to the head of its queue. If the
 *   entry applied after all, the next pop finds its ready row gone and drops it (dispatch checks
 *   the row), and a second Started of the same attempt is refused as stale at apply. */
static void poll_started_failed(weft_replica *rep, const weft_ready_task *t,
                                const weft_reply *reply) {
    WEFT_ASSERT(reply->err.code != 0);
    WEFT_ASSERT(t->seq > 0);
    WEFT_LOGF(WEFT_LOG_DEBUG, rep->shard_id, "%s task on %s not started: %s",
              t->kind == WEFT_TASK_KIND_ACTIVITY ? "activity" : "workflow", t->task_queue,
              reply->err.message);
    if (reply->err.code == WEFT_E_NOT_FOUND || !weft_replica_ready(rep)) return;
    weft_shard_dispatch_unpop(rep->shard, t);
}

/* Requeue proposals: the callback owns this. */
typedef struct poll_proposal {
    weft_replica *rep; /* the shard's replica */
} poll_proposal;

static void poll_requeue_cb(void *data, weft_reply *reply) {
    poll_proposal *p = data;
    if (reply->err.code != 0) {
        WEFT_LOGF(WEFT_LOG_DEBUG, p->rep->shard_id, "requeue not applied: %s", reply->err.message);
    }
    free(p);
    weft_reply_reset(reply);
}

/* A popped task this shard cannot hand over now goes back to the head of its queue, and the
 * poll looks at the other shards (or parks) instead of failing: leadership churn must not
 * reach pollers as errors. */
static poll_outcome poll_skip(weft_replica *rep, const weft_ready_task *t, const weft_err *err) {
    weft_shard_dispatch_unpop(rep->shard, t);
    weft_log(WEFT_LOG_WARN, rep->shard_id, "task on queue %s not dispatched: %s", t->task_queue,
             err->message);
    return POLL_SKIP;
}

static void poll_started_cb(void *data, weft_reply *reply);

/* Builds the Started command of a popped task: ACT_STARTED, or WFT_STARTED with a fresh poll id
 * (its replay answers like the first). */
static int poll_started_cmd(weft_req *r, weft_replica *rep, const weft_ready_task *t, uint8_t **cmd,
                            size_t *cmd_len, weft_err *err) {
    if (t->kind == WEFT_TASK_KIND_ACTIVITY) {
        return weft_shard_activity_dispatch(rep->shard, t, weft_str_c(r->identity), cmd, cmd_len,
                                            err);
    }
    char poll_id[WEFTD_ID_HEX_BYTES + 1];
    if (weft_id_random_hex(poll_id, sizeof poll_id) != 0) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "", "cannot generate a poll id");
    }
    return weft_shard_workflow_dispatch(rep->shard, t, weft_str_c(r->identity),
                                        weft_str_c(r->polled_queue), weft_str_c(poll_id), cmd,
                                        cmd_len, err);
}

/* Proposes the popped task's Started entry. The poll waits for its apply (poll_started_cb) and
 * is answered with the task only then; it is no longer parked meanwhile, so no other task is
 * handed to it. */
static poll_outcome poll_give(weft_req *r, weft_replica *rep, const weft_ready_task *t) {
    WEFT_ASSERT(t->kind == r->task_kind && !r->finished);
    uint8_t *cmd = NULL;
    size_t cmd_len = 0;
    weft_err err = {0};
    int rc = poll_started_cmd(r, rep, t, &cmd, &cmd_len, &err);
    if (rc == -WEFT_E_NOT_FOUND) return POLL_STALE;
    r->popped = *t;
    if (rc == 0) rc = weft_replica_propose(rep, cmd, cmd_len, poll_started_cb, r, &err);
    if (rc != 0) return poll_skip(rep, t, &err); /* never appended: it goes back */
    poll_unpark(r);
    r->shard = rep->shard_id;
    r->async_pending++;
    return POLL_HANDED;
}

/* Tries every shard this node leads, starting at the round-robin cursor. Returns true when the
 * request was handed a task (its Started entry is in flight). */
static bool poll_try(weft_req *r) {
    weft_node *n = r->node;
    uint32_t start = n->pollers.rr_next_shard++ % n->replicas_count;
    weft_str queue = weft_str_c(r->task_queue);
    for (uint32_t k = 0; k < n->replicas_count; k++) {
        weft_replica *rep = &n->replicas[(start + k) % n->replicas_count];
        weft_ready_task t;
        weft_replica_notice_failure(rep);
        while (weft_replica_ready(rep) &&
               weft_shard_dispatch_pop(rep->shard, queue, r->task_kind, &t)) {
            poll_outcome o = poll_give(r, rep, &t);
            if (o == POLL_HANDED) return true;
            if (o == POLL_SKIP) break;
        }
    }
    return false;
}

/* The poller of a committed Started vanished before its answer: nobody holds the attempt, so it
 * goes back on its queue (TASK_REQUEUE) instead of waiting for its timeout. `body` is the apply
 * reply (the poll response) this node's shard produced. */
static void poll_requeue(weft_replica *rep, const uint8_t *body, size_t len) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    weft_bytes token = {0};
    if (msgpack_unpack_next(&up, (const char *)body, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &up.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type == MSGPACK_OBJECT_STR && v->type == MSGPACK_OBJECT_BIN &&
                weft_str_eq_c((weft_str){k->via.str.ptr, k->via.str.size}, "task_token")) {
                token = (weft_bytes){(const uint8_t *)v->via.bin.ptr, v->via.bin.size};
            }
        }
    }
    uint8_t *cmd = NULL;
    size_t cmd_len = 0;
    weft_err err = {0};
    weft_shard_cmd c = {.type = WEFT_SC_TASK_REQUEUE, .task_token = token};
    poll_proposal *p = calloc(1, sizeof *p);
    WEFT_ASSERT(p != NULL);
    p->rep = rep;
    if (token.len > 0 && weft_schema_encode_buf(&weft_shard_cmd_schema, &c, &cmd, &cmd_len) == 0 &&
        weft_replica_propose(rep, cmd, cmd_len, poll_requeue_cb, p, &err) == 0) {
        WEFT_LOGF(WEFT_LOG_DEBUG, rep->shard_id, "poller vanished; task requeued");
        p = NULL;
    }
    free(p);
    msgpack_unpacked_destroy(&up);
}

/* The popped task's Started entry applied (the reply is the poll response) or failed. */
static void poll_started_cb(void *data, weft_reply *reply) {
    weft_req *r = data;
    WEFT_ASSERT(r->async_pending > 0);
    r->async_pending--;
    weft_replica *rep = &r->node->replicas[r->shard];
    WEFT_ASSERT(r->popped.kind == r->task_kind);
    if (reply->err.code == 0) {
        if (r->conn == NULL && reply->body != NULL) poll_requeue(rep, reply->body, reply->body_len);
        weft_req_reply(r, reply);
        return;
    }
    /* The task was stale when applied, or leadership moved: look for another one. */
    poll_started_failed(rep, &r->popped, reply);
    weft_reply_reset(reply);
    if (r->conn == NULL || !weft_node_serving(r->node)) {
        poll_answer_empty(r);
        return;
    }
    if (poll_try(r)) return;
    uint64_t now = weft_mono_ms();
    if (r->deadline_mono_ms <= now) {
        poll_answer_empty(r);
        return;
    }
    poll_park(r, r->deadline_mono_ms - now);
}

/* ---- entry points ---- */

static char *poll_strdup(weft_str s) {
    char *out = malloc((size_t)s.len + 1);
    WEFT_ASSERT(out != NULL);
    return weft_str_copy(out, (size_t)s.len + 1, s);
}

/* The namespace check (namespaces.h) is done: try the FIFO, or park until the deadline. */
static void poll_checked(weft_req *r, const weft_err *ns_err) {
    if (ns_err != NULL) {
        weft_req_err(r, ns_err, 0);
        return;
    }
    if (weft_cluster_cut_off(r->node)) {
        weft_err err = {0};
        weft_cluster_cut_off_err(r->node, &err);
        weft_req_err(r, &err, 0);
        return;
    }
    /* A poll of a registered namespace: its queue's pollers list it (DescribeTaskQueue). */
    weft_pollseen_note(&r->node->pollseen, r->task_queue, r->task_kind, r->identity,
                       weft_wall_ms());
    uint64_t now = weft_mono_ms();
    uint64_t timeout_ms = r->deadline_mono_ms > now ? r->deadline_mono_ms - now : 1;
    if (poll_try(r)) return;
    poll_park(r, timeout_ms);
}

void weft_poll_start(weft_req *r) {
    weft_node *n = r->node;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_poll_req q;
    weft_err err = {0};
    int rc = weft_schema_decode_buf(&weft_poll_req_schema, r->body, r->body_len, &q, &up,
                                    &n->cfg.limits, &err);
    if (rc == 0 && q.task_queue.len == 0) {
        rc = weft_err_set(&err, WEFT_E_INVALID_ARGUMENT, "task_queue", "task_queue is required");
    }
    uint64_t timeout_ms = n->cfg.limits.poll_timeout_ms;
    if (rc == 0) {
        /* Queues are per namespace: waiters and FIFOs use the dispatch name (shard.h). */
        char name[WEFT_DISPATCH_QUEUE_BYTES_MAX];
        r->task_queue =
            poll_strdup(weft_dispatch_queue_name(q.namespace_, q.task_queue, name, sizeof name));
        r->polled_queue = poll_strdup(q.task_queue);
        r->identity = poll_strdup(q.identity);
        if (q.poll_timeout_ms > 0) timeout_ms = WEFT_MIN(q.poll_timeout_ms, timeout_ms);
        r->task_kind = r->op->msg_type == WEFT_MSG_POLL_WORKFLOW_TASK ? WEFT_TASK_KIND_WORKFLOW
                                                                      : WEFT_TASK_KIND_ACTIVITY;
        r->poll_bucket = poll_bucket_of(r->task_queue, r->task_kind);
        r->deadline_mono_ms = weft_mono_ms() + timeout_ms;
        /* A worker polling a mistyped namespace is told so, instead of waiting forever. */
        weft_namespaces_check(r, q.namespace_, poll_checked); /* copies the name */
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0) weft_req_err(r, &err, 0);
}

static void poll_mark_dirty(weft_pollers *p, uint32_t b) {
    if (p->dirty[b] || p->buckets[b].head == NULL) return;
    p->dirty[b] = true;
    WEFT_ASSERT(p->dirty_count < WEFTD_POLL_BUCKETS);
    p->dirty_list[p->dirty_count++] = b;
}

void weft_poll_task_ready(weft_node *n, const char *task_queue, uint8_t kind) {
    if (n->pollers.waiting_count == 0) return;
    poll_mark_dirty(&n->pollers, poll_bucket_of(task_queue, kind));
    if (n->pollers.dirty_count > 0) weft_node_pump_schedule(n);
}

void weft_poll_wake_all(weft_node *n) {
    if (n->pollers.waiting_count == 0) return;
    for (uint32_t b = 0; b < WEFTD_POLL_BUCKETS; b++)
        poll_mark_dirty(&n->pollers, b);
    weft_node_pump_schedule(n);
}

static bool poll_exhausted(char *const *queues, const uint8_t *kinds, uint32_t count,
                           const weft_req *r) {
    for (uint32_t i = 0; i < count; i++) {
        if (kinds[i] == r->task_kind && strcmp(queues[i], r->task_queue) == 0) return true;
    }
    return false;
}

/* Offers ready tasks to the bucket's parked polls, oldest first. A (queue, kind) that found
 * nothing is not tried again for later polls in the same pass. */
static void poll_serve_bucket(weft_node *n, uint32_t b) {
    char *queues[POLL_EXHAUSTED_MAX];
    uint8_t kinds[POLL_EXHAUSTED_MAX];
    uint32_t exhausted = 0;
    weft_req *r = n->pollers.buckets[b].head;
    while (r != NULL) {
        weft_req *next = r->wait_next;
        if (!poll_exhausted(queues, kinds, exhausted, r) && !poll_try(r) &&
            exhausted < POLL_EXHAUSTED_MAX) {
            queues[exhausted] = r->task_queue;
            kinds[exhausted++] = r->task_kind;
        }
        r = next;
    }
}

void weft_poll_pump(weft_node *n) {
    weft_pollers *p = &n->pollers;
    uint32_t list[WEFTD_POLL_BUCKETS];
    uint32_t count = p->dirty_count;
    memcpy(list, p->dirty_list, count * sizeof list[0]);
    p->dirty_count = 0;
    for (uint32_t i = 0; i < count; i++)
        p->dirty[list[i]] = false;
    for (uint32_t i = 0; i < count; i++)
        poll_serve_bucket(n, list[i]);
}

static void poll_cut_off_cb(uv_timer_t *t) {
    weft_node *n = t->data;
    if (n->pollers.waiting_count == 0 || n->state >= WEFT_NODE_CLOSING || !weft_cluster_cut_off(n))
        return;
    weft_err err = {0};
    weft_cluster_cut_off_err(n, &err);
    uint64_t answered = 0;
    for (uint32_t b = 0; b < WEFTD_POLL_BUCKETS; b++) {
        weft_poll_bucket *bk = &n->pollers.buckets[b];
        while (bk->head != NULL) {
            weft_req *r = bk->head;
            weft_poll_remove(r);
            weft_req_err(r, &err, 0);
            answered++;
        }
    }
    weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
             "cut off from its peers: %llu parked polls answered UNAVAILABLE, so that their "
             "workers poll the other nodes",
             (unsigned long long)answered);
}

void weft_poll_cut_off_start(weft_node *n) {
    const weft_cluster *cl = &n->cfg.cluster;
    if (cl->nodes_count < 2 || cl->replication_factor < 2) return; /* never cut off */
    uv_timer_start(&n->cut_off_timer, poll_cut_off_cb, WEFTD_POLL_CUT_OFF_CHECK_MS,
                   WEFTD_POLL_CUT_OFF_CHECK_MS);
}

void weft_poll_answer_all(weft_node *n) {
    for (uint32_t b = 0; b < WEFTD_POLL_BUCKETS; b++) {
        weft_poll_bucket *bk = &n->pollers.buckets[b];
        while (bk->head != NULL) {
            weft_req *r = bk->head;
            weft_poll_remove(r);
            poll_answer_empty(r);
        }
    }
}

void weft_poll_note_parked(weft_node *n, const char *task_queue) {
    if (n->pollers.waiting_count == 0) return;
    uint64_t now = weft_wall_ms();
    const uint8_t kinds[] = {WEFT_TASK_KIND_WORKFLOW, WEFT_TASK_KIND_ACTIVITY};
    for (unsigned k = 0; k < WEFT_ARRAY_LEN(kinds); k++) {
        for (weft_req *r = n->pollers.buckets[poll_bucket_of(task_queue, kinds[k])].head; r != NULL;
             r = r->wait_next) {
            if (r->task_kind == kinds[k] && strcmp(r->task_queue, task_queue) == 0)
                weft_pollseen_note(&n->pollseen, r->task_queue, r->task_kind, r->identity, now);
        }
    }
}
