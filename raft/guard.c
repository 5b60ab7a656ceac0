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

/* ---- recv: vote requests (how long a group is without a leader) ----
 *
 * After a leader dies, a group of weftd replicas must elect within the election timeout, the
 * longest wait libraft draws (raft/host.h), so that timers due meanwhile fire within it plus
 * a second (DESIGN G6). libraft 0.15 misses that on two paths, both found and measured by
 * tests/sim/test_failover_sim.c; the guard closes them on the way in, and libraft still
 * decides every vote itself (terms, log comparison, one vote per term).
 *
 * 1. A silent leader still blocks votes. Raft thesis 4.2.3: a server that receives a
 *    RequestVote "within the minimum election timeout of hearing from a current leader" does
 *    not grant it. libraft refuses for as long as it still names a leader (has_leader &&
 *    !disrupt_leader), and forgets the leader only when its own timer fires, up to twice the
 *    minimum later. So the first follower to time out is refused; when its log is the most up
 *    to date the others cannot win either, and the group waits for that follower's second
 *    timeout: up to four times the minimum, twice the election timeout. The guard applies the
 *    thesis' rule: once this follower has heard nothing from its leader for the minimum
 *    election timeout, less one heartbeat for the spread between followers' last messages,
 *    the request passes as if no leader were known (disrupt_leader). election_timer_start is
 *    the last contact: a follower restarts it on every AppendEntries or InstallSnapshot from
 *    its leader and on granting a vote.
 *
 * 2. Two candidates split the vote. Each then waits a fresh timeout of one to two minimums
 *    before trying again, which overshoots the bound. With pre-vote, a split needs both to pass
 *    pre-vote in the same term, which happens in two races this guard settles:
 *    - a candidate in its real election already voted for itself in its term, so it would
 *      refuse the requester's real vote in that term anyway: granting that requester's
 *      pre-vote for the same term only makes it a rival. The guard withholds it.
 *    - two candidates in pre-vote at once, with equal logs, grant each other. While its own
 *      pre-vote round is younger than one heartbeat (a round trip is well within it), the
 *      lower id withholds its pre-vote from the higher one, which grants the lower one's:
 *      one of them wins. Later, or when logs differ (libraft then refuses the less up to
 *      date), nothing is withheld, so a candidate whose own messages are lost cannot block
 *      another for more than a heartbeat.
 *    Withholding drops the request unanswered: to a pre-vote candidate that is the same as a
 *    refusal, since only a higher term in a refusal would change what it does, and here the
 *    refuser's term is not higher. */

static raft_term guard_last_term(const struct raft *r) {
    const struct raft_log *l = &r->log;
    if (l->back == l->front) return l->snapshot.last_term;
    WEFT_ASSERT(l->size > 0);
    return l->entries[(l->back + l->size - 1) % l->size].term;
}

/* The follower's leader has been silent for at least the minimum election timeout (less a
 * heartbeat): a vote request is let through as if no leader were known (1 above). */
static void guard_vote_past_silent_leader(weft_io_guard *g, struct raft *r,
                                          struct raft_request_vote *rv, raft_time now) {
    if (rv->disrupt_leader || r->state != RAFT_FOLLOWER) return;
    if (r->follower_state.current_leader.id == 0) return;
    raft_time silent_ms = now > r->election_timer_start ? now - r->election_timer_start : 0;
    WEFT_ASSERT(r->heartbeat_timeout < r->election_timeout);
    if (silent_ms + r->heartbeat_timeout < r->election_timeout) return;
    rv->disrupt_leader = true;
    g->votes_unblocked++;
}

/* True when this candidate should withhold its pre-vote from `rv` (2 above). */
static bool guard_prevote_withheld(const struct raft *r, const struct raft_request_vote *rv,
                                   raft_time now) {
    if (!rv->pre_vote || r->state != RAFT_CANDIDATE) return false;
    if (!r->candidate_state.in_pre_vote) {
        /* Campaigning in rv->term already, with our own vote. */
        return rv->term == r->current_term;
    }
    raft_time round_ms = now > r->election_timer_start ? now - r->election_timer_start : 0;
    return rv->term == r->current_term + 1 && round_ms < r->heartbeat_timeout &&
           rv->last_log_term == guard_last_term(r) &&
           rv->last_log_index == raft_last_index((struct raft *)r) && r->id < rv->candidate_id;
}

/* Returns false when the request is withheld from raft (it owns no buffers). */
static bool guard_vote_request(weft_io_guard *g, struct raft_request_vote *rv) {
    struct raft *r = g->io.data;
    WEFT_ASSERT(r != NULL && rv != NULL);
    raft_time now = g->inner->time(g->inner);
    if (guard_prevote_withheld(r, rv, now)) {
        g->prevotes_withheld++;
        return false;
    }
    guard_vote_past_silent_leader(g, r, rv, now);
    return true;
}

/* ---- recv: a leader's replication after a follower's rejection ----
 *
 * libraft's progress states (src/progress.h; raft.h names the field, not its values).
 * tests/sim/test_raft_sim.c's canary fails if a version numbers them otherwise. */
#define GUARD_PROGRESS_SNAPSHOT 2u

static struct raft_progress *guard_progress_of(struct raft *r, raft_id id) {
    const struct raft_configuration *conf = &r->configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id && id != r->id) return &r->leader_state.progress[i];
    }
    return NULL;
}

/* A lost snapshot: the follower answers a heartbeat, sent after the snapshot, without it.
 * libraft sends a follower it cannot feed from its log one InstallSnapshot, then only
 * heartbeats, and waits for the install's result up to install-snapshot-timeout-ms (30 s by
 * default); the follower's rejections meanwhile are ignored unless they name the snapshot's
 * own index, which they never do (they name the heartbeat's). When the message is lost (the
 * follower restarted before it stored it, or the connection broke after raft_uv had written
 * it, or the follower did not take it), the follower gets nothing for the whole timeout, and
 * its shard commits only while both other replicas are up (issue 9; tests/sim/
 * test_raft_sim.c, test_sim_lost_snapshot, which shows all of this). A follower installing a
 * snapshot reports last index 0 in its rejections (its last_stored is 0 until the snapshot is
 * stored), one that holds it reports at least its index; any other rejection received an
 * election timeout or more after the snapshot went out (what was sent before the snapshot
 * has been answered by then) says the follower neither has it nor installs it. The guard
 * then names the snapshot's index as the rejected one, so libraft itself abandons the
 * snapshot and probes the follower again, which sends a fresh one. At most one resend per
 * election timeout. */
static bool guard_snapshot_lost(struct raft *r, const struct raft_progress *p,
                                const struct raft_append_entries_result *res, raft_time now) {
    if (p->state != GUARD_PROGRESS_SNAPSHOT) return false;
    if (res->last_log_index == 0 || res->last_log_index >= p->snapshot_index) return false;
    return now >= p->snapshot_last_send && now - p->snapshot_last_send >= r->election_timeout;
}

/* Raft (figure 2): when AppendEntries fails for a log inconsistency, the leader decrements
 * nextIndex and retries. libraft 0.15 sends a follower in probe mode at most one
 * AppendEntries per heartbeat, the retry included (progress last_send; a rejection in
 * pipeline mode turns it to probe mode first, and so does a finished install), and every
 * follower of a new leader starts in probe mode: a follower that lacks the old leader's last
 * entry rejects the new leader's first heartbeat, and the entries it needs, with the new
 * leader's barrier, come up to two heartbeats later (test_failover_sim measured 200 ms of a
 * failover so); after an install, what followed the snapshot waits a heartbeat likewise.
 * Clearing last_send of the follower before raft reads its answer lets what raft sends next
 * go at once. The field only paces sending; what is sent is still raft's choice. */
static void guard_append_result(weft_io_guard *g, struct raft_message *msg) {
    struct raft *r = g->io.data;
    struct raft_append_entries_result *res = &msg->append_entries_result;
    WEFT_ASSERT(r != NULL);
    if (r->state != RAFT_LEADER || res->term != r->current_term) return;
    struct raft_progress *p = guard_progress_of(r, msg->server_id);
    if (p == NULL) return;
    bool snapshot = p->state == GUARD_PROGRESS_SNAPSHOT;
    if (res->rejected != 0 && guard_snapshot_lost(r, p, res, g->inner->time(g->inner))) {
        res->rejected = p->snapshot_index;
        g->snapshots_resent++;
    } else if (snapshot ? res->rejected != 0 || res->last_log_index < p->snapshot_index
                        : res->rejected == 0) {
        /* An install still under way, or an ordinary success (pipeline mode sends on). */
        return;
    }
    p->last_send = 0;
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
    if (msg->type == RAFT_IO_REQUEST_VOTE && !guard_vote_request(g, &msg->request_vote)) return;
    if (msg->type == RAFT_IO_APPEND_ENTRIES_RESULT) guard_append_result(g, msg);
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
