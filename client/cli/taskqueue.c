/* taskqueue.c: `weft task-queue describe`: who polled a task queue in the last minute (the
 * server's window), and the hint `workflow describe` prints when a run's task waits on a queue
 * nobody polls. */
#include <string.h>

#include "cli.h"

/* The server's window (node/pollseen.h WEFTD_POLLERS_WINDOW_MS), for the hint's wording. */
#define TASKQ_WINDOW_S 60u
/* Distinct activity queues one describe asks about: a hint is worth a few calls, not one per
 * pending activity of a run that has thousands. */
#define TASKQ_HINT_QUEUES_MAX 8u

static int taskq_fetch(cli_ctx *ctx, weft_str queue, weft_task_queue_resp *resp,
                       weft_response *holder, weft_err *err) {
    weft_task_queue_req req = {.namespace_ = weft_str_c(ctx->namespace_), .task_queue = queue};
    int rc = ctx->client == NULL ? cli_connect(ctx, err) : 0; /* describe's, when a hint */
    if (rc == 0) rc = weft_client_describe_task_queue(ctx->client, &req, resp, holder, err);
    return rc;
}

/* "3.2 s ago" (tenths of a second; "0.0 s ago" for a clock a little ahead of ours). */
static void taskq_ago(uint64_t then_ms, uint64_t now_ms, char *buf, size_t cap) {
    uint64_t ago = now_ms > then_ms ? now_ms - then_ms : 0;
    snprintf(buf, cap, "%llu.%llu s ago", (unsigned long long)(ago / 1000u),
             (unsigned long long)(ago % 1000u / 100u));
}

static void taskq_print_table(const weft_task_queue_resp *r, weft_str queue) {
    if (r->pollers_count == 0) {
        printf("no worker has polled task queue '%.*s' in the last %u s\n", CLI_STR(queue),
               TASKQ_WINDOW_S);
        return;
    }
    int iw = (int)strlen("IDENTITY");
    for (uint32_t i = 0; i < r->pollers_count; i++)
        iw = WEFT_MAX(iw, (int)r->pollers[i].identity.len);
    printf("%-*s  %-8s  %-6s  %s\n", iw, "IDENTITY", "KIND", "NODE", "LAST POLL");
    uint64_t now = weft_wall_ms();
    for (uint32_t i = 0; i < r->pollers_count; i++) {
        const weft_poller_info *p = &r->pollers[i];
        char ago[48];
        taskq_ago(p->last_poll_ms, now, ago, sizeof ago);
        weft_str id = p->identity.len > 0 ? p->identity : WEFT_STR_LIT("-");
        printf("%-*.*s  %-8.*s  %-6llu  %s\n", iw, CLI_STR(id), CLI_STR(p->kind),
               (unsigned long long)p->node_id, ago);
    }
}

int cli_task_queue_describe(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_str queue = weft_str_c(cli_arg(ctx, "task-queue"));
    weft_task_queue_resp resp;
    weft_response holder = {0};
    int rc = taskq_fetch(ctx, queue, &resp, &holder, &err);
    if (rc == 0) {
        if (ctx->output == CLI_OUTPUT_JSON) {
            rc = cli_print_struct_json(&weft_task_queue_resp_schema, &resp, &err);
        } else {
            taskq_print_table(&resp, queue);
        }
    }
    weft_response_free(&holder);
    return rc == 0 ? CLI_EXIT_OK : cli_fail(&err);
}

static bool taskq_has_kind(const weft_task_queue_resp *r, const char *kind) {
    for (uint32_t i = 0; i < r->pollers_count; i++) {
        if (weft_str_eq_c(r->pollers[i].kind, kind)) return true;
    }
    return false;
}

/* Prints the hint when nobody polled `queue` for `kind` tasks. Errors are ignored. */
static void taskq_hint_one(cli_ctx *ctx, weft_str queue, const char *kind) {
    weft_err err;
    weft_err_clear(&err);
    weft_task_queue_resp tq;
    weft_response holder = {0};
    if (taskq_fetch(ctx, queue, &tq, &holder, &err) == 0 && !taskq_has_kind(&tq, kind)) {
        printf("hint: no worker has polled task queue '%.*s' (%s tasks) in the last %u s; "
               "start a worker for it (see: weft task-queue describe --task-queue %.*s)\n",
               CLI_STR(queue), kind, TASKQ_WINDOW_S, CLI_STR(queue));
    }
    weft_response_free(&holder);
}

void cli_task_queue_hint(cli_ctx *ctx, const weft_describe_resp *r) {
    if (r->info.status != WEFT_STATUS_RUNNING) return;
    /* A task on a sticky queue has its worker; only the shared queue needs a poller. */
    if (r->workflow_task_pending && r->sticky_queue.len == 0 &&
        weft_str_eq_c(r->workflow_task_state, "scheduled") && r->info.task_queue.len > 0) {
        taskq_hint_one(ctx, r->info.task_queue, "workflow");
    }
    /* Activities may name their own queues: one hint per queue, in order of first mention. */
    uint32_t asked = 0;
    for (uint32_t i = 0; i < r->pending_activities_count && asked < TASKQ_HINT_QUEUES_MAX; i++) {
        const weft_pending_activity *a = &r->pending_activities[i];
        weft_str queue = a->task_queue.len > 0 ? a->task_queue : r->info.task_queue;
        if (!weft_str_eq_c(a->state, "scheduled") || queue.len == 0) continue;
        bool earlier = false;
        for (uint32_t j = 0; j < i && !earlier; j++) {
            const weft_pending_activity *b = &r->pending_activities[j];
            weft_str qb = b->task_queue.len > 0 ? b->task_queue : r->info.task_queue;
            earlier = weft_str_eq_c(b->state, "scheduled") && weft_str_eq(qb, queue);
        }
        if (earlier) continue;
        taskq_hint_one(ctx, queue, "activity");
        asked++;
    }
}
