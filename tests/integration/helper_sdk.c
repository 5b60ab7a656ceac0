/* helper_sdk.c: worker threads, workflow starts and results for the SDK tests. */
#include "helper_sdk.h"

#include <setjmp.h>
#include <stdarg.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

static void *sdk_runner_main(void *arg) {
    sdk_runner *r = arg;
    weft_err err;
    weft_err_clear(&err);
    r->rc = weft_worker_run(r->w, &err);
    if (r->rc != 0) fprintf(stderr, "worker run: %s %s\n", weft_error_name(r->rc), err.message);
    return NULL;
}

void sdk_runner_start(sdk_runner *r, weft_worker *w) {
    r->w = w;
    r->rc = -1;
    assert_int_equal(pthread_create(&r->thread, NULL, sdk_runner_main, r), 0);
    r->running = true;
}

int sdk_runner_join(sdk_runner *r) {
    if (r->running) {
        assert_int_equal(pthread_join(r->thread, NULL), 0);
        r->running = false;
    }
    return r->rc;
}

int sdk_runner_stop(sdk_runner *r) {
    if (r->running) weft_worker_stop(r->w);
    return sdk_runner_join(r);
}

void sdk_start(weft_client *c, const char *workflow_id, const char *type, const char *queue,
               const char *input, char *run_id, size_t cap) {
    weft_start_req req = {
        .workflow_id = weft_str_c(workflow_id),
        .workflow_type = weft_str_c(type),
        .task_queue = weft_str_c(queue),
        .input = {.ptr = (const uint8_t *)input, .len = (uint32_t)strlen(input)},
    };
    weft_response h = {0};
    weft_start_resp resp;
    weft_err err;
    int rc = weft_client_start(c, &req, &resp, &h, &err);
    if (rc != 0) {
        fprintf(stderr, "start %s: %s %s\n", workflow_id, weft_error_name(rc), err.message);
    }
    assert_int_equal(rc, 0);
    if (run_id != NULL) weft_str_copy(run_id, cap, resp.run_id);
    weft_response_free(&h);
}

uint32_t sdk_result(weft_client *c, const char *workflow_id, uint32_t wait_ms, char *buf,
                    size_t cap) {
    weft_result_req req = {.workflow_id = weft_str_c(workflow_id),
                           .wait = true,
                           .wait_timeout_ms = wait_ms,
                           .follow_runs = true};
    weft_response h = {0};
    weft_result_resp resp;
    weft_err err;
    int rc = weft_client_result(c, &req, &resp, &h, &err);
    if (rc != 0) {
        fprintf(stderr, "result %s: %s %s\n", workflow_id, weft_error_name(rc), err.message);
    }
    assert_int_equal(rc, 0);
    if (resp.status != WEFT_STATUS_COMPLETED) {
        fprintf(stderr, "workflow %s: status %s, failure %.*s: %.*s\n", workflow_id,
                weft_status_names[resp.status], (int)resp.failure.type.len, resp.failure.type.ptr,
                (int)resp.failure.message.len, resp.failure.message.ptr);
    }
    if (buf != NULL) {
        snprintf(buf, cap, "%.*s", (int)resp.result.len, (const char *)resp.result.ptr);
    }
    uint32_t status = resp.status;
    weft_response_free(&h);
    return status;
}
