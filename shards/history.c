/* history.c: a run's event history (DESIGN sections 6-7, G2): dense ids from 1, the shard
 * clock as event time, deterministic encoding, and the buffer that holds outside events while
 * a workflow task runs so that a worker's view is always a prefix of history. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static bool hist_is_activity_outcome(uint32_t type) {
    return type == WEFT_EV_ACTIVITY_TASK_COMPLETED || type == WEFT_EV_ACTIVITY_TASK_FAILED ||
           type == WEFT_EV_ACTIVITY_TASK_TIMED_OUT || type == WEFT_EV_ACTIVITY_TASK_CANCELED;
}

int sh_hist_write(sh_ctx *c, sh_run *r, weft_event *ev) {
    /* A transient task's ids are provisional: nothing may be written while one exists, or the
     * ids the worker was shown would be taken (section 7, transient retries). */
    WEFT_ASSERT(!r->wft.transient);
    WEFT_ASSERT(ev->event_type > WEFT_EV_UNSPECIFIED && ev->event_type < WEFT_EV__COUNT);
    WEFT_ASSERT(r->next_event_id >= 1);
    ev->event_id = r->next_event_id;
    if (ev->event_time_ms == 0) ev->event_time_ms = c->now_ms;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (weft_schema_encode_buf(&weft_event_schema, ev, &buf, &len) != 0) {
        return weft_err_set(&c->err, WEFT_E_INTERNAL, NULL, "out of memory encoding an event");
    }
    weft_key k;
    weft_key_history(&k, r->run_key, ev->event_id);
    int rc = sh_put(c, WEFT_TBL_HISTORY, &k, buf, len);
    free(buf);
    if (rc != 0) return rc;
    r->next_event_id++;
    r->history_bytes += len;
    WEFT_LOGF(WEFT_LOG_TRACE, c->s->shard_id, "run %llu event %llu %s",
              (unsigned long long)r->run_key, (unsigned long long)ev->event_id,
              weft_event_type_names[ev->event_type]);
    return sh_fx_changed(c, r->run_key, false);
}

/* A transient task becomes an ordinary one when an outside event must be written while it
 * waits on its queue: its Scheduled event takes the provisional id, which is still the next
 * id because nothing was written since it was scheduled. */
static int hist_materialize(sh_ctx *c, sh_run *r) {
    WEFT_ASSERT(r->wft.transient && r->wft.state == SH_WFT_SCHEDULED);
    WEFT_ASSERT(r->wft.scheduled_event_id == r->next_event_id);
    r->wft.transient = false;
    weft_event ev = {.event_type = WEFT_EV_WORKFLOW_TASK_SCHEDULED,
                     .task_queue = r->wft.queue,
                     .start_to_close_timeout_ms = r->task_timeout_ms,
                     .attempt = r->wft.attempt};
    return sh_hist_write(c, r, &ev);
}

static int hist_buffer(sh_ctx *c, sh_run *r, weft_event *ev) {
    WEFT_ASSERT(r->wft.state == SH_WFT_STARTED);
    ev->event_id = 0;
    /* Like sh_hist_write: an event that carries its own time keeps it (ActivityTaskStarted is
     * written with the outcome but happened when the attempt started), so a buffered event
     * reads the same as one written directly. */
    if (ev->event_time_ms == 0) ev->event_time_ms = c->now_ms;
    weft_key k;
    weft_key_run_part(&k, r->run_key, SH_PART_BUFFER, r->buffered_count + 1u);
    int rc = sh_put_rec(c, WEFT_TBL_RUNS, &k, &weft_event_schema, ev);
    if (rc != 0) return rc;
    r->buffered_count++;
    return 0;
}

int sh_hist_add(sh_ctx *c, sh_run *r, weft_event *ev, uint64_t *event_id) {
    WEFT_ASSERT(sh_run_is_open(r));
    if (event_id != NULL) *event_id = 0;
    if (r->wft.state == SH_WFT_STARTED) return hist_buffer(c, r, ev);
    if (r->wft.transient) {
        int rc = hist_materialize(c, r);
        if (rc != 0) return rc;
    }
    int rc = sh_hist_write(c, r, ev);
    if (rc == 0 && event_id != NULL) *event_id = ev->event_id;
    return rc;
}

int sh_hist_flush(sh_ctx *c, sh_run *r, uint32_t *flushed) {
    WEFT_ASSERT(r->wft.state != SH_WFT_STARTED);
    uint32_t n = r->buffered_count;
    weft_event prev = {0};
    for (uint32_t i = 1; i <= n; i++) {
        weft_key k;
        weft_key_run_part(&k, r->run_key, SH_PART_BUFFER, i);
        weft_event ev;
        int rc = sh_get_rec(c, WEFT_TBL_RUNS, &k, &weft_event_schema, &ev);
        WEFT_ASSERT(rc != -WEFT_E_NOT_FOUND);
        if (rc != 0) return rc;
        /* An activity outcome buffered right after its Started event points at it; the id
         * is only known now. */
        if (hist_is_activity_outcome(ev.event_type) && ev.started_event_id == 0 &&
            prev.event_type == WEFT_EV_ACTIVITY_TASK_STARTED &&
            prev.scheduled_event_id == ev.scheduled_event_id) {
            ev.started_event_id = prev.event_id;
        }
        rc = sh_hist_write(c, r, &ev);
        if (rc == 0) rc = sh_del(c, WEFT_TBL_RUNS, &k);
        if (rc != 0) return rc;
        prev = ev;
    }
    r->buffered_count = 0;
    if (flushed != NULL) *flushed = n;
    return 0;
}

int sh_hist_buffered_has(sh_ctx *c, const sh_run *r, uint32_t type, uint64_t scheduled_event_id,
                         weft_str timer_id, bool *found) {
    *found = false;
    for (uint32_t i = 1; i <= r->buffered_count && !*found; i++) {
        weft_key k;
        weft_key_run_part(&k, r->run_key, SH_PART_BUFFER, i);
        weft_event ev;
        int rc = sh_get_rec(c, WEFT_TBL_RUNS, &k, &weft_event_schema, &ev);
        if (rc != 0) return rc == -WEFT_E_NOT_FOUND ? -WEFT_E_INTERNAL : rc;
        if (type == WEFT_EV_TIMER_FIRED) {
            *found = ev.event_type == type && weft_str_eq(ev.timer_id, timer_id);
        } else {
            *found = hist_is_activity_outcome(ev.event_type) &&
                     ev.scheduled_event_id == scheduled_event_id;
        }
    }
    return 0;
}

int sh_hist_get(sh_ctx *c, uint64_t run_key, uint64_t event_id, weft_event *out) {
    weft_key k;
    weft_key_history(&k, run_key, event_id);
    int rc = sh_get_rec(c, WEFT_TBL_HISTORY, &k, &weft_event_schema, out);
    WEFT_ASSERT(rc != 0 || out->event_id == event_id);
    return rc;
}

int sh_hist_read(sh_ctx *c, uint64_t run_key, uint64_t first, uint64_t last, uint32_t max_events,
                 size_t max_bytes, weft_event **events, uint32_t *count, uint64_t *next_id) {
    WEFT_ASSERT(first >= 1 && max_events >= 1);
    *events = NULL;
    *count = 0;
    *next_id = 0;
    if (last < first) return 0;
    uint64_t want = WEFT_MIN(last - first + 1, (uint64_t)max_events);
    weft_event *arr = sh_alloc(c, (size_t)want * sizeof *arr);
    size_t bytes = 0;
    uint32_t n = 0;
    for (uint64_t id = first; id <= last; id++) {
        weft_key k;
        weft_key_history(&k, run_key, id);
        weft_val v;
        int rc = sh_get(c, WEFT_TBL_HISTORY, &k, &v);
        if (rc == -WEFT_E_NOT_FOUND) break; /* past the end of history */
        if (rc != 0) return rc;
        if (n == want || (n > 0 && bytes + v.len > max_bytes)) {
            *next_id = id;
            break;
        }
        rc = sh_decode(c, &weft_event_schema, v.ptr, v.len, true, true, &arr[n]);
        if (rc != 0) {
            c->err.code = WEFT_E_INTERNAL;
            return -WEFT_E_INTERNAL;
        }
        WEFT_ASSERT(arr[n].event_id == id);
        bytes += v.len;
        n++;
    }
    *events = arr;
    *count = n;
    return 0;
}

bool sh_hist_full(sh_ctx *c, const sh_run *r) {
    const weft_limits *l = c->lim;
    return r->next_event_id - 1 >= l->history_events_max || r->history_bytes >= l->history_bytes_max;
}

int sh_hist_reject_full(sh_ctx *c, const sh_run *r, const char *field) {
    const weft_limits *l = c->lim;
    return sh_reject(c, WEFT_E_RESOURCE_EXHAUSTED, field,
                     "run %.*s has %llu events and %llu bytes of history; the limits are "
                     "history_events_max=%u and history_bytes_max=%llu: complete the workflow "
                     "or continue it as new (ContinueAsNew) to start a fresh history",
                     (int)r->run_id.len, r->run_id.ptr, (unsigned long long)(r->next_event_id - 1),
                     (unsigned long long)r->history_bytes, l->history_events_max,
                     (unsigned long long)l->history_bytes_max);
}
