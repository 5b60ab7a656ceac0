/* list.c: `weft workflow list` (paged through ListWorkflows up to --limit rows) and
 * `weft workflow count`, with the same filters. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The filters both commands share: --status, --type and the start-time range. */
static int list_filters(cli_ctx *ctx, weft_list_req *req, weft_err *err) {
    req->namespace_ = weft_str_c(ctx->namespace_);
    req->workflow_type = weft_str_c(cli_arg(ctx, "type"));
    /* Status 0 ("unspecified") means any, so it is not a value one can ask for. */
    int rc = cli_arg_enum(ctx, "status", weft_status_names, true, &req->status, err);
    if (rc == 0) rc = cli_arg_time(ctx, "started-after", &req->start_time_min_ms, err);
    if (rc == 0) rc = cli_arg_time(ctx, "started-before", &req->start_time_max_ms, err);
    if (rc == 0 && req->start_time_max_ms > 0 && req->start_time_min_ms > req->start_time_max_ms) {
        rc = cli_usage_error(ctx, err, "--started-after",
                             "--started-after is later than --started-before: no run can match");
    }
    return rc;
}

/* Widths of the table's columns for one page: as wide as the widest value or header. */
typedef struct list_widths {
    int id;   /* workflow id */
    int run;  /* run id */
    int type; /* workflow type */
} list_widths;

static list_widths list_measure(const weft_list_resp *page, uint32_t rows) {
    list_widths w = {(int)strlen("WORKFLOW_ID"), (int)strlen("RUN_ID"), (int)strlen("TYPE")};
    for (uint32_t i = 0; i < rows; i++) {
        const weft_execution_info *e = &page->executions[i];
        w.id = WEFT_MAX(w.id, (int)e->workflow_id.len);
        w.run = WEFT_MAX(w.run, (int)e->run_id.len);
        w.type = WEFT_MAX(w.type, (int)e->workflow_type.len);
    }
    return w;
}

static void list_print_table(const weft_list_resp *page, uint32_t rows, bool header) {
    list_widths w = list_measure(page, rows);
    if (header) {
        printf("%-*s  %-*s  %-*s  %-10s  %-24s  %s\n", w.id, "WORKFLOW_ID", w.run, "RUN_ID", w.type,
               "TYPE", "STATUS", "START_TIME", "CLOSE_TIME");
    }
    for (uint32_t i = 0; i < rows; i++) {
        const weft_execution_info *e = &page->executions[i];
        char start[CLI_TIME_BYTES], close[CLI_TIME_BYTES];
        printf("%-*.*s  %-*.*s  %-*.*s  %-10s  %-24s  %s\n", w.id, CLI_STR(e->workflow_id), w.run,
               CLI_STR(e->run_id), w.type, CLI_STR(e->workflow_type), cli_status_name(e->status),
               cli_time(e->start_time_ms, start), cli_time(e->close_time_ms, close));
    }
}

static int list_print_page(const cli_ctx *ctx, const weft_list_resp *page, uint32_t rows,
                           bool first, weft_err *err) {
    if (ctx->output == CLI_OUTPUT_TABLE) {
        list_print_table(page, rows, first);
        return 0;
    }
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < rows; i++) {
        rc = cli_print_struct_json(&weft_execution_info_schema, &page->executions[i], err);
    }
    return rc;
}

/* Keeps a copy of the page token: the holder that the response borrows from is reused. */
static int list_keep_token(weft_list_req *req, const weft_list_resp *page, uint8_t **token,
                           weft_err *err) {
    free(*token);
    *token = NULL;
    req->next_page_token = (weft_bytes){0};
    if (page->next_page_token.len == 0) return 0;
    *token = malloc(page->next_page_token.len);
    if (*token == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory for a page token");
    }
    memcpy(*token, page->next_page_token.ptr, page->next_page_token.len);
    req->next_page_token = (weft_bytes){.ptr = *token, .len = page->next_page_token.len};
    return 0;
}

int cli_workflow_list(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_list_req req = {0};
    uint32_t limit = CLI_LIST_LIMIT_DEFAULT;
    int rc = list_filters(ctx, &req, &err);
    if (rc == 0) rc = cli_arg_u32(ctx, "limit", 1, CLI_LIST_LIMIT_MAX, &limit, &err);
    if (rc == 0) rc = cli_connect(ctx, &err);
    weft_list_resp page;
    weft_response holder = {0};
    uint8_t *token = NULL;
    uint32_t printed = 0;
    while (rc == 0 && printed < limit) {
        req.page_size = WEFT_MIN(limit - printed, WEFT_LIST_PAGE_SIZE_MAX);
        rc = weft_client_list(ctx->client, &req, &page, &holder, &err);
        if (rc != 0) break;
        uint32_t rows = WEFT_MIN(page.executions_count, limit - printed);
        rc = list_print_page(ctx, &page, rows, printed == 0, &err);
        printed += rows;
        if (rc == 0) rc = list_keep_token(&req, &page, &token, &err);
        if (req.next_page_token.len == 0 || page.executions_count == 0) break;
    }
    weft_response_free(&holder);
    free(token);
    return rc == 0 ? CLI_EXIT_OK : cli_fail(&err);
}

int cli_workflow_count(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_list_req req = {0};
    uint64_t count = 0;
    int rc = list_filters(ctx, &req, &err);
    if (rc == 0) rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_count(ctx->client, &req, &count, &err);
    if (rc == 0 && ctx->output == CLI_OUTPUT_JSON) {
        /* Built by hand: the struct form omits a zero count, and scripts want {"count": 0}. */
        json_t *j =
            count <= (uint64_t)INT64_MAX ? json_pack("{s:I}", "count", (json_int_t)count) : NULL;
        rc = j != NULL ? cli_print_json(j, &err)
                       : weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
        json_decref(j);
    } else if (rc == 0) {
        printf("%llu\n", (unsigned long long)count);
    }
    return rc == 0 ? CLI_EXIT_OK : cli_fail(&err);
}
