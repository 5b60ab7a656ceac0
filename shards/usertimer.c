/* usertimer.c: workflow timers (DESIGN section 7, "Timer" events): StartTimer, CancelTimer
 * and TimerFired. A timer is a record in the run plus one row in the timer index; it never
 * fires before its time on the shard clock (G6). */
#include <string.h>

#include "ops.h"

int sh_utimer_start(sh_ctx *c, sh_run *r, const weft_command *cmd) {
    WEFT_ASSERT(cmd->timer_id.len > 0 && cmd->start_to_fire_timeout_ms > 0);
    weft_event ev = {.event_type = WEFT_EV_TIMER_STARTED,
                     .timer_id = cmd->timer_id,
                     .start_to_fire_timeout_ms = cmd->start_to_fire_timeout_ms};
    int rc = sh_hist_write(c, r, &ev);
    if (rc != 0) return rc;
    uint64_t fire_at = c->now_ms + cmd->start_to_fire_timeout_ms;
    sh_utimer t = {.started_event_id = ev.event_id, .timer_id = cmd->timer_id, .fire_at_ms = fire_at};
    rc = sh_utimer_store(c, r->run_key, &t);
    if (rc == 0) {
        rc = sh_timer_add(c, fire_at, SH_TK_USER, r->run_key, ev.event_id, 0, (weft_bytes){0});
    }
    if (rc != 0) return rc;
    r->pending_timers++;
    return 0;
}

typedef struct utimer_find {
    weft_str timer_id;
    uint64_t found;
} utimer_find;

static int utimer_match(sh_ctx *c, uint64_t sub, const void *rec, void *data) {
    (void)c;
    utimer_find *f = data;
    if (!weft_str_eq(((const sh_utimer *)rec)->timer_id, f->timer_id)) return 0;
    f->found = sub;
    return 1; /* stop */
}

int sh_utimer_find(sh_ctx *c, uint64_t run_key, weft_str timer_id, uint64_t *started_event_id) {
    utimer_find f = {.timer_id = timer_id};
    sh_utimer buf;
    int rc = sh_part_scan(c, run_key, SH_PART_TIMER, &sh_utimer_schema, &buf, utimer_match, &f);
    if (rc < 0) return rc;
    *started_event_id = f.found;
    return 0;
}

/* Its index row stays behind and fires as a no-op (stale rows are allowed, section 9). */
int sh_utimer_cancel(sh_ctx *c, sh_run *r, weft_str timer_id) {
    uint64_t sid = 0;
    int rc = sh_utimer_find(c, r->run_key, timer_id, &sid);
    if (rc != 0 || sid == 0) return rc; /* fired while the task ran (validated) */
    weft_event ev = {.event_type = WEFT_EV_TIMER_CANCELED,
                     .timer_id = timer_id,
                     .started_event_id = sid};
    rc = sh_hist_write(c, r, &ev);
    if (rc == 0) rc = sh_utimer_delete(c, r->run_key, sid);
    if (rc != 0) return rc;
    WEFT_ASSERT(r->pending_timers > 0);
    r->pending_timers--;
    return 0;
}

int sh_utimer_on_fire(sh_ctx *c, sh_run *r, const sh_timer_row *row) {
    sh_utimer t;
    int rc = sh_utimer_load(c, r->run_key, row->ref, &t);
    if (rc == -WEFT_E_NOT_FOUND) return 0; /* canceled */
    if (rc != 0) return rc;
    /* G6: the index row is only fired once due, and it holds the record's own time. */
    WEFT_ASSERT(t.fire_at_ms <= c->now_ms);
    weft_event ev = {.event_type = WEFT_EV_TIMER_FIRED,
                     .timer_id = t.timer_id,
                     .started_event_id = t.started_event_id};
    rc = sh_hist_add(c, r, &ev, NULL);
    if (rc == 0) rc = sh_utimer_delete(c, r->run_key, t.started_event_id);
    if (rc != 0) return rc;
    WEFT_ASSERT(r->pending_timers > 0);
    r->pending_timers--;
    rc = sh_wft_schedule(c, r);
    return rc != 0 ? rc : sh_run_store(c, r);
}

typedef struct utimer_ids {
    uint64_t *items;
    uint32_t count;
    uint32_t cap;
} utimer_ids;

static int utimer_collect(sh_ctx *c, uint64_t sub, const void *rec, void *data) {
    (void)rec;
    (void)c;
    utimer_ids *ids = data;
    /* pending_timers counts the records, so the array is exactly big enough. */
    WEFT_ASSERT(ids->count < ids->cap);
    ids->items[ids->count++] = sub;
    return 0;
}

int sh_utimer_drop_all(sh_ctx *c, sh_run *r) {
    if (r->pending_timers == 0) return 0;
    utimer_ids ids = {.items = sh_alloc(c, (size_t)r->pending_timers * sizeof(uint64_t)),
                      .cap = r->pending_timers};
    sh_utimer buf;
    int rc = sh_part_scan(c, r->run_key, SH_PART_TIMER, &sh_utimer_schema, &buf, utimer_collect,
                          &ids);
    WEFT_ASSERT(rc != 0 || ids.count == r->pending_timers);
    for (uint32_t i = 0; rc == 0 && i < ids.count; i++) {
        rc = sh_utimer_delete(c, r->run_key, ids.items[i]);
    }
    if (rc == 0) r->pending_timers = 0;
    return rc;
}
