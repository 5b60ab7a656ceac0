/* pollseen.h: who polled a task queue lately, as `weft task-queue describe` shows it (issue 10).
 * Each node remembers, per (task queue dispatch name, kind, identity), when a poll last reached
 * it, and forgets entries older than WEFTD_POLLERS_WINDOW_MS. The table is bounded
 * (WEFTD_POLLERS_MAX entries, the oldest evicted first), so clients inventing identities or
 * queues cannot grow the node's memory. A repeat poll of a known poller allocates nothing: only a
 * new (queue, kind, identity) copies its strings. Loop thread only; no libuv. */
#ifndef WEFT_NODE_POLLSEEN_H
#define WEFT_NODE_POLLSEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A poller is listed while its last poll is at most this old: Temporal's "last minute". */
#define WEFTD_POLLERS_WINDOW_MS 60000u
/* Pollers one node remembers across all queues. Each entry holds at most a dispatch name and an
 * identity (about 3 KB with the default id limits), so the table stays under 3 MB however many
 * identities hostile clients invent; real deployments have far fewer live workers. */
#define WEFTD_POLLERS_MAX 1024u
/* Bytes of an identity kept, NUL included: longer ones are cut at a UTF-8 character boundary,
 * so a listing of WEFTD_POLLERS_LISTED_MAX pollers always fits one frame. Real identities
 * ("host:pid", a pod name) are far shorter. */
#define WEFTD_POLLER_IDENTITY_BYTES_MAX 256u
/* Pollers one DescribeTaskQueue answer lists, newest first: every node's table, merged, stays
 * within one frame even when hostile clients filled each node's table for one queue. */
#define WEFTD_POLLERS_LISTED_MAX 1000u

typedef struct weft_poller_seen {
    uint64_t hash;         /* of (queue, kind, identity); 0 with queue == NULL: a free slot */
    uint64_t last_poll_ms; /* wall clock of the last poll */
    uint8_t kind;          /* WEFT_TASK_KIND_WORKFLOW or _ACTIVITY */
    char *queue;           /* dispatch name (shard.h: namespace and queue), owned */
    char *identity;        /* the poll request's identity, owned ("" when none was given), cut to
                              WEFTD_POLLER_IDENTITY_BYTES_MAX */
} weft_poller_seen;

typedef struct weft_pollseen {
    weft_poller_seen slots[WEFTD_POLLERS_MAX];
    uint32_t used; /* slots with a queue */
} weft_pollseen;

/* Records a poll of (queue, kind) by `identity` (cut to WEFTD_POLLER_IDENTITY_BYTES_MAX: two
 * identities equal that far are one poller) at wall clock `now_ms`. The strings are
 * borrowed, and copied only for a poller not in the table; when that copy fails (out of memory)
 * the poll goes unrecorded, as a listing is only advice. */
void weft_pollseen_note(weft_pollseen *t, const char *queue, uint8_t kind, const char *identity,
                        uint64_t now_ms);
/* Calls `fn` for each poller of `queue` (any kind) seen within the window before `now_ms`, and
 * frees the entries that fell out of it. `p` is valid until the table next changes. */
void weft_pollseen_each(weft_pollseen *t, const char *queue, uint64_t now_ms,
                        void (*fn)(void *data, const weft_poller_seen *p), void *data);
/* Frees every entry. */
void weft_pollseen_free(weft_pollseen *t);

#endif
