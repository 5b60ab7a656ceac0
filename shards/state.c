/* state.c: schemas of the shard's stored records, their load/store, and the one setter per
 * state machine (STYLE rule 9; DESIGN section 6). */
#include "state.h"

#include <string.h>

/* ---- Schemas. Stored records use U32 for enums: they are internal and never renamed. ---- */

#define F(T, m, t) WEFT_FIELD(T, m, t, 0)

static const weft_field wft_rows[] = {
    F(sh_wft, state, WEFT_F_U32),
    F(sh_wft, scheduled_event_id, WEFT_F_U64),
    F(sh_wft, started_event_id, WEFT_F_U64),
    F(sh_wft, attempt, WEFT_F_U32),
    F(sh_wft, transient, WEFT_F_BOOL),
    F(sh_wft, queue, WEFT_F_STR),
    F(sh_wft, ready_seq, WEFT_F_U64),
    F(sh_wft, scheduled_time_ms, WEFT_F_U64),
    F(sh_wft, started_time_ms, WEFT_F_U64),
    F(sh_wft, identity, WEFT_F_STR),
    F(sh_wft, started_request_id, WEFT_F_STR),
    F(sh_wft, failures, WEFT_F_U32),
    WEFT_FIELD_OBJ(sh_wft, last_failure, weft_failure_schema, 0),
    F(sh_wft, last_failure_cause, WEFT_F_STR),
};
static const weft_schema sh_wft_schema = WEFT_SCHEMA(sh_wft, wft_rows);

static const weft_field run_rows[] = {
    F(sh_run, run_key, WEFT_F_U64),
    F(sh_run, namespace_, WEFT_F_STR),
    F(sh_run, workflow_id, WEFT_F_STR),
    F(sh_run, run_id, WEFT_F_STR),
    F(sh_run, workflow_type, WEFT_F_STR),
    F(sh_run, task_queue, WEFT_F_STR),
    F(sh_run, status, WEFT_F_U32),
    F(sh_run, run_timeout_ms, WEFT_F_U64),
    F(sh_run, execution_timeout_ms, WEFT_F_U64),
    F(sh_run, execution_expire_ms, WEFT_F_U64),
    F(sh_run, task_timeout_ms, WEFT_F_U64),
    F(sh_run, start_time_ms, WEFT_F_U64),
    F(sh_run, close_time_ms, WEFT_F_U64),
    F(sh_run, next_event_id, WEFT_F_U64),
    F(sh_run, history_bytes, WEFT_F_U64),
    F(sh_run, first_run_id, WEFT_F_STR),
    F(sh_run, continued_from_run_id, WEFT_F_STR),
    F(sh_run, continued_to_run_id, WEFT_F_STR),
    F(sh_run, start_request_id, WEFT_F_STR),
    F(sh_run, cancel_requested, WEFT_F_BOOL),
    F(sh_run, result, WEFT_F_BYTES),
    WEFT_FIELD_OBJ(sh_run, failure, weft_failure_schema, 0),
    WEFT_FIELD_OBJ(sh_run, wft, sh_wft_schema, 0),
    F(sh_run, sticky_queue, WEFT_F_STR),
    F(sh_run, sticky_identity, WEFT_F_STR),
    F(sh_run, previous_started_event_id, WEFT_F_U64),
    F(sh_run, pending_activities, WEFT_F_U32),
    F(sh_run, pending_timers, WEFT_F_U32),
    F(sh_run, buffered_count, WEFT_F_U32),
    F(sh_run, signal_dedup_count, WEFT_F_U32),
};
const weft_schema sh_run_schema = WEFT_SCHEMA(sh_run, run_rows);

static const weft_field act_rows[] = {
    F(sh_act, scheduled_event_id, WEFT_F_U64),
    F(sh_act, state, WEFT_F_U32),
    F(sh_act, activity_id, WEFT_F_STR),
    F(sh_act, activity_type, WEFT_F_STR),
    F(sh_act, task_queue, WEFT_F_STR),
    F(sh_act, input, WEFT_F_BYTES),
    F(sh_act, attempt, WEFT_F_U32),
    WEFT_FIELD_OBJ(sh_act, retry_policy, weft_retry_policy_schema, 0),
    F(sh_act, schedule_to_close_timeout_ms, WEFT_F_U64),
    F(sh_act, schedule_to_start_timeout_ms, WEFT_F_U64),
    F(sh_act, start_to_close_timeout_ms, WEFT_F_U64),
    F(sh_act, heartbeat_timeout_ms, WEFT_F_U64),
    F(sh_act, scheduled_time_ms, WEFT_F_U64),
    F(sh_act, started_time_ms, WEFT_F_U64),
    F(sh_act, identity, WEFT_F_STR),
    F(sh_act, last_heartbeat_time_ms, WEFT_F_U64),
    F(sh_act, heartbeat_details, WEFT_F_BYTES),
    WEFT_FIELD_OBJ(sh_act, last_failure, weft_failure_schema, 0),
    F(sh_act, cancel_requested, WEFT_F_BOOL),
    F(sh_act, ready_seq, WEFT_F_U64),
    F(sh_act, next_attempt_time_ms, WEFT_F_U64),
    F(sh_act, queued_time_ms, WEFT_F_U64),
};
const weft_schema sh_act_schema = WEFT_SCHEMA(sh_act, act_rows);

static const weft_field utimer_rows[] = {
    F(sh_utimer, started_event_id, WEFT_F_U64),
    F(sh_utimer, timer_id, WEFT_F_STR),
    F(sh_utimer, fire_at_ms, WEFT_F_U64),
};
const weft_schema sh_utimer_schema = WEFT_SCHEMA(sh_utimer, utimer_rows);

static const weft_field seen_rows[] = {F(sh_seen, request_id, WEFT_F_STR)};
const weft_schema sh_seen_schema = WEFT_SCHEMA(sh_seen, seen_rows);

static const weft_field exec_rows[] = {
    F(sh_exec, run_key, WEFT_F_U64),
    F(sh_exec, run_id, WEFT_F_STR),
    F(sh_exec, status, WEFT_F_U32),
    F(sh_exec, start_request_id, WEFT_F_STR),
};
const weft_schema sh_exec_schema = WEFT_SCHEMA(sh_exec, exec_rows);

static const weft_field timer_row_rows[] = {
    F(sh_timer_row, run_key, WEFT_F_U64),
    F(sh_timer_row, kind, WEFT_F_U32),
    F(sh_timer_row, ref, WEFT_F_U64),
    F(sh_timer_row, attempt, WEFT_F_U32),
    F(sh_timer_row, key, WEFT_F_BYTES),
};
const weft_schema sh_timer_row_schema = WEFT_SCHEMA(sh_timer_row, timer_row_rows);

static const weft_field ready_row_rows[] = {
    F(sh_ready_row, run_key, WEFT_F_U64),
    F(sh_ready_row, scheduled_event_id, WEFT_F_U64),
    F(sh_ready_row, attempt, WEFT_F_U32),
    F(sh_ready_row, task_queue, WEFT_F_STR),
    F(sh_ready_row, kind, WEFT_F_U32),
    F(sh_ready_row, namespace_, WEFT_F_STR),
};
const weft_schema sh_ready_row_schema = WEFT_SCHEMA(sh_ready_row, ready_row_rows);

static const weft_field dedup_rows[] = {
    F(sh_dedup, op, WEFT_F_U32),
    F(sh_dedup, run_id, WEFT_F_STR),
    F(sh_dedup, started, WEFT_F_BOOL),
    F(sh_dedup, code, WEFT_F_U32),
    F(sh_dedup, field, WEFT_F_STR),
    F(sh_dedup, message, WEFT_F_STR),
};
const weft_schema sh_dedup_schema = WEFT_SCHEMA(sh_dedup, dedup_rows);

#undef F

/* ---- Load / store ---- */

int sh_exec_load(sh_ctx *c, weft_str ns, weft_str workflow_id, sh_exec *out) {
    weft_key k;
    weft_key_execution(&k, ns, workflow_id);
    int rc = sh_get_rec(c, WEFT_TBL_EXECUTIONS, &k, &sh_exec_schema, out);
    WEFT_ASSERT(rc != 0 || out->run_key > 0);
    return rc;
}

int sh_exec_store(sh_ctx *c, weft_str ns, weft_str workflow_id, const sh_exec *e) {
    WEFT_ASSERT(e->run_key > 0 && e->run_id.len > 0);
    weft_key k;
    weft_key_execution(&k, ns, workflow_id);
    return sh_put_rec(c, WEFT_TBL_EXECUTIONS, &k, &sh_exec_schema, e);
}

int sh_run_load(sh_ctx *c, uint64_t run_key, sh_run *out) {
    weft_key k;
    weft_key_run_part(&k, run_key, SH_PART_RUN, 0);
    int rc = sh_get_rec(c, WEFT_TBL_RUNS, &k, &sh_run_schema, out);
    if (rc != 0) return rc;
    /* Check the record right after reading it (STYLE rule 8). */
    WEFT_ASSERT(out->run_key == run_key);
    WEFT_ASSERT(out->next_event_id >= 1 && out->status < WEFT_STATUS__COUNT);
    return 0;
}

int sh_run_store(sh_ctx *c, const sh_run *r) {
    WEFT_ASSERT(r->run_key > 0 && r->next_event_id >= 1);
    WEFT_ASSERT(r->status != WEFT_STATUS_UNSPECIFIED && r->status < WEFT_STATUS__COUNT);
    WEFT_ASSERT(sh_run_is_open(r) || r->wft.state == SH_WFT_NONE);
    weft_key k;
    weft_key_run_part(&k, r->run_key, SH_PART_RUN, 0);
    return sh_put_rec(c, WEFT_TBL_RUNS, &k, &sh_run_schema, r);
}

int sh_act_load(sh_ctx *c, uint64_t run_key, uint64_t scheduled_event_id, sh_act *out) {
    weft_key k;
    weft_key_run_part(&k, run_key, SH_PART_ACTIVITY, scheduled_event_id);
    int rc = sh_get_rec(c, WEFT_TBL_RUNS, &k, &sh_act_schema, out);
    if (rc != 0) return rc;
    WEFT_ASSERT(out->scheduled_event_id == scheduled_event_id);
    WEFT_ASSERT(out->state >= SH_ACT_SCHEDULED && out->state <= SH_ACT_BACKOFF && out->attempt >= 1);
    return 0;
}

int sh_act_store(sh_ctx *c, uint64_t run_key, const sh_act *a) {
    WEFT_ASSERT(a->scheduled_event_id > 0 && a->attempt >= 1);
    WEFT_ASSERT(a->state >= SH_ACT_SCHEDULED && a->state <= SH_ACT_BACKOFF);
    weft_key k;
    weft_key_run_part(&k, run_key, SH_PART_ACTIVITY, a->scheduled_event_id);
    return sh_put_rec(c, WEFT_TBL_RUNS, &k, &sh_act_schema, a);
}

int sh_act_delete(sh_ctx *c, uint64_t run_key, uint64_t scheduled_event_id) {
    weft_key k;
    weft_key_run_part(&k, run_key, SH_PART_ACTIVITY, scheduled_event_id);
    return sh_del(c, WEFT_TBL_RUNS, &k);
}

int sh_utimer_load(sh_ctx *c, uint64_t run_key, uint64_t started_event_id, sh_utimer *out) {
    weft_key k;
    weft_key_run_part(&k, run_key, SH_PART_TIMER, started_event_id);
    int rc = sh_get_rec(c, WEFT_TBL_RUNS, &k, &sh_utimer_schema, out);
    WEFT_ASSERT(rc != 0 || out->started_event_id == started_event_id);
    return rc;
}

int sh_utimer_store(sh_ctx *c, uint64_t run_key, const sh_utimer *t) {
    WEFT_ASSERT(t->started_event_id > 0 && t->timer_id.len > 0);
    weft_key k;
    weft_key_run_part(&k, run_key, SH_PART_TIMER, t->started_event_id);
    return sh_put_rec(c, WEFT_TBL_RUNS, &k, &sh_utimer_schema, t);
}

int sh_utimer_delete(sh_ctx *c, uint64_t run_key, uint64_t started_event_id) {
    weft_key k;
    weft_key_run_part(&k, run_key, SH_PART_TIMER, started_event_id);
    return sh_del(c, WEFT_TBL_RUNS, &k);
}

static int run_find_by_id(sh_ctx *c, weft_str ns, weft_str wfid, weft_str run_id, sh_run *out) {
    weft_key k;
    weft_key_run_id(&k, ns, wfid, run_id);
    weft_val v;
    int rc = sh_get(c, WEFT_TBL_RUN_IDS, &k, &v);
    if (rc == -WEFT_E_NOT_FOUND) {
        return sh_reject(c, WEFT_E_NOT_FOUND, "run_id",
                         "workflow '%.*s' has no run '%.*s' in namespace '%.*s' (it may have "
                         "passed retention): check the run id, or leave it empty for the "
                         "current run",
                         (int)wfid.len, wfid.ptr, (int)run_id.len, run_id.ptr, (int)ns.len,
                         ns.ptr);
    }
    if (rc != 0) return rc;
    WEFT_ASSERT(v.len == 8);
    rc = sh_run_load(c, weft_be64_get(v.ptr), out);
    /* run_ids and the run record are written and deleted together. */
    WEFT_ASSERT(rc != -WEFT_E_NOT_FOUND);
    return rc;
}

int sh_run_find(sh_ctx *c, weft_str ns, weft_str wfid, weft_str run_id, sh_run *out) {
    if (run_id.len > 0) return run_find_by_id(c, ns, wfid, run_id, out);
    sh_exec e;
    int rc = sh_exec_load(c, ns, wfid, &e);
    if (rc == -WEFT_E_NOT_FOUND) {
        return sh_reject(c, WEFT_E_NOT_FOUND, "workflow_id",
                         "no workflow '%.*s' in namespace '%.*s': check the workflow id and "
                         "namespace (closed runs are deleted after retention)",
                         (int)wfid.len, wfid.ptr, (int)ns.len, ns.ptr);
    }
    if (rc != 0) return rc;
    rc = sh_run_load(c, e.run_key, out);
    WEFT_ASSERT(rc != -WEFT_E_NOT_FOUND);
    return rc;
}

/* ---- State machines ---- */

bool sh_run_is_open(const sh_run *r) { return r->status == WEFT_STATUS_RUNNING; }

/* A run is born RUNNING and closes once; no closed status ever changes again (G2: history
 * ends with exactly one closing event). */
void sh_run_set_status(sh_ctx *c, sh_run *r, uint32_t status) {
    WEFT_ASSERT(status < WEFT_STATUS__COUNT && status != WEFT_STATUS_UNSPECIFIED);
    bool legal = (r->status == WEFT_STATUS_UNSPECIFIED && status == WEFT_STATUS_RUNNING) ||
                 (r->status == WEFT_STATUS_RUNNING && status != WEFT_STATUS_RUNNING);
    WEFT_ASSERT(legal);
    SH_LOG_TRANSITION(c, "status", r->run_key, weft_status_names[r->status],
                      weft_status_names[status]);
    r->status = status;
}

const char *sh_wft_state_name(uint32_t state) {
    static const char *const names[] = {"none", "scheduled", "started", "backoff"};
    WEFT_ASSERT(state < WEFT_ARRAY_LEN(names));
    return names[state];
}

/* Legal workflow task moves (section 7):
 *   none -> scheduled        a task is needed
 *   backoff -> scheduled     the retry timer fired
 *   scheduled -> started     a poller took it
 *   started -> scheduled     a poller vanished before using a transient attempt
 *   started -> none          completed
 *   started -> backoff       failed or timed out
 *   scheduled|backoff -> none  the run closed */
void sh_wft_set_state(sh_ctx *c, sh_run *r, uint32_t state) {
    uint32_t from = r->wft.state;
    WEFT_ASSERT(from <= SH_WFT_BACKOFF && state <= SH_WFT_BACKOFF && from != state);
    bool legal = false;
    switch (state) {
    case SH_WFT_SCHEDULED: legal = from != SH_WFT_SCHEDULED; break;
    case SH_WFT_STARTED: legal = from == SH_WFT_SCHEDULED; break;
    case SH_WFT_BACKOFF: legal = from == SH_WFT_STARTED; break;
    case SH_WFT_NONE: legal = true; break;
    }
    WEFT_ASSERT(legal);
    WEFT_ASSERT(state != SH_WFT_SCHEDULED || sh_run_is_open(r));
    SH_LOG_TRANSITION(c, "workflow task", r->run_key, sh_wft_state_name(from),
                      sh_wft_state_name(state));
    r->wft.state = state;
}

const char *sh_act_state_name(uint32_t state) {
    static const char *const names[] = {"closed", "scheduled", "started", "backoff"};
    WEFT_ASSERT(state < WEFT_ARRAY_LEN(names));
    return names[state];
}

/* Legal activity moves (section 7): scheduled -> started (dispatch), started -> scheduled
 * (poller vanished), started -> backoff (attempt failed, will retry), backoff -> scheduled
 * (retry timer). The final outcome deletes the record instead of setting a state. */
void sh_act_set_state(sh_ctx *c, uint64_t run_key, sh_act *a, uint32_t state) {
    uint32_t from = a->state;
    WEFT_ASSERT(state >= SH_ACT_SCHEDULED && state <= SH_ACT_BACKOFF && from != state);
    bool legal = (from == SH_ACT_SCHEDULED && state == SH_ACT_STARTED) ||
                 (from == SH_ACT_STARTED && state == SH_ACT_SCHEDULED) ||
                 (from == SH_ACT_STARTED && state == SH_ACT_BACKOFF) ||
                 (from == SH_ACT_BACKOFF && state == SH_ACT_SCHEDULED) ||
                 (from == 0 && state == SH_ACT_SCHEDULED);
    WEFT_ASSERT(legal);
    WEFT_LOGF(WEFT_LOG_DEBUG, c->s->shard_id, "run %llu activity %llu attempt %u: %s -> %s",
              (unsigned long long)run_key, (unsigned long long)a->scheduled_event_id,
              a->attempt, sh_act_state_name(from), sh_act_state_name(state));
    a->state = state;
}

/* ---- Scans ---- */

int sh_part_scan(sh_ctx *c, uint64_t run_key, uint8_t part, const weft_schema *schema,
                 void *rec_buf, sh_part_cb cb, void *data) {
    weft_key start;
    weft_key_run_part(&start, run_key, part, 0);
    weft_cursor *cur = NULL;
    int rc = weft_cursor_open(c->txn, WEFT_TBL_RUNS, &cur, &c->err);
    if (rc != 0) return rc;
    weft_val k, v;
    weft_err scratch;
    weft_err_clear(&scratch);
    int crc = weft_cursor_seek(cur, start.bytes, start.len, &k, &v, &scratch);
    /* Every key of the part shares the 9-byte prefix (run key, part). */
    while (crc == 0 && k.len == start.len && memcmp(k.ptr, start.bytes, 9) == 0) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        rc = weft_schema_decode_buf(schema, v.ptr, v.len, rec_buf, &up, &c->s->record_limits,
                                    &c->err);
        if (rc != 0) {
            msgpack_unpacked_destroy(&up);
            weft_err_prefix(&c->err, "stored record of run %llu part %u is corrupt: ",
                            (unsigned long long)run_key, part);
            c->err.code = WEFT_E_INTERNAL;
            rc = -WEFT_E_INTERNAL;
            break;
        }
        rc = cb(c, weft_be64_get((const uint8_t *)k.ptr + 9), rec_buf, data);
        msgpack_unpacked_destroy(&up);
        if (rc != 0) break;
        crc = weft_cursor_next(cur, &k, &v, &scratch);
    }
    weft_cursor_close(cur);
    if (rc != 0) return rc;
    if (crc != 0 && crc != -WEFT_E_NOT_FOUND) {
        c->err = scratch;
        return crc;
    }
    return 0;
}
