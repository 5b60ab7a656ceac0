/* fsm.c: the raft_fsm adapter. It turns raft's opaque entries into decoded batches for a
 * weft_group_fsm, carries each entry's replies to the proposer, and keeps libraft 0.15's apply
 * rules (notes/libraft-0.15.md): apply never fails for a merely invalid command, the index is
 * raft_last_applied()+1, and a storage failure is reported so the host restarts the replica
 * instead of leaving a follower wedged in RAFT_UNAVAILABLE. */
#include <stdlib.h>
#include <string.h>

#include "../proto/log.h"
#include "batch.h"

void weft_applied_free(weft_applied *a) {
    if (a == NULL) return;
    for (uint32_t i = 0; i < a->n; i++) weft_reply_reset(&a->replies[i]);
    free(a);
}

/* Records the first storage failure and tells the host once. Every later apply refuses at once
 * without touching the fsm, so raft cannot apply past the failed entry before the restart. */
static void adapter_fail(weft_fsm_adapter *a, int code, const char *what) {
    WEFT_ASSERT(code < 0);
    WEFT_LOGF(WEFT_LOG_ERROR, a->group_id,
              "%s failed with %s at applied index %llu: stopping this replica; it restarts "
              "from disk",
              what, weft_error_name(code), (unsigned long long)a->last_index);
    if (a->failed != 0) return;
    a->failed = code;
    if (a->failed_cb != NULL) a->failed_cb(a->failed_data, code);
}

static void adapter_drop_last(weft_fsm_adapter *a) {
    weft_applied_free(a->last);
    a->last = NULL;
}

static weft_applied *applied_new(uint64_t index, uint32_t n) {
    weft_applied *ap = calloc(1, sizeof *ap + (size_t)n * sizeof ap->replies[0]);
    if (ap == NULL) return NULL;
    ap->index = index;
    ap->n = n;
    return ap;
}

static int adapter_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result) {
    weft_fsm_adapter *a = rf->data;
    WEFT_ASSERT(a != NULL && a->raft != NULL && result != NULL);
    *result = NULL;
    /* raft advances last_applied only after apply returns (notes: no index argument). */
    uint64_t index = raft_last_applied(a->raft) + 1;
    adapter_drop_last(a);
    if (a->failed != 0) return RAFT_IOERR;
    WEFT_ASSERT(index > a->last_index);

    uint64_t leader_time_ms = 0;
    uint32_t n = 0;
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_batch_decode(buf->base, buf->len, &leader_time_ms, a->cmds,
                               WEFT_RAFT_BATCH_CMDS_MAX, &n, &err);
    if (rc != 0) {
        /* Every replica decodes the same bytes the same way, so skipping keeps them equal;
         * failing would wedge followers forever. The proposer gets INTERNAL. */
        WEFT_LOGF(WEFT_LOG_ERROR, a->group_id, "entry %llu skipped: %s",
                  (unsigned long long)index, err.message);
        a->last_index = index;
        return 0;
    }
    weft_applied *ap = applied_new(index, n);
    if (ap == NULL) {
        adapter_fail(a, -WEFT_E_RESOURCE_EXHAUSTED, "allocating replies");
        return RAFT_NOMEM;
    }
    rc = a->fsm->apply(a->fsm->ctx, index, leader_time_ms, a->cmds, n, ap->replies);
    if (rc != 0) {
        weft_applied_free(ap);
        adapter_fail(a, rc < 0 ? rc : -WEFT_E_INTERNAL, "apply");
        return RAFT_IOERR;
    }
    a->last_index = index;
    a->last = ap;
    *result = ap;
    return 0;
}

/* ---- Snapshots ----
 *
 * Synchronous (raft_fsm version 2 behaviour, used when the io has no async_work, e.g. under
 * raft_fixture in the simulation): raft calls snapshot on the loop and the copy happens there.
 *
 * Asynchronous (version 3, snapshot_async, enabled by weft_fsm_adapter_bind when raft's io can
 * run async work; always with the host's raft_uv): raft calls adapter_snapshot on the loop at
 * applied index S, which only records that a snapshot is under way and hands back no buffers.
 * raft then runs adapter_snapshot_async on a libuv threadpool thread through io->async_work;
 * it calls the group fsm's snapshot callback, which copies the state while the loop keeps
 * applying entries. Back on the loop raft puts the buffers as the snapshot at index S and calls
 * adapter_snapshot_finalize, which frees them.
 *
 * Why an image taken after S is a valid snapshot "at S": the copy on the worker may hold the
 * state at a later applied index S' >= S, because applies continue meanwhile. S' <= raft's
 * commit index, since only committed entries are applied. The image carries S' itself: the
 * shard writes its applied index in the same LMDB transaction as the state it describes, and
 * the store reads the header's index from the copied image (storage/snapshot.c). Restoring
 * the image sets the state to S' (applied index and clock from the image, not from raft's S);
 * raft then replays S+1 onwards, and apply skips every entry at or below the env's applied
 * index, so entries S+1..S' are not applied twice. The group fsm contract (host.h) requires
 * exactly that skip. raft keeps entries after S in its log (it compacts only up to S minus the
 * trailing amount), so every entry after S' can still be replayed.
 *
 * raft 0.15 takes no second snapshot and installs none from a leader while one is pending
 * (r->snapshot.pending), so nothing replaces the state under the copy; raft_uv's close waits
 * for async work, so the host restarts or closes a replica only after the copy finished. */

/* The group fsm's snapshot into raft buffers. Any thread; touches no adapter field. Returns 0,
 * or the group fsm's negative weft code. */
static int snapshot_take(weft_fsm_adapter *a, struct raft_buffer *bufs[], unsigned *n_bufs) {
    struct raft_buffer *arr = raft_malloc(sizeof *arr);
    if (arr == NULL) return -WEFT_E_RESOURCE_EXHAUSTED;
    void *data = NULL;
    size_t len = 0;
    int rc = a->fsm->snapshot(a->fsm->ctx, &data, &len);
    if (rc != 0) {
        raft_free(arr);
        return rc < 0 ? rc : -WEFT_E_INTERNAL;
    }
    WEFT_ASSERT(data != NULL || len == 0);
    arr[0].base = data;
    arr[0].len = len;
    *bufs = arr;
    *n_bufs = 1;
    return 0;
}

/* A snapshot failure, on the loop: a storage failure stops the replica like an apply failure
 * would; anything else (too big, no memory) only skips this snapshot. */
static void snapshot_failed(weft_fsm_adapter *a, int rc) {
    WEFT_ASSERT(rc < 0);
    if (rc == -WEFT_E_INTERNAL) adapter_fail(a, rc, "snapshot");
    else WEFT_LOGF(WEFT_LOG_WARN, a->group_id, "snapshot skipped: %s", weft_error_name(rc));
}

static int adapter_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs) {
    weft_fsm_adapter *a = rf->data;
    WEFT_ASSERT(bufs != NULL && n_bufs != NULL);
    if (a->failed != 0) return RAFT_BUSY;
    if (rf->snapshot_async != NULL) {
        /* The copy happens in adapter_snapshot_async; raft wants no buffers yet. */
        WEFT_ASSERT(!a->snapshot_pending);
        a->snapshot_pending = true;
        a->snapshot_async_rc = 0;
        *bufs = NULL;
        *n_bufs = 0;
        return 0;
    }
    int rc = snapshot_take(a, bufs, n_bufs);
    if (rc != 0) {
        snapshot_failed(a, rc);
        /* RAFT_BUSY tells raft to try again later rather than to fail the apply path. */
        return RAFT_BUSY;
    }
    a->snapshots_count++;
    return 0;
}

/* Version 3, on a threadpool thread while the loop keeps applying. It may touch only what the
 * loop does not change while a snapshot is pending: the fsm pointer and snapshot_async_rc,
 * which the loop reads after the work, in finalize (libuv orders the two through the
 * threadpool's queue lock). The group fsm's snapshot is thread-safe by contract (host.h). */
static int adapter_snapshot_async(struct raft_fsm *rf, struct raft_buffer *bufs[],
                                  unsigned *n_bufs) {
    weft_fsm_adapter *a = rf->data;
    WEFT_ASSERT(bufs != NULL && n_bufs != NULL);
    WEFT_ASSERT(*bufs == NULL && *n_bufs == 0); /* adapter_snapshot handed none */
    int rc = snapshot_take(a, bufs, n_bufs);
    a->snapshot_async_rc = rc;
    /* raft then finalizes on the loop without putting anything. */
    return rc == 0 ? 0 : RAFT_IOERR;
}

/* raft has finished with the buffers (written, failed, or the async copy failed); they are
 * ours to free. On the loop thread. */
static int adapter_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[],
                                     unsigned *n_bufs) {
    weft_fsm_adapter *a = rf->data;
    WEFT_ASSERT(bufs != NULL && n_bufs != NULL);
    if (a->snapshot_pending) {
        a->snapshot_pending = false;
        int rc = a->snapshot_async_rc;
        a->snapshot_async_rc = 0;
        if (rc != 0) {
            WEFT_ASSERT(*bufs == NULL);
            snapshot_failed(a, rc);
        } else if (*bufs != NULL) {
            a->snapshots_count++;
        }
    }
    if (*bufs == NULL) return 0;
    for (unsigned i = 0; i < *n_bufs; i++) raft_free((*bufs)[i].base);
    raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* On success the buffer is ours (notes); on failure raft frees it. */
static int adapter_restore(struct raft_fsm *rf, struct raft_buffer *buf) {
    weft_fsm_adapter *a = rf->data;
    WEFT_ASSERT(buf != NULL);
    adapter_drop_last(a);
    if (a->failed != 0) return RAFT_IOERR;
    int rc = a->fsm->restore(a->fsm->ctx, buf->base, buf->len);
    if (rc != 0) {
        adapter_fail(a, rc < 0 ? rc : -WEFT_E_INTERNAL, "restore");
        return RAFT_IOERR;
    }
    raft_free(buf->base);
    /* Entries after the snapshot follow; the index restarts from raft's snapshot index. */
    a->last_index = 0;
    a->restores_count++;
    return 0;
}

int weft_fsm_adapter_init(weft_fsm_adapter *a, const weft_group_fsm *fsm, uint32_t group_id,
                          weft_err *err) {
    WEFT_ASSERT(a != NULL && fsm != NULL);
    WEFT_ASSERT(fsm->apply != NULL && fsm->snapshot != NULL && fsm->restore != NULL);
    memset(a, 0, sizeof *a);
    a->cmds = calloc(WEFT_RAFT_BATCH_CMDS_MAX, sizeof *a->cmds);
    if (a->cmds == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                            "out of memory for the fsm adapter of group %u", group_id);
    }
    a->fsm = fsm;
    a->group_id = group_id;
    /* Version 3 so that bind can turn on snapshot_async; without it raft behaves as for 2. */
    a->raft_fsm.version = 3;
    a->raft_fsm.data = a;
    a->raft_fsm.apply = adapter_apply;
    a->raft_fsm.snapshot = adapter_snapshot;
    a->raft_fsm.restore = adapter_restore;
    a->raft_fsm.snapshot_finalize = adapter_snapshot_finalize;
    a->raft_fsm.snapshot_async = NULL;
    return 0;
}

void weft_fsm_adapter_bind(weft_fsm_adapter *a, struct raft *r) {
    WEFT_ASSERT(a->cmds != NULL && r != NULL && r->io != NULL);
    WEFT_ASSERT(!a->snapshot_pending);
    a->raft = r;
    /* raft_init accepts snapshot_async only with an io of version 2 or more that has
     * async_work (raft.c ioFsmCompat); raft reads the field when it takes each snapshot, so
     * setting it after raft_init is what the fixture-based simulation needs (its io, of
     * version 0, is the one raft_init saw: it stays synchronous). */
    bool async = r->io->version >= 2 && r->io->async_work != NULL;
    a->raft_fsm.snapshot_async = async ? adapter_snapshot_async : NULL;
}

weft_applied *weft_fsm_adapter_claim(weft_fsm_adapter *a, void *result) {
    /* raft hands the apply cb the result of the apply that ran just before it. */
    WEFT_ASSERT(result == NULL || result == a->last);
    weft_applied *ap = result;
    if (ap != NULL) a->last = NULL;
    return ap;
}

void weft_fsm_adapter_reset(weft_fsm_adapter *a) {
    /* raft's close waited for the snapshot copy and finalized it (raft_uv drains async work
     * before its close callback): a restart never reopens the state under a copy. */
    WEFT_ASSERT(!a->snapshot_pending);
    adapter_drop_last(a);
    a->failed = 0;
    a->last_index = 0;
}

void weft_fsm_adapter_close(weft_fsm_adapter *a) {
    if (a == NULL) return;
    adapter_drop_last(a);
    free(a->cmds);
    a->cmds = NULL;
}
