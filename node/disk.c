/* disk.c: the data dir's free-space floor. libraft 0.15 and LMDB both fail hard on a full
 * disk: a raft_uv that could not prepare a segment stores nothing again until the replica is
 * restarted (raft/guard.h), and after a log filled the disk a node may not restart at all
 * (dqlite#283). So a node stops taking new work well before that point, and says why:
 *   - every WEFTD_DISK_CHECK_INTERVAL_MS it reads its data dir's free bytes (statvfs);
 *   - under --disk-free-bytes-min it is "disk low": a write that brings new work to a shard it
 *     leads is refused with RESOURCE_EXHAUSTED naming the path, the free bytes and the floor;
 *     it hands its leaderships to caught-up peers and refuses to take any, so the cluster
 *     keeps taking new work on the others; and ClusterStatus shows it on its row;
 *   - reads, polls, task completions, cancels and terminations go on: they let open work
 *     finish with little disk;
 *   - it clears by itself once free space is back above the floor plus
 *     WEFTD_DISK_RESUME_MARGIN_PCT percent. Replicas that stopped on a failed write restart
 *     by themselves once their directory has space (raft/group.c). */
#include "disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "../proto/msg.h"
#include "cluster.h"

/* Free bytes for an unprivileged writer on the data dir's file system; false if unknown. */
static bool disk_free_bytes(const weft_node *n, uint64_t *out) {
    struct statvfs st;
    if (statvfs(n->datadir.path, &st) != 0) return false;
    *out = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
    return true;
}

static uint64_t disk_resume_bytes(uint64_t min_bytes) {
    uint64_t margin = min_bytes / 100u * WEFTD_DISK_RESUME_MARGIN_PCT;
    return min_bytes > UINT64_MAX - margin ? UINT64_MAX : min_bytes + margin;
}

/* What ClusterStatus shows for a low disk: the path, the free bytes and the floor. */
static void disk_health_set(weft_node *n, uint64_t free_bytes) {
    snprintf(n->disk_health, sizeof n->disk_health,
             "disk low: %s has %" PRIu64 " bytes free, under disk-free-bytes-min (%" PRIu64
             "); refusing new work until space is freed",
             n->datadir.path, free_bytes, n->cfg.disk_free_bytes_min);
}

/* The one place n->disk_low changes: logs the transition and moves leadership accordingly. */
static void disk_low_set(weft_node *n, bool low, uint64_t free_bytes) {
    WEFT_ASSERT(n->disk_low != low);
    uint64_t min_bytes = n->cfg.disk_free_bytes_min;
    n->disk_low = low;
    if (low) {
        disk_health_set(n, free_bytes);
        weft_log(WEFT_LOG_ERROR, WEFT_LOG_NO_SHARD,
                 "%s: starts and signals are refused (RESOURCE_EXHAUSTED) and leaderships go "
                 "to peers; reads, polls and completions go on",
                 n->disk_health);
    } else {
        n->disk_health[0] = '\0';
        weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
                 "disk space is back: %s has %" PRIu64 " bytes free (resumes at %" PRIu64
                 "); taking new work and leaderships again",
                 n->datadir.path, free_bytes, disk_resume_bytes(min_bytes));
    }
    weft_node_leadership_refresh(n);
    if (low) weft_cluster_shed_leadership(n, "its data dir's disk is low");
}

static void disk_check(weft_node *n) {
    uint64_t min_bytes = n->cfg.disk_free_bytes_min;
    uint64_t free_bytes = 0;
    if (min_bytes == 0 || !disk_free_bytes(n, &free_bytes)) return;
    n->disk_free_bytes = free_bytes;
    if (!n->disk_low && free_bytes < min_bytes) {
        disk_low_set(n, true, free_bytes);
    } else if (n->disk_low && free_bytes >= disk_resume_bytes(min_bytes)) {
        disk_low_set(n, false, free_bytes);
    } else if (n->disk_low) {
        /* Keep the numbers users see current while it stays low. */
        disk_health_set(n, free_bytes);
    }
}

static void disk_timer_cb(uv_timer_t *t) {
    weft_node *n = t->data;
    WEFT_ASSERT(n != NULL && &n->disk_timer == t);
    if (n->state != WEFT_NODE_RUNNING) return;
    disk_check(n);
}

void weft_disk_start(weft_node *n) {
    WEFT_ASSERT(n != NULL && n->state == WEFT_NODE_RUNNING);
    if (n->cfg.disk_free_bytes_min == 0) return;
    disk_check(n);
    uv_timer_start(&n->disk_timer, disk_timer_cb, WEFTD_DISK_CHECK_INTERVAL_MS,
                   WEFTD_DISK_CHECK_INTERVAL_MS);
}

void weft_disk_stop(weft_node *n) {
    WEFT_ASSERT(n != NULL);
    uv_timer_stop(&n->disk_timer);
}

bool weft_disk_refuses(const weft_node *n, uint32_t msg_type, weft_err *err) {
    WEFT_ASSERT(n != NULL && err != NULL);
    if (!n->disk_low) return false;
    if (msg_type != WEFT_MSG_START_WORKFLOW && msg_type != WEFT_MSG_SIGNAL_WITH_START &&
        msg_type != WEFT_MSG_SIGNAL_WORKFLOW) {
        return false;
    }
    weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                 "node %" PRIu64 " refuses new work: %s has %" PRIu64
                 " bytes free, under disk-free-bytes-min (%" PRIu64
                 "); free space there (or retry: its shards move to other nodes)",
                 n->datadir.node_id, n->datadir.path, n->disk_free_bytes,
                 n->cfg.disk_free_bytes_min);
    return true;
}

const char *weft_disk_health(const weft_node *n) {
    WEFT_ASSERT(n != NULL);
    return n->disk_low ? n->disk_health : "";
}
