/* replayer.c: runs registered workflow code against a saved history and reports the first
 * divergence (DESIGN section 11, "Replayer"), for tests and before deploying changed code. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

typedef struct replayer_type {
    char *name;          /* workflow type (malloc'd) */
    weft_workflow_fn fn; /* its code */
    void *arg;           /* its registration argument */
} replayer_type;

struct weft_replayer {
    replayer_type types[WEFT_WORKER_TYPES_MAX];
    uint32_t types_count;
};

int weft_replayer_new(weft_replayer **out, weft_err *err) {
    if (out == NULL) return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "out", "out is NULL");
    *out = calloc(1, sizeof **out);
    if (*out == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory");
    return 0;
}

int weft_replayer_register_workflow(weft_replayer *r, const char *type, weft_workflow_fn fn,
                                    void *arg, weft_err *err) {
    if (r == NULL || fn == NULL || type == NULL || type[0] == '\0' ||
        strlen(type) > WEFT_WORKER_NAME_BYTES_MAX) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "type",
                            "a workflow type of 1 to %u bytes and a function are required",
                            WEFT_WORKER_NAME_BYTES_MAX);
    }
    for (uint32_t i = 0; i < r->types_count; i++) {
        if (strcmp(r->types[i].name, type) == 0) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "type",
                                "workflow type '%s' is registered twice", type);
        }
    }
    if (r->types_count == WEFT_WORKER_TYPES_MAX) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "type",
                            "more than %u workflow types (WEFT_WORKER_TYPES_MAX)",
                            WEFT_WORKER_TYPES_MAX);
    }
    char *name = strdup(type);
    if (name == NULL) return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL, "out of memory");
    r->types[r->types_count++] = (replayer_type){.name = name, .fn = fn, .arg = arg};
    return 0;
}

void weft_replayer_free(weft_replayer *r) {
    if (r == NULL) return;
    for (uint32_t i = 0; i < r->types_count; i++) free(r->types[i].name);
    free(r);
}

int weft_replayer_replay(weft_replayer *r, const weft_event *events, uint32_t n, weft_err *err) {
    if (r == NULL || (events == NULL && n > 0)) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events", "no replayer or events");
    }
    if (n == 0 || events[0].event_type != WEFT_EV_WORKFLOW_EXECUTION_STARTED) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                            "a history must start with WorkflowExecutionStarted; save one with "
                            "`weft workflow show --id ID --output json`");
    }
    weft_str type = events[0].workflow_type;
    const replayer_type *t = NULL;
    for (uint32_t i = 0; i < r->types_count && t == NULL; i++) {
        if (weft_str_eq_c(type, r->types[i].name)) t = &r->types[i];
    }
    if (t == NULL) {
        return weft_err_set(err, WEFT_E_NOT_FOUND, "workflow_type",
                            "workflow type '%.*s' is not registered with the replayer",
                            (int)type.len, type.ptr);
    }
    wfe_run_params p = {.workflow_id = WEFT_STR_LIT("replay"),
                        .run_id = events[0].first_run_id,
                        .workflow_type = type,
                        .task_queue = events[0].task_queue,
                        .fn = t->fn,
                        .arg = t->arg,
                        .stack_bytes = WEFT_WORKER_WF_STACK_BYTES_DEFAULT};
    wfe_run *run = NULL;
    int rc = wfe_run_new(&p, &run, err);
    if (rc != 0) return rc;
    wfe_task_result res;
    rc = wfe_run_feed(run, events, n, 0, &res, err);
    if (rc == 0 && res.failed) {
        rc = weft_err_set(err, WEFT_E_FAILED_PRECONDITION, NULL, "%.*s",
                          (int)res.failure.message.len, res.failure.message.ptr);
    }
    wfe_run_free(run);
    return rc;
}
