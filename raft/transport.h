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

/* Writes the preamble a dialer of group `group_id` sends (WEFT_RAFT_PREAMBLE_BYTES into `p`).
 * Returns false when `cluster_id` or `from_address` (borrowed) does not fit its field. Used
 * by the transport's dials, and by tests/fuzz to seed its corpus. */
bool weft_raft_preamble_encode(uint8_t *p, uint32_t group_id, uint64_t from_id,
                               const char *cluster_id, const char *from_address);

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
