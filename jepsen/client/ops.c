/* ops.c: the three operations of a history (jepsen/FORMAT.md "Operations"): start, signal and
 * result, each written as its invoke line and then exactly one ok, fail or info line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Workflow tasks time out sooner than the server's 10 s default, so that a task handed out by
 * a leader that then died is handed out again within a few seconds. */
#define OPS_WORKFLOW_TASK_TIMEOUT_MS 5000u
/* One GetResult wait; the result operation repeats it until its deadline. */
#define OPS_RESULT_WAIT_MS 10000u

int jepsen_op_start(jepsen_history *h, weft_client *c, const char *ns, const jepsen_start_spec *s,
                    char run_id[JEPSEN_RUN_ID_BYTES], bool *started) {
    WEFT_ASSERT(s->workflow_id[0] != '\0' && s->request_id[0] != '\0');
    json_t *v = json_object();
    json_object_set_new(v, "namespace", json_string(ns));
    json_object_set_new(v, "workflow_id", json_string(s->workflow_id));
    json_object_set_new(v, "workflow_type", json_string(s->workflow_type));
    json_object_set_new(v, "request_id", json_string(s->request_id));
    json_object_set_new(v, "id_reuse_policy", json_string(weft_reuse_policy_names[s->reuse]));
    json_object_set_new(v, "id_conflict_policy",
                        json_string(weft_conflict_policy_names[s->conflict]));
    json_object_set_new(v, "input", jepsen_payload_json(weft_bytes_c(s->input)));
    jepsen_history_invoke(h, "start", v);
    json_decref(v);

    weft_start_req req = {
        .namespace_ = weft_str_c(ns),
        .workflow_id = weft_str_c(s->workflow_id),
        .workflow_type = weft_str_c(s->workflow_type),
        .task_queue = weft_str_c(JEPSEN_TASK_QUEUE),
        .input = weft_bytes_c(s->input),
        .request_id = weft_str_c(s->request_id),
        .workflow_task_timeout_ms = OPS_WORKFLOW_TASK_TIMEOUT_MS,
        .id_reuse_policy = s->reuse,
        .id_conflict_policy = s->conflict,
    };
    weft_start_resp resp;
    weft_response holder = {0};
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_client_start(c, &req, &resp, &holder, &err);
    json_t *ok = NULL;
    if (rc == 0) {
        weft_str_copy(run_id, JEPSEN_RUN_ID_BYTES, resp.run_id);
        *started = resp.started;
        ok = json_object();
        json_object_set_new(ok, "run_id", json_string(run_id));
        json_object_set_new(ok, "started", json_boolean(resp.started));
    }
    jepsen_history_complete(h, "start", rc, &err, ok, weft_response_node(&holder));
    json_decref(ok);
    weft_response_free(&holder);
    return rc;
}

int jepsen_op_signal(jepsen_history *h, weft_client *c, const char *ns, const char *workflow_id,
                     const char *request_id, uint64_t seq) {
    json_t *v = json_object();
    json_object_set_new(v, "namespace", json_string(ns));
    json_object_set_new(v, "workflow_id", json_string(workflow_id));
    json_object_set_new(v, "request_id", json_string(request_id));
    json_object_set_new(v, "signal_name", json_string(JEPSEN_SIGNAL_NAME));
    json_object_set_new(v, "seq", json_integer((json_int_t)seq));
    jepsen_history_invoke(h, "signal", v);
    json_decref(v);

    char input[JEPSEN_NAME_BYTES_MAX + 64];
    json_t *in = json_pack("{sssI}", "process", h->process, "seq", (json_int_t)seq);
    char *text = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(input, sizeof input, "%s", text);
    free(text);
    json_decref(in);
    weft_signal_req req = {
        .namespace_ = weft_str_c(ns),
        .workflow_id = weft_str_c(workflow_id),
        .signal_name = weft_str_c(JEPSEN_SIGNAL_NAME),
        .input = weft_bytes_c(input),
        .request_id = weft_str_c(request_id),
    };
    weft_err err;
    weft_err_clear(&err);
    /* weft_client_signal keeps no reply; the generic call does, naming the node that gave it. */
    weft_empty_resp resp;
    weft_response holder = {0};
    int rc = weft_client_call(c, WEFT_MSG_SIGNAL_WORKFLOW, &req, &resp, &holder, &err);
    jepsen_history_complete(h, "signal", rc, &err, NULL, weft_response_node(&holder));
    weft_response_free(&holder);
    return rc;
}

/* One GetResult wait. *closed says whether the run closed; on success the ok value is built. */
static int result_once(weft_client *c, const char *ns, const char *workflow_id, const char *run_id,
                       bool *closed, json_t **ok, uint64_t *node_id, weft_err *err) {
    weft_result_req req = {
        .namespace_ = weft_str_c(ns),
        .workflow_id = weft_str_c(workflow_id),
        .run_id = weft_str_c(run_id),
        .wait = true,
        .wait_timeout_ms = OPS_RESULT_WAIT_MS,
        .follow_runs = false,
    };
    weft_result_resp resp;
    weft_response holder = {0};
    int rc = weft_client_result(c, &req, &resp, &holder, err);
    *closed = rc == 0 && resp.status != WEFT_STATUS_RUNNING;
    if (*closed) {
        *ok = json_object();
        json_object_set_new(*ok, "status", json_string(weft_status_names[resp.status]));
        json_object_set_new(*ok, "result", jepsen_payload_json(resp.result));
        char rid[JEPSEN_RUN_ID_BYTES];
        json_object_set_new(*ok, "run_id",
                            json_string(weft_str_copy(rid, sizeof rid, resp.run_id)));
    }
    *node_id = weft_response_node(&holder);
    weft_response_free(&holder);
    return rc;
}

int jepsen_op_result(jepsen_history *h, weft_client *c, const char *ns, const char *workflow_id,
                     const char *run_id, uint64_t deadline_ms) {
    json_t *v = json_object();
    json_object_set_new(v, "namespace", json_string(ns));
    json_object_set_new(v, "workflow_id", json_string(workflow_id));
    json_object_set_new(v, "run_id", json_string(run_id));
    jepsen_history_invoke(h, "result", v);
    json_decref(v);

    weft_err err;
    weft_err_clear(&err);
    json_t *ok = NULL;
    uint64_t node_id = 0;
    int rc;
    for (;;) {
        bool closed = false;
        rc = result_once(c, ns, workflow_id, run_id, &closed, &ok, &node_id, &err);
        if (closed || jepsen_outcome_of(rc) == JEPSEN_FAIL) break;
        if (jepsen_now_ms() >= deadline_ms) {
            if (rc == 0) {
                rc = weft_err_set(&err, WEFT_E_DEADLINE_EXCEEDED, "",
                                  "the run was still running when the drain ended");
            }
            break;
        }
        if (rc != 0) jepsen_sleep_ms(500); /* a failed call: do not spin */
    }
    jepsen_history_complete(h, "result", rc, &err, ok, node_id);
    json_decref(ok);
    return rc;
}
