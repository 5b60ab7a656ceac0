/* dedup.c: idempotent requests (G4). The dedup table keeps the first outcome of a start,
 * signal, cancel or terminate by (namespace, request id) for dedup_ttl_ms, expired through the
 * timer index; each run also remembers the request ids of the signals it received (part 3 of
 * the run), so a signal is delivered once for the run's whole life (G7). */
#include <string.h>
#include <xxhash.h>

#include "ops.h"

/* Slots probed after a hash collision of two request ids in one run. */
#define SH_SEEN_PROBES_MAX 8u

int sh_dedup_find(sh_ctx *c, weft_str ns, weft_str request_id, uint32_t op, bool *found,
                  sh_dedup *out) {
    *found = false;
    memset(out, 0, sizeof *out);
    if (request_id.len == 0) return 0;
    weft_key k;
    weft_key_dedup(&k, ns, request_id);
    int rc = sh_get_rec(c, WEFT_TBL_DEDUP, &k, &sh_dedup_schema, out);
    if (rc == -WEFT_E_NOT_FOUND) return 0;
    if (rc != 0) return rc;
    if (out->op != op) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "request_id",
                         "request_id '%.*s' was already used by another kind of request: use a "
                         "fresh request id for every new request, and the same one only to "
                         "retry it",
                         (int)request_id.len, request_id.ptr);
    }
    *found = true;
    return 0;
}

/* Outcomes worth replaying: success and the answers that depend on state. A malformed
 * request or a limit is not remembered, so a corrected retry is judged afresh. */
static bool dedup_keeps(uint32_t code) {
    return code == 0 || code == WEFT_E_NOT_FOUND || code == WEFT_E_ALREADY_EXISTS ||
           code == WEFT_E_FAILED_PRECONDITION;
}

int sh_dedup_record(sh_ctx *c, weft_str ns, weft_str request_id, const sh_dedup *d) {
    if (request_id.len == 0 || !dedup_keeps(d->code)) return 0;
    WEFT_ASSERT(d->op != WEFT_SC_NOOP);
    weft_key k;
    weft_key_dedup(&k, ns, request_id);
    int rc = sh_put_rec(c, WEFT_TBL_DEDUP, &k, &sh_dedup_schema, d);
    if (rc != 0) return rc;
    weft_bytes key = {.ptr = k.bytes, .len = (uint32_t)k.len};
    return sh_timer_add(c, sh_deadline_ms(c, c->lim->dedup_ttl_ms), SH_TK_DEDUP_EXPIRY, 0,
                        0, 0, key);
}

int sh_dedup_finish(sh_ctx *c, weft_str ns, weft_str request_id, sh_dedup *d, int rc,
                    uint64_t writes) {
    if (rc == -WEFT_E_INTERNAL) return rc;
    /* A refused request changed nothing before its outcome is recorded (all or nothing). */
    WEFT_ASSERT(rc == 0 || c->writes == writes);
    /* Storage calls reuse c->err, so the refusal is kept aside first. */
    weft_err why = c->err;
    if (rc < 0) {
        d->code = (uint32_t)why.code;
        d->field = sh_str_dup(c, weft_str_c(why.field));
        d->message = sh_str_dup(c, weft_str_c(why.message));
        d->run_id = (weft_str){0};
    }
    int wrc = sh_dedup_record(c, ns, request_id, d);
    if (wrc != 0) return wrc;
    if (rc < 0) return sh_reply_error(c, why.code, why.field[0] ? why.field : NULL, "%s", why.message);
    return 0;
}

int sh_dedup_reply(sh_ctx *c, const sh_dedup *d, bool start_resp) {
    if (d->code != 0) {
        return sh_reply_error(c, (int)d->code, d->field.len > 0 ? sh_str_dup(c, d->field).ptr : NULL,
                              "%.*s", (int)d->message.len, d->message.ptr);
    }
    if (!start_resp) return sh_reply_empty(c);
    /* G4: a retry returns the first outcome, run id and started alike. A client whose first
     * attempt created the run but lost the answer must hear that its start created it. */
    WEFT_ASSERT(d->run_id.len > 0 || !d->started);
    weft_start_resp resp = {.run_id = d->run_id, .started = d->started};
    return sh_reply_body(c, &weft_start_resp_schema, &resp);
}

int sh_dedup_on_expiry(sh_ctx *c, const sh_timer_row *row) {
    WEFT_ASSERT(row->key.len > 0 && row->key.len <= WEFT_KEY_BYTES_MAX);
    weft_key k;
    memcpy(k.bytes, row->key.ptr, row->key.len);
    k.len = row->key.len;
    return sh_del(c, WEFT_TBL_DEDUP, &k);
}

/* ---- Per-run signal request ids ---- */

/* Probes from the id's hash: *slot gets the slot holding `request_id` (*found) or the first
 * free one (*free_slot); neither is set when every probed slot holds another id. */
static int seen_probe(sh_ctx *c, uint64_t run_key, weft_str request_id, bool *found,
                      bool *free_slot, uint64_t *slot) {
    uint64_t h = XXH3_64bits(request_id.ptr, request_id.len);
    *found = false;
    *free_slot = false;
    *slot = 0;
    for (uint32_t i = 0; i < SH_SEEN_PROBES_MAX; i++) {
        weft_key k;
        weft_key_run_part(&k, run_key, SH_PART_DEDUP, h + i);
        sh_seen seen;
        int rc = sh_get_rec(c, WEFT_TBL_RUNS, &k, &sh_seen_schema, &seen);
        if (rc == -WEFT_E_NOT_FOUND) {
            *free_slot = true;
            *slot = h + i;
            return 0;
        }
        if (rc != 0) return rc;
        if (weft_str_eq(seen.request_id, request_id)) {
            *found = true;
            *slot = h + i;
            return 0;
        }
    }
    return 0;
}

int sh_seen_has(sh_ctx *c, uint64_t run_key, weft_str request_id, bool *found) {
    uint64_t slot;
    bool free_slot;
    return seen_probe(c, run_key, request_id, found, &free_slot, &slot);
}

int sh_seen_add(sh_ctx *c, sh_run *r, weft_str request_id) {
    bool found = false, free_slot = false;
    uint64_t slot = 0;
    int rc = seen_probe(c, r->run_key, request_id, &found, &free_slot, &slot);
    if (rc != 0 || found) return rc;
    if (!free_slot) {
        /* Eight 64-bit hash collisions in one run: astronomically unlikely. The shard-wide
         * dedup table still covers the next dedup_ttl_ms. */
        WEFT_LOGF(WEFT_LOG_WARN, c->s->shard_id, "run %llu: no slot to remember a signal id",
                  (unsigned long long)r->run_key);
        return 0;
    }
    weft_key k;
    weft_key_run_part(&k, r->run_key, SH_PART_DEDUP, slot);
    sh_seen seen = {.request_id = request_id};
    rc = sh_put_rec(c, WEFT_TBL_RUNS, &k, &sh_seen_schema, &seen);
    if (rc == 0) r->signal_dedup_count++;
    return rc;
}
