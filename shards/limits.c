/* limits.c: the limits apply enforces (DESIGN section 7, "Limits") as replicated state.
 *
 * Each node reads its limits from its own config, and configs may differ (a rolling change, a
 * typo). Apply must not read them: a follower with a smaller history_events_max would reject a
 * signal its leader accepted, and the replicas' histories would part (G2; section 5: "Apply
 * reads no ... leader-only memory"). So the leader carries its limits in the log: a command it
 * builds while its configured limits differ from the applied ones is stamped with them, apply
 * stores the stamp in meta in the same transaction, and every replica enforces the stamped
 * limits from that command on. Until the first stamp, apply enforces the compiled-in defaults.
 * A config change therefore takes effect at one log position on every replica at once. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Meta name of the applied limits (schema-encoded weft_limits). */
#define SH_META_LIMITS "apply_limits"

#define L(m, t) WEFT_FIELD(weft_limits, m, t, 0)
static const weft_field limits_rows[] = {
    L(frame_bytes_max, WEFT_F_U32),
    L(payload_bytes_max, WEFT_F_U32),
    L(id_bytes_max, WEFT_F_U32),
    L(history_events_max, WEFT_F_U32),
    L(history_bytes_max, WEFT_F_U64),
    L(pending_activities_max, WEFT_F_U32),
    L(pending_timers_max, WEFT_F_U32),
    L(commands_per_task_max, WEFT_F_U32),
    L(signal_dedup_per_run_max, WEFT_F_U32),
    L(poll_timeout_ms, WEFT_F_U32),
    L(sticky_timeout_ms, WEFT_F_U32),
    L(workflow_task_timeout_ms, WEFT_F_U32),
    L(retention_ms, WEFT_F_U64),
    L(dedup_ttl_ms, WEFT_F_U64),
};
#undef L
const weft_schema sh_limits_schema = WEFT_SCHEMA(weft_limits, limits_rows);

/* A limit added to weft_limits (at its end, as they are) must be carried by the log too. */
_Static_assert(offsetof(weft_limits, dedup_ttl_ms) + sizeof(uint64_t) == sizeof(weft_limits),
               "weft_limits gained a field: add it to limits_rows");

bool sh_limits_stamped(const weft_limits *l) {
    /* frame_bytes_max is never 0 in a real config (node/config.c: at least 1024), so an
     * absent stamp (decoded as all zero) is told apart without a flag. */
    return l->frame_bytes_max != 0;
}

/* Field by field through the schema: the struct has padding, so memcmp would compare it. */
bool sh_limits_equal(const weft_limits *a, const weft_limits *b) {
    for (size_t i = 0; i < WEFT_ARRAY_LEN(limits_rows); i++) {
        const weft_field *f = &limits_rows[i];
        size_t n = f->type == WEFT_F_U64 ? sizeof(uint64_t) : sizeof(uint32_t);
        if (memcmp((const uint8_t *)a + f->offset, (const uint8_t *)b + f->offset, n) != 0) {
            return false;
        }
    }
    return true;
}

int sh_limits_load(weft_shard *s, weft_txn *t, weft_err *err) {
    weft_limits_default(&s->applied_limits);
    weft_val v;
    int rc = weft_kv_get(t, WEFT_TBL_META, SH_META_LIMITS, strlen(SH_META_LIMITS), &v, err);
    if (rc == -WEFT_E_NOT_FOUND) {
        weft_err_clear(err);
        return 0;
    }
    if (rc != 0) return rc;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_limits l;
    rc = weft_schema_decode_buf(&sh_limits_schema, v.ptr, v.len, &l, &up, &s->record_limits, err);
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        weft_err_prefix(err, "stored apply limits are corrupt: ");
        err->code = WEFT_E_INTERNAL;
        return -WEFT_E_INTERNAL;
    }
    /* Checked right after it is read back (STYLE rule 8): only stamps are ever stored. */
    WEFT_ASSERT(sh_limits_stamped(&l));
    s->applied_limits = l;
    return 0;
}

const weft_limits *sh_limits_stamp_for(const weft_shard *s) {
    return sh_limits_equal(s->limits, &s->applied_limits) ? NULL : s->limits;
}

int sh_limits_on_stamp(sh_ctx *c, const weft_limits *stamp) {
    WEFT_ASSERT(c->entry_limits != NULL && c->lim == c->entry_limits);
    if (!sh_limits_stamped(stamp) || sh_limits_equal(stamp, c->entry_limits)) return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (weft_schema_encode_buf(&sh_limits_schema, stamp, &buf, &len) != 0) {
        return weft_err_set(&c->err, WEFT_E_INTERNAL, NULL, "out of memory encoding limits");
    }
    /* Entry metadata like the applied index, not an effect of the command: it holds whether
     * or not the command is then rejected, so it does not count in c->writes. */
    int rc = weft_kv_put(c->txn, WEFT_TBL_META, SH_META_LIMITS, strlen(SH_META_LIMITS), buf, len,
                         &c->err);
    free(buf);
    if (rc != 0) {
        c->err.code = WEFT_E_INTERNAL;
        return -WEFT_E_INTERNAL;
    }
    WEFT_LOGF(WEFT_LOG_INFO, c->s->shard_id,
              "apply limits changed by the leader's config: history_events_max=%u "
              "pending_activities_max=%u pending_timers_max=%u sticky_timeout_ms=%u "
              "retention_ms=%llu",
              stamp->history_events_max, stamp->pending_activities_max, stamp->pending_timers_max,
              stamp->sticky_timeout_ms, (unsigned long long)stamp->retention_ms);
    *c->entry_limits = *stamp;
    return 0;
}
