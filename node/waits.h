/* waits.h: GetResult and GetHistory requests waiting for a run to change. Each replica keeps
 * its waiters by run key; apply's run_changed queues a wake-up, and the node's pump re-runs the
 * waiting reads. A wait ends with an answer, its timeout (a final read), a lost leadership, or
 * the connection going away. */
#ifndef WEFT_NODE_WAITS_H
#define WEFT_NODE_WAITS_H

#include <stdint.h>

#include "node.h"

/* Parks `r` on replica `rep` until run `run_key` changes. Does not touch its timer. */
void weft_waits_add(weft_replica *rep, weft_req *r, uint64_t run_key);
/* Takes `r` out of its replica's list (it must be parked there). */
void weft_waits_remove(weft_req *r);
/* Apply reported a change to `run_key` (`closed`: it closed): queue a wake-up if anyone waits
 * on it. A GetResult waits for the close alone; a GetHistory for any new event. */
void weft_waits_run_changed(weft_replica *rep, uint64_t run_key, bool closed);
/* The pump: re-runs the reads of every queued wake-up. */
void weft_waits_pump(weft_node *n);
/* Leadership lost: linearizable waiters fail (NOT_LEADER with a hint, or UNAVAILABLE). */
void weft_waits_fail_linearizable(weft_replica *rep);
/* Shutdown: every waiter is answered with what there is now (a final read). */
void weft_waits_answer_all(weft_node *n);

#endif
