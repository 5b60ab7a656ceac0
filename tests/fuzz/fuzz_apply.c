/* fuzz_apply.c: raft log entries through apply, as every replica runs them (raft/fsm.c): each
 * entry is decoded with weft_batch_decode and its commands applied with weft_shard_apply on a
 * real shard in a fresh LMDB env. The input is a sequence of entries, each prefixed by its
 * length (u32, little-endian; a prefix past the end takes what is left), applied at indexes
 * 1, 2, ... so that later entries meet the state earlier ones built.
 * Beyond "no crash", it checks what a bad entry must never do:
 *   - stop a replica: apply answers an invalid command with a rejection, never a storage
 *     failure (which would stop every replica of the shard at once);
 *   - make replicas diverge (G2): the same entries go to a leader replica (dispatch on, its
 *     observer called) and to a follower, and both must hold byte-identical tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "proto/base.h"
#include "proto/log.h"
#include "raft/batch.h"
#include "shards/apply.h" /* struct weft_shard, to read the replica's store */
#include "shards/shard.h"
#include "storage/store.h"

/* Entries applied per input, at most: enough for a workflow's life, small enough to stay fast. */
#define FA_ENTRIES_MAX 64u
/* Each replica's LMDB map: far above what FA_ENTRIES_MAX entries of a fuzz input can write. */
#define FA_MAP_BYTES (64u * 1024u * 1024u)

typedef struct fa_replica {
    char dir[256]; /* its scratch LMDB env */
    weft_shard *s; /* the shard open on it */
} fa_replica;

static weft_limits fa_limits;                           /* the defaults, as a node's */
static weft_bytes fa_cmds[WEFT_RAFT_BATCH_CMDS_MAX];    /* one entry's commands */
static weft_reply fa_replies[WEFT_RAFT_BATCH_CMDS_MAX]; /* and their replies */

/* The leader's observer: its callbacks run after each commit, as node/ runs them. */
static void fa_task_ready(void *ctx, weft_shard *s, const weft_ready_task *t) {
    (void)ctx;
    WEFT_ASSERT(weft_shard_is_leading(s));
    WEFT_ASSERT(t->kind == WEFT_TASK_KIND_WORKFLOW || t->kind == WEFT_TASK_KIND_ACTIVITY);
}
static void fa_timer_added(void *ctx, weft_shard *s, uint64_t at_ms) {
    (void)ctx;
    (void)s;
    (void)at_ms;
}
static void fa_run_changed(void *ctx, weft_shard *s, uint64_t run_key, bool closed) {
    (void)ctx;
    (void)s;
    (void)run_key;
    (void)closed;
}

static void fa_open(fa_replica *r, bool leader) {
    fuzz_tmpdir(r->dir, sizeof r->dir, "apply");
    weft_store_opts opts = {.map_bytes = FA_MAP_BYTES, .no_sync = true};
    weft_err err = {0};
    if (weft_shard_open(&r->s, 3, "fuzz-cluster", r->dir, &fa_limits, &opts, &err) != 0) {
        fprintf(stderr, "fuzz_apply: cannot open a shard in %s: %s\n", r->dir, err.message);
        abort();
    }
    if (!leader) return;
    weft_shard_observer obs = {.task_ready = fa_task_ready,
                               .timer_added = fa_timer_added,
                               .run_changed = fa_run_changed};
    weft_shard_set_observer(r->s, &obs);
    int rc = weft_shard_leader_start(r->s, &err);
    WEFT_ASSERT(rc == 0);
}

static void fa_close(fa_replica *r) {
    weft_shard_close(r->s);
    r->s = NULL;
    fuzz_rmtree(r->dir);
}

/* Applies one entry on a replica, the way raft/fsm.c does: an entry that does not decode is
 * skipped on every replica alike. */
static void fa_apply(fa_replica *r, uint64_t index, const uint8_t *entry, size_t len) {
    uint64_t leader_time_ms = 0;
    uint32_t n = 0;
    weft_err err = {0};
    if (weft_batch_decode(entry, len, &leader_time_ms, fa_cmds, WEFT_RAFT_BATCH_CMDS_MAX, &n,
                          &err) != 0)
        return;
    WEFT_ASSERT(n >= 1 && n <= WEFT_RAFT_BATCH_CMDS_MAX);
    memset(fa_replies, 0, (size_t)n * sizeof fa_replies[0]);
    int rc = weft_shard_apply(r->s, index, leader_time_ms, fa_cmds, n, fa_replies);
    if (rc != 0) {
        fprintf(stderr, "fuzz_apply: entry %llu stopped the replica: %s\n",
                (unsigned long long)index, weft_error_name(rc));
        abort();
    }
    for (uint32_t i = 0; i < n; i++) weft_reply_reset(&fa_replies[i]);
    WEFT_ASSERT(weft_shard_applied_index(r->s) == index);
}

/* Every table of the replica in key order, as (table, key length, key, value length, value):
 * what G2 says replicas agree on (the determinism unit tests compare the same). */
static void fa_dump(fa_replica *r, char **out, size_t *len) {
    FILE *f = open_memstream(out, len);
    WEFT_ASSERT(f != NULL);
    weft_txn *t = NULL;
    weft_err err = {0};
    int rc = weft_txn_begin(r->s->store, false, &t, &err);
    WEFT_ASSERT(rc == 0);
    for (int tbl = 0; tbl < WEFT_TBL__COUNT; tbl++) {
        weft_cursor *cur = NULL;
        rc = weft_cursor_open(t, (weft_table)tbl, &cur, &err);
        WEFT_ASSERT(rc == 0);
        weft_val k, v;
        for (rc = weft_cursor_seek(cur, NULL, 0, &k, &v, &err); rc == 0;
             rc = weft_cursor_next(cur, &k, &v, &err)) {
            uint32_t kl = (uint32_t)k.len, vl = (uint32_t)v.len;
            fwrite(&tbl, sizeof tbl, 1, f);
            fwrite(&kl, sizeof kl, 1, f);
            fwrite(k.ptr, 1, k.len, f);
            fwrite(&vl, sizeof vl, 1, f);
            fwrite(v.ptr, 1, v.len, f);
        }
        WEFT_ASSERT(rc == -WEFT_E_NOT_FOUND);
        weft_cursor_close(cur);
    }
    weft_txn_abort(t);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    weft_log_set_level(WEFT_LOG_ERROR);
    weft_limits_default(&fa_limits);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fa_replica leader, follower;
    fa_open(&leader, true);
    fa_open(&follower, false);
    const uint8_t *p = data;
    size_t left = size;
    for (uint64_t index = 1; left > 0 && index <= FA_ENTRIES_MAX; index++) {
        uint32_t len = 0;
        if (!fuzz_take_u32(&p, &left, &len) || len > left) len = (uint32_t)left;
        /* raft hands apply its own copy of the entry; so does this, so ASan sees overreads. */
        uint8_t *entry = malloc(len ? len : 1);
        WEFT_ASSERT(entry != NULL);
        memcpy(entry, p, len);
        fa_apply(&leader, index, entry, len);
        fa_apply(&follower, index, entry, len);
        free(entry);
        p += len;
        left -= len;
    }
    char *a = NULL, *b = NULL;
    size_t a_len = 0, b_len = 0;
    fa_dump(&leader, &a, &a_len);
    fa_dump(&follower, &b, &b_len);
    if (a_len != b_len || memcmp(a, b, a_len) != 0) {
        fprintf(stderr, "fuzz_apply: leader and follower diverged (tables of %zu and %zu "
                        "bytes differ; G2)\n", a_len, b_len);
        abort();
    }
    free(a);
    free(b);
    fa_close(&leader);
    fa_close(&follower);
    return 0;
}

#ifdef WEFT_FUZZ_LIBFUZZER
/* Commands one mutated entry may hold: as many as an entry may. */
static weft_bytes fa_mut_cmds[WEFT_RAFT_BATCH_CMDS_MAX];

/* Mutates one command of the entry, re-framed with weft_batch_encode so the entry still
 * decodes: half the time the client body inside the command (re-encoded as a
 * weft_shard_cmd), otherwise the command's bytes; now and then the leader's time too. */
static size_t fa_mutate_entry(uint8_t *rec, size_t len, size_t cap, uint64_t *rng) {
    uint64_t leader_time_ms = 0;
    uint32_t n = 0;
    weft_err err = {0};
    if (cap < 16 || fuzz_rand(rng) % 8 == 0 ||
        weft_batch_decode(rec, len, &leader_time_ms, fa_mut_cmds, WEFT_RAFT_BATCH_CMDS_MAX, &n,
                          &err) != 0)
        return LLVMFuzzerMutate(rec, len, cap);
    uint32_t k = (uint32_t)(fuzz_rand(rng) % n);
    uint8_t *cmd = malloc(cap);
    uint8_t *body = malloc(cap);
    WEFT_ASSERT(cmd != NULL && body != NULL);
    size_t cmd_len = fa_mut_cmds[k].len;
    if (cmd_len > 0) memcpy(cmd, fa_mut_cmds[k].ptr, cmd_len); /* an empty command has no ptr */
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_shard_cmd sc;
    uint8_t *encoded = NULL;
    size_t encoded_len = 0;
    if (fuzz_rand(rng) % 2 == 0 &&
        weft_schema_decode_buf(&weft_shard_cmd_schema, cmd, cmd_len, &sc, &up, &fa_limits,
                               &err) == 0) {
        size_t body_len = sc.body.len;
        if (body_len > 0) memcpy(body, sc.body.ptr, body_len);
        body_len = LLVMFuzzerMutate(body, body_len, cap / 2);
        sc.body = (weft_bytes){.ptr = body, .len = (uint32_t)body_len};
        if (weft_schema_encode_buf(&weft_shard_cmd_schema, &sc, &encoded, &encoded_len) == 0 &&
            encoded_len <= cap) {
            memcpy(cmd, encoded, encoded_len);
            cmd_len = encoded_len;
        }
        free(encoded);
    } else {
        cmd_len = LLVMFuzzerMutate(cmd, cmd_len, cap / 2);
    }
    msgpack_unpacked_destroy(&up);
    fa_mut_cmds[k] = (weft_bytes){.ptr = cmd, .len = (uint32_t)cmd_len};
    if (fuzz_rand(rng) % 8 == 0) leader_time_ms += fuzz_rand(rng) % 100000u;
    void *entry = NULL;
    size_t entry_len = 0;
    size_t out = 0;
    if (weft_batch_encode(leader_time_ms, fa_mut_cmds, n, &entry, &entry_len, malloc) == 0 &&
        entry_len <= cap) {
        memcpy(rec, entry, entry_len);
        out = entry_len;
    }
    free(entry);
    free(cmd);
    free(body);
    return out > 0 ? out : LLVMFuzzerMutate(rec, len, cap);
}

/* Keeps the entries' framing and mutates inside one of them (fuzz_util.h). */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    return fuzz_mutate_records(data, size, max_size, seed, false, fa_mutate_entry);
}
#endif
