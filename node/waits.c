/* waits.c: read waiters keyed by (replica, run key). Wake-ups are recorded as (shard, run key)
 * pairs rather than request pointers, so a request that finishes before the pump runs leaves
 * nothing dangling behind. */
#include "waits.h"

#include <stdlib.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "reads.h"
#include "replica.h"
#include "req.h"

static uint32_t waits_bucket(uint64_t run_key) {
    return (uint32_t)((run_key * 0x9E3779B97F4A7C15ull) >> 58) % WEFTD_READ_WAIT_BUCKETS;
}

void weft_waits_add(weft_replica *rep, weft_req *r, uint64_t run_key) {
    WEFT_ASSERT(r->wait == WEFT_REQ_WAIT_NONE && !r->finished);
    WEFT_ASSERT(r->shard == rep->shard_id);
    uint32_t b = waits_bucket(run_key);
    r->run_key = run_key;
    r->wait = WEFT_REQ_WAIT_READ;
    r->wait_prev = NULL;
    r->wait_next = rep->waits[b];
    if (rep->waits[b] != NULL) rep->waits[b]->wait_prev = r;
    rep->waits[b] = r;
    rep->waits_count++;
}

void weft_waits_remove(weft_req *r) {
    WEFT_ASSERT(r->wait == WEFT_REQ_WAIT_READ);
    weft_replica *rep = &r->node->replicas[r->shard];
    WEFT_ASSERT(rep->waits_count > 0);
    uint32_t b = waits_bucket(r->run_key);
    if (r->wait_prev != NULL) {
        r->wait_prev->wait_next = r->wait_next;
    } else {
        WEFT_ASSERT(rep->waits[b] == r);
        rep->waits[b] = r->wait_next;
    }
    if (r->wait_next != NULL) r->wait_next->wait_prev = r->wait_prev;
    r->wait_prev = r->wait_next = NULL;
    r->wait = WEFT_REQ_WAIT_NONE;
    rep->waits_count--;
}

static bool waits_has(const weft_replica *rep, uint64_t run_key) {
    for (const weft_req *r = rep->waits[waits_bucket(run_key)]; r != NULL; r = r->wait_next) {
        if (r->run_key == run_key) return true;
    }
    return false;
}

void weft_waits_run_changed(weft_replica *rep, uint64_t run_key, bool closed) {
    weft_node *n = rep->node;
    if (rep->waits_count == 0 || !waits_has(rep, run_key)) return;
    if (n->wakes_count > 0) {
        weft_wake *last = &n->wakes[n->wakes_count - 1];
        if (last->shard == rep->shard_id && last->run_key == run_key) {
            last->closed |= closed;
            return;
        }
    }
    if (n->wakes_count == n->wakes_cap) {
        uint32_t cap = n->wakes_cap ? n->wakes_cap * 2 : 64;
        weft_wake *grown = realloc(n->wakes, cap * sizeof *grown);
        WEFT_ASSERT(grown != NULL);
        n->wakes = grown;
        n->wakes_cap = cap;
    }
    n->wakes[n->wakes_count++] =
        (weft_wake){.shard = rep->shard_id, .run_key = run_key, .closed = closed};
    weft_node_pump_schedule(n);
}

/* Re-runs every read waiting on (rep, run_key) that the change concerns: a GetResult only
 * once the run closed (an open run's result read would park again, after decoding the request
 * and loading the run once per event: a seventh of weftd's instructions per workflow, issue
 * 11), a GetHistory on any change. A re-run may finish the request (taking it out of the
 * list) or leave it parked; either way the walk restarts from a saved successor. */
static void waits_wake(weft_replica *rep, uint64_t run_key, bool closed) {
    weft_req *r = rep->waits[waits_bucket(run_key)];
    while (r != NULL) {
        weft_req *next = r->wait_next;
        bool concerned = closed || r->op->msg_type != WEFT_MSG_GET_RESULT;
        if (r->run_key == run_key && concerned) {
            weft_waits_remove(r);
            weft_reads_rerun(r, false);
        }
        r = next;
    }
}

void weft_waits_pump(weft_node *n) {
    /* Wakes queued while pumping (a re-run that waits again registers nothing new) are taken
     * by index, so the array may grow underneath. */
    for (uint32_t i = 0; i < n->wakes_count; i++) {
        weft_wake w = n->wakes[i];
        WEFT_ASSERT(w.shard < n->replicas_count);
        waits_wake(&n->replicas[w.shard], w.run_key, w.closed);
    }
    n->wakes_count = 0;
}

void weft_waits_fail_linearizable(weft_replica *rep) {
    for (uint32_t b = 0; b < WEFTD_READ_WAIT_BUCKETS; b++) {
        weft_req *r = rep->waits[b];
        while (r != NULL) {
            weft_req *next = r->wait_next;
            if (!r->stale) {
                weft_waits_remove(r);
                weft_err err = {0};
                uint64_t hint = 0;
                weft_replica_check_leader(rep, &err, &hint);
                weft_req_err(r, &err, hint);
            }
            r = next;
        }
    }
}

void weft_waits_answer_all(weft_node *n) {
    for (uint32_t i = 0; i < n->replicas_count; i++) {
        weft_replica *rep = &n->replicas[i];
        for (uint32_t b = 0; b < WEFTD_READ_WAIT_BUCKETS; b++) {
            while (rep->waits[b] != NULL) {
                weft_req *r = rep->waits[b];
                weft_waits_remove(r);
                weft_reads_rerun(r, true);
            }
        }
    }
}
