/* history.c: `weft workflow show`: a run's history, one event per line, paged through
 * GetHistory and, with --follow, long-polled until the run closes. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Attributes the table form prints in columns of their own. */
static const char *const history_columns[] = {"event_id", "event_time_ms", "event_type", NULL};

static int history_print_table(const weft_event *ev, weft_err *err) {
    json_t *j = weft_json_from_struct(&weft_event_schema, ev);
    if (j == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory printing event %llu",
                            (unsigned long long)ev->event_id);
    }
    char when[CLI_TIME_BYTES];
    const char *type =
        ev->event_type < WEFT_EV__COUNT ? weft_event_type_names[ev->event_type] : "?";
    printf("%5llu  %s  %-32s  ", (unsigned long long)ev->event_id,
           cli_time(ev->event_time_ms, when), type);
    cli_print_attrs(stdout, j, history_columns);
    fputc('\n', stdout);
    json_decref(j);
    return 0;
}

static int history_print_page(const cli_ctx *ctx, const weft_history_resp *page, weft_err *err) {
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < page->events_count; i++) {
        rc = ctx->output == CLI_OUTPUT_JSON
                 ? weft_history_write_event_json(stdout, &page->events[i], err)
                 : history_print_table(&page->events[i], err);
    }
    /* --follow prints as events arrive, and a pipe must see them then too. */
    fflush(stdout);
    return rc;
}

/* Copies the run id of the first page, so later pages (and a follow that outlives a
 * continue-as-new) stay on that run. */
static int history_pin_run(weft_history_req *req, const weft_history_resp *page, char **pinned,
                           weft_err *err) {
    if (*pinned != NULL || page->run_id.len == 0) return 0;
    *pinned = malloc(page->run_id.len + 1u);
    if (*pinned == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory for a run id");
    }
    weft_str_copy(*pinned, page->run_id.len + 1u, page->run_id);
    req->run_id = weft_str_c(*pinned);
    return 0;
}

int cli_workflow_show(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    bool follow = cli_switch(ctx, "follow");
    weft_history_req req = {
        .namespace_ = weft_str_c(ctx->namespace_),
        .workflow_id = weft_str_c(cli_arg(ctx, "id")),
        .run_id = weft_str_c(cli_arg(ctx, "run-id")),
        .first_event_id = 1,
    };
    weft_history_resp page;
    weft_response holder = {0};
    char *pinned = NULL;
    int rc = cli_connect(ctx, &err);
    while (rc == 0) {
        rc = weft_client_history(ctx->client, &req, &page, &holder, &err);
        if (rc == 0) rc = history_pin_run(&req, &page, &pinned, &err);
        if (rc == 0) rc = history_print_page(ctx, &page, &err);
        if (rc != 0 || (page.events_count == 0 && (!follow || page.closed))) break;
        if (page.events_count > 0 && page.next_event_id <= req.first_event_id) {
            rc = weft_err_set(&err, WEFT_E_INTERNAL, "next_event_id",
                              "the server answered a history page from event %llu with "
                              "next_event_id %llu, which does not move forward",
                              (unsigned long long)req.first_event_id,
                              (unsigned long long)page.next_event_id);
            break;
        }
        if (page.events_count > 0) req.first_event_id = page.next_event_id;
        req.wait_new_events = follow;
        req.wait_timeout_ms = follow ? CLI_LONG_POLL_MS : 0;
    }
    weft_response_free(&holder);
    free(pinned);
    return rc == 0 ? CLI_EXIT_OK : cli_fail(&err);
}
