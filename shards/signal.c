/* signal.c: SignalWorkflow (DESIGN section 7): a signal appends WorkflowExecutionSignaled and
 * schedules a workflow task if none is pending. Delivered exactly once, in acceptance order
 * (G7): request ids are remembered per run for the run's whole life, and for dedup_ttl_ms
 * in the shard's dedup table (G4). */
#include "ops.h"

int sh_signal_validate(sh_ctx *c, const weft_signal_req *req) {
    if (req->workflow_id.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "workflow_id",
                         "workflow_id is required: name the workflow to signal");
    }
    if (req->signal_name.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "signal_name",
                         "signal_name is required: name the signal the workflow waits for");
    }
    return 0;
}

int sh_signal_check(sh_ctx *c, const sh_run *r, weft_str request_id, bool *dup) {
    *dup = false;
    if (!sh_run_is_open(r)) {
        return sh_reject(c, WEFT_E_FAILED_PRECONDITION, "workflow_id",
                         "workflow '%.*s' run %.*s is closed (%s): signals reach only a running "
                         "run; use SignalWithStart to start a new run with the signal (weft workflow "
                         "signal-with-start)",
                         (int)r->workflow_id.len, r->workflow_id.ptr, (int)r->run_id.len,
                         r->run_id.ptr, weft_status_names[r->status]);
    }
    if (request_id.len > 0) {
        int rc = sh_seen_has(c, r->run_key, request_id, dup);
        if (rc != 0 || *dup) return rc;
    }
    if (sh_hist_full(c, r)) return sh_hist_reject_full(c, r, "workflow_id");
    uint32_t max = c->lim->signal_dedup_per_run_max;
    if (request_id.len > 0 && r->signal_dedup_count >= max) {
        return sh_reject(c, WEFT_E_RESOURCE_EXHAUSTED, "request_id",
                         "run %.*s has received %u signals with request ids; the limit is "
                         "signal_dedup_per_run_max=%u: continue the workflow as new "
                         "(ContinueAsNew) to reset it",
                         (int)r->run_id.len, r->run_id.ptr, r->signal_dedup_count, max);
    }
    return 0;
}

int sh_signal_deliver(sh_ctx *c, sh_run *r, weft_str name, weft_bytes input, weft_str identity,
                      weft_str request_id) {
    WEFT_ASSERT(sh_run_is_open(r) && name.len > 0);
    weft_event ev = {.event_type = WEFT_EV_WORKFLOW_EXECUTION_SIGNALED,
                     .signal_name = name,
                     .input = input,
                     .identity = identity,
                     .request_id = request_id};
    int rc = sh_hist_add(c, r, &ev, NULL);
    if (rc == 0 && request_id.len > 0) rc = sh_seen_add(c, r, request_id);
    if (rc == 0) rc = sh_wft_schedule(c, r);
    return rc;
}

int sh_signal_on_cmd(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_signal_req req;
    int rc = sh_decode(c, &weft_signal_req_schema, cmd->body.ptr, cmd->body.len, false, false, &req);
    if (rc == 0) rc = sh_signal_validate(c, &req);
    if (rc != 0) return rc;
    req.namespace_ = sh_namespace(req.namespace_);
    bool found = false;
    sh_dedup d;
    rc = sh_dedup_find(c, req.namespace_, req.request_id, WEFT_SC_SIGNAL, &found, &d);
    if (rc != 0) return rc;
    if (found) return sh_dedup_reply(c, &d, false);
    uint64_t writes = c->writes;
    sh_run r;
    bool dup = false;
    rc = sh_run_find(c, req.namespace_, req.workflow_id, req.run_id, &r);
    if (rc == 0) rc = sh_signal_check(c, &r, req.request_id, &dup);
    if (rc == 0 && !dup) {
        rc = sh_signal_deliver(c, &r, req.signal_name, req.input, req.identity, req.request_id);
        if (rc == 0) rc = sh_run_store(c, &r);
    }
    d = (sh_dedup){.op = WEFT_SC_SIGNAL, .run_id = rc == 0 ? r.run_id : (weft_str){0}};
    rc = sh_dedup_finish(c, req.namespace_, req.request_id, &d, rc, writes);
    if (rc != 0 || c->reply->err.code != 0) return rc;
    return sh_reply_empty(c);
}
