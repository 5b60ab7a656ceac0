/* ops.c: one typed function per row of WEFT_OPS, each a thin, type-checked weft_client_call. */
#include "client_internal.h"

int weft_client_start(weft_client *c, const weft_start_req *req, weft_start_resp *resp,
                      weft_response *holder, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_START_WORKFLOW, req, resp, holder, err);
}

int weft_client_signal(weft_client *c, const weft_signal_req *req, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_SIGNAL_WORKFLOW, req, NULL, NULL, err);
}

int weft_client_signal_with_start(weft_client *c, const weft_start_req *req, weft_start_resp *resp,
                                  weft_response *holder, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_SIGNAL_WITH_START, req, resp, holder, err);
}

int weft_client_cancel(weft_client *c, const weft_close_req *req, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_CANCEL_WORKFLOW, req, NULL, NULL, err);
}

int weft_client_terminate(weft_client *c, const weft_close_req *req, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_TERMINATE_WORKFLOW, req, NULL, NULL, err);
}

int weft_client_describe(weft_client *c, const weft_describe_req *req, weft_describe_resp *resp,
                         weft_response *holder, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_DESCRIBE_WORKFLOW, req, resp, holder, err);
}

int weft_client_history(weft_client *c, const weft_history_req *req, weft_history_resp *resp,
                        weft_response *holder, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_GET_HISTORY, req, resp, holder, err);
}

int weft_client_result(weft_client *c, const weft_result_req *req, weft_result_resp *resp,
                       weft_response *holder, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_GET_RESULT, req, resp, holder, err);
}

int weft_client_list(weft_client *c, const weft_list_req *req, weft_list_resp *resp,
                     weft_response *holder, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_LIST_WORKFLOWS, req, resp, holder, err);
}

int weft_client_count(weft_client *c, const weft_list_req *req, uint64_t *count_out,
                      weft_err *err) {
    if (count_out == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "count_out", "count_out is NULL");
    }
    weft_response holder = {0};
    weft_count_resp resp = {0};
    int rc = weft_client_call(c, WEFT_MSG_COUNT_WORKFLOWS, req, &resp, &holder, err);
    *count_out = rc == 0 ? resp.count : 0;
    weft_response_free(&holder);
    return rc;
}

int weft_client_poll_workflow_task(weft_client *c, const weft_poll_req *req,
                                   weft_poll_wft_resp *resp, weft_response *holder, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_POLL_WORKFLOW_TASK, req, resp, holder, err);
}

int weft_client_complete_workflow_task(weft_client *c, const weft_complete_wft_req *req,
                                       weft_err *err) {
    return weft_client_call(c, WEFT_MSG_COMPLETE_WORKFLOW_TASK, req, NULL, NULL, err);
}

int weft_client_fail_workflow_task(weft_client *c, const weft_fail_wft_req *req, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_FAIL_WORKFLOW_TASK, req, NULL, NULL, err);
}

int weft_client_poll_activity_task(weft_client *c, const weft_poll_req *req,
                                   weft_poll_activity_resp *resp, weft_response *holder,
                                   weft_err *err) {
    return weft_client_call(c, WEFT_MSG_POLL_ACTIVITY_TASK, req, resp, holder, err);
}

int weft_client_poll_workflow_task_on(weft_client *c, uint64_t node_id, const weft_poll_req *req,
                                      weft_poll_wft_resp *resp, weft_response *holder,
                                      weft_err *err) {
    return client_call_on(c, node_id, WEFT_MSG_POLL_WORKFLOW_TASK, req, resp, holder, err);
}

int weft_client_poll_activity_task_on(weft_client *c, uint64_t node_id, const weft_poll_req *req,
                                      weft_poll_activity_resp *resp, weft_response *holder,
                                      weft_err *err) {
    return client_call_on(c, node_id, WEFT_MSG_POLL_ACTIVITY_TASK, req, resp, holder, err);
}

int weft_client_complete_activity(weft_client *c, const weft_activity_req *req, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_COMPLETE_ACTIVITY, req, NULL, NULL, err);
}

int weft_client_fail_activity(weft_client *c, const weft_activity_req *req, weft_err *err) {
    return weft_client_call(c, WEFT_MSG_FAIL_ACTIVITY, req, NULL, NULL, err);
}

int weft_client_heartbeat_activity(weft_client *c, const weft_activity_req *req,
                                   bool *cancel_requested, weft_err *err) {
    weft_response holder = {0};
    weft_heartbeat_resp resp = {0};
    int rc = weft_client_call(c, WEFT_MSG_HEARTBEAT_ACTIVITY, req, &resp, &holder, err);
    if (cancel_requested != NULL) *cancel_requested = rc == 0 && resp.cancel_requested;
    weft_response_free(&holder);
    return rc;
}

int weft_client_cluster_status(weft_client *c, weft_cluster_status_resp *resp,
                               weft_response *holder, weft_err *err) {
    weft_cluster_status_req req = {0};
    int rc = weft_client_call(c, WEFT_MSG_CLUSTER_STATUS, &req, resp, holder, err);
    if (rc == 0 && resp != NULL) {
        pthread_mutex_lock(&c->mu);
        client_topology_update(c, resp);
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

int weft_client_register_namespace(weft_client *c, const weft_register_ns_req *req,
                                   weft_err *err) {
    return weft_client_call(c, WEFT_MSG_REGISTER_NAMESPACE, req, NULL, NULL, err);
}

int weft_client_describe_namespace(weft_client *c, const weft_describe_ns_req *req,
                                   weft_namespace_info *resp, weft_response *holder,
                                   weft_err *err) {
    return weft_client_call(c, WEFT_MSG_DESCRIBE_NAMESPACE, req, resp, holder, err);
}

int weft_client_list_namespaces(weft_client *c, weft_list_ns_resp *resp, weft_response *holder,
                                weft_err *err) {
    weft_list_ns_req req = {0};
    return weft_client_call(c, WEFT_MSG_LIST_NAMESPACES, &req, resp, holder, err);
}

int weft_client_describe_task_queue(weft_client *c, const weft_task_queue_req *req,
                                    weft_task_queue_resp *resp, weft_response *holder,
                                    weft_err *err) {
    return weft_client_call(c, WEFT_MSG_DESCRIBE_TASK_QUEUE, req, resp, holder, err);
}
