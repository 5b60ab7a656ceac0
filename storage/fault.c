/* fault.c: the countdown fault-injection seam of fault.h: arming, counting and the one
 * decision, made for every storage operation, whether it fails. */
#include <lmdb.h>

#include "fault.h"
#include "store_impl.h"

void weft_store_fault_arm(weft_store *s, long countdown, int lmdb_error) {
    WEFT_ASSERT(s != NULL && countdown >= 0);
    /* Neither is a failure: injecting them would make the seam lie about what LMDB does. */
    WEFT_ASSERT(lmdb_error != 0 && lmdb_error != MDB_NOTFOUND);
    s->fault_countdown = countdown;
    s->fault_error = lmdb_error;
    s->fault_ops_count = 0;
    s->fault_hits_count = 0;
    s->fault_armed = true;
}

void weft_store_fault_disarm(weft_store *s) {
    WEFT_ASSERT(s != NULL);
    WEFT_ASSERT(s->fault_hits_count <= s->fault_ops_count);
    s->fault_armed = false;
}

uint64_t weft_store_fault_ops(const weft_store *s) {
    WEFT_ASSERT(s != NULL);
    WEFT_ASSERT(s->fault_hits_count <= s->fault_ops_count);
    return s->fault_ops_count;
}

uint64_t weft_store_fault_hits(const weft_store *s) {
    WEFT_ASSERT(s != NULL);
    WEFT_ASSERT(s->fault_hits_count <= s->fault_ops_count);
    return s->fault_hits_count;
}

int store_fault_tick(weft_store *s) {
    WEFT_ASSERT(s != NULL && s->fault_armed);
    WEFT_ASSERT(s->fault_countdown >= 0);
    s->fault_ops_count++;
    if (s->fault_countdown > 0) {
        s->fault_countdown--;
        return 0;
    }
    /* Countdown spent: this and every later operation fails (SQLite's persistent mode), as a
     * dead disk or a full map keeps failing. */
    s->fault_hits_count++;
    WEFT_ASSERT(s->fault_error != 0 && s->fault_error != MDB_NOTFOUND);
    return s->fault_error;
}
