/* disk.h: the data dir's free-space floor (--disk-free-bytes-min): under it a node refuses new
 * work, gives up its leaderships, keeps serving the rest, and recovers by itself. */
#ifndef WEFT_NODE_DISK_H
#define WEFT_NODE_DISK_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../proto/errors.h"
#include "node.h"

/* How often the data dir's free bytes are read (statvfs: file system metadata, no data I/O). */
#define WEFTD_DISK_CHECK_INTERVAL_MS 1000u
/* A low node clears only above the floor plus this percentage of it, so that a node hovering
 * at the floor does not flap between refusing and taking work. */
#define WEFTD_DISK_RESUME_MARGIN_PCT 25u
/* Bytes of the health text a low node shows (path, free bytes and floor). */
#define WEFTD_DISK_HEALTH_BYTES_MAX (PATH_MAX + 256u)

/* Reads the free space once and starts the periodic check (the timer is n->disk_timer, closed
 * by weft_node_close with the node's other handles). A floor of 0 checks nothing. */
void weft_disk_start(weft_node *n);
/* Stops the periodic check (before close). Idempotent. */
void weft_disk_stop(weft_node *n);

/* True, with `err` set to RESOURCE_EXHAUSTED naming the data dir, when the disk is low and
 * `msg_type` brings new work (StartWorkflow, SignalWithStart, SignalWorkflow). Everything
 * else (reads, polls, completions, cancels, terminations) is still served: it lets open
 * work finish with little disk. */
bool weft_disk_refuses(const weft_node *n, uint32_t msg_type, weft_err *err);

/* "" while the disk is fine; else what ClusterStatus shows for this node (borrowed; valid
 * until the next check). */
const char *weft_disk_health(const weft_node *n);

#endif
