/* dispatch.c: task dispatch (DESIGN section 8). Apply writes the ready table, the replicated
 * list of dispatchable tasks; the leader mirrors it in one FIFO per (task queue, kind), fed
 * after each commit and rebuilt from the table when it gains leadership. Popped tasks become
 * Started commands; a stale one (its row is gone) is dropped. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* ---- The ready table (apply) ---- */

weft_str weft_dispatch_queue_name(weft_str ns, weft_str task_queue, char *buf, size_t cap) {
    WEFT_ASSERT(buf != NULL && cap >= WEFT_DISPATCH_QUEUE_BYTES_MAX);
    if (ns.len == 0) ns = WEFT_STR_LIT(WEFT_DEFAULT_NAMESPACE);
    WEFT_ASSERT(ns.len <= WEFT_ID_BYTES_MAX_DEFAULT && task_queue.len <= WEFT_ID_BYTES_MAX_DEFAULT);
    memcpy(buf, ns.ptr, ns.len);
    buf[ns.len] = WEFT_DISPATCH_QUEUE_SEPARATOR;
    if (task_queue.len > 0) memcpy(buf + ns.len + 1, task_queue.ptr, task_queue.len);
    size_t len = ns.len + 1 + task_queue.len;
    buf[len] = '\0';
    return (weft_str){.ptr = buf, .len = (uint32_t)len};
}

int sh_ready_add(sh_ctx *c, const sh_run *r, weft_str task_queue, uint8_t kind,
                 uint64_t scheduled_event_id, uint32_t attempt, uint64_t *seq) {
    uint64_t run_key = r->run_key;
    WEFT_ASSERT(task_queue.len > 0 && run_key > 0 && scheduled_event_id > 0 && attempt >= 1);
    char name[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    weft_str queue = weft_dispatch_queue_name(r->namespace_, task_queue, name, sizeof name);
    int rc = sh_next_seq(c, seq);
    if (rc != 0) return rc;
    sh_ready_row row = {.run_key = run_key,
                        .scheduled_event_id = scheduled_event_id,
                        .attempt = attempt,
                        .task_queue = task_queue,
                        .kind = kind,
                        .namespace_ = r->namespace_};
    weft_key k;
    weft_key_ready(&k, queue, kind, *seq);
    rc = sh_put_rec(c, WEFT_TBL_READY, &k, &sh_ready_row_schema, &row);
    if (rc != 0) return rc;
    return sh_fx_ready(c, kind, queue, *seq, run_key, scheduled_event_id, attempt);
}

int sh_ready_del(sh_ctx *c, const sh_run *r, weft_str task_queue, uint8_t kind, uint64_t seq) {
    WEFT_ASSERT(seq > 0 && task_queue.len > 0);
    char name[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    weft_str queue = weft_dispatch_queue_name(r->namespace_, task_queue, name, sizeof name);
    weft_key k;
    weft_key_ready(&k, queue, kind, seq);
    return sh_del(c, WEFT_TBL_READY, &k);
}

/* ---- FIFOs ---- */

static sh_fifo *fifo_find(sh_dispatch *d, weft_str queue, uint8_t kind, bool create) {
    for (uint32_t i = 0; i < d->count; i++) {
        sh_fifo *f = &d->fifos[i];
        if (f->kind == kind && f->queue_len == queue.len &&
            (queue.len == 0 || memcmp(f->queue, queue.ptr, queue.len) == 0)) {
            return f;
        }
    }
    if (!create) return NULL;
    if (d->count == d->cap) {
        uint32_t ncap = d->cap ? d->cap * 2 : 8;
        sh_fifo *n = realloc(d->fifos, (size_t)ncap * sizeof *n);
        WEFT_ASSERT(n != NULL);
        d->fifos = n;
        d->cap = ncap;
    }
    sh_fifo *f = &d->fifos[d->count++];
    memset(f, 0, sizeof *f);
    f->queue = malloc(queue.len + 1);
    WEFT_ASSERT(f->queue != NULL);
    weft_str_copy(f->queue, queue.len + 1, queue);
    f->queue_len = queue.len;
    f->kind = kind;
    /* A FIFO born after the rebuild has not seen the table: its first pop reads it. */
    f->overflow = true;
    return f;
}

static void fifo_grow(sh_fifo *f) {
    if (f->count < f->cap) return;
    uint32_t ncap = f->cap ? WEFT_MIN(f->cap * 2, SH_FIFO_ITEMS_MAX) : 16;
    WEFT_ASSERT(ncap > f->cap);
    sh_fifo_item *n = malloc((size_t)ncap * sizeof *n);
    WEFT_ASSERT(n != NULL);
    for (uint32_t i = 0; i < f->count; i++) n[i] = f->items[(f->head + i) % f->cap];
    free(f->items);
    f->items = n;
    f->head = 0;
    f->cap = ncap;
}

/* Appends in seq order; a full window, or one already overflowing, leaves the task to the
 * table (it comes back in order on refill). */
static void fifo_push(sh_fifo *f, const sh_fifo_item *it) {
    if (f->overflow) return;
    if (f->count == SH_FIFO_ITEMS_MAX) {
        f->overflow = true;
        return;
    }
    WEFT_ASSERT(it->seq > f->high_seq);
    fifo_grow(f);
    f->items[(f->head + f->count) % f->cap] = *it;
    f->count++;
    f->high_seq = it->seq;
}

static void fifo_push_front(sh_fifo *f, const sh_fifo_item *it) {
    if (f->count == SH_FIFO_ITEMS_MAX) {
        /* Drop the newest from memory; the table still has it and refill finds it. */
        f->count--;
        f->high_seq = f->count > 0 ? f->items[(f->head + f->count - 1) % f->cap].seq : it->seq;
        f->overflow = true;
    }
    fifo_grow(f);
    f->head = (f->head + f->cap - 1) % f->cap;
    f->items[f->head] = *it;
    f->count++;
    if (it->seq > f->high_seq) f->high_seq = it->seq;
}

static void fifo_free(sh_fifo *f) {
    free(f->queue);
    free(f->items);
}

void sh_dispatch_free(sh_dispatch *d) {
    for (uint32_t i = 0; i < d->count; i++) fifo_free(&d->fifos[i]);
    free(d->fifos);
    memset(d, 0, sizeof *d);
}

/* Reads the table rows of (queue, kind) after high_seq into the FIFO. */
static int fifo_refill(weft_shard *s, sh_fifo *f, weft_err *err) {
    weft_str queue = {.ptr = f->queue, .len = f->queue_len};
    weft_key start;
    weft_key_ready(&start, queue, f->kind, f->high_seq + 1);
    size_t prefix = start.len - 8;
    weft_txn *t = NULL;
    int rc = weft_txn_begin(s->store, false, &t, err);
    if (rc != 0) return rc;
    weft_cursor *cur = NULL;
    rc = weft_cursor_open(t, WEFT_TBL_READY, &cur, err);
    weft_val k, v;
    if (rc == 0) rc = weft_cursor_seek(cur, start.bytes, start.len, &k, &v, err);
    bool more = false; /* rows remain past what the FIFO can hold */
    f->overflow = false; /* lets fifo_push take the rows; set again below unless complete */
    while (rc == 0 && k.len == start.len && memcmp(k.ptr, start.bytes, prefix) == 0) {
        if (f->count == SH_FIFO_ITEMS_MAX) {
            more = true;
            break;
        }
        sh_fifo_item it = {.seq = weft_be64_get((const uint8_t *)k.ptr + prefix)};
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        sh_ready_row row;
        rc = weft_schema_decode_buf(&sh_ready_row_schema, v.ptr, v.len, &row, &up,
                                    &s->record_limits, err);
        msgpack_unpacked_destroy(&up);
        if (rc != 0) break;
        it.run_key = row.run_key;
        it.scheduled_event_id = row.scheduled_event_id;
        it.attempt = row.attempt;
        fifo_push(f, &it);
        rc = weft_cursor_next(cur, &k, &v, err);
    }
    if (cur != NULL) weft_cursor_close(cur);
    weft_txn_abort(t);
    if (rc == -WEFT_E_NOT_FOUND) rc = 0;
    /* Only a complete scan may clear overflow; the caller handles a failure. */
    if (rc == 0) f->overflow = more;
    return rc;
}

/* ---- Leadership ---- */

int weft_shard_leader_start(weft_shard *s, weft_err *err) {
    WEFT_ASSERT(s != NULL && !s->failed);
    sh_dispatch_free(&s->dispatch);
    s->leading = true;
    WEFT_LOGF(WEFT_LOG_INFO, s->shard_id, "leading: dispatch FIFOs are rebuilt from the ready table");
    /* FIFOs are created lazily with overflow set, so each refills from the table on its first
     * pop: the rebuild costs nothing up front and reads only the queues that are polled. */
    (void)err;
    return 0;
}

void weft_shard_leader_stop(weft_shard *s) {
    WEFT_ASSERT(s != NULL);
    if (s->leading) WEFT_LOGF(WEFT_LOG_INFO, s->shard_id, "no longer leading: FIFOs dropped");
    sh_dispatch_free(&s->dispatch);
    s->leading = false;
}

bool weft_shard_is_leading(const weft_shard *s) { return s->leading; }

bool weft_shard_dispatch_pop(weft_shard *s, weft_str task_queue, uint8_t kind,
                             weft_ready_task *out) {
    WEFT_ASSERT(s != NULL && out != NULL);
    /* weft_ready_task holds dispatch names up to WEFT_DISPATCH_QUEUE_BYTES_MAX (shard.h). */
    if (!s->leading || s->failed || task_queue.len == 0 ||
        task_queue.len >= WEFT_DISPATCH_QUEUE_BYTES_MAX) {
        return false;
    }
    sh_fifo *f = fifo_find(&s->dispatch, task_queue, kind, true);
    if (f->count == 0 && f->overflow) {
        weft_err err;
        weft_err_clear(&err);
        if (fifo_refill(s, f, &err) != 0) {
            /* The rows past high_seq must still be read later, and a storage failure stops
             * the replica (STYLE rule 10): callers see weft_shard_failed(). */
            f->overflow = true;
            s->failed = true;
            WEFT_LOGF(WEFT_LOG_ERROR, s->shard_id, "refilling a dispatch queue: %s; replica stopped",
                      err.message);
            return false;
        }
    }
    if (f->count == 0) return false;
    sh_fifo_item it = f->items[f->head];
    f->head = (f->head + 1) % f->cap;
    f->count--;
    memset(out, 0, sizeof *out);
    out->kind = kind;
    weft_str_copy(out->task_queue, sizeof out->task_queue, task_queue);
    out->seq = it.seq;
    out->run_key = it.run_key;
    out->scheduled_event_id = it.scheduled_event_id;
    out->attempt = it.attempt;
    return true;
}

void weft_shard_dispatch_unpop(weft_shard *s, const weft_ready_task *t) {
    WEFT_ASSERT(s != NULL && t != NULL && t->seq > 0);
    if (!s->leading) return;
    sh_fifo *f = fifo_find(&s->dispatch, weft_str_c(t->task_queue), t->kind, true);
    sh_fifo_item it = {.seq = t->seq,
                       .run_key = t->run_key,
                       .scheduled_event_id = t->scheduled_event_id,
                       .attempt = t->attempt};
    fifo_push_front(f, &it);
}

void sh_dispatch_after_commit(weft_shard *s, const sh_effects *fx) {
    for (uint32_t i = 0; i < fx->ready_count; i++) {
        const sh_ready_fx *r = &fx->ready[i];
        if (s->leading) {
            sh_fifo *f = fifo_find(&s->dispatch, weft_str_c(r->task_queue), r->kind, true);
            sh_fifo_item it = {.seq = r->seq,
                               .run_key = r->run_key,
                               .scheduled_event_id = r->scheduled_event_id,
                               .attempt = r->attempt};
            fifo_push(f, &it);
        }
        if (s->leading && s->obs.task_ready != NULL) {
            weft_ready_task t = {.kind = r->kind,
                                 .seq = r->seq,
                                 .run_key = r->run_key,
                                 .scheduled_event_id = r->scheduled_event_id,
                                 .attempt = r->attempt};
            weft_str_copy(t.task_queue, sizeof t.task_queue, weft_str_c(r->task_queue));
            s->obs.task_ready(s->obs.ctx, s, &t);
        }
    }
}

/* ---- Building Started commands ---- */

/* Checks in a read transaction that a popped task is still what the ready table holds. */
static int dispatch_check_row(sh_ctx *c, const weft_ready_task *t) {
    weft_key k;
    weft_key_ready(&k, weft_str_c(t->task_queue), t->kind, t->seq);
    sh_ready_row row;
    int rc = sh_get_rec(c, WEFT_TBL_READY, &k, &sh_ready_row_schema, &row);
    if (rc == -WEFT_E_NOT_FOUND || (rc == 0 && (row.run_key != t->run_key ||
                                                row.scheduled_event_id != t->scheduled_event_id ||
                                                row.attempt != t->attempt))) {
        return sh_reject(c, WEFT_E_NOT_FOUND, "task",
                         "the task is no longer current (started, moved, canceled or closed): "
                         "drop it and pop the next");
    }
    return rc;
}

static int dispatch_begin(weft_shard *s, sh_ctx *c, weft_err *err) {
    if (s->failed) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, NULL,
                            "shard %u stopped after a storage failure", s->shard_id);
    }
    if (!s->leading) {
        return weft_err_set(err, WEFT_E_NOT_LEADER, NULL,
                            "shard %u is not leading here: poll the leader", s->shard_id);
    }
    weft_txn *t = NULL;
    int rc = weft_txn_begin(s->store, false, &t, err);
    if (rc != 0) return rc;
    sh_ctx_init(c, s, t, s->clock_ms, NULL);
    return 0;
}

static int dispatch_end(sh_ctx *c, int rc, weft_err *err) {
    if (rc != 0 && err != NULL) *err = c->err;
    weft_txn_abort(c->txn);
    sh_ctx_close(c);
    return rc;
}

static int encode_cmd(sh_ctx *c, const weft_shard_cmd *sc, uint8_t **out, size_t *len) {
    if (sh_cmd_encode(c->s, sc, out, len) != 0) {
        return weft_err_set(&c->err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                            "out of memory encoding a shard command");
    }
    return 0;
}

/* Checks that the popped attempt is still the activity's current one, waiting to start. */
static int activity_check(sh_ctx *c, const weft_ready_task *t) {
    sh_act a;
    int rc = sh_act_load(c, t->run_key, t->scheduled_event_id, &a);
    if (rc == -WEFT_E_NOT_FOUND || (rc == 0 && (a.state != SH_ACT_SCHEDULED ||
                                                a.attempt != t->attempt))) {
        return sh_reject(c, WEFT_E_NOT_FOUND, "task", "the activity task is no longer current");
    }
    return rc;
}

int weft_shard_activity_dispatch(weft_shard *s, const weft_ready_task *t, weft_str identity,
                                 uint8_t **cmd, size_t *cmd_len, weft_err *err) {
    WEFT_ASSERT(t != NULL && t->kind == WEFT_TASK_KIND_ACTIVITY);
    WEFT_ASSERT(cmd != NULL && cmd_len != NULL);
    *cmd = NULL;
    sh_ctx c;
    int rc = dispatch_begin(s, &c, err);
    if (rc != 0) return rc;
    rc = dispatch_check_row(&c, t);
    if (rc == 0) rc = activity_check(&c, t);
    if (rc == 0) {
        weft_shard_cmd sc = {.type = WEFT_SC_ACT_STARTED,
                             .task_token = sh_token_make(&c, t->run_key, t->scheduled_event_id,
                                                         t->attempt, WEFT_TASK_KIND_ACTIVITY),
                             .identity = identity};
        rc = encode_cmd(&c, &sc, cmd, cmd_len);
    }
    return dispatch_end(&c, rc, err);
}

int weft_shard_workflow_dispatch(weft_shard *s, const weft_ready_task *t, weft_str identity,
                                 weft_str polled_queue, weft_str poll_request_id,
                                 uint8_t **cmd, size_t *cmd_len, weft_err *err) {
    WEFT_ASSERT(t != NULL && t->kind == WEFT_TASK_KIND_WORKFLOW);
    *cmd = NULL;
    sh_ctx c;
    int rc = dispatch_begin(s, &c, err);
    if (rc != 0) return rc;
    rc = dispatch_check_row(&c, t);
    sh_run r;
    if (rc == 0) rc = sh_run_load(&c, t->run_key, &r);
    if (rc == -WEFT_E_NOT_FOUND ||
        (rc == 0 && (r.wft.state != SH_WFT_SCHEDULED || r.wft.attempt != t->attempt ||
                     r.wft.scheduled_event_id != t->scheduled_event_id))) {
        rc = sh_reject(&c, WEFT_E_NOT_FOUND, "task", "the workflow task is no longer current");
    }
    if (rc == 0) {
        weft_shard_cmd sc = {.type = WEFT_SC_WFT_STARTED,
                             .task_token = sh_token_make(&c, t->run_key, t->scheduled_event_id,
                                                         t->attempt, WEFT_TASK_KIND_WORKFLOW),
                             .identity = identity,
                             .task_queue = polled_queue,
                             .request_id = poll_request_id};
        rc = encode_cmd(&c, &sc, cmd, cmd_len);
    }
    return dispatch_end(&c, rc, err);
}
