/* taskqueue.c: DescribeTaskQueue (issue 10): who polled a task queue within
 * WEFTD_POLLERS_WINDOW_MS, on any node. Each node knows only the polls that reached it
 * (pollseen.h), and workers poll every node, so the node asked merges its own pollers with its
 * peers' (weft_forward_gather, as ClusterStatus does); a peer that does not answer in time is
 * left out. Newest poll first, at most WEFTD_POLLERS_LISTED_MAX. */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/limits.h"
#include "forward.h"
#include "ops.h"
#include "poll.h"
#include "req.h"

/* An answer lists at most WEFTD_POLLERS_LISTED_MAX pollers, each an identity of at most
 * WEFTD_POLLER_IDENTITY_BYTES_MAX bytes plus a kind, a time, a node id and the map's keys (under
 * 100 bytes): it must fit the smallest frame a client accepts by default, and a peer's answer
 * (its whole table at worst) must decode. */
_Static_assert((uint64_t)WEFTD_POLLERS_LISTED_MAX *(WEFTD_POLLER_IDENTITY_BYTES_MAX + 100u) <
                   WEFT_FRAME_BYTES_MAX_DEFAULT,
               "a DescribeTaskQueue answer fits one frame");
_Static_assert(WEFTD_POLLERS_MAX <= WEFT_DECODE_ARRAY_ITEMS_MAX,
               "a peer's pollers decode as one array");

/* The pollers being listed; entries borrow their strings (from the table or peers' answers). */
typedef struct taskq_list {
    weft_poller_info *items; /* malloc'd */
    uint32_t count, cap;     /* used, allocated */
    uint64_t node_id;        /* whose entries are being added */
    bool failed;             /* out of memory */
} taskq_list;

static void taskq_add(taskq_list *l, weft_poller_info p) {
    if (l->failed) return;
    if (l->count == l->cap) {
        uint32_t cap = l->cap == 0 ? 16u : l->cap * 2u;
        weft_poller_info *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL) {
            l->failed = true;
            return;
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = p;
}

static void taskq_add_seen(void *data, const weft_poller_seen *s) {
    taskq_list *l = data;
    taskq_add(l,
              (weft_poller_info){
                  .identity = weft_str_c(s->identity),
                  .kind = weft_str_c(s->kind == WEFT_TASK_KIND_ACTIVITY ? "activity" : "workflow"),
                  .last_poll_ms = s->last_poll_ms,
                  .node_id = l->node_id,
              });
}

static int taskq_newest_first(const void *a, const void *b) {
    const weft_poller_info *x = a, *y = b;
    if (x->last_poll_ms != y->last_poll_ms) return x->last_poll_ms < y->last_poll_ms ? 1 : -1;
    return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

/* Decodes the request into *q (borrowing r->body) and its dispatch name into `name`. */
static int taskq_decode(weft_req *r, weft_task_queue_req *q, msgpack_unpacked *up, char *name,
                        size_t cap, weft_err *err) {
    int rc = weft_schema_decode_buf(&weft_task_queue_req_schema, r->body, r->body_len, q, up,
                                    &r->node->cfg.limits, err);
    if (rc == 0 && q->task_queue.len == 0) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "task_queue",
                          "task_queue is required: name the task queue to describe");
    }
    if (rc == 0) weft_dispatch_queue_name(q->namespace_, q->task_queue, name, cap);
    return rc;
}

/* Answers with this node's pollers of the queue plus those the peers reported. */
static void taskq_answer(weft_req *r, const weft_gather_peer *peers, uint32_t peers_count) {
    weft_node *n = r->node;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_task_queue_req q = {0};
    weft_err err = {0};
    char name[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    int rc = taskq_decode(r, &q, &up, name, sizeof name, &err);
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        weft_req_err(r, &err, 0);
        return;
    }
    taskq_list l = {.node_id = n->datadir.node_id};
    weft_poll_note_parked(n, name);
    weft_pollseen_each(&n->pollseen, name, weft_wall_ms(), taskq_add_seen, &l);
    WEFT_ASSERT(peers_count <= WEFT_CLUSTER_NODES_MAX);
    msgpack_unpacked zones[WEFT_CLUSTER_NODES_MAX];
    for (uint32_t k = 0; k < peers_count; k++) {
        msgpack_unpacked_init(&zones[k]);
        weft_task_queue_resp resp = {0};
        if (!peers[k].answered ||
            weft_schema_decode_buf(&weft_task_queue_resp_schema, peers[k].body, peers[k].body_len,
                                   &resp, &zones[k], &n->cfg.limits, &err) != 0) {
            continue;
        }
        for (uint32_t i = 0; i < resp.pollers_count; i++) {
            /* A peer reports only its own pollers (it answers a forwarded request alone). */
            if (resp.pollers[i].node_id == peers[k].node_id) taskq_add(&l, resp.pollers[i]);
        }
    }
    uint8_t *body = NULL;
    size_t len = 0;
    if (l.count > 1) qsort(l.items, l.count, sizeof l.items[0], taskq_newest_first);
    weft_task_queue_resp out = {.pollers = l.items,
                                .pollers_count = WEFT_MIN(l.count, WEFTD_POLLERS_LISTED_MAX)};
    rc = l.failed ? -WEFT_E_RESOURCE_EXHAUSTED
                  : weft_schema_encode_buf(&weft_task_queue_resp_schema, &out, &body, &len);
    free(l.items);
    for (uint32_t k = 0; k < peers_count; k++)
        msgpack_unpacked_destroy(&zones[k]);
    if (rc != 0) {
        weft_req_fail(r, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
        return;
    }
    weft_req_ok(r, body, len);
}

void weft_taskqueue_describe(weft_req *r) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_task_queue_req q = {0};
    weft_err err = {0};
    char name[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    int rc = taskq_decode(r, &q, &up, name, sizeof name, &err);
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        weft_req_err(r, &err, 0); /* refused before any peer is asked */
        return;
    }
    if (!weft_forward_gather(r, taskq_answer)) taskq_answer(r, NULL, 0);
}
