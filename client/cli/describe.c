/* describe.c: `weft workflow describe`: a run's status, times and limits, its workflow task,
 * and its pending activities and timers; and a hint when a task of the run waits on a queue
 * that no worker polls (taskqueue.c). */
#include <string.h>

#include "cli.h"

/* Width of the labels in the table form. */
#define DESCRIBE_LABEL_WIDTH 20

static void describe_str(const char *label, weft_str s) {
    weft_str shown = s.len > 0 ? s : WEFT_STR_LIT("-");
    printf("%-*s %.*s\n", DESCRIBE_LABEL_WIDTH, label, CLI_STR(shown));
}

static void describe_time(const char *label, uint64_t ms) {
    char buf[CLI_TIME_BYTES];
    printf("%-*s %s\n", DESCRIBE_LABEL_WIDTH, label, cli_time(ms, buf));
}

static void describe_duration(const char *label, uint64_t ms) {
    char buf[CLI_TIME_BYTES];
    printf("%-*s %s\n", DESCRIBE_LABEL_WIDTH, label,
           ms > 0 ? weft_duration_format(ms, buf, sizeof buf) : "none");
}

/* "  key=value ..." for one element of a pending list, through its JSON form. */
static int describe_item(const weft_schema *schema, const void *item, weft_err *err) {
    json_t *j = weft_json_from_struct(schema, item);
    if (j == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory describing %s",
                            schema->name);
    }
    fputs("  ", stdout);
    cli_print_attrs(stdout, j, NULL);
    fputc('\n', stdout);
    json_decref(j);
    return 0;
}

static void describe_info(const weft_execution_info *in) {
    describe_str("workflow_id:", in->workflow_id);
    describe_str("run_id:", in->run_id);
    describe_str("type:", in->workflow_type);
    describe_str("task_queue:", in->task_queue);
    /* Once closed, the status says how: a request to cancel matters only while it runs. */
    bool pending_cancel = in->cancel_requested && in->status == WEFT_STATUS_RUNNING;
    printf("%-*s %s%s\n", DESCRIBE_LABEL_WIDTH, "status:", cli_status_name(in->status),
           pending_cancel ? " (cancel requested)" : "");
    describe_time("start_time:", in->start_time_ms);
    describe_time("close_time:", in->close_time_ms);
    printf("%-*s %llu events, %llu bytes\n", DESCRIBE_LABEL_WIDTH,
           "history:", (unsigned long long)in->history_length,
           (unsigned long long)in->history_bytes);
    describe_duration("run_timeout:", in->workflow_run_timeout_ms);
    describe_duration("execution_timeout:", in->workflow_execution_timeout_ms);
    describe_duration("task_timeout:", in->workflow_task_timeout_ms);
    if (!weft_str_eq(in->first_run_id, in->run_id)) describe_str("first_run_id:", in->first_run_id);
    if (in->continued_from_run_id.len > 0) {
        describe_str("continued_from:", in->continued_from_run_id);
    }
    if (in->continued_to_run_id.len > 0) describe_str("continued_to:", in->continued_to_run_id);
}

static void describe_task(const weft_describe_resp *r) {
    if (!r->workflow_task_pending) {
        printf("%-*s none\n", DESCRIBE_LABEL_WIDTH, "workflow_task:");
    } else {
        printf("%-*s %.*s, attempt %u", DESCRIBE_LABEL_WIDTH,
               "workflow_task:", CLI_STR(r->workflow_task_state), r->workflow_task_attempt);
        if (r->sticky_queue.len > 0) {
            printf(", sticky queue %.*s", CLI_STR(r->sticky_queue));
        }
        fputc('\n', stdout);
    }
    if (r->workflow_task_failures > 0) {
        const weft_failure *f = &r->last_workflow_task_failure;
        printf("%-*s %u, last: %.*s: %.*s\n", DESCRIBE_LABEL_WIDTH,
               "task_failures:", r->workflow_task_failures, CLI_STR(f->type), CLI_STR(f->message));
    }
}

static int describe_table(const weft_describe_resp *r, weft_err *err) {
    describe_info(&r->info);
    describe_task(r);
    printf("%-*s %u\n", DESCRIBE_LABEL_WIDTH, "pending_activities:", r->pending_activities_count);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < r->pending_activities_count; i++) {
        rc = describe_item(&weft_pending_activity_schema, &r->pending_activities[i], err);
    }
    if (rc == 0)
        printf("%-*s %u\n", DESCRIBE_LABEL_WIDTH, "pending_timers:", r->pending_timers_count);
    for (uint32_t i = 0; rc == 0 && i < r->pending_timers_count; i++) {
        rc = describe_item(&weft_pending_timer_schema, &r->pending_timers[i], err);
    }
    return rc;
}

int cli_workflow_describe(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_describe_req req = {
        .namespace_ = weft_str_c(ctx->namespace_),
        .workflow_id = weft_str_c(cli_arg(ctx, "id")),
        .run_id = weft_str_c(cli_arg(ctx, "run-id")),
    };
    weft_describe_resp resp;
    weft_response holder = {0};
    int rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_describe(ctx->client, &req, &resp, &holder, &err);
    if (rc == 0) {
        rc = ctx->output == CLI_OUTPUT_JSON
                 ? cli_print_struct_json(&weft_describe_resp_schema, &resp, &err)
                 : describe_table(&resp, &err);
    }
    if (rc == 0 && ctx->output == CLI_OUTPUT_TABLE) cli_task_queue_hint(ctx, &resp);
    weft_response_free(&holder);
    return rc == 0 ? CLI_EXIT_OK : cli_fail(&err);
}
