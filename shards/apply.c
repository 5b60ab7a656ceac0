/* apply.c: the per-command context: storage access that counts writes, the decoding arena,
 * rejections and replies, and the post-commit effect lists (DESIGN section 5: "a command that
 * is no longer valid applies as a recorded rejection"). */
#include "apply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First chunk of a command's arena; most commands fit in it. */
#define SH_ZONE_CHUNK_BYTES 8192u

void sh_ctx_init(sh_ctx *c, weft_shard *s, weft_txn *txn, uint64_t now_ms, sh_effects *fx) {
    /* txn may be NULL for a context that only validates (weft_shard_client_cmd). */
    WEFT_ASSERT(c != NULL && s != NULL);
    memset(c, 0, sizeof *c);
    c->s = s;
    c->txn = txn;
    c->now_ms = now_ms;
    c->lim = s->limits;
    c->fx = fx;
    c->reply_wanted = true;
    bool ok = msgpack_zone_init(&c->zone, SH_ZONE_CHUNK_BYTES);
    WEFT_ASSERT(ok);
}

static void ctx_free_unpacked(sh_ctx *c) {
    sh_unpacked *u = c->unpacked;
    while (u != NULL) {
        sh_unpacked *next = u->next;
        msgpack_unpacked_destroy(&u->up);
        u = next; /* the node itself lives in the zone */
    }
    c->unpacked = NULL;
}

void sh_ctx_reset(sh_ctx *c) {
    ctx_free_unpacked(c);
    msgpack_zone_clear(&c->zone);
    weft_err_clear(&c->err);
    c->reply = NULL;
}

void sh_ctx_close(sh_ctx *c) {
    ctx_free_unpacked(c);
    msgpack_zone_destroy(&c->zone);
}

int sh_check_duration(sh_ctx *c, const char *field, uint64_t ms) {
    if (ms <= SH_DURATION_MS_MAX) return 0;
    return sh_reject(c, WEFT_E_INVALID_ARGUMENT, field,
                     "%s is %llu ms; the longest allowed is %llu ms (100 years): use a shorter "
                     "duration, or 0 for none",
                     field, (unsigned long long)ms, (unsigned long long)SH_DURATION_MS_MAX);
}

uint64_t sh_deadline_ms(const sh_ctx *c, uint64_t ms) {
    return ms > UINT64_MAX - c->now_ms ? UINT64_MAX : c->now_ms + ms;
}

weft_str sh_namespace(weft_str ns) {
    return ns.len > 0 ? ns : WEFT_STR_LIT(WEFT_DEFAULT_NAMESPACE);
}

/* ---- Rejections and replies ---- */

int sh_reject(sh_ctx *c, int code, const char *field, const char *fmt, ...) {
    WEFT_ASSERT(code > 0 && code != WEFT_E_INTERNAL);
    va_list ap;
    va_start(ap, fmt);
    char msg[WEFT_ERR_MESSAGE_BYTES_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return weft_err_set(&c->err, code, field, "%s", msg);
}

int sh_reply_error(sh_ctx *c, int code, const char *field, const char *fmt, ...) {
    WEFT_ASSERT(c->reply != NULL && code > 0);
    va_list ap;
    va_start(ap, fmt);
    char msg[WEFT_ERR_MESSAGE_BYTES_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    weft_reply_reset(c->reply);
    weft_err_set(&c->reply->err, code, field, "%s", msg);
    return 0;
}

void sh_reply_from_err(sh_ctx *c) {
    WEFT_ASSERT(c->reply != NULL && c->err.code != 0);
    weft_reply_reset(c->reply);
    c->reply->err = c->err;
}

int sh_reply_body(sh_ctx *c, const weft_schema *schema, const void *resp) {
    WEFT_ASSERT(c->reply != NULL && schema != NULL);
    weft_reply_reset(c->reply);
    int rc = weft_schema_encode_buf(schema, resp, &c->reply->body, &c->reply->body_len);
    if (rc != 0) {
        return weft_err_set(&c->err, WEFT_E_INTERNAL, NULL,
                            "out of memory encoding a %s reply", schema->name);
    }
    return 0;
}

int sh_reply_empty(sh_ctx *c) {
    weft_empty_resp e = {0};
    return sh_reply_body(c, &weft_empty_resp_schema, &e);
}

/* ---- Storage ---- */

int sh_get(sh_ctx *c, weft_table tbl, const weft_key *k, weft_val *v) {
    weft_err scratch;
    weft_err_clear(&scratch);
    int rc = weft_kv_get(c->txn, tbl, k->bytes, k->len, v, &scratch);
    if (rc == -WEFT_E_NOT_FOUND) return rc;
    if (rc != 0) {
        c->err = scratch;
        c->err.code = WEFT_E_INTERNAL;
        return -WEFT_E_INTERNAL;
    }
    return 0;
}

int sh_put(sh_ctx *c, weft_table tbl, const weft_key *k, const void *val, size_t len) {
    WEFT_ASSERT(weft_txn_is_write(c->txn));
    c->writes++;
    int rc = weft_kv_put(c->txn, tbl, k->bytes, k->len, val, len, &c->err);
    if (rc != 0) {
        c->err.code = WEFT_E_INTERNAL;
        return -WEFT_E_INTERNAL;
    }
    return 0;
}

int sh_del(sh_ctx *c, weft_table tbl, const weft_key *k) {
    WEFT_ASSERT(weft_txn_is_write(c->txn));
    c->writes++;
    weft_err scratch;
    weft_err_clear(&scratch);
    int rc = weft_kv_del(c->txn, tbl, k->bytes, k->len, &scratch);
    if (rc == -WEFT_E_NOT_FOUND) return 0;
    if (rc != 0) {
        c->err = scratch;
        c->err.code = WEFT_E_INTERNAL;
        return -WEFT_E_INTERNAL;
    }
    return 0;
}

int sh_put_rec(sh_ctx *c, weft_table tbl, const weft_key *k, const weft_schema *schema,
               const void *rec) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (weft_schema_encode_buf(schema, rec, &buf, &len) != 0) {
        return weft_err_set(&c->err, WEFT_E_INTERNAL, NULL, "out of memory encoding %s",
                            schema->name);
    }
    int rc = sh_put(c, tbl, k, buf, len);
    free(buf);
    return rc;
}

void *sh_alloc(sh_ctx *c, size_t n) {
    void *p = msgpack_zone_malloc(&c->zone, n > 0 ? n : 1);
    /* The arena only fails when the process is out of memory; stopping is the only safe
     * answer inside apply (STYLE rule 10). */
    WEFT_ASSERT(p != NULL);
    return p;
}

/* Copies are NUL-terminated too, so .ptr may be passed where a C string is expected. */
weft_str sh_str_dup(sh_ctx *c, weft_str s) {
    if (s.len == 0) return (weft_str){.ptr = "", .len = 0};
    char *p = sh_alloc(c, (size_t)s.len + 1);
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return (weft_str){.ptr = p, .len = s.len};
}

weft_str sh_str_fmt(sh_ctx *c, const char *fmt, ...) {
    char tmp[WEFT_ERR_MESSAGE_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    WEFT_ASSERT(n >= 0);
    size_t len = WEFT_MIN((size_t)n, sizeof tmp - 1);
    return sh_str_dup(c, (weft_str){.ptr = tmp, .len = (uint32_t)len});
}

int sh_decode(sh_ctx *c, const weft_schema *schema, const void *buf, size_t len, bool copy,
              bool stored, void *out) {
    const uint8_t *p = buf;
    if (copy && len > 0) {
        uint8_t *dup = sh_alloc(c, len);
        memcpy(dup, buf, len);
        p = dup;
    }
    sh_unpacked *u = sh_alloc(c, sizeof *u);
    msgpack_unpacked_init(&u->up);
    u->next = c->unpacked;
    c->unpacked = u;
    const weft_limits *lim = stored ? &c->s->record_limits : c->lim;
    return weft_schema_decode_buf(schema, p, len, out, &u->up, lim, &c->err);
}

int sh_get_rec(sh_ctx *c, weft_table tbl, const weft_key *k, const weft_schema *schema,
               void *out) {
    weft_val v;
    int rc = sh_get(c, tbl, k, &v);
    if (rc != 0) return rc;
    rc = sh_decode(c, schema, v.ptr, v.len, true, true, out);
    if (rc != 0) {
        weft_err_prefix(&c->err, "stored %s is corrupt: ", schema->name);
        c->err.code = WEFT_E_INTERNAL;
        return -WEFT_E_INTERNAL;
    }
    return 0;
}

/* ---- Meta sequences ---- */

static int meta_next(sh_ctx *c, const char *name, uint64_t *out) {
    uint64_t v = 0;
    int rc = weft_meta_get_u64(c->txn, name, &v, &c->err);
    if (rc != 0) return -WEFT_E_INTERNAL;
    if (v == 0) v = 1; /* sequences start at 1 so that 0 can mean "none" */
    *out = v;
    c->writes++;
    rc = weft_meta_put_u64(c->txn, name, v + 1, &c->err);
    return rc != 0 ? -WEFT_E_INTERNAL : 0;
}

int sh_next_seq(sh_ctx *c, uint64_t *seq) { return meta_next(c, WEFT_META_NEXT_SEQ, seq); }

int sh_next_run_key(sh_ctx *c, uint64_t *run_key) {
    return meta_next(c, WEFT_META_NEXT_RUN_KEY, run_key);
}

/* ---- Post-commit effects ---- */

static void *fx_grow(void *arr, uint32_t *cap, uint32_t count, size_t item) {
    if (count < *cap) return arr;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *n = realloc(arr, (size_t)ncap * item);
    WEFT_ASSERT(n != NULL);
    *cap = ncap;
    return n;
}

int sh_fx_ready(sh_ctx *c, uint8_t kind, weft_str queue, uint64_t seq, uint64_t run_key,
                uint64_t scheduled_event_id, uint32_t attempt) {
    WEFT_ASSERT(kind == WEFT_TASK_KIND_WORKFLOW || kind == WEFT_TASK_KIND_ACTIVITY);
    WEFT_ASSERT(queue.len > 0 && seq > 0);
    sh_effects *fx = c->fx;
    if (fx == NULL) return 0;
    fx->ready = fx_grow(fx->ready, &fx->ready_cap, fx->ready_count, sizeof *fx->ready);
    sh_ready_fx *r = &fx->ready[fx->ready_count++];
    r->kind = kind;
    r->task_queue = malloc(queue.len + 1);
    WEFT_ASSERT(r->task_queue != NULL);
    weft_str_copy(r->task_queue, queue.len + 1, queue);
    r->seq = seq;
    r->run_key = run_key;
    r->scheduled_event_id = scheduled_event_id;
    r->attempt = attempt;
    return 0;
}

int sh_fx_changed(sh_ctx *c, uint64_t run_key, bool closed) {
    sh_effects *fx = c->fx;
    if (fx == NULL) return 0;
    for (uint32_t i = 0; i < fx->changed_count; i++) {
        if (fx->changed[i].run_key == run_key) {
            fx->changed[i].closed |= closed;
            return 0;
        }
    }
    fx->changed = fx_grow(fx->changed, &fx->changed_cap, fx->changed_count, sizeof *fx->changed);
    fx->changed[fx->changed_count++] = (sh_changed_fx){.run_key = run_key, .closed = closed};
    return 0;
}

void sh_fx_timer(sh_ctx *c, uint64_t fire_at_ms) {
    if (c->fx == NULL) return;
    if (c->fx->earliest_timer_ms == 0 || fire_at_ms < c->fx->earliest_timer_ms) {
        c->fx->earliest_timer_ms = fire_at_ms;
    }
}

void sh_fx_free(sh_effects *fx) {
    for (uint32_t i = 0; i < fx->ready_count; i++) free(fx->ready[i].task_queue);
    free(fx->ready);
    free(fx->changed);
    memset(fx, 0, sizeof *fx);
}
