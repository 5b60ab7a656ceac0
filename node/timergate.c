/* timergate.c: fires due timers on the leader (DESIGN section 9). The LMDB timers index is the
 * only source of truth; this gate just decides when to look at it. Apply checks every fired
 * entry is still pending, so a duplicate or stale fire is harmless; what matters is that the
 * gate never fires early (it passes max(wall clock, shard clock), and apply compares against
 * the shard clock) and never forgets to look (it re-arms after every batch and on every
 * earlier timer apply reports). */
#include "timergate.h"

#include <stdlib.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "clockcheck.h"
#include "replica.h"

static void timergate_fire_cb(uv_timer_t *t);

void weft_timergate_init(weft_timergate *g, weft_replica *rep) {
    WEFT_ASSERT(g != NULL && rep != NULL);
    g->replica = rep;
    g->armed = false;
    g->firing = false;
    g->closed = false;
    int rc = uv_timer_init(rep->node->loop, &g->timer);
    WEFT_ASSERT(rc == 0);
    g->timer.data = g;
}

/* A leader whose clock is off or unchecked sleeps: its clock must not decide what is due, and
 * its FIRE_TIMERS would be refused anyway (weft_replica_propose). clockcheck.c wakes the gates
 * once the clock is good. */
static bool timergate_active(const weft_timergate *g) {
    const weft_replica *rep = g->replica;
    return !g->closed && rep->role == WEFT_ROLE_LEADER_READY &&
           rep->node->state == WEFT_NODE_RUNNING && weft_clockcheck_refusal(rep->node) == NULL;
}

/* The time the gate fires against: never behind the shard clock (section 9). */
static uint64_t timergate_now_ms(const weft_timergate *g) {
    return WEFT_MAX(weft_wall_ms(), weft_shard_clock_ms(g->replica->shard));
}

static void timergate_arm_in(weft_timergate *g, uint64_t delay_ms, uint64_t due_ms) {
    g->armed = true;
    g->armed_at_ms = due_ms;
    uv_timer_start(&g->timer, timergate_fire_cb,
                   WEFT_MIN(delay_ms, (uint64_t)WEFTD_TIMERGATE_RECHECK_MS), 0);
}

/* Arms for the earliest entry in the index, or sleeps when there is none. `floor_ms` is the
 * sleep for an entry already due: after a fire found nothing to fire, an entry the index still
 * calls due must not make the gate spin. */
static void timergate_arm_floor(weft_timergate *g, uint64_t floor_ms) {
    uv_timer_stop(&g->timer);
    g->armed = false;
    if (!timergate_active(g) || g->firing) return;
    uint64_t due = 0;
    weft_err err = {0};
    int rc = weft_shard_next_timer(g->replica->shard, &due, &err);
    if (rc == -WEFT_E_NOT_FOUND) return; /* timer_added will wake the gate */
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, g->replica->shard_id,
                 "timer gate cannot read the timers index: %s", err.message);
        timergate_arm_in(g, WEFTD_TIMERGATE_RETRY_MS, 0);
        return;
    }
    uint64_t now = timergate_now_ms(g);
    timergate_arm_in(g, due > now ? due - now : floor_ms, due);
}

static void timergate_arm(weft_timergate *g) {
    timergate_arm_floor(g, 0);
}

static void timergate_fired_cb(void *data, weft_reply *reply) {
    weft_timergate *g = data;
    WEFT_ASSERT(g->firing);
    g->firing = false;
    if (reply->err.code != 0) {
        WEFT_LOGF(WEFT_LOG_DEBUG, g->replica->shard_id, "FIRE_TIMERS not applied: %s",
                  reply->err.message);
    }
    weft_reply_reset(reply);
    timergate_arm(g);
}

static void timergate_fire_cb(uv_timer_t *t) {
    weft_timergate *g = t->data;
    g->armed = false;
    if (!timergate_active(g) || g->firing) return;
    weft_replica *rep = g->replica;
    uint8_t *cmd = NULL;
    size_t len = 0;
    uint32_t count = 0;
    weft_err err = {0};
    int rc = weft_shard_fire_cmd(rep->shard, timergate_now_ms(g), rep->node->cfg.fire_batch_max,
                                 &cmd, &len, &count, &err);
    if (rc != 0) {
        weft_log(WEFT_LOG_ERROR, rep->shard_id, "timer gate cannot build FIRE_TIMERS: %s",
                 err.message);
        timergate_arm_in(g, WEFTD_TIMERGATE_RETRY_MS, 0);
        return;
    }
    if (count == 0) {
        free(cmd);
        timergate_arm_floor(g, WEFTD_TIMERGATE_RETRY_MS);
        return;
    }
    WEFT_ASSERT(cmd != NULL && len > 0);
    WEFT_LOGF(WEFT_LOG_DEBUG, rep->shard_id, "firing %u due timers", count);
    g->firing = true;
    rc = weft_replica_propose(rep, cmd, len, timergate_fired_cb, g, &err);
    if (rc != 0) {
        g->firing = false;
        WEFT_LOGF(WEFT_LOG_DEBUG, rep->shard_id, "FIRE_TIMERS not proposed: %s", err.message);
        if (timergate_active(g)) timergate_arm_in(g, WEFTD_TIMERGATE_RETRY_MS, 0);
    }
}

void weft_timergate_start(weft_timergate *g) {
    WEFT_ASSERT(g->replica->role == WEFT_ROLE_LEADER_READY);
    timergate_arm(g);
}

void weft_timergate_stop(weft_timergate *g) {
    if (g->closed) return;
    uv_timer_stop(&g->timer);
    g->armed = false;
}

void weft_timergate_added(weft_timergate *g, uint64_t fire_at_ms) {
    if (!timergate_active(g) || g->firing) return; /* after the batch applies, arm() rereads */
    if (g->armed && g->armed_at_ms != 0 && fire_at_ms >= g->armed_at_ms) return;
    uint64_t now = timergate_now_ms(g);
    uv_timer_stop(&g->timer);
    timergate_arm_in(g, fire_at_ms > now ? fire_at_ms - now : 0, fire_at_ms);
}

static void timergate_closed_cb(uv_handle_t *h) {
    (void)h;
}

void weft_timergate_close(weft_timergate *g) {
    if (g->closed) return;
    g->closed = true;
    g->armed = false;
    uv_close((uv_handle_t *)&g->timer, timergate_closed_cb);
}
