/* clockcheck.h: a node whose wall clock is off from its peers' does not lead, and says why
 * (DESIGN section 9, --max-clock-offset-ms; CockroachDB's --max-offset). */
#ifndef WEFT_NODE_CLOCKCHECK_H
#define WEFT_NODE_CLOCKCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "node.h"

/* How often the node judges its own clock from the latest probe samples (raft/clock.h). Half
 * the probe interval, so a sample is acted on within half a second of its arrival. */
#define WEFTD_CLOCK_CHECK_INTERVAL_MS 500u
/* A good clock whose wall time moves by more than this percentage of the bound against the
 * monotonic clock between two judgements has jumped (a step, not NTP's slewing, which moves it
 * by at most 0.5 ms a second): the node stops proposing at once and is judged afresh. */
#define WEFTD_CLOCK_JUMP_PCT 50u
/* Reads of (monotonic, wall, monotonic) per look for a step, at most: the tightest counts. */
#define WEFTD_CLOCK_READ_TRIES 3u
/* The first judgement after start: soon, since the node leads nothing until it has one. */
#define WEFTD_CLOCK_CHECK_FIRST_MS 100u

/* In a cluster of two or more nodes: answers the peers' clock probes on the raft port and
 * probes theirs, and judges this node's clock every WEFTD_CLOCK_CHECK_INTERVAL_MS. Until the
 * first judgement the node leads nothing (its clock is unchecked). A single node compares
 * nothing. Call once the node runs; the timer is n->clock_timer, closed with the node's other
 * handles. Errors: as weft_clock_init and weft_clock_add_peer (a bad raft address). */
int weft_clockcheck_start(weft_node *n, weft_err *err);
/* Stops judging and closes the probes (before the raft host closes). Idempotent. */
void weft_clockcheck_close(weft_node *n);
/* Frees the probes after the loop ran dry. */
void weft_clockcheck_free(weft_node *n);

/* Why this node must not lead now because of its clock: its clock is off, or not compared yet;
 * NULL when it may (or the check is off: --max-clock-offset-ms 0, a single node, or replication
 * factor 1, where no other node could lead). A leader that may not lead proposes nothing, so
 * its clock stamps no entry and fires no timer (weft_replica_propose). Static string. */
const char *weft_clockcheck_refusal(const weft_node *n);
/* "" while the clock is fine; else what ClusterStatus shows for this node (borrowed; valid
 * until the next judgement). */
const char *weft_clockcheck_health(const weft_node *n);
/* False when this node, its own clock judged good, sees node `id`'s clock off by more than the
 * bound or has no fresh sample of it: leadership is not handed to such a peer (it would refuse
 * it anyway). True otherwise, also when the check is off. */
bool weft_clockcheck_peer_ok(const weft_node *n, uint64_t id);

#endif
