/* close.c: how runs end (DESIGN section 7): the common close (drop pending work, write the
 * closing event, set the status, move visibility, arm retention), CancelWorkflow (a request
 * the code handles), TerminateWorkflow (closes at once), run and execution timeouts, and
 * retention, which deletes every row of a closed run. */
#include <string.h>

#include "ops.h"

/* The outcome GetResult reports for each closing status. */
static void close_outcome(sh_ctx *c, sh_run *r, uint32_t status, const weft_event *ev) {
    switch (status) {
    case WEFT_STATUS_COMPLETED: r->result = ev->result; break;
    case WEFT_STATUS_FAILED: r->failure = ev->failure; break;
    case WEFT_STATUS_CANCELED:
        r->failure = (weft_failure){.type = WEFT_STR_LIT("Canceled"),
                                    .message = WEFT_STR_LIT("the workflow was canceled"),
                                    .details = ev->details};
        break;
    case WEFT_STATUS_TERMINATED:
        r->failure = (weft_failure){.type = WEFT_STR_LIT("Terminated"),
                                    .message = ev->reason.len > 0 ? ev->reason
                                                                  : WEFT_STR_LIT("terminated"),
                                    .details = ev->details};
        break;
    case WEFT_STATUS_TIMED_OUT: r->failure = ev->failure; break;
    case WEFT_STATUS_CONTINUED: r->continued_to_run_id = ev->continued_run_id; break;
    default: WEFT_ASSERT(false && "not a closing status");
    }
    (void)c;
}

static int close_exec(sh_ctx *c, const sh_run *r) {
    sh_exec e;
    int rc = sh_exec_load(c, r->namespace_, r->workflow_id, &e);
    if (rc == -WEFT_E_NOT_FOUND || (rc == 0 && e.run_key != r->run_key)) return 0;
    if (rc != 0) return rc;
    e.status = r->status;
    return sh_exec_store(c, r->namespace_, r->workflow_id, &e);
}

int sh_run_close(sh_ctx *c, sh_run *r, uint32_t status, weft_event *ev) {
    WEFT_ASSERT(sh_run_is_open(r));
    WEFT_ASSERT(status != WEFT_STATUS_RUNNING && status < WEFT_STATUS__COUNT);
    int rc = sh_wft_abandon(c, r);
    if (rc == 0) rc = sh_act_drop_all(c, r);
    if (rc == 0) rc = sh_utimer_drop_all(c, r);
    if (rc == 0) rc = sh_hist_write(c, r, ev);
    if (rc != 0) return rc;
    sh_run_set_status(c, r, status);
    r->close_time_ms = c->now_ms;
    close_outcome(c, r, status, ev);
    r->sticky_queue = (weft_str){0};
    r->sticky_identity = (weft_str){0};
    rc = close_exec(c, r);
    if (rc == 0) rc = sh_vis_close(c, r);
    if (rc == 0) {
        rc = sh_timer_add(c, sh_deadline_ms(c, c->lim->retention_ms), SH_TK_RETENTION,
                          r->run_key, 0, 0, (weft_bytes){0});
    }
    if (rc != 0) return rc;
    return sh_fx_changed(c, r->run_key, true);
}

/* ---- Cancel and terminate ---- */

int sh_close_validate(sh_ctx *c, const weft_close_req *req) {
    if (req->workflow_id.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "workflow_id",
                         "workflow_id is required: name the workflow to cancel or terminate");
    }
    return 0;
}

/* Decodes and validates a close request, answers a retry from dedup, and finds an open run.
 * *done is set when the request was answered (dedup). */
static int close_begin(sh_ctx *c, const weft_shard_cmd *cmd, uint32_t op, weft_close_req *req,
                       sh_run *r, bool *done) {
    *done = false;
    int rc = sh_decode(c, &weft_close_req_schema, cmd->body.ptr, cmd->body.len, false, false, req);
    if (rc == 0) rc = sh_close_validate(c, req);
    if (rc != 0) return rc;
    req->namespace_ = sh_namespace(req->namespace_);
    sh_dedup d;
    rc = sh_dedup_find(c, req->namespace_, req->request_id, op, done, &d);
    if (rc != 0) return rc;
    if (*done) return sh_dedup_reply(c, &d, false);
    rc = sh_run_find(c, req->namespace_, req->workflow_id, req->run_id, r);
    if (rc == 0 && !sh_run_is_open(r)) {
        rc = sh_reject(c, WEFT_E_FAILED_PRECONDITION, "workflow_id",
                       "workflow '%.*s' run %.*s is already closed (%s): only a running run can be "
                       "%s",
                       (int)req->workflow_id.len, req->workflow_id.ptr, (int)r->run_id.len,
                       r->run_id.ptr, weft_status_names[r->status],
                       op == WEFT_SC_CANCEL ? "canceled" : "terminated");
    }
    return rc;
}

/* Records the first outcome of a cancel/terminate (G4) and answers it. */
static int close_finish(sh_ctx *c, const weft_close_req *req, uint32_t op, int rc,
                        weft_str run_id, uint64_t writes) {
    sh_dedup d = {.op = op, .run_id = run_id};
    rc = sh_dedup_finish(c, req->namespace_, req->request_id, &d, rc, writes);
    if (rc != 0 || c->reply->err.code != 0) return rc;
    return sh_reply_empty(c);
}

int sh_cancel_on_cmd(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_close_req req;
    sh_run r;
    bool done = false;
    uint64_t writes = c->writes;
    int rc = close_begin(c, cmd, WEFT_SC_CANCEL, &req, &r, &done);
    if (done) return rc;
    if (rc == 0 && !r.cancel_requested) {
        /* Once: a second request changes nothing (section 7, "Cancel"). */
        weft_event ev = {.event_type = WEFT_EV_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
                         .reason = req.reason,
                         .details = req.details,
                         .identity = req.identity,
                         .request_id = req.request_id};
        rc = sh_hist_add(c, &r, &ev, NULL);
        r.cancel_requested = true;
        if (rc == 0) rc = sh_wft_schedule(c, &r);
        if (rc == 0) rc = sh_run_store(c, &r);
    }
    return close_finish(c, &req, WEFT_SC_CANCEL, rc, rc == 0 ? r.run_id : (weft_str){0},
                        writes);
}

int sh_run_terminate(sh_ctx *c, sh_run *r, weft_str reason, weft_bytes details,
                     weft_str identity, weft_str request_id) {
    weft_event ev = {.event_type = WEFT_EV_WORKFLOW_EXECUTION_TERMINATED,
                     .reason = reason,
                     .details = details,
                     .identity = identity,
                     .request_id = request_id};
    int rc = sh_run_close(c, r, WEFT_STATUS_TERMINATED, &ev);
    return rc != 0 ? rc : sh_run_store(c, r);
}

int sh_terminate_on_cmd(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_close_req req;
    sh_run r;
    bool done = false;
    uint64_t writes = c->writes;
    int rc = close_begin(c, cmd, WEFT_SC_TERMINATE, &req, &r, &done);
    if (done) return rc;
    if (rc == 0) rc = sh_run_terminate(c, &r, req.reason, req.details, req.identity, req.request_id);
    return close_finish(c, &req, WEFT_SC_TERMINATE, rc, rc == 0 ? r.run_id : (weft_str){0},
                        writes);
}

/* ---- Timeouts ---- */

int sh_close_on_timer(sh_ctx *c, sh_run *r, const sh_timer_row *row) {
    bool run = row->kind == SH_TK_RUN_TIMEOUT;
    uint64_t ms = run ? r->run_timeout_ms : r->execution_timeout_ms;
    weft_event ev = {
        .event_type = WEFT_EV_WORKFLOW_EXECUTION_TIMED_OUT,
        .failure = {.type = run ? WEFT_STR_LIT("Timeout:run") : WEFT_STR_LIT("Timeout:execution"),
                    .message = sh_str_fmt(c, "the workflow %s timeout of %llu ms passed",
                                          run ? "run" : "execution", (unsigned long long)ms)},
    };
    int rc = sh_run_close(c, r, WEFT_STATUS_TIMED_OUT, &ev);
    return rc != 0 ? rc : sh_run_store(c, r);
}

/* ---- Retention ---- */

/* Deletes every key of `tbl` that starts with prefix[0..len). Re-seeks after each delete, so
 * it does not rely on cursor behaviour after a deletion. */
static int close_delete_prefix(sh_ctx *c, weft_table tbl, const weft_key *prefix, size_t len) {
    for (;;) {
        weft_cursor *cur = NULL;
        int rc = weft_cursor_open(c->txn, tbl, &cur, &c->err);
        if (rc != 0) return -WEFT_E_INTERNAL;
        weft_val k, v;
        weft_err scratch;
        weft_err_clear(&scratch);
        rc = weft_cursor_seek(cur, prefix->bytes, len, &k, &v, &scratch);
        weft_key found = {.len = 0};
        if (rc == 0 && k.len >= len && memcmp(k.ptr, prefix->bytes, len) == 0) {
            WEFT_ASSERT(k.len <= WEFT_KEY_BYTES_MAX);
            memcpy(found.bytes, k.ptr, k.len);
            found.len = k.len;
        }
        weft_cursor_close(cur);
        if (rc != 0 && rc != -WEFT_E_NOT_FOUND) {
            c->err = scratch;
            return -WEFT_E_INTERNAL;
        }
        if (found.len == 0) return 0;
        rc = sh_del(c, tbl, &found);
        if (rc != 0) return rc;
    }
}

int sh_retention_on_timer(sh_ctx *c, const sh_timer_row *row) {
    sh_run r;
    int rc = sh_run_load(c, row->run_key, &r);
    if (rc == -WEFT_E_NOT_FOUND) return 0;
    if (rc != 0) return rc;
    WEFT_ASSERT(!sh_run_is_open(&r));
    weft_key k;
    weft_key_run_part(&k, r.run_key, 0, 0);
    rc = close_delete_prefix(c, WEFT_TBL_RUNS, &k, 8);
    if (rc == 0) {
        weft_key_history(&k, r.run_key, 0);
        rc = close_delete_prefix(c, WEFT_TBL_HISTORY, &k, 8);
    }
    if (rc == 0) {
        weft_key_run_id(&k, r.namespace_, r.workflow_id, r.run_id);
        rc = sh_del(c, WEFT_TBL_RUN_IDS, &k);
    }
    if (rc == 0) rc = sh_vis_delete(c, &r);
    sh_exec e;
    int erc = rc == 0 ? sh_exec_load(c, r.namespace_, r.workflow_id, &e) : rc;
    if (erc == 0 && e.run_key == r.run_key) {
        weft_key_execution(&k, r.namespace_, r.workflow_id);
        rc = sh_del(c, WEFT_TBL_EXECUTIONS, &k);
    } else if (erc != 0 && erc != -WEFT_E_NOT_FOUND) {
        rc = erc;
    }
    if (rc == 0) {
        WEFT_LOGF(WEFT_LOG_DEBUG, c->s->shard_id, "run %llu deleted after retention",
                  (unsigned long long)r.run_key);
        rc = sh_fx_changed(c, r.run_key, true);
    }
    return rc;
}
