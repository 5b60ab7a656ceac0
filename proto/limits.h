/* limits.h: every limit weft enforces, as a named constant with its unit, and the struct
 * through which the config overrides them (DESIGN section 7, "Limits"). */
#ifndef WEFT_PROTO_LIMITS_H
#define WEFT_PROTO_LIMITS_H

#include <stdint.h>

/* A frame bigger than this is refused and the connection closed (DESIGN section 10). */
#define WEFT_FRAME_BYTES_MAX_DEFAULT (4u * 1024u * 1024u)
/* One payload (input, result, details, heartbeat details). Leaves room for the frame's other
 * fields so that a maximal payload still fits in one frame. */
#define WEFT_PAYLOAD_BYTES_MAX_DEFAULT (2u * 1024u * 1024u)
/* Namespaces, workflow ids, types, task queues, signal names, request ids, identities. */
#define WEFT_ID_BYTES_MAX_DEFAULT 1000u
/* A history longer than this cannot grow; the error suggests ContinueAsNew. */
#define WEFT_HISTORY_EVENTS_MAX_DEFAULT 51200u
#define WEFT_HISTORY_BYTES_MAX_DEFAULT (50ull * 1024ull * 1024ull)
/* Per run: pending activities and pending timers. */
#define WEFT_PENDING_ACTIVITIES_MAX_DEFAULT 2000u
#define WEFT_PENDING_TIMERS_MAX_DEFAULT 2000u
/* Commands in one CompleteWorkflowTask. Bounded by the pending limits plus a close command. */
#define WEFT_COMMANDS_PER_TASK_MAX_DEFAULT 4096u
/* Signal request ids remembered per run for dedup. */
#define WEFT_SIGNAL_DEDUP_PER_RUN_MAX_DEFAULT 10000u
/* The latest time, in ms since the epoch, that a leader may stamp on a raft entry: the start of
 * the year 10000. No working clock reads later, and every deadline is the shard clock (the
 * largest stamp applied) plus a duration of at most 100 years (shards/apply.h), which must
 * never wrap a u64 (DESIGN section 9). raft/batch.c refuses entries stamped later. */
#define WEFT_LEADER_TIME_MS_MAX 253402300800000ull
/* Nesting depth the msgpack decoder accepts before it refuses input (STYLE rule 12). */
#define WEFT_DECODE_DEPTH_MAX 8u
/* Elements in one decoded array (commands, events, error types). */
#define WEFT_DECODE_ARRAY_ITEMS_MAX 65536u
/* An idle long-poll returns empty after this long (DESIGN section 8). */
#define WEFT_POLL_TIMEOUT_MS_DEFAULT 60000u
/* Sticky workflow tasks fall back to the shared queue after this long (DESIGN section 7). */
#define WEFT_STICKY_TIMEOUT_MS_DEFAULT 5000u
/* Workflow task start-to-close default (DESIGN section 7). */
#define WEFT_WORKFLOW_TASK_TIMEOUT_MS_DEFAULT 10000u
/* Closed runs are deleted this long after they close (DESIGN section 7, "Retention"). */
#define WEFT_RETENTION_MS_DEFAULT (7ull * 24ull * 3600ull * 1000ull)
/* Request-id dedup entries for start/signal/cancel/terminate are kept this long. */
#define WEFT_DEDUP_TTL_MS_DEFAULT (24ull * 3600ull * 1000ull)
/* Events returned by one GetHistory page, and the cap on a client-asked page size. */
#define WEFT_HISTORY_PAGE_EVENTS_DEFAULT 1000u
/* Executions returned by one ListWorkflows page. */
#define WEFT_LIST_PAGE_SIZE_MAX 1000u
/* Longest wait of GetHistory(wait) and GetResult(wait). */
#define WEFT_LONG_POLL_MS_MAX 300000u
/* Retry backoff after a failed workflow task: initial, cap. */
#define WEFT_WFT_RETRY_INITIAL_MS 1000u
#define WEFT_WFT_RETRY_MAX_MS 60000u

_Static_assert(WEFT_PAYLOAD_BYTES_MAX_DEFAULT < WEFT_FRAME_BYTES_MAX_DEFAULT,
               "a maximal payload must fit in one frame");
_Static_assert(WEFT_PENDING_ACTIVITIES_MAX_DEFAULT + WEFT_PENDING_TIMERS_MAX_DEFAULT <
                   WEFT_COMMANDS_PER_TASK_MAX_DEFAULT,
               "one task may fill both pending limits");

/* The configurable limits. weft_limits_default() fills the defaults above; node/config.c
 * overrides fields from flags and the config file. Shards and the codec read this struct,
 * never the macros, so an override reaches every check. */
typedef struct weft_limits {
    uint32_t frame_bytes_max;            /* largest accepted frame */
    uint32_t payload_bytes_max;          /* largest payload field */
    uint32_t id_bytes_max;               /* largest identifier field */
    uint32_t history_events_max;         /* events per run */
    uint64_t history_bytes_max;          /* encoded history bytes per run */
    uint32_t pending_activities_max;     /* pending activities per run */
    uint32_t pending_timers_max;         /* pending user timers per run */
    uint32_t commands_per_task_max;      /* commands in one workflow task completion */
    uint32_t signal_dedup_per_run_max;   /* remembered signal request ids per run */
    uint32_t poll_timeout_ms;            /* idle long-poll answer time */
    uint32_t sticky_timeout_ms;          /* sticky queue fallback time */
    uint32_t workflow_task_timeout_ms;   /* default workflow task start-to-close */
    uint64_t retention_ms;               /* closed-run retention */
    uint64_t dedup_ttl_ms;               /* request-id dedup lifetime */
} weft_limits;

void weft_limits_default(weft_limits *l);

#endif
