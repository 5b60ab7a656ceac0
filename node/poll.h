/* poll.h: PollWorkflowTask and PollActivityTask (DESIGN section 8). A poll takes a ready task
 * from the shards this node leads, round-robin; with none ready it parks until a task becomes
 * ready (handed over directly) or its poll timeout (answered with an empty response). */
#ifndef WEFT_NODE_POLL_H
#define WEFT_NODE_POLL_H

#include <stdint.h>

#include "node.h"

/* Apply made a task ready on a shard this node leads: wake pollers of (queue, kind). */
void weft_poll_task_ready(weft_node *n, const char *task_queue, uint8_t kind);
/* A shard became ready to serve: every parked poll may now find a task. */
void weft_poll_wake_all(weft_node *n);
/* The pump: hands ready tasks to parked polls of every woken bucket. */
void weft_poll_pump(weft_node *n);
/* Takes a parked poll out of its bucket (its connection closed). */
void weft_poll_remove(weft_req *r);
/* Records as polling now every poll parked for dispatch queue `task_queue` (either kind): a
 * poller waiting out a long poll is still polling (DescribeTaskQueue). */
void weft_poll_note_parked(weft_node *n, const char *task_queue);
/* How often a node of a multi-node cluster looks whether it is cut off from its peers while
 * polls are parked on it. */
#define WEFTD_POLL_CUT_OFF_CHECK_MS 250u
/* Starts that look (n->cut_off_timer). A node cut off from its peers (cluster.h) can dispatch
 * nothing, since no Started entry of its can commit: its parked polls are answered UNAVAILABLE,
 * naming the other nodes, and so is every new poll, so that workers go to the rest of the
 * cluster at once instead of after their long-poll wait. */
void weft_poll_cut_off_start(weft_node *n);
/* Shutdown: every parked poll is answered with an empty response. */
void weft_poll_answer_all(weft_node *n);

#endif
