/* transport.h: one raft port per node. A node-wide listener, shared by every group, and a
 * per-group raft_uv_transport whose connect dials the peer's raft port and writes a preamble
 * naming the group (DESIGN section 5; notes/libraft-0.15.md, "Stock TCP transport"). */
#ifndef WEFT_RAFT_TRANSPORT_H
#define WEFT_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../proto/errors.h"

/* The preamble a dialer writes before raft's own bytes. Fixed size, so the acceptor reads
 * exactly it and not one byte of raft's stream. Integers are big-endian; strings are
 * NUL-padded fields.
 *   [0, 8)     magic "WEFTRAFT"
 *   [8, 12)    preamble version
 *   [12, 16)   group id
 *   [16, 24)   raft id of the dialing node
 *   [24, 88)   cluster id
 *   [88, 152)  raft address of the dialing node
 *   [152, 160) reserved, zero */
/* A raft connection whose sent bytes stay unacknowledged this long is dropped (TCP_USER_TIMEOUT),
 * and raft_uv dials again after its retry delay. Without it a connection that lived through a
 * partition that drops packets (not refuses them) waits, after the network heals, for TCP's
 * doubling retransmission timer: a node stayed a candidate, deaf to its shard's leader, for 43 s
 * after an 8 s partition had healed (chaos harness, --nemesis partition --seed 2). Long enough
 * for a follower that stops reading for a moment (a snapshot being stored) to stay connected. */
#define WEFT_RAFT_TCP_USER_TIMEOUT_MS 3000u
/* SYN retransmissions of one dial (after 1 s, then it fails 2 s later): a dial into a partition
 * fails within about 3 s and raft_uv tries again, instead of hanging in connect for the kernel's
 * default of about two minutes and then waiting out its SYN backoff once the network heals. */
#define WEFT_RAFT_DIAL_SYN_RETRIES 1

/* Sets TCP_USER_TIMEOUT (and, for a socket not yet connected, TCP_SYNCNT) on `tcp`, which must
 * have a socket (connected, accepted, or made by uv_tcp_init_ex). Used for every connection
 * between nodes (raft, clock probes, forwarding). Best effort: an option the kernel refuses is
 * left at its default. */
void weft_tcp_set_peer_timeouts(uv_tcp_t *tcp, unsigned user_timeout_ms, int syn_retries);

#define WEFT_RAFT_PREAMBLE_MAGIC 0x5745465452414654ull
#define WEFT_RAFT_PREAMBLE_VERSION 1u
#define WEFT_RAFT_PREAMBLE_CLUSTER_BYTES 64u
#define WEFT_RAFT_PREAMBLE_ADDRESS_BYTES 64u
#define WEFT_RAFT_PREAMBLE_BYTES 160u
/* A connection that has not sent its whole preamble by then is closed: a half-open peer must
 * not hold an accept slot forever. */
#define WEFT_RAFT_PREAMBLE_TIMEOUT_MS 10000u
/* Connections still reading their preamble, at most; past it new ones are closed at once. */
#define WEFT_RAFT_ACCEPTS_PENDING_MAX 1024u
/* listen(2) backlog of the raft port. */
#define WEFT_RAFT_LISTEN_BACKLOG 128
/* "255.255.255.255:65535" plus NUL. */
#define WEFT_RAFT_ADDRESS_BYTES_MAX 64u

_Static_assert(24 + WEFT_RAFT_PREAMBLE_CLUSTER_BYTES + WEFT_RAFT_PREAMBLE_ADDRESS_BYTES + 8 ==
                   WEFT_RAFT_PREAMBLE_BYTES,
               "preamble layout adds up");

typedef struct weft_raft_listener weft_raft_listener;

/* Binds and listens on `address` ("a.b.c.d:port"; port 0 picks a free port, see
 * weft_raft_listener_address). `cluster_id` (borrowed, copied) must match every incoming
 * preamble. On failure nothing is left to close and the callback-free contract holds.
 * Errors: INVALID_ARGUMENT (address or cluster id), UNAVAILABLE (bind/listen failed). */
int weft_raft_listener_init(weft_raft_listener **out, uv_loop_t *loop, const char *address,
                            const char *cluster_id, weft_err *err);
/* The address actually bound ("127.0.0.1:41234"); valid until the listener is freed. */
const char *weft_raft_listener_address(const weft_raft_listener *l);
/* Stops accepting, closes connections still reading a preamble; `cb` runs once all handles
 * are closed. Groups must have unregistered (their transports closed) before. */
void weft_raft_listener_close(weft_raft_listener *l, void (*cb)(void *data), void *data);
/* Frees the listener after its close callback ran. */
void weft_raft_listener_free(weft_raft_listener *l);
/* Streams opening with the clock probe magic (clock.h) go to `c` (borrowed; NULL: they are
 * closed). Set it to NULL before `c` closes. */
struct weft_clock;
void weft_raft_listener_set_clock(weft_raft_listener *l, struct weft_clock *c);
/* Writes a preamble (the layout above) with `magic` (the raft or the clock probe one) into p,
 * WEFT_RAFT_PREAMBLE_BYTES long. False when cluster_id or address (borrowed) does not fit its
 * field. Used by the transport's dials, the clock's probes, and tests/fuzz to seed its corpus. */
bool weft_raft_preamble_encode(uint8_t *p, uint64_t magic, uint32_t group_id, uint64_t from_id,
                               const char *cluster_id, const char *address);

/* Builds the raft_uv_transport of group `group_id` on this listener. `t` must outlive the
 * raft_uv instance using it. raft_uv calls init, listen, connect and close; after close's
 * callback (or if listen never ran) weft_raft_transport_free releases it.
 * Errors: RESOURCE_EXHAUSTED (allocation). */
int weft_raft_transport_init(struct raft_uv_transport *t, weft_raft_listener *l,
                             uint32_t group_id, weft_err *err);
void weft_raft_transport_free(struct raft_uv_transport *t);

/* Parses "a.b.c.d:port" (IPv4 only: libraft 0.15 has no hostnames). Returns 0 or
 * -WEFT_E_INVALID_ARGUMENT. */
int weft_raft_address_parse(const char *address, struct sockaddr_in *out, weft_err *err);

#endif
