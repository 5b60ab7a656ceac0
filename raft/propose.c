/* propose.c: the leader's write and read paths. Commands proposed while the group's previous
 * entry is in flight wait in its queue; the host's check handle appends them as one raft entry
 * (DESIGN section 5: batched per loop turn), split past WEFT_RAFT_BATCH_CMDS_MAX or
 * WEFT_RAFT_BATCH_BYTES_MAX, one entry at a time (WEFT_RAFT_ENTRIES_INFLIGHT_MAX explains
 * why). Linearizable reads ride on the next entry appended after they arrived, or on a barrier
 * when no command is waiting. Every callback runs exactly once. Also here: the new leader's
 * barrier (raft#220 mitigation) and leadership transfer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/log.h"
#include "host_impl.h"

/* ---- Answering proposers and readers ---- */

/* Runs one proposer's callback with an error reply. */
static void reply_fail(weft_propose_cb cb, void *data, const weft_err *err, uint64_t hint) {
    weft_reply r;
    memset(&r, 0, sizeof r);
    r.err = *err;
    r.leader_hint = hint;
    cb(data, &r);
    weft_reply_reset(&r);
}

/* Answers the first n queued proposals with `err`; none of them was appended. */
static void queue_fail(weft_group *g, uint32_t n, const weft_err *err, uint64_t hint) {
    for (uint32_t i = 0; i < n; i++) {
        proposal *p = g->queue_head;
        WEFT_ASSERT(p != NULL && g->queue_count > 0 && g->inflight_count > 0);
        g->queue_head = p->next;
        if (g->queue_head == NULL) g->queue_tail = NULL;
        g->queue_count--;
        g->inflight_count--;
        weft_propose_cb cb = p->cb;
        void *data = p->data;
        free(p->cmd);
        free(p);
        reply_fail(cb, data, err, hint);
    }
}

void group_queue_fail(weft_group *g, const char *why) {
    if (g->queue_count == 0) return;
    weft_err err;
    /* Never appended: safe to send elsewhere. */
    weft_err_set(&err, WEFT_E_NOT_LEADER, NULL,
                 "shard %u: this replica stopped leading (now %s) before the command was "
                 "appended; send it to the current leader",
                 g->id, why);
    queue_fail(g, g->queue_count, &err, group_leader_hint(g));
    WEFT_ASSERT(g->queue_count == 0 && g->queue_tail == NULL);
}

/* Answers a detached list of reads. */
static void reads_answer(read_waiter *w, int status) {
    while (w != NULL) {
        read_waiter *next = w->next;
        weft_barrier_cb cb = w->cb;
        void *data = w->data;
        free(w);
        cb(data, status);
        w = next;
    }
}

/* Detaches the reads queued so far: they ride on the entry about to be appended. */
static read_waiter *reads_take(weft_group *g) {
    read_waiter *w = g->reads_head;
    g->reads_head = g->reads_tail = NULL;
    g->reads_count = 0;
    return w;
}

void group_reads_fail(weft_group *g, int code) {
    WEFT_ASSERT(code < 0);
    reads_answer(reads_take(g), code);
}

/* An entry of ours finished (applied or failed): the next may go. */
static void entry_done(weft_group *g) {
    WEFT_ASSERT(g->entries_inflight > 0);
    g->entries_inflight--;
    if (g->queue_count > 0 || g->reads_count > 0) host_wake(g->h);
}

/* ---- Proposing ---- */

int weft_group_propose(weft_group *g, uint8_t *cmd, size_t cmd_len, weft_propose_cb cb,
                       void *data, weft_err *err) {
    WEFT_ASSERT(g != NULL && cb != NULL && (cmd != NULL || cmd_len == 0));
    if (g->role != WEFT_ROLE_LEADER_READY) {
        return weft_err_set(err, WEFT_E_NOT_LEADER, NULL,
                            "shard %u: this replica is %s, not a ready leader; the leader is "
                            "node %llu (0: unknown, retry shortly)",
                            g->id, weft_role_name(g->role),
                            (unsigned long long)group_leader_hint(g));
    }
    if (cmd_len > WEFT_RAFT_BATCH_BYTES_MAX) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                            "shard %u: a command of %zu bytes exceeds the entry limit "
                            "WEFT_RAFT_BATCH_BYTES_MAX (%u bytes); send smaller payloads",
                            g->id, cmd_len, WEFT_RAFT_BATCH_BYTES_MAX);
    }
    if (g->inflight_count >= WEFT_RAFT_INFLIGHT_CMDS_MAX) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                            "shard %u: %u commands in flight (WEFT_RAFT_INFLIGHT_CMDS_MAX); "
                            "retry after a short backoff",
                            g->id, g->inflight_count);
    }
    proposal *p = malloc(sizeof *p);
    if (p == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "shard %u: out of memory",
                            g->id);
    }
    *p = (proposal){.cmd = cmd, .cmd_len = cmd_len, .cb = cb, .data = data, .next = NULL};
    if (g->queue_tail) g->queue_tail->next = p;
    else g->queue_head = p;
    g->queue_tail = p;
    g->queue_count++;
    g->inflight_count++;
    WEFT_ASSERT(g->queue_count <= g->inflight_count);
    host_wake(g->h);
    return 0;
}

static void batch_reply_applied(batch_req *b, weft_applied *ap) {
    weft_err err;
    if (ap == NULL) {
        weft_err_set(&err, WEFT_E_INTERNAL, NULL,
                     "shard %u: the committed entry could not be decoded; see the server log",
                     b->g->id);
    }
    for (uint32_t i = 0; i < b->n; i++) {
        if (ap == NULL) {
            reply_fail(b->waiters[i].cb, b->waiters[i].data, &err, 0);
            continue;
        }
        weft_reply *r = &ap->replies[i];
        b->waiters[i].cb(b->waiters[i].data, r);
        weft_reply_reset(r);
    }
}

/* Answers every proposer of a batch with `err`, its reads with `read_code`, and frees it. */
static void batch_fail(batch_req *b, const weft_err *err, uint64_t hint, int read_code) {
    weft_group *g = b->g;
    WEFT_ASSERT(g->inflight_count >= b->n);
    g->inflight_count -= b->n;
    for (uint32_t i = 0; i < b->n; i++) reply_fail(b->waiters[i].cb, b->waiters[i].data, err, hint);
    reads_answer(b->reads, read_code);
    free(b);
}

static void batch_link(batch_req *b) {
    weft_group *g = b->g;
    WEFT_ASSERT(!b->appended);
    b->appended = true;
    b->next = NULL;
    b->prev = g->appended_tail;
    if (g->appended_tail != NULL) g->appended_tail->next = b;
    else g->appended_head = b;
    g->appended_tail = b;
}

static void batch_unlink(batch_req *b) {
    weft_group *g = b->g;
    WEFT_ASSERT(b->appended);
    if (b->prev != NULL) b->prev->next = b->next;
    else g->appended_head = b->next;
    if (b->next != NULL) b->next->prev = b->prev;
    else g->appended_tail = b->prev;
    b->appended = false;
}

bool weft_group_awaits_entry(weft_group *g, uint64_t index) {
    WEFT_ASSERT(g != NULL);
    /* What libraft 0.15 does before it calls a raft_apply's callback (replication.c,
     * getRequest): only a leader, and only for a request appended at that index. */
    if (!g->raft_open || raft_state(&g->raft) != RAFT_LEADER) return false;
    for (const batch_req *b = g->appended_head; b != NULL; b = b->next) {
        if (b->req.index == index) return true;
    }
    return false;
}

static void batch_apply_cb(struct raft_apply *req, int status, void *result) {
    batch_req *b = req->data;
    weft_group *g = b->g;
    WEFT_ASSERT(g->inflight_count >= b->n);
    batch_unlink(b);
    if (status != 0) {
        if (status == RAFT_IOERR || status == RAFT_NOSPACE) {
            /* raft#320: a leader whose write failed would reuse the index; restart it. */
            g->restart_wanted = true;
            host_wake(g->h);
        }
        weft_err err;
        /* Appended, so it may still commit under the next leader. */
        weft_err_set(&err, WEFT_E_UNAVAILABLE, NULL,
                     "shard %u: outcome unknown (%s); retry with the same request id", g->id,
                     raft_strerror(status));
        batch_fail(b, &err, 0, -WEFT_E_NOT_LEADER);
        entry_done(g);
        return;
    }
    weft_applied *ap = weft_fsm_adapter_claim(&g->adapter, result);
    WEFT_ASSERT(ap == NULL || (ap->n == b->n && ap->index == req->index));
    g->inflight_count -= b->n;
    batch_reply_applied(b, ap);
    weft_applied_free(ap);
    reads_answer(b->reads, 0);
    free(b);
    entry_done(g);
}

/* The longest queue prefix that fits one entry; cmds borrow the proposals' buffers. */
static uint32_t batch_take(weft_group *g, weft_bytes *cmds) {
    uint32_t n = 0;
    size_t bytes = 0;
    for (proposal *p = g->queue_head; p != NULL && n < WEFT_RAFT_BATCH_CMDS_MAX; p = p->next) {
        if (n > 0 && bytes + p->cmd_len > WEFT_RAFT_BATCH_BYTES_MAX) break;
        cmds[n].ptr = p->cmd;
        cmds[n].len = (uint32_t)p->cmd_len;
        bytes += p->cmd_len;
        n++;
    }
    WEFT_ASSERT(n >= 1 && n <= g->queue_count && bytes <= WEFT_RAFT_BATCH_BYTES_MAX);
    return n;
}

/* Pops n proposals, moving their callbacks into the batch; their bytes were encoded. */
static void batch_pop(weft_group *g, uint32_t n, batch_req *b) {
    for (uint32_t i = 0; i < n; i++) {
        proposal *p = g->queue_head;
        WEFT_ASSERT(p != NULL && g->queue_count > 0);
        g->queue_head = p->next;
        g->queue_count--;
        b->waiters[i] = (batch_waiter){.cb = p->cb, .data = p->data};
        free(p->cmd);
        free(p);
    }
    if (g->queue_head == NULL) g->queue_tail = NULL;
}

static uint64_t group_leader_time(weft_group *g) {
    uint64_t now = weft_wall_ms();
    /* The shard clock must not go backwards across our own entries (DESIGN section 9). */
    if (now < g->last_leader_time_ms) now = g->last_leader_time_ms;
    g->last_leader_time_ms = now;
    return now;
}

/* Appends one entry built from the head of the queue, carrying the waiting reads. */
static void group_append_batch(weft_group *g) {
    weft_err err;
    const char *why = g->h->stamp_check != NULL ? g->h->stamp_check(g->h->stamp_check_data) : NULL;
    if (why != NULL) {
        /* Never appended: the reads wait for a barrier, which carries no stamp. */
        weft_err_set(&err, WEFT_E_UNAVAILABLE, NULL,
                     "shard %u: this leader's wall clock may not stamp entries now (%s); retry",
                     g->id, why);
        queue_fail(g, g->queue_count, &err, 0);
        return;
    }
    weft_bytes *cmds = g->h->scratch;
    uint32_t n = batch_take(g, cmds);
    batch_req *b = malloc(sizeof *b + (size_t)n * sizeof b->waiters[0]);
    if (b == NULL) {
        weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                     "shard %u: out of memory building an entry; retry", g->id);
        queue_fail(g, n, &err, 0);
        return;
    }
    b->g = g;
    b->n = n;
    b->appended = false;
    b->req.data = b;
    void *buf = NULL;
    size_t len = 0;
    int rc = weft_batch_encode(group_leader_time(g), cmds, n, &buf, &len, raft_malloc);
    batch_pop(g, n, b);
    b->reads = reads_take(g);
    if (rc != 0) {
        weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                     "shard %u: cannot encode an entry of %u commands (%s); retry", g->id, n,
                     weft_error_name(rc));
        batch_fail(b, &err, 0, -WEFT_E_UNAVAILABLE);
        return;
    }
    struct raft_buffer rb = {.base = buf, .len = len};
    int rv = raft_apply(&g->raft, &b->req, &rb, 1, batch_apply_cb);
    if (rv == 0) {
        g->entries_inflight++;
        batch_link(b);
        return;
    }
    raft_free(buf); /* still ours when raft_apply fails (notes) */
    WEFT_LOGF(WEFT_LOG_WARN, g->id, "append of %u commands failed: %s", n, raft_strerror(rv));
    weft_err_set(&err, WEFT_E_NOT_LEADER, NULL,
                 "shard %u: the command could not be appended (%s); send it to the leader",
                 g->id, raft_strerror(rv));
    batch_fail(b, &err, group_leader_hint(g), -WEFT_E_NOT_LEADER);
}

static void read_barrier_cb(struct raft_barrier *req, int status) {
    read_barrier *rb = req->data;
    weft_group *g = rb->g;
    int code = 0;
    if (status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER) code = -WEFT_E_NOT_LEADER;
    else if (status != 0) code = -WEFT_E_UNAVAILABLE;
    reads_answer(rb->reads, code);
    free(rb);
    entry_done(g);
}

/* No command waits, but reads do: a barrier entry answers them. */
static void group_append_read_barrier(weft_group *g) {
    read_barrier *rb = malloc(sizeof *rb);
    if (rb == NULL) {
        group_reads_fail(g, -WEFT_E_RESOURCE_EXHAUSTED);
        return;
    }
    rb->g = g;
    rb->req.data = rb;
    rb->reads = reads_take(g);
    int rv = raft_barrier(&g->raft, &rb->req, read_barrier_cb);
    if (rv != 0) {
        WEFT_LOGF(WEFT_LOG_WARN, g->id, "read barrier failed: %s", raft_strerror(rv));
        reads_answer(rb->reads, -WEFT_E_NOT_LEADER);
        free(rb);
        return;
    }
    g->entries_inflight++;
}

void group_flush(weft_group *g) {
    if (g->queue_count == 0 && g->reads_count == 0) return;
    /* The role setter empties the queues when leadership ends, so queues mean ready. */
    WEFT_ASSERT(g->role == WEFT_ROLE_LEADER_READY && g->life == GROUP_RUNNING);
    if (g->entries_inflight >= WEFT_RAFT_ENTRIES_INFLIGHT_MAX) return; /* entry_done wakes us */
    /* libraft 0.15 refuses raft_apply and raft_barrier (RAFT_NOTLEADER) while a leadership
     * transfer is under way. The queue waits instead: it fails over to the new leader with
     * NOT_LEADER if the transfer succeeds, and is appended here if it expires (one election
     * timeout at most); transfer_cb wakes us. */
    if (g->transfer_pending) return;
    if (g->queue_count > 0) {
        group_append_batch(g);
    } else {
        group_append_read_barrier(g);
    }
    /* A failed append answered its callers at once; what remains waits for another turn. */
    if (g->entries_inflight == 0 && (g->queue_count > 0 || g->reads_count > 0)) {
        host_wake(g->h);
    }
}

int weft_group_barrier(weft_group *g, weft_barrier_cb cb, void *data, weft_err *err) {
    WEFT_ASSERT(g != NULL && cb != NULL);
    if (g->role != WEFT_ROLE_LEADER_READY) {
        return weft_err_set(err, WEFT_E_NOT_LEADER, NULL,
                            "shard %u: this replica is %s, not a ready leader; read from node "
                            "%llu (0: unknown) or ask for consistency=stale",
                            g->id, weft_role_name(g->role),
                            (unsigned long long)group_leader_hint(g));
    }
    if (g->reads_count >= WEFT_RAFT_INFLIGHT_CMDS_MAX) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                            "shard %u: %u reads wait for a barrier; retry after a short backoff",
                            g->id, g->reads_count);
    }
    read_waiter *w = malloc(sizeof *w);
    if (w == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "shard %u: out of memory",
                            g->id);
    }
    *w = (read_waiter){.cb = cb, .data = data, .next = NULL};
    if (g->reads_tail) g->reads_tail->next = w;
    else g->reads_head = w;
    g->reads_tail = w;
    g->reads_count++;
    host_wake(g->h);
    return 0;
}

/* ---- The new leader's barrier (raft#220 mitigation) ---- */

static void leader_barrier_cb(struct raft_barrier *req, int status) {
    weft_group *g = req->data;
    WEFT_ASSERT(g->barrier_pending && req == &g->leader_barrier);
    g->barrier_pending = false;
    if (status != 0) {
        WEFT_LOGF(WEFT_LOG_INFO, g->id, "leader barrier failed: %s (%d)", raft_strerror(status),
                  status);
        /* libraft fails a stepping-down leader's requests with RAFT_LEADERSHIPLOST from inside
         * the step-down, while raft_state() still says LEADER and the term is unchanged (a
         * leader that lost contact with a majority: tick's check-quorum; notes). That is no
         * storage failure: the next poll sees the follower. */
        bool lost = status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER ||
                    status == RAFT_SHUTDOWN;
        if (!lost && g->raft_open && raft_state(&g->raft) == RAFT_LEADER &&
            g->raft.current_term == g->leader_term && !g->restart_wanted) {
            /* Still leading in the same term, so the entry itself failed (a disk write, with
             * raft_uv's own error codes): proposing it again each turn only spins (a full
             * disk did, tens of thousands of times a second). raft#320: restart instead. */
            snprintf(g->restart_why, sizeof g->restart_why,
                     "the new leader's barrier failed (%s, %d) while it still leads, in %s",
                     raft_strerror(status), status, g->dir);
            g->restart_wanted = true;
            host_wake(g->h);
        }
        return;
    }
    /* Applied means every entry of earlier terms is applied too. */
    if (g->raft_open && raft_state(&g->raft) == RAFT_LEADER &&
        g->raft.current_term == g->leader_term) {
        g->barrier_applied = true;
        host_wake(g->h);
    }
}

bool group_leader_barrier(weft_group *g) {
    WEFT_ASSERT(g->role == WEFT_ROLE_LEADER_PENDING && !g->barrier_pending);
    /* Nothing of ours is in flight before READY, so this is the only entry (1996d32). */
    WEFT_ASSERT(g->entries_inflight == 0);
    g->leader_barrier.data = g;
    int rv = raft_barrier(&g->raft, &g->leader_barrier, leader_barrier_cb);
    if (rv != 0) {
        /* E.g. a transfer in progress: the next turn tries again. */
        WEFT_LOGF(WEFT_LOG_INFO, g->id, "leader barrier not proposed: %s", raft_strerror(rv));
        return false;
    }
    g->barrier_pending = true;
    return true;
}

/* ---- Leadership transfer ---- */

static void transfer_cb(struct raft_transfer *req) {
    weft_group *g = req->data;
    WEFT_ASSERT(g->transfer_pending);
    g->transfer_pending = false;
    WEFT_LOGF(WEFT_LOG_INFO, g->id, "leadership transfer to %llu finished; leader is now %llu",
              (unsigned long long)req->id, (unsigned long long)group_leader_hint(g));
    host_wake(g->h);
}

int weft_group_transfer(weft_group *g, uint64_t to_id, weft_err *err) {
    WEFT_ASSERT(g != NULL);
    if (g->role != WEFT_ROLE_LEADER_READY && g->role != WEFT_ROLE_LEADER_PENDING) {
        return weft_err_set(err, WEFT_E_NOT_LEADER, NULL,
                            "shard %u: only the leader can transfer leadership", g->id);
    }
    if (g->transfer_pending) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, NULL,
                            "shard %u: a leadership transfer is already under way", g->id);
    }
    g->transfer.data = g;
    /* Set first: nothing promises the callback never runs inside raft_transfer. */
    g->transfer_pending = true;
    int rv = raft_transfer(&g->raft, &g->transfer, to_id, transfer_cb);
    if (rv != 0) g->transfer_pending = false;
    if (rv == RAFT_BADID || rv == RAFT_NOTFOUND) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "to_id",
                            "shard %u: node %llu is not a voting follower of this group (%s)",
                            g->id, (unsigned long long)to_id, raft_strerror(rv));
    }
    if (rv != 0) {
        return weft_err_set(err, WEFT_E_NOT_LEADER, NULL, "shard %u: transfer refused: %s",
                            g->id, raft_strerror(rv));
    }
    return 0;
}
