/* workflow.c: the commands that change a workflow: start, signal-with-start, signal, cancel and
 * terminate. Each is a write: it carries a request id (--request-id, else a fresh one), and a
 * failure whose outcome is unknown says how to send it again (cli_fail_write). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A fresh workflow id "<type>-<hex>" in malloc'd memory (the caller frees it). */
static char *workflow_id_generate(const char *type, weft_err *err) {
    char rid[WEFT_CLIENT_REQUEST_ID_BYTES];
    if (weft_request_id_new(rid, err) != 0) return NULL;
    size_t n = strlen(type) + 1 + CLI_GENERATED_ID_HEX_DIGITS + 1;
    char *id = malloc(n);
    if (id == NULL) {
        weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "--id", "out of memory for a workflow id");
        return NULL;
    }
    snprintf(id, n, "%s-%.*s", type, (int)CLI_GENERATED_ID_HEX_DIGITS, rid);
    WEFT_ASSERT(strlen(id) == n - 1);
    return id;
}

/* Reads the flags that start and signal-with-start share into `req` (strings borrowed from
 * argv or ctx). */
static int workflow_start_req(cli_ctx *ctx, weft_start_req *req, weft_err *err) {
    req->namespace_ = weft_str_c(ctx->namespace_);
    req->workflow_type = weft_str_c(cli_arg(ctx, "type"));
    req->task_queue = weft_str_c(cli_arg(ctx, "task-queue"));
    req->id_reuse_policy = WEFT_REUSE_ALLOW;
    int rc = cli_arg_json(ctx, "input", &req->input, err);
    if (rc == 0) rc = cli_arg_duration(ctx, "run-timeout", &req->workflow_run_timeout_ms, err);
    if (rc == 0) {
        rc = cli_arg_duration(ctx, "execution-timeout", &req->workflow_execution_timeout_ms, err);
    }
    if (rc == 0) rc = cli_arg_duration(ctx, "task-timeout", &req->workflow_task_timeout_ms, err);
    if (rc == 0) {
        rc = cli_arg_enum(ctx, "id-reuse-policy", weft_reuse_policy_names, false,
                          &req->id_reuse_policy, err);
    }
    if (rc == 0) rc = cli_request_id(ctx, &req->request_id, err);
    if (rc == 0 && (req->workflow_type.len == 0 || req->task_queue.len == 0)) {
        rc = cli_usage_error(ctx, err, "--type", "--type and --task-queue must not be empty");
    }
    return rc;
}

static int workflow_start_print(const cli_ctx *ctx, const char *id, const weft_start_resp *resp,
                                weft_err *err) {
    if (ctx->output == CLI_OUTPUT_TABLE) {
        printf("workflow_id: %s\nrun_id: %.*s\n", id, CLI_STR(resp->run_id));
        return 0;
    }
    json_t *j = json_pack("{s:s, s:s%, s:b}", "workflow_id", id, "run_id",
                          resp->run_id.ptr != NULL ? resp->run_id.ptr : "",
                          (size_t)resp->run_id.len, "started", (int)resp->started);
    if (j == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory printing JSON");
    }
    int rc = cli_print_json(j, err);
    json_decref(j);
    return rc;
}

int cli_workflow_start(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_start_req req = {0};
    int rc = workflow_start_req(ctx, &req, &err);
    if (rc == 0) {
        rc = cli_arg_enum(ctx, "id-conflict-policy", weft_conflict_policy_names, false,
                          &req.id_conflict_policy, &err);
    }
    if (rc != 0) return cli_fail(&err);
    char *generated = NULL;
    const char *id = cli_arg(ctx, "id");
    if (id == NULL) {
        generated = workflow_id_generate(cli_arg(ctx, "type"), &err);
        if (generated == NULL) return cli_fail(&err);
        id = generated;
    }
    req.workflow_id = weft_str_c(id);
    weft_start_resp resp;
    weft_response holder = {0};
    rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_start(ctx->client, &req, &resp, &holder, &err);
    if (rc == 0) rc = workflow_start_print(ctx, id, &resp, &err);
    weft_response_free(&holder);
    free(generated);
    return rc == 0 ? CLI_EXIT_OK : cli_fail_write(ctx, &err);
}

int cli_workflow_signal_with_start(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_start_req req = {0};
    int rc = workflow_start_req(ctx, &req, &err);
    if (rc == 0) rc = cli_arg_json(ctx, "signal-input", &req.signal_input, &err);
    if (rc != 0) return cli_fail(&err);
    const char *id = cli_arg(ctx, "id");
    req.workflow_id = weft_str_c(id);
    req.signal_name = weft_str_c(cli_arg(ctx, "signal-name"));
    weft_start_resp resp;
    weft_response holder = {0};
    rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_signal_with_start(ctx->client, &req, &resp, &holder, &err);
    if (rc == 0 && ctx->output == CLI_OUTPUT_TABLE) {
        printf("signal %s sent to workflow %s (%s)\n", cli_arg(ctx, "signal-name"), id,
               resp.started ? "run started" : "run already open");
    }
    if (rc == 0) rc = workflow_start_print(ctx, id, &resp, &err);
    weft_response_free(&holder);
    return rc == 0 ? CLI_EXIT_OK : cli_fail_write(ctx, &err);
}

/* The JSON form of an operation with an empty response: "{}", so that every command's json
 * output is one object. */
static int workflow_print_empty(weft_err *err) {
    weft_empty_resp empty = {0};
    return cli_print_struct_json(&weft_empty_resp_schema, &empty, err);
}

int cli_workflow_signal(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_signal_req req = {
        .namespace_ = weft_str_c(ctx->namespace_),
        .workflow_id = weft_str_c(cli_arg(ctx, "id")),
        .run_id = weft_str_c(cli_arg(ctx, "run-id")),
        .signal_name = weft_str_c(cli_arg(ctx, "name")),
    };
    int rc = cli_arg_json(ctx, "input", &req.input, &err);
    if (rc == 0) rc = cli_request_id(ctx, &req.request_id, &err);
    if (rc != 0) return cli_fail(&err);
    rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_signal(ctx->client, &req, &err);
    if (rc == 0 && ctx->output == CLI_OUTPUT_TABLE) {
        printf("signal %s sent to workflow %s\n", cli_arg(ctx, "name"), cli_arg(ctx, "id"));
    } else if (rc == 0) {
        rc = workflow_print_empty(&err);
    }
    return rc == 0 ? CLI_EXIT_OK : cli_fail_write(ctx, &err);
}

/* CancelWorkflow and TerminateWorkflow share one request. */
static int workflow_close(cli_ctx *ctx, bool terminate) {
    weft_err err;
    weft_err_clear(&err);
    weft_close_req req = {
        .namespace_ = weft_str_c(ctx->namespace_),
        .workflow_id = weft_str_c(cli_arg(ctx, "id")),
        .run_id = weft_str_c(cli_arg(ctx, "run-id")),
        .reason = weft_str_c(cli_arg(ctx, "reason")),
    };
    int rc = cli_arg_json(ctx, "details", &req.details, &err);
    if (rc == 0) rc = cli_request_id(ctx, &req.request_id, &err);
    if (rc != 0) return cli_fail(&err);
    rc = cli_connect(ctx, &err);
    if (rc == 0) {
        rc = terminate ? weft_client_terminate(ctx->client, &req, &err)
                       : weft_client_cancel(ctx->client, &req, &err);
    }
    if (rc == 0 && ctx->output == CLI_OUTPUT_TABLE) {
        printf("%s workflow %s\n", terminate ? "terminated" : "cancel requested for",
               cli_arg(ctx, "id"));
    } else if (rc == 0) {
        rc = workflow_print_empty(&err);
    }
    return rc == 0 ? CLI_EXIT_OK : cli_fail_write(ctx, &err);
}

int cli_workflow_cancel(cli_ctx *ctx) {
    return workflow_close(ctx, false);
}

int cli_workflow_terminate(cli_ctx *ctx) {
    return workflow_close(ctx, true);
}
