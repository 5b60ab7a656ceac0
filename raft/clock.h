/* clock.h: wall-clock offsets between nodes, measured over the raft port (DESIGN section 9), and
 * the verdict on this node's own clock drawn from them.
 *
 * Each node keeps one probe stream to every peer's raft port. The stream opens with the raft
 * transport's preamble under its own magic (WEFT_CLOCK_PREAMBLE_MAGIC), so the listener checks
 * the cluster id and hands it here instead of to a group. Then, NTP-style, every
 * WEFT_CLOCK_PROBE_INTERVAL_MS the prober writes a ping [seq]; the peer answers [seq, t2], t2
 * being its wall clock when it read the ping. With t1 our wall clock at the send and rtt the
 * round trip on the monotonic clock:
 *   offset = t2 - (t1 + rtt / 2)   (the peer's clock minus ours)
 *   uncertainty = rtt / 2          (the true offset lies within offset +- uncertainty)
 * The round trip is timed on the monotonic clock so that a step of our wall clock during one
 * probe does not count as network delay. Only the latest sample of each peer is kept; one older
 * than WEFT_CLOCK_SAMPLE_FRESH_MS does not count.
 * Threading: everything runs on the loop thread. */
#ifndef WEFT_RAFT_CLOCK_H
#define WEFT_RAFT_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/errors.h"

/* "WEFTCLOK": the preamble magic of a probe stream (the raft streams' is "WEFTRAFT"). */
#define WEFT_CLOCK_PREAMBLE_MAGIC 0x57454654434C4F4Bull
/* One ping per peer per interval: cheap (32 bytes), and frequent enough that a clock that
 * jumps is noticed within a few seconds. */
#define WEFT_CLOCK_PROBE_INTERVAL_MS 1000u
/* A sample older than this (a few lost pings) no longer says anything about the peer. */
#define WEFT_CLOCK_SAMPLE_FRESH_MS (5u * WEFT_CLOCK_PROBE_INTERVAL_MS)
/* A ping unanswered for this long means the stream is dead (a half-open connection): the
 * prober closes it and dials again. */
#define WEFT_CLOCK_PING_TIMEOUT_MS (3u * WEFT_CLOCK_PROBE_INTERVAL_MS)
/* An accepted probe stream that sends no ping for this long is closed: a silent peer must not
 * hold a slot forever. */
#define WEFT_CLOCK_IDLE_TIMEOUT_MS (10u * WEFT_CLOCK_PROBE_INTERVAL_MS)
/* Peers one node probes, and accepted probe streams open at once, at most (a cluster has at
 * most WEFT_CLUSTER_NODES_MAX nodes; a peer that reconnects replaces its old stream). */
#define WEFT_CLOCK_PEERS_MAX 16u
/* Answers queued to one accepted stream, in bytes, at most: a peer that pings but never reads
 * is cut off rather than growing our memory. */
#define WEFT_CLOCK_WRITE_QUEUE_BYTES_MAX 4096u
/* Ping and answer sizes on the wire: [seq u64 BE] and [seq u64 BE, t2 wall us u64 BE]. */
#define WEFT_CLOCK_PING_BYTES 8u
#define WEFT_CLOCK_PONG_BYTES 16u
/* A node judged off clears only once its peers are within this percentage of the bound, so a
 * clock hovering near the bound does not flap between leading and refusing. */
#define WEFT_CLOCK_RESUME_PCT 80u

typedef struct weft_clock weft_clock;

/* The latest measurement of one peer. */
typedef struct weft_clock_sample {
    uint64_t peer_id;        /* node id of the peer */
    int64_t offset_us;       /* the peer's wall clock minus ours */
    uint64_t uncertainty_us; /* half the round trip: the true offset is within +- this */
    uint64_t age_ms;         /* how long ago it was taken (monotonic) */
} weft_clock_sample;

typedef enum weft_clock_verdict {
    WEFT_CLOCK_UNKNOWN, /* no fresh sample: nothing to compare with */
    WEFT_CLOCK_GOOD,    /* within the bound of a majority of the peers measured */
    WEFT_CLOCK_OFF,     /* off by more than the bound from a majority of them */
} weft_clock_verdict;

/* The verdict on this node's clock from the fresh samples `s` (n of them, borrowed) and the
 * bound `max_offset_ms` (> 0). `was_off` is the previous verdict: the hysteresis.
 *   - A peer counts as off only when it surely is: |offset| - uncertainty > bound. A slow
 *     network widens the uncertainty and so can never make a clock look off.
 *   - A good clock turns OFF when the peers it is surely off from are a strict majority of the
 *     peers measured (CockroachDB's rule): one wrong peer cannot condemn the rest.
 *   - An OFF clock turns GOOD only when the peers that are not surely within
 *     WEFT_CLOCK_RESUME_PCT percent of the bound (|offset| + uncertainty) are no majority.
 * With two nodes each is "off from a majority" of the other: both turn OFF, since neither can
 * tell whose clock is wrong (docs/operations.md, "Clocks"). Pure: no clock is read. */
weft_clock_verdict weft_clock_judge(const weft_clock_sample *s, unsigned n, uint64_t max_offset_ms,
                                    bool was_off);

/* A prober and responder for node `self_id`, whose raft address is `self_address`, in cluster
 * `cluster_id` (both borrowed, copied; as the raft preamble wants them). Probes nothing until
 * peers are added and weft_clock_start runs. Errors: INVALID_ARGUMENT (address or cluster id
 * too long), RESOURCE_EXHAUSTED. */
int weft_clock_init(weft_clock **out, uv_loop_t *loop, uint64_t self_id, const char *self_address,
                    const char *cluster_id, weft_err *err);
/* Adds peer `id` at raft address `raft_address` (borrowed, copied). Only added peers are
 * probed, and only their probe streams are answered. Errors: INVALID_ARGUMENT (bad address,
 * id 0 or self, a peer added twice), RESOURCE_EXHAUSTED (past WEFT_CLOCK_PEERS_MAX). */
int weft_clock_add_peer(weft_clock *c, uint64_t id, const char *raft_address, weft_err *err);
/* Starts probing every peer: at once, then every WEFT_CLOCK_PROBE_INTERVAL_MS. */
void weft_clock_start(weft_clock *c);
/* Drops every sample, and the answers to pings already sent: this node's clock jumped, so
 * they describe it as it was. */
void weft_clock_forget(weft_clock *c);
/* Fills `out` (cap entries) with the fresh sample of every peer that has one; returns how many. */
unsigned weft_clock_samples(const weft_clock *c, weft_clock_sample *out, unsigned cap);
/* The fresh sample of peer `id`; false when there is none. */
bool weft_clock_peer_sample(const weft_clock *c, uint64_t id, weft_clock_sample *out);

/* Called by the raft listener with a stream whose probe preamble (cluster id checked) came from
 * node `from_id`; the stream is transferred (raft_malloc'd; freed with raft_free once closed)
 * and its preamble fully read. A stream from a node that is not a peer is closed. */
void weft_clock_accept(weft_clock *c, uv_tcp_t *tcp, uint64_t from_id);

/* Stops probing and closes every stream; the handles finish closing on the loop (the caller's
 * loop must run until they have: uv_run returning is enough). Idempotent. */
void weft_clock_close(weft_clock *c);
/* Frees a closed clock after the loop ran dry. NULL is fine. */
void weft_clock_free(weft_clock *c);

#endif
