/* sync.c: durability of shard envs that run without fsync (MDB_NOSYNC, DESIGN section 5): the
 * process-wide default, the durable flush, and the record of flushes that failed at close. */
#include <stdatomic.h>
#include <string.h>

#include "store_impl.h"

/* Set once by weftd at start, before any store opens; atomic so that a store opened on another
 * thread (tests, later a threadpool restore) never reads a torn value. */
static atomic_bool store_no_sync_default_on;

/* The first flush that failed inside weft_store_close, for weft_store_close_failure. */
static store_first_failure store_close_failure;

void weft_store_no_sync_default_set(bool no_sync) {
    atomic_store_explicit(&store_no_sync_default_on, no_sync, memory_order_release);
    WEFT_ASSERT(weft_store_no_sync_default() == no_sync);
}

bool weft_store_no_sync_default(void) {
    return atomic_load_explicit(&store_no_sync_default_on, memory_order_acquire);
}

int weft_store_sync(weft_store *s, weft_err *err) {
    WEFT_ASSERT(s != NULL);
    if (!s->opts.no_sync) return 0;
    /* A poisoned store is not flushed: its failure may have been an earlier flush, and a
     * flush that succeeds after a failed one proves nothing (STYLE rule 10). */
    int rc = store_check(s, err);
    if (rc != 0) return rc;
    WEFT_ASSERT(s->env != NULL);       /* only a failed restore closes it, and that poisons */
    WEFT_ASSERT(s->write_txn == NULL); /* a flush mid-transaction would miss its pages */
    rc = store_fault(s);
    if (rc == 0) rc = mdb_env_sync(s->env, 1);
    if (rc != 0) {
        return store_fail(s, err,
                          "flush of shard store %s to disk (mdb_env_sync) failed: %s: commits "
                          "since the last flush may be lost if the machine crashes; check the "
                          "disk and the kernel log",
                          s->dir, mdb_strerror(rc));
    }
    return 0;
}

void store_close_failure_record(const char *message) {
    WEFT_ASSERT(message != NULL && message[0] != '\0');
    store_first_failure_record(&store_close_failure, message);
    WEFT_ASSERT(atomic_load_explicit(&store_close_failure.state, memory_order_acquire) !=
                STORE_POISON_CLEAN);
}

int weft_store_close_failure(weft_err *err) {
    int state = atomic_load_explicit(&store_close_failure.state, memory_order_acquire);
    if (state == STORE_POISON_CLEAN) return 0;
    /* WRITING: another thread is filling the message right now; the failure is real anyway. */
    const char *message = state == STORE_POISON_SET
                              ? store_close_failure.message
                              : "a flush at close is failing on another thread";
    return weft_err_set(err, WEFT_E_INTERNAL, "", "%s", message);
}
