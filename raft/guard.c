/* guard.c: the raft_io wrapper of guard.h. Every method forwards to the inner raft_io; only
 * recv (AppendEntries in) and send (AppendEntries results out) look at what passes. */
#include "guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"

static weft_io_guard *guard_of(struct raft_io *io) {
    weft_io_guard *g = io->impl;
    WEFT_ASSERT(g != NULL && &g->io == io);
    return g;
}

/* raft reports the io's errmsg after a failure: keep the inner one visible. */
static int guard_rv(weft_io_guard *g, int rv) {
    if (rv != 0) memcpy(g->io.errmsg, g->inner->errmsg, sizeof g->io.errmsg);
    return rv;
}

/* ---- Disk failures ---- */

/* Records a failure of the inner io's disk work and tells the host once (guard.h). */
static void guard_io_failed(weft_io_guard *g, int status, const char *op) {
    WEFT_ASSERT(g != NULL && op != NULL);
    if (status == 0 || status == RAFT_CANCELED) return; /* closing is not a failure */
    g->io_failures_count++;
    if (g->io_failure != 0) return;
    g->io_failure = status;
    char why[sizeof g->inner->errmsg + 96];
    snprintf(why, sizeof why, "raft %s failed: %s (%s)", op, raft_strerror(status),
             g->inner->errmsg[0] != '\0' ? g->inner->errmsg : "no detail from raft_uv");
    if (g->io_failed != NULL) g->io_failed(g->io_failed_data, status, why);
}

/* What a synchronous call returned: a disk failure is reported, then passed on as it was. */
static int guard_sync_rv(weft_io_guard *g, int rv, const char *op) {
    if (rv != 0) guard_io_failed(g, rv, op);
    return guard_rv(g, rv);
}

/* ---- What the follower has checked ---- */

static void guard_validate(weft_io_guard *g, raft_term term, raft_id leader, raft_index index) {
    if (term != g->valid_term || leader != g->valid_leader) {
        /* A new leader: nothing of its log is known until one of its requests is answered. */
        g->valid_term = term;
        g->valid_leader = leader;
        g->valid_index = 0;
    }
    if (index > g->valid_index) g->valid_index = index;
}

/* The highest index a successful result to `leader` in `term` may claim. */
static raft_index guard_result_limit(weft_io_guard *g, raft_id leader, raft_term term) {
    struct raft *r = g->io.data;
    WEFT_ASSERT(r != NULL);
    raft_index limit = 0;
    if (g->in_append && leader == g->append_from && term == g->append_term) {
        /* Answering the request being handled: exactly what it covered. */
        limit = g->append_covered;
        guard_validate(g, term, leader, limit);
        g->append_answered = true;
    } else if (term == g->valid_term && leader == g->valid_leader) {
        limit = g->valid_index;
    }
    /* Committed entries are the same everywhere once followers only commit what they
     * validated (the recv side below). */
    if (r->commit_index > limit) limit = r->commit_index;
    return limit;
}

/* ---- recv: cap leader_commit, remember what the request covers ---- */

static void guard_recv_cb(struct raft_io *inner, struct raft_message *msg) {
    weft_io_guard *g = inner->data;
    WEFT_ASSERT(g != NULL && g->inner == inner);
    if (g->recv_filter != NULL && !g->recv_filter(g->recv_filter_data, msg)) {
        /* Only a message that owns no buffers may be dropped here. */
        WEFT_ASSERT(msg->type == RAFT_IO_TIMEOUT_NOW);
        g->timeout_nows_dropped++;
        return;
    }
    if (msg->type != RAFT_IO_APPEND_ENTRIES) {
        g->recv_cb(&g->io, msg);
        return;
    }
    struct raft_append_entries *ae = &msg->append_entries;
    raft_index covered = ae->prev_log_index + ae->n_entries;
    if (ae->leader_commit > covered) {
        /* Figure 2: commitIndex = min(leaderCommit, index of last new entry). */
        ae->leader_commit = covered;
        g->commits_capped++;
    }
    WEFT_ASSERT(!g->in_append);
    g->in_append = true;
    g->append_from = msg->server_id;
    g->append_term = ae->term;
    g->append_covered = covered;
    g->append_answered = false;
    unsigned n_entries = ae->n_entries;
    raft_term term = ae->term;
    raft_id from = msg->server_id;
    g->recv_cb(&g->io, msg); /* may free the entries: only the copies above are used after */
    g->in_append = false;
    struct raft *r = g->io.data;
    if (!g->append_answered && n_entries > 0 && r->state == RAFT_FOLLOWER &&
        r->current_term == term && r->follower_state.current_leader.id == from) {
        /* Accepted with new entries, answered once they are written: the in-memory log now
         * ends at `covered` and matches the leader's up to there. */
        guard_validate(g, term, from, covered);
    }
}

/* ---- send: cap successful results ---- */

static int guard_send(struct raft_io *io, struct raft_io_send *req,
                      const struct raft_message *message, raft_io_send_cb cb) {
    weft_io_guard *g = guard_of(io);
    if (message->type != RAFT_IO_APPEND_ENTRIES_RESULT ||
        message->append_entries_result.rejected != 0) {
        return guard_rv(g, g->inner->send(g->inner, req, message, cb));
    }
    /* Both raft_uv and raft_fixture copy or encode the message before send returns. */
    struct raft_message copy = *message;
    struct raft_append_entries_result *res = &copy.append_entries_result;
    raft_index limit = guard_result_limit(g, copy.server_id, res->term);
    if (res->last_log_index > limit) {
        res->last_log_index = limit;
        g->results_capped++;
    }
    return guard_rv(g, g->inner->send(g->inner, req, &copy, cb));
}

/* ---- Plain forwarding ---- */

static void guard_tick_cb(struct raft_io *inner) {
    weft_io_guard *g = inner->data;
    g->tick_cb(&g->io);
}

static void guard_close_cb(struct raft_io *inner) {
    weft_io_guard *g = inner->data;
    /* raft_uv 0.15 can reach its close callback twice; raft must see it once. */
    if (g->close_delivered) return;
    g->close_delivered = true;
    if (g->close_cb != NULL) g->close_cb(&g->io);
}

static int guard_init_m(struct raft_io *io, raft_id id, const char *address) {
    weft_io_guard *g = guard_of(io);
    return guard_rv(g, g->inner->init(g->inner, id, address));
}

static void guard_close(struct raft_io *io, raft_io_close_cb cb) {
    weft_io_guard *g = guard_of(io);
    g->close_cb = cb;
    g->inner->close(g->inner, guard_close_cb);
}

static int guard_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                      struct raft_snapshot **snapshot, raft_index *start_index,
                      struct raft_entry *entries[], size_t *n_entries) {
    weft_io_guard *g = guard_of(io);
    return guard_rv(g, g->inner->load(g->inner, term, voted_for, snapshot, start_index, entries,
                                      n_entries));
}

static int guard_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                       raft_io_recv_cb recv) {
    weft_io_guard *g = guard_of(io);
    g->tick_cb = tick;
    g->recv_cb = recv;
    return guard_rv(g, g->inner->start(g->inner, msecs, guard_tick_cb, guard_recv_cb));
}

static int guard_bootstrap(struct raft_io *io, const struct raft_configuration *conf) {
    weft_io_guard *g = guard_of(io);
    return guard_rv(g, g->inner->bootstrap(g->inner, conf));
}

static int guard_recover(struct raft_io *io, const struct raft_configuration *conf) {
    weft_io_guard *g = guard_of(io);
    return guard_rv(g, g->inner->recover(g->inner, conf));
}

static int guard_set_term(struct raft_io *io, raft_term term) {
    weft_io_guard *g = guard_of(io);
    return guard_sync_rv(g, g->inner->set_term(g->inner, term), "term write");
}

static int guard_set_vote(struct raft_io *io, raft_id server_id) {
    weft_io_guard *g = guard_of(io);
    return guard_sync_rv(g, g->inner->set_vote(g->inner, server_id), "vote write");
}

/* raft's append and snapshot-put requests run inside ones of ours, so that their completion
 * status passes the guard (guard_io_failed) before raft sees it. The inner io gets our request
 * (the first member) and never raft's, whose `data` raft keeps for itself. */
typedef struct guard_append_req {
    struct raft_io_append req;       /* handed to the inner io; must stay the first member */
    weft_io_guard *g;                /* the guard; outlives the request (group_io) */
    struct raft_io_append *raft_req; /* raft's */
    raft_io_append_cb cb;            /* raft's */
} guard_append_req;

static void guard_append_cb(struct raft_io_append *req, int status) {
    guard_append_req *ga = (guard_append_req *)req;
    WEFT_ASSERT(ga != NULL && ga->raft_req != NULL && ga->cb != NULL);
    weft_io_guard *g = ga->g;
    struct raft_io_append *raft_req = ga->raft_req;
    raft_io_append_cb cb = ga->cb;
    free(ga);
    guard_io_failed(g, status, "log append");
    cb(raft_req, status);
}

static int guard_append(struct raft_io *io, struct raft_io_append *req,
                        const struct raft_entry entries[], unsigned n, raft_io_append_cb cb) {
    weft_io_guard *g = guard_of(io);
    WEFT_ASSERT(req != NULL && cb != NULL);
    guard_append_req *ga = calloc(1, sizeof *ga);
    if (ga == NULL) return RAFT_NOMEM;
    ga->g = g;
    ga->raft_req = req;
    ga->cb = cb;
    req->cb = cb; /* as an io does */
    int rv = g->inner->append(g->inner, &ga->req, entries, n, guard_append_cb);
    if (rv != 0) free(ga); /* a refused request never calls back */
    return guard_sync_rv(g, rv, "log append");
}

static int guard_truncate(struct raft_io *io, raft_index index) {
    weft_io_guard *g = guard_of(io);
    return guard_sync_rv(g, g->inner->truncate(g->inner, index), "log truncation");
}

typedef struct guard_put {
    struct raft_io_snapshot_put req;       /* handed to the inner io; must stay the first member */
    weft_io_guard *g;                      /* the guard; outlives the request (group_io) */
    struct raft_io_snapshot_put *raft_req; /* raft's */
    raft_io_snapshot_put_cb cb;            /* raft's */
} guard_put;

static void guard_put_cb(struct raft_io_snapshot_put *req, int status) {
    guard_put *gp = (guard_put *)req;
    WEFT_ASSERT(gp != NULL && gp->raft_req != NULL && gp->cb != NULL);
    weft_io_guard *g = gp->g;
    struct raft_io_snapshot_put *raft_req = gp->raft_req;
    raft_io_snapshot_put_cb cb = gp->cb;
    free(gp);
    guard_io_failed(g, status, "snapshot write");
    cb(raft_req, status);
}

static int guard_snapshot_put(struct raft_io *io, unsigned trailing,
                              struct raft_io_snapshot_put *req,
                              const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb) {
    weft_io_guard *g = guard_of(io);
    WEFT_ASSERT(req != NULL && cb != NULL);
    guard_put *gp = calloc(1, sizeof *gp);
    if (gp == NULL) return RAFT_NOMEM;
    gp->g = g;
    gp->raft_req = req;
    gp->cb = cb;
    req->cb = cb; /* as an io does */
    int rv = g->inner->snapshot_put(g->inner, trailing, &gp->req, snapshot, guard_put_cb);
    if (rv != 0) free(gp);
    return guard_sync_rv(g, rv, "snapshot write");
}

static int guard_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                              raft_io_snapshot_get_cb cb) {
    weft_io_guard *g = guard_of(io);
    return guard_rv(g, g->inner->snapshot_get(g->inner, req, cb));
}

static raft_time guard_time(struct raft_io *io) {
    weft_io_guard *g = guard_of(io);
    return g->inner->time(g->inner);
}

static int guard_random(struct raft_io *io, int min, int max) {
    weft_io_guard *g = guard_of(io);
    return g->inner->random(g->inner, min, max);
}

/* ---- async_work: raft's request runs inside one of ours ----
 *
 * raft_fixture's async_work overwrites req->data with its io's data, which is the guard here,
 * not raft; raft's snapshot work reads raft from req->data. So the inner io gets a request of
 * the guard's, found again by its address (the first member), and raft's stays untouched. */

typedef struct guard_work {
    struct raft_io_async_work work;  /* handed to the inner io; must stay the first member */
    struct raft_io_async_work *req;  /* raft's */
    raft_io_async_work_cb cb;        /* raft's */
} guard_work;

/* On a threadpool thread (raft_uv) or the loop (fixture): only raft's work function runs. */
static int guard_work_run(struct raft_io_async_work *w) {
    guard_work *gw = (guard_work *)w;
    return gw->req->work(gw->req);
}

/* On the loop thread, once the work has finished. */
static void guard_work_done(struct raft_io_async_work *w, int status) {
    guard_work *gw = (guard_work *)w;
    struct raft_io_async_work *req = gw->req;
    raft_io_async_work_cb cb = gw->cb;
    raft_free(gw);
    cb(req, status);
}

static int guard_async_work(struct raft_io *io, struct raft_io_async_work *req,
                            raft_io_async_work_cb cb) {
    weft_io_guard *g = guard_of(io);
    WEFT_ASSERT(req != NULL && req->work != NULL && cb != NULL);
    guard_work *gw = raft_malloc(sizeof *gw);
    if (gw == NULL) return RAFT_NOMEM;
    memset(gw, 0, sizeof *gw);
    gw->work.work = guard_work_run;
    gw->req = req;
    gw->cb = cb;
    req->cb = cb; /* as an io does */
    int rv = g->inner->async_work(g->inner, &gw->work, guard_work_done);
    if (rv != 0) raft_free(gw);
    return guard_rv(g, rv);
}

void weft_io_guard_init(weft_io_guard *g, struct raft_io *inner) {
    WEFT_ASSERT(g != NULL && inner != NULL);
    memset(g, 0, sizeof *g);
    g->inner = inner;
    inner->data = g;
    /* Version 2 (async_work) whatever the inner io says: raft_uv 0.15 implements async_work
     * but declares version 1, and raft_init refuses async snapshots below version 2
     * (notes/libraft-0.15.md, "Async snapshots"). */
    g->io.version = 2;
    g->io.impl = g;
    g->io.init = guard_init_m;
    g->io.close = guard_close;
    g->io.load = guard_load;
    g->io.start = guard_start;
    g->io.bootstrap = guard_bootstrap;
    g->io.recover = guard_recover;
    g->io.set_term = guard_set_term;
    g->io.set_vote = guard_set_vote;
    g->io.send = guard_send;
    g->io.append = guard_append;
    g->io.truncate = guard_truncate;
    g->io.snapshot_put = guard_snapshot_put;
    g->io.snapshot_get = guard_snapshot_get;
    g->io.time = guard_time;
    g->io.random = guard_random;
    /* raft_uv (UvAsyncWork: uv_queue_work, and its close waits for the work) and
     * raft_fixture (run at the next flush, on the loop) both implement it. */
    g->io.async_work = inner->async_work != NULL ? guard_async_work : NULL;
}
