/* sync.c: the durable flush of shard envs that run without fsync (MDB_NOSYNC, DESIGN
 * section 5). */
#include <string.h>

#include "store_impl.h"

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
