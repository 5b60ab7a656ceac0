/* result.c: `weft workflow result`: a run's outcome, following continue-as-new to the last
 * run, optionally waiting for it; the exit code tells the outcome (cli.h CLI_EXIT_*). */
#include <string.h>

#include "cli.h"

/* The exit code of an outcome. CONTINUED is only seen when the server could not follow the
 * chain; the run is closed but has no result, so it counts with the unsuccessful ones. */
static int result_exit_code(uint32_t status) {
    switch (status) {
    case WEFT_STATUS_COMPLETED:
        return CLI_EXIT_OK;
    case WEFT_STATUS_RUNNING:
        return CLI_EXIT_RUNNING;
    default:
        return CLI_EXIT_CLOSED;
    }
}

/* Table form: a completed run prints its result payload alone (so that `$(weft workflow
 * result ...)` is the result); anything else prints its status and failure. */
static void result_print_table(const weft_result_resp *r) {
    if (r->status == WEFT_STATUS_COMPLETED) {
        cli_print_payload(stdout, r->result);
        fputc('\n', stdout);
        return;
    }
    printf("status: %s\nrun_id: %.*s\n", cli_status_name(r->status), CLI_STR(r->run_id));
    const weft_failure *f = &r->failure;
    if (f->type.len > 0) printf("failure_type: %.*s\n", CLI_STR(f->type));
    if (f->message.len > 0) printf("failure_message: %.*s\n", CLI_STR(f->message));
    if (f->non_retryable) printf("non_retryable: true\n");
    if (f->details.len > 0) {
        fputs("failure_details: ", stdout);
        cli_print_payload(stdout, f->details);
        fputc('\n', stdout);
    }
    if (r->continued_run_id.len > 0)
        printf("continued_run_id: %.*s\n", CLI_STR(r->continued_run_id));
}

/* Reads the flags: --wait, and --timeout (which only makes sense with --wait). */
static int result_flags(cli_ctx *ctx, bool *wait, uint64_t *timeout_ms, weft_err *err) {
    *wait = cli_switch(ctx, "wait");
    *timeout_ms = 0;
    int rc = cli_arg_duration(ctx, "timeout", timeout_ms, err);
    if (rc == 0 && *timeout_ms > 0 && !*wait) {
        rc = cli_usage_error(ctx, err, "--timeout", "--timeout applies only with --wait");
    }
    return rc;
}

/* One GetResult, or with --wait a loop of long-polls until the run closes or the deadline
 * (0: none) passes. */
static int result_get(cli_ctx *ctx, weft_result_req *req, bool wait, uint64_t timeout_ms,
                      weft_result_resp *resp, weft_response *holder, weft_err *err) {
    uint64_t start_ms = weft_mono_ms();
    /* A timeout too long to add saturates: it means "wait forever" in practice. */
    uint64_t deadline_ms = timeout_ms == 0                      ? 0
                           : timeout_ms > UINT64_MAX - start_ms ? UINT64_MAX
                                                                : start_ms + timeout_ms;
    for (;;) {
        uint64_t chunk_ms = CLI_LONG_POLL_MS;
        if (deadline_ms > 0) {
            uint64_t now_ms = weft_mono_ms();
            /* The first poll always goes out, so a deadline that has passed still reads the
             * outcome once. */
            chunk_ms = now_ms < deadline_ms ? WEFT_MIN(chunk_ms, deadline_ms - now_ms) : 1u;
        }
        req->wait = wait;
        req->wait_timeout_ms = wait ? chunk_ms : 0;
        int rc = weft_client_result(ctx->client, req, resp, holder, err);
        if (rc != 0) return rc;
        if (!wait || resp->status != WEFT_STATUS_RUNNING) return 0;
        if (deadline_ms > 0 && weft_mono_ms() >= deadline_ms) return 0;
    }
}

int cli_workflow_result(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    bool wait = false;
    uint64_t timeout_ms = 0;
    int rc = result_flags(ctx, &wait, &timeout_ms, &err);
    if (rc != 0) return cli_fail(&err);
    weft_result_req req = {
        .namespace_ = weft_str_c(ctx->namespace_),
        .workflow_id = weft_str_c(cli_arg(ctx, "id")),
        .run_id = weft_str_c(cli_arg(ctx, "run-id")),
        .follow_runs = true,
    };
    weft_result_resp resp;
    weft_response holder = {0};
    rc = cli_connect(ctx, &err);
    if (rc == 0) rc = result_get(ctx, &req, wait, timeout_ms, &resp, &holder, &err);
    int code = CLI_EXIT_ERROR;
    if (rc == 0 && ctx->output == CLI_OUTPUT_JSON) {
        rc = cli_print_struct_json(&weft_result_resp_schema, &resp, &err);
    } else if (rc == 0) {
        result_print_table(&resp);
    }
    if (rc == 0) code = result_exit_code(resp.status);
    weft_response_free(&holder);
    return rc == 0 ? code : cli_fail(&err);
}
