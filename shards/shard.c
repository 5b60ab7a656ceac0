/* shard.c: the shard replica's lifecycle and its apply loop (DESIGN section 5): open with
 * identity stamping, one LMDB write transaction per raft entry holding every command's effect
 * plus the applied index and shard clock, replies per command, effects after commit, and
 * snapshot/restore. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* ---- Open and close ---- */

/* Our own records never trip the configured request limits, even after a config change. */
static void shard_record_limits(weft_limits *l) {
    weft_limits_default(l);
    l->frame_bytes_max = UINT32_MAX;
    l->payload_bytes_max = UINT32_MAX;
    l->id_bytes_max = UINT32_MAX;
}

static int meta_get_bytes(weft_txn *t, const char *name, weft_val *v, weft_err *err) {
    return weft_kv_get(t, WEFT_TBL_META, name, strlen(name), v, err);
}

/* Stamps shard id, cluster id and schema version on first open; afterwards refuses an env
 * that belongs to another shard or cluster (section 5, "Cluster identity"). */
static int shard_identity(weft_shard *s, weft_txn *t, const char *dir, weft_err *err) {
    weft_val v;
    int rc = meta_get_bytes(t, WEFT_META_CLUSTER_ID, &v, err);
    if (rc == -WEFT_E_NOT_FOUND) {
        weft_err_clear(err);
        rc = weft_kv_put(t, WEFT_TBL_META, WEFT_META_CLUSTER_ID, strlen(WEFT_META_CLUSTER_ID),
                         s->cluster_id, strlen(s->cluster_id), err);
        if (rc == 0) rc = weft_meta_put_u64(t, WEFT_META_SHARD_ID, s->shard_id, err);
        if (rc == 0) rc = weft_meta_put_u64(t, WEFT_META_SCHEMA_VERSION, WEFT_STORE_SCHEMA_VERSION, err);
        return rc;
    }
    if (rc != 0) return rc;
    uint64_t shard = 0, version = 0;
    bool same_cluster = v.len == strlen(s->cluster_id) && memcmp(v.ptr, s->cluster_id, v.len) == 0;
    rc = weft_meta_get_u64(t, WEFT_META_SHARD_ID, &shard, err);
    if (rc == 0) rc = weft_meta_get_u64(t, WEFT_META_SCHEMA_VERSION, &version, err);
    if (rc != 0) return rc;
    if (!same_cluster || shard != s->shard_id) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "state_dir",
                            "%s holds shard %llu of cluster '%.*s', but this node was asked to "
                            "open shard %u of cluster '%s': point the data directory at the "
                            "right node's data, or fix the cluster id / shard count in the config",
                            dir, (unsigned long long)shard, (int)v.len, (const char *)v.ptr,
                            s->shard_id, s->cluster_id);
    }
    if (version > WEFT_STORE_SCHEMA_VERSION) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "state_dir",
                            "%s was written by a newer weft (schema %llu; this one reads %u): "
                            "run the newer weftd",
                            dir, (unsigned long long)version, WEFT_STORE_SCHEMA_VERSION);
    }
    return 0;
}

static int shard_load_meta(weft_shard *s, const char *dir, weft_err *err) {
    weft_txn *t = NULL;
    int rc = weft_txn_begin(s->store, true, &t, err);
    if (rc != 0) return rc;
    rc = shard_identity(s, t, dir, err);
    if (rc == 0) rc = weft_meta_get_u64(t, WEFT_META_APPLIED_INDEX, &s->applied_index, err);
    if (rc == 0) rc = weft_meta_get_u64(t, WEFT_META_SHARD_CLOCK_MS, &s->clock_ms, err);
    if (rc == 0) rc = sh_limits_load(s, t, err);
    if (rc != 0) {
        weft_txn_abort(t);
        return rc;
    }
    return weft_txn_commit(t, err);
}

int weft_shard_open(weft_shard **out, uint32_t shard_id, const char *cluster_id,
                    const char *state_dir, const weft_limits *limits,
                    const weft_store_opts *store_opts, weft_err *err) {
    WEFT_ASSERT(out != NULL && cluster_id != NULL && state_dir != NULL && limits != NULL);
    *out = NULL;
    if (strlen(cluster_id) == 0 || strlen(cluster_id) >= sizeof(((weft_shard *)0)->cluster_id)) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "cluster_id",
                            "cluster id must be 1 to %zu bytes",
                            sizeof(((weft_shard *)0)->cluster_id) - 1);
    }
    weft_shard *s = calloc(1, sizeof *s);
    if (s == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory");
    s->shard_id = shard_id;
    strcpy(s->cluster_id, cluster_id);
    s->limits = limits;
    shard_record_limits(&s->record_limits);
    int rc = weft_store_open(&s->store, state_dir, store_opts, err);
    if (rc == 0) rc = shard_load_meta(s, state_dir, err);
    if (rc != 0) {
        if (s->store != NULL) weft_store_close(s->store);
        free(s);
        return rc;
    }
    WEFT_LOGF(WEFT_LOG_INFO, shard_id, "opened %s at applied index %llu, clock %llu", state_dir,
              (unsigned long long)s->applied_index, (unsigned long long)s->clock_ms);
    *out = s;
    return 0;
}

int weft_shard_close(weft_shard *s) {
    if (s == NULL) return 0;
    sh_dispatch_free(&s->dispatch);
    int rc = weft_store_close(s->store);
    free(s);
    return rc;
}

void weft_shard_set_observer(weft_shard *s, const weft_shard_observer *obs) {
    WEFT_ASSERT(s != NULL);
    if (obs == NULL) {
        memset(&s->obs, 0, sizeof s->obs);
    } else {
        s->obs = *obs;
    }
}

uint32_t weft_shard_id(const weft_shard *s) { return s->shard_id; }
/* A poisoned store counts too: a read or the timer gate may have hit the failure outside apply. */
bool weft_shard_failed(const weft_shard *s) { return s->failed || weft_store_poisoned(s->store); }

uint64_t weft_shard_applied_index(const weft_shard *s) { return s->applied_index; }
uint64_t weft_shard_clock_ms(const weft_shard *s) { return s->clock_ms; }

/* ---- Apply ---- */

/* A storage failure stops the replica (STYLE rule 10): nothing more is applied or read. */
static int shard_fail(weft_shard *s, const weft_err *err) {
    s->failed = true;
    WEFT_LOGF(WEFT_LOG_ERROR, s->shard_id, "apply failed, replica stopped: %s", err->message);
    return -WEFT_E_INTERNAL;
}

static int shard_apply_cmds(weft_shard *s, sh_ctx *c, const weft_bytes *cmds, uint32_t n,
                            weft_reply *replies) {
    weft_reply unwanted = {0}; /* each command's outcome when nobody waits for it */
    for (uint32_t i = 0; i < n; i++) {
        sh_ctx_reset(c);
        c->reply = replies != NULL ? &replies[i] : &unwanted;
        c->reply_wanted = replies != NULL;
        uint64_t writes = c->writes;
        int rc = sh_cmd_apply(c, cmds[i]);
        if (rc == -WEFT_E_INTERNAL || weft_store_poisoned(s->store)) {
            weft_reply_reset(&unwanted);
            if (c->err.code == 0) weft_err_set(&c->err, WEFT_E_INTERNAL, NULL, "storage failure");
            return shard_fail(s, &c->err);
        }
        if (rc < 0) {
            /* All or nothing: a rejection never follows a write of its command. */
            WEFT_ASSERT(c->writes == writes);
            sh_reply_from_err(c);
        }
        weft_reply_reset(&unwanted);
    }
    return 0;
}

static void shard_after_commit(weft_shard *s, const sh_effects *fx) {
    sh_dispatch_after_commit(s, fx);
    if (fx->earliest_timer_ms > 0 && s->obs.timer_added != NULL) {
        s->obs.timer_added(s->obs.ctx, s, fx->earliest_timer_ms);
    }
    for (uint32_t i = 0; s->obs.run_changed != NULL && i < fx->changed_count; i++) {
        s->obs.run_changed(s->obs.ctx, s, fx->changed[i].run_key, fx->changed[i].closed);
    }
}

static int shard_apply_txn(weft_shard *s, weft_txn *t, uint64_t index, uint64_t now_ms,
                           const weft_bytes *cmds, uint32_t n, weft_reply *replies,
                           sh_effects *fx, weft_limits *lim) {
    sh_ctx c;
    sh_ctx_init(&c, s, t, now_ms, fx);
    /* Apply enforces the replicated limits, never this node's config (limits.c, G2). */
    c.entry_limits = lim;
    c.lim = lim;
    int rc = shard_apply_cmds(s, &c, cmds, n, replies);
    if (rc == 0) {
        rc = weft_meta_put_u64(t, WEFT_META_APPLIED_INDEX, index, &c.err);
        if (rc == 0) rc = weft_meta_put_u64(t, WEFT_META_SHARD_CLOCK_MS, now_ms, &c.err);
        if (rc != 0) rc = shard_fail(s, &c.err);
    }
    sh_ctx_close(&c);
    return rc;
}

int weft_shard_apply(weft_shard *s, uint64_t index, uint64_t leader_time_ms,
                     const weft_bytes *cmds, uint32_t n, weft_reply *replies) {
    WEFT_ASSERT(s != NULL && (n == 0 || cmds != NULL));
    if (s->failed) return -WEFT_E_INTERNAL;
    /* Raft re-applies entries after a restart; the applied index makes that a no-op. */
    if (index <= s->applied_index) return 0;
    /* The shard clock never goes backwards (section 9). */
    uint64_t now_ms = WEFT_MAX(s->clock_ms, leader_time_ms);
    weft_err err;
    weft_err_clear(&err);
    weft_txn *t = NULL;
    if (weft_txn_begin(s->store, true, &t, &err) != 0) return shard_fail(s, &err);
    sh_effects fx = {0};
    weft_limits lim = s->applied_limits; /* a stamped command changes it; kept on commit */
    int rc = shard_apply_txn(s, t, index, now_ms, cmds, n, replies, &fx, &lim);
    if (rc != 0) {
        weft_txn_abort(t);
    } else if (weft_txn_commit(t, &err) != 0) {
        rc = shard_fail(s, &err);
    }
    /* Nothing committed, so no command has an outcome to report (STYLE rule 10): a caller that
     * forgot to drop the replies must not see a success that never happened. */
    if (rc != 0 && replies != NULL) {
        for (uint32_t i = 0; i < n; i++) weft_reply_reset(&replies[i]);
    }
    if (rc == 0) {
        s->applied_index = index;
        s->clock_ms = now_ms;
        s->applied_limits = lim;
        shard_after_commit(s, &fx);
    }
    sh_fx_free(&fx);
    return rc;
}

/* ---- Snapshot and restore ---- */

int weft_shard_snapshot(weft_shard *s, void *(*alloc)(size_t), void **buf, size_t *len,
                        weft_err *err) {
    WEFT_ASSERT(s != NULL && alloc != NULL && buf != NULL && len != NULL);
    /* This runs on a threadpool thread while apply runs on the loop (raft/fsm.c), so it reads
     * nothing apply writes: not s->failed nor s->applied_index. The store copies one
     * consistent read transaction and takes the image's applied index from that copy. A
     * storage failure has poisoned the store (an atomic, checked there); a failed apply
     * committed nothing, so what is copied is still a committed state, and the raft adapter
     * takes no snapshot after an apply failure anyway. */
    return weft_store_snapshot(s->store, alloc, buf, len, err);
}

int weft_shard_restore(weft_shard *s, const void *buf, size_t len, weft_err *err) {
    WEFT_ASSERT(s != NULL && buf != NULL);
    uint64_t image_index = 0;
    int rc = weft_store_snapshot_applied_index(buf, len, &image_index, err);
    if (rc != 0) return rc;
    /* A normal restart must not restore O(state) (section 5). */
    if (!s->failed && s->applied_index >= image_index) {
        WEFT_LOGF(WEFT_LOG_INFO, s->shard_id, "restore skipped: state at %llu, snapshot at %llu",
                  (unsigned long long)s->applied_index, (unsigned long long)image_index);
        return 0;
    }
    rc = weft_store_restore(s->store, buf, len, err);
    if (rc == -WEFT_E_INVALID_ARGUMENT) return rc;
    if (rc != 0) return shard_fail(s, err);
    s->failed = false;
    s->applied_index = 0;
    s->clock_ms = 0;
    rc = shard_load_meta(s, weft_store_dir(s->store), err);
    if (rc != 0) return shard_fail(s, err);
    /* FIFOs refill lazily from the restored ready table. */
    sh_dispatch_free(&s->dispatch);
    WEFT_LOGF(WEFT_LOG_INFO, s->shard_id, "restored snapshot at index %llu",
              (unsigned long long)s->applied_index);
    return 0;
}
