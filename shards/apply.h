/* apply.h: the context one command's apply (or one read) works in, and the helpers every
 * handler shares: storage access that counts writes, decoding into a per-command arena,
 * rejections, and the effects that reach the leader only after commit (DESIGN sections 5-9).
 * Private to shards/. */
#ifndef WEFT_SHARDS_APPLY_H
#define WEFT_SHARDS_APPLY_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "../proto/log.h"
#include "../storage/keys.h"
#include "../storage/store.h"
#include "dispatch.h"
#include "shard.h"

/* One replica's state machine. Fields are touched only on the loop thread. */
struct weft_shard {
    uint32_t shard_id;                /* which shard this replica holds */
    char cluster_id[64];              /* stamped into meta on first open */
    const weft_limits *limits;        /* borrowed; outlives the shard. The node's configured
                                         limits: ingress checks, reads, and the stamp the
                                         leader puts on its commands (limits.c). Never read
                                         by apply */
    weft_limits applied_limits;       /* mirror of meta apply_limits: what apply enforces,
                                         the leader's limits as the log last stamped them
                                         (defaults until then); replicated state (G2) */
    weft_limits record_limits;        /* generous limits for decoding our own stored records */
    weft_store *store;                /* the LMDB env of this replica */
    weft_shard_observer obs;          /* leader hooks; all NULL when unset */
    uint64_t applied_index;           /* mirror of meta applied_index */
    uint64_t clock_ms;                /* mirror of meta shard_clock_ms (section 9) */
    bool leading;                     /* leader_start ran and leader_stop did not */
    bool failed;                      /* a storage failure stopped this replica (STYLE rule 10) */
    sh_dispatch dispatch;             /* in-memory FIFOs, leader only (section 8) */
};

/* Effects of one apply that reach memory and the observer only after the commit. */
typedef struct sh_ready_fx {
    uint8_t kind;                /* WEFT_TASK_KIND_* */
    char *task_queue;            /* malloc'd, NUL-terminated */
    uint64_t seq;                /* ready-table sequence */
    uint64_t run_key;
    uint64_t scheduled_event_id;
    uint32_t attempt;
} sh_ready_fx;

typedef struct sh_changed_fx {
    uint64_t run_key;
    bool closed;
} sh_changed_fx;

typedef struct sh_effects {
    sh_ready_fx *ready;          /* tasks that became ready, in ready-table order */
    uint32_t ready_count, ready_cap;
    sh_changed_fx *changed;      /* runs that gained events or closed */
    uint32_t changed_count, changed_cap;
    uint64_t earliest_timer_ms;  /* earliest timer added, 0 if none */
} sh_effects;

/* A decoded msgpack object that must stay alive while the command's structs borrow from it. */
typedef struct sh_unpacked {
    msgpack_unpacked up;
    struct sh_unpacked *next;
} sh_unpacked;

/* The context of one command (apply) or one read. */
typedef struct sh_ctx {
    weft_shard *s;               /* the replica */
    weft_txn *txn;               /* write txn for apply, read txn for reads and dispatch */
    uint64_t now_ms;             /* the shard clock for this entry (section 9) */
    const weft_limits *lim;      /* the limits this context enforces: entry_limits in apply,
                                    the node's configured limits elsewhere */
    weft_limits *entry_limits;   /* apply only: the entry's limits, which a stamped command
                                    updates (limits.c); NULL elsewhere */
    msgpack_zone zone;           /* arena for this command; cleared between commands */
    sh_unpacked *unpacked;       /* decodes to destroy when the command ends */
    weft_err err;                /* why the command was rejected, or the storage failure */
    weft_reply *reply;           /* this command's outcome (apply), or the read's reply */
    bool reply_wanted;           /* someone reads reply: false for a follower's apply, which
                                    then skips outcomes that cost storage reads to build */
    uint64_t writes;             /* puts and deletes so far: rejections must not follow writes */
    sh_effects *fx;              /* post-commit effects; NULL for reads */
} sh_ctx;

/* Initialises / finishes a context. sh_ctx_reset ends one command and readies the next. */
void sh_ctx_init(sh_ctx *c, weft_shard *s, weft_txn *txn, uint64_t now_ms, sh_effects *fx);
void sh_ctx_reset(sh_ctx *c);
void sh_ctx_close(sh_ctx *c);

/* A rejection: fills c->err and returns -code. Rejections must come before any write of the
 * command (the apply loop asserts it), which is how all-or-nothing holds without nested
 * transactions (DESIGN section 7). */
int sh_reject(sh_ctx *c, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An outcome that changed state and still answers with an error (UNHANDLED_EVENTS, a
 * recorded failed start): sets reply->err and returns 0. */
int sh_reply_error(sh_ctx *c, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Copies c->err into the reply as its error. */
void sh_reply_from_err(sh_ctx *c);

/* Success body: encodes `resp` with `schema` into reply->body. */
int sh_reply_body(sh_ctx *c, const weft_schema *schema, const void *resp);
/* Success with the empty response. */
int sh_reply_empty(sh_ctx *c);

/* Storage. get returns 0, -WEFT_E_NOT_FOUND, or -WEFT_E_INTERNAL (store poisoned). */
int sh_get(sh_ctx *c, weft_table tbl, const weft_key *k, weft_val *v);
int sh_put(sh_ctx *c, weft_table tbl, const weft_key *k, const void *val, size_t len);
/* Deleting an absent key is not an error here (stale rows are allowed, section 9). */
int sh_del(sh_ctx *c, weft_table tbl, const weft_key *k);

/* Encodes `rec` with `schema` and stores it under k. */
int sh_put_rec(sh_ctx *c, weft_table tbl, const weft_key *k, const weft_schema *schema,
               const void *rec);
/* Loads and decodes a record: 0, -WEFT_E_NOT_FOUND, or -WEFT_E_INTERNAL (a stored record
 * that does not decode is corruption). The struct borrows from the command's arena. */
int sh_get_rec(sh_ctx *c, weft_table tbl, const weft_key *k, const weft_schema *schema,
               void *out);
/* Decodes bytes (copied into the arena first when `copy`, because LMDB memory moves on the
 * next write). Stored records use record_limits; client bodies use c->lim. */
int sh_decode(sh_ctx *c, const weft_schema *schema, const void *buf, size_t len, bool copy,
              bool stored, void *out);

/* Arena helpers: copies that live until the command ends, always NUL-terminated. */
void *sh_alloc(sh_ctx *c, size_t n);
weft_str sh_str_dup(sh_ctx *c, weft_str s);
weft_str sh_str_fmt(sh_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Meta sequence numbers (ready and timer rows share next_seq). */
int sh_next_seq(sh_ctx *c, uint64_t *seq);
int sh_next_run_key(sh_ctx *c, uint64_t *run_key);

/* Post-commit effects. */
int sh_fx_ready(sh_ctx *c, uint8_t kind, weft_str queue, uint64_t seq, uint64_t run_key,
                uint64_t scheduled_event_id, uint32_t attempt);
int sh_fx_changed(sh_ctx *c, uint64_t run_key, bool closed);
void sh_fx_timer(sh_ctx *c, uint64_t fire_at_ms);
void sh_fx_free(sh_effects *fx);

/* Debug log of one state transition (STYLE rule 9). */
#define SH_LOG_TRANSITION(c, what, key, from, to)                                        \
    WEFT_LOGF(WEFT_LOG_DEBUG, (c)->s->shard_id, "run %llu %s: %s -> %s",                \
              (unsigned long long)(key), (what), (from), (to))

/* Longest duration any timeout or interval may ask for: 100 years. Deadlines are computed as
 * shard clock + duration, which must never wrap. */
#define SH_DURATION_MS_MAX (100ull * 365ull * 24ull * 3600ull * 1000ull)
/* The shard clock never passes WEFT_LEADER_TIME_MS_MAX (raft/batch.c refuses later stamps). */
_Static_assert(WEFT_LEADER_TIME_MS_MAX <= UINT64_MAX - SH_DURATION_MS_MAX,
               "the shard clock plus the longest duration fits a u64");
/* Rejects a duration above SH_DURATION_MS_MAX, naming `field`. */
int sh_check_duration(sh_ctx *c, const char *field, uint64_t ms);

/* now + ms on the shard clock, saturating at UINT64_MAX (a row that never comes due) for
 * durations no request check bounds: retention_ms and dedup_ttl_ms accept any u64 in the
 * config, meaning "keep forever". */
uint64_t sh_deadline_ms(const sh_ctx *c, uint64_t ms);

/* Namespace default: an empty namespace means "default" (section 1). */
weft_str sh_namespace(weft_str ns);

#endif
