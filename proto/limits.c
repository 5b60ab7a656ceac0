/* limits.c: the default limits (limits.h documents each). */
#include "limits.h"

#include <string.h>

void weft_limits_default(weft_limits *l) {
    memset(l, 0, sizeof *l);
    l->frame_bytes_max = WEFT_FRAME_BYTES_MAX_DEFAULT;
    l->payload_bytes_max = WEFT_PAYLOAD_BYTES_MAX_DEFAULT;
    l->id_bytes_max = WEFT_ID_BYTES_MAX_DEFAULT;
    l->history_events_max = WEFT_HISTORY_EVENTS_MAX_DEFAULT;
    l->history_bytes_max = WEFT_HISTORY_BYTES_MAX_DEFAULT;
    l->pending_activities_max = WEFT_PENDING_ACTIVITIES_MAX_DEFAULT;
    l->pending_timers_max = WEFT_PENDING_TIMERS_MAX_DEFAULT;
    l->commands_per_task_max = WEFT_COMMANDS_PER_TASK_MAX_DEFAULT;
    l->signal_dedup_per_run_max = WEFT_SIGNAL_DEDUP_PER_RUN_MAX_DEFAULT;
    l->poll_timeout_ms = WEFT_POLL_TIMEOUT_MS_DEFAULT;
    l->sticky_timeout_ms = WEFT_STICKY_TIMEOUT_MS_DEFAULT;
    l->workflow_task_timeout_ms = WEFT_WORKFLOW_TASK_TIMEOUT_MS_DEFAULT;
    l->retention_ms = WEFT_RETENTION_MS_DEFAULT;
    l->dedup_ttl_ms = WEFT_DEDUP_TTL_MS_DEFAULT;
}
