/* timers.c: the timer index, the one due-date table for every deadline (DESIGN section 9):
 * rows are (fire_at_ms, seq) -> (run key, kind, ref, attempt). Apply adds rows; the leader's
 * timer gate proposes FIRE_TIMERS for due rows; apply re-checks each target, so stale and
 * duplicate fires are no-ops, and deletes every fired row. Nothing fires before its time on
 * the shard clock (G6). */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Due rows gathered into one FIRE_TIMERS command at most (matches the command schema cap). */
#define SH_FIRE_BATCH_MAX 4096u

int sh_timer_add(sh_ctx *c, uint64_t fire_at_ms, uint32_t kind, uint64_t run_key, uint64_t ref,
                 uint32_t attempt, weft_bytes key) {
    WEFT_ASSERT(kind >= SH_TK_USER && kind <= SH_TK_DEDUP_EXPIRY);
    WEFT_ASSERT(fire_at_ms >= c->now_ms);
    uint64_t seq = 0;
    int rc = sh_next_seq(c, &seq);
    if (rc != 0) return rc;
    sh_timer_row row = {.run_key = run_key, .kind = kind, .ref = ref, .attempt = attempt, .key = key};
    weft_key k;
    weft_key_timer(&k, fire_at_ms, seq);
    rc = sh_put_rec(c, WEFT_TBL_TIMERS, &k, &sh_timer_row_schema, &row);
    if (rc != 0) return rc;
    sh_fx_timer(c, fire_at_ms);
    return 0;
}

/* Routes a due row to its owner. Rows of runs that are gone or closed are stale, except
 * retention (which targets closed runs) and dedup expiry (which targets no run). */
static int timer_fire_row(sh_ctx *c, const sh_timer_row *row) {
    if (row->kind == SH_TK_DEDUP_EXPIRY) return sh_dedup_on_expiry(c, row);
    if (row->kind == SH_TK_RETENTION) return sh_retention_on_timer(c, row);
    sh_run r;
    int rc = sh_run_load(c, row->run_key, &r);
    if (rc == -WEFT_E_NOT_FOUND) return 0;
    if (rc != 0) return rc;
    if (!sh_run_is_open(&r)) return 0;
    switch (row->kind) {
    case SH_TK_USER: return sh_utimer_on_fire(c, &r, row);
    case SH_TK_ACT_SCHED_TO_START:
    case SH_TK_ACT_START_TO_CLOSE:
    case SH_TK_ACT_SCHED_TO_CLOSE:
    case SH_TK_ACT_HEARTBEAT:
    case SH_TK_ACT_RETRY: return sh_act_on_timer(c, &r, row);
    case SH_TK_WFT_START_TO_CLOSE:
    case SH_TK_WFT_STICKY:
    case SH_TK_WFT_RETRY: return sh_wft_on_timer(c, &r, row);
    case SH_TK_RUN_TIMEOUT:
    case SH_TK_EXEC_TIMEOUT: return sh_close_on_timer(c, &r, row);
    }
    WEFT_ASSERT(false && "unknown timer kind");
    return 0;
}

static int timer_fire_one(sh_ctx *c, const weft_timer_ref *ref, uint32_t *fired) {
    /* Never early (G6): a row the leader saw as due under a clock that ran ahead of the shard
     * clock waits for a later entry. */
    if (ref->fire_at_ms > c->now_ms) return 0;
    weft_key k;
    weft_key_timer(&k, ref->fire_at_ms, ref->seq);
    sh_timer_row row;
    int rc = sh_get_rec(c, WEFT_TBL_TIMERS, &k, &sh_timer_row_schema, &row);
    if (rc == -WEFT_E_NOT_FOUND) return 0; /* fired by an earlier entry */
    if (rc != 0) return rc;
    rc = sh_del(c, WEFT_TBL_TIMERS, &k);
    if (rc != 0) return rc;
    (*fired)++;
    return timer_fire_row(c, &row);
}

int sh_timers_on_fire(sh_ctx *c, const weft_shard_cmd *cmd) {
    uint32_t fired = 0;
    for (uint32_t i = 0; i < cmd->timers_count; i++) {
        int rc = timer_fire_one(c, &cmd->timers[i], &fired);
        /* Timer effects never reject: a target that moved on is a no-op. */
        WEFT_ASSERT(rc == 0 || rc == -WEFT_E_INTERNAL);
        if (rc != 0) return rc;
    }
    WEFT_LOGF(WEFT_LOG_DEBUG, c->s->shard_id, "fired %u of %u timers at %llu", fired,
              cmd->timers_count, (unsigned long long)c->now_ms);
    return sh_reply_empty(c);
}

/* ---- The timer gate (leader) ---- */

int weft_shard_next_timer(weft_shard *s, uint64_t *fire_at_ms, weft_err *err) {
    WEFT_ASSERT(s != NULL && fire_at_ms != NULL);
    weft_txn *t = NULL;
    int rc = weft_txn_begin(s->store, false, &t, err);
    if (rc != 0) return rc;
    weft_cursor *cur = NULL;
    rc = weft_cursor_open(t, WEFT_TBL_TIMERS, &cur, err);
    if (rc == 0) {
        weft_val k, v;
        rc = weft_cursor_seek(cur, NULL, 0, &k, &v, err);
        if (rc == 0) {
            WEFT_ASSERT(k.len == 16);
            *fire_at_ms = weft_be64_get(k.ptr);
        }
        weft_cursor_close(cur);
    }
    weft_txn_abort(t);
    return rc;
}

static int fire_collect(weft_txn *t, uint64_t now_ms, uint32_t max, weft_timer_ref *refs,
                        uint32_t *count, weft_err *err) {
    weft_cursor *cur = NULL;
    int rc = weft_cursor_open(t, WEFT_TBL_TIMERS, &cur, err);
    if (rc != 0) return rc;
    weft_val k, v;
    rc = weft_cursor_seek(cur, NULL, 0, &k, &v, err);
    while (rc == 0 && *count < max) {
        WEFT_ASSERT(k.len == 16);
        uint64_t at = weft_be64_get(k.ptr);
        if (at > now_ms) break;
        refs[(*count)++] = (weft_timer_ref){.fire_at_ms = at,
                                            .seq = weft_be64_get((const uint8_t *)k.ptr + 8)};
        rc = weft_cursor_next(cur, &k, &v, err);
    }
    weft_cursor_close(cur);
    return rc == -WEFT_E_NOT_FOUND ? 0 : rc;
}

int weft_shard_fire_cmd(weft_shard *s, uint64_t now_ms, uint32_t max, uint8_t **cmd,
                        size_t *cmd_len, uint32_t *count, weft_err *err) {
    WEFT_ASSERT(s != NULL && cmd != NULL && cmd_len != NULL && count != NULL);
    *cmd = NULL;
    *cmd_len = 0;
    *count = 0;
    max = WEFT_MIN(max, SH_FIRE_BATCH_MAX);
    if (max == 0) return 0;
    weft_timer_ref *refs = malloc((size_t)max * sizeof *refs);
    if (refs == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory gathering timers");
    }
    weft_txn *t = NULL;
    int rc = weft_txn_begin(s->store, false, &t, err);
    if (rc == 0) {
        rc = fire_collect(t, now_ms, max, refs, count, err);
        weft_txn_abort(t);
    }
    if (rc == 0 && *count > 0) {
        weft_shard_cmd sc = {.type = WEFT_SC_FIRE_TIMERS, .timers = refs, .timers_count = *count};
        if (sh_cmd_encode(s, &sc, cmd, cmd_len) != 0) {
            rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                              "out of memory building FIRE_TIMERS");
        }
    }
    free(refs);
    if (rc != 0) *count = 0;
    return rc;
}
