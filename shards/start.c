/* start.c: StartWorkflow and SignalWithStart (DESIGN section 7, "Workflow-level rules"):
 * request-id dedup first (G4), then the conflict policy while a run is open or the id-reuse
 * policy once it closed, then a new run with its first workflow task. Run ids come from the
 * leader in the command; continue-as-new derives its own deterministically. */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "ops.h"

int sh_start_validate(sh_ctx *c, weft_start_req *req, weft_str run_id, bool with_signal) {
    if (req->workflow_id.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "workflow_id",
                         "workflow_id is required: choose an id that names this workflow");
    }
    if (req->workflow_type.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "workflow_type",
                         "workflow_type is required: give the name a worker registered");
    }
    if (req->task_queue.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "task_queue",
                         "task_queue is required: give the queue your workers poll");
    }
    if (with_signal && req->signal_name.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "signal_name",
                         "signal_name is required for SignalWithStart");
    }
    int rc = sh_check_duration(c, "workflow_run_timeout_ms", req->workflow_run_timeout_ms);
    if (rc == 0) {
        rc = sh_check_duration(c, "workflow_execution_timeout_ms",
                               req->workflow_execution_timeout_ms);
    }
    if (rc == 0) rc = sh_check_duration(c, "workflow_task_timeout_ms", req->workflow_task_timeout_ms);
    if (rc != 0) return rc;
    if (run_id.len == 0) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "run_id",
                         "the shard command carries no run id: the leader must generate one");
    }
    WEFT_ASSERT(req->id_reuse_policy < WEFT_REUSE__COUNT);
    WEFT_ASSERT(req->id_conflict_policy < WEFT_CONFLICT__COUNT);
    return 0;
}

weft_str sh_run_id_derive(sh_ctx *c, weft_str old_run_id, uint64_t event_id) {
    uint8_t buf[WEFT_ID_BYTES_MAX_DEFAULT + 8];
    size_t n = WEFT_MIN((size_t)old_run_id.len, (size_t)WEFT_ID_BYTES_MAX_DEFAULT);
    if (n > 0) memcpy(buf, old_run_id.ptr, n);
    weft_be64_put(buf + n, event_id);
    XXH128_hash_t h = XXH3_128bits(buf, n + 8);
    /* 32 lowercase hex digits, the form of the run ids the leader draws at random
     * (node/ids.c), so that every run id looks alike. Derived, not drawn: apply reads no
     * randomness, so every replica computes the same id from the same log entry. */
    weft_str id = sh_str_fmt(c, "%016llx%016llx", (unsigned long long)h.high64,
                             (unsigned long long)h.low64);
    WEFT_ASSERT(id.len == 0 || id.len == 2 * sizeof h);
    return id;
}

/* ---- Creating a run ---- */

static int run_index(sh_ctx *c, const sh_run *r) {
    sh_exec e = {.run_key = r->run_key,
                 .run_id = r->run_id,
                 .status = r->status,
                 .start_request_id = r->start_request_id};
    int rc = sh_exec_store(c, r->namespace_, r->workflow_id, &e);
    if (rc != 0) return rc;
    weft_key k;
    weft_key_run_id(&k, r->namespace_, r->workflow_id, r->run_id);
    uint8_t v[8];
    weft_be64_put(v, r->run_key);
    rc = sh_put(c, WEFT_TBL_RUN_IDS, &k, v, sizeof v);
    return rc != 0 ? rc : sh_vis_insert(c, r);
}

static int run_timeouts(sh_ctx *c, const sh_run *r) {
    int rc = 0;
    if (r->run_timeout_ms > 0) {
        rc = sh_timer_add(c, c->now_ms + r->run_timeout_ms, SH_TK_RUN_TIMEOUT, r->run_key, 0, 0,
                          (weft_bytes){0});
    }
    if (rc == 0 && r->execution_expire_ms > 0) {
        rc = sh_timer_add(c, WEFT_MAX(r->execution_expire_ms, c->now_ms), SH_TK_EXEC_TIMEOUT,
                          r->run_key, 0, 0, (weft_bytes){0});
    }
    return rc;
}

int sh_run_create(sh_ctx *c, const sh_new_run *p, sh_run *out) {
    WEFT_ASSERT(p->run_id.len > 0 && p->workflow_id.len > 0 && p->task_queue.len > 0);
    sh_run r = {.namespace_ = p->namespace_,
                .workflow_id = p->workflow_id,
                .run_id = p->run_id,
                .workflow_type = p->workflow_type,
                .task_queue = p->task_queue,
                .run_timeout_ms = p->run_timeout_ms,
                .execution_timeout_ms = p->execution_timeout_ms,
                .task_timeout_ms = p->task_timeout_ms ? p->task_timeout_ms
                                                      : c->lim->workflow_task_timeout_ms,
                .start_time_ms = c->now_ms,
                .next_event_id = 1,
                .first_run_id = p->first_run_id.len > 0 ? p->first_run_id : p->run_id,
                .continued_from_run_id = p->continued_from_run_id,
                .start_request_id = p->request_id};
    r.execution_expire_ms = p->execution_expire_ms;
    if (r.execution_expire_ms == 0 && p->execution_timeout_ms > 0) {
        r.execution_expire_ms = c->now_ms + p->execution_timeout_ms;
    }
    int rc = sh_next_run_key(c, &r.run_key);
    if (rc != 0) return rc;
    sh_run_set_status(c, &r, WEFT_STATUS_RUNNING);
    weft_event ev = {.event_type = WEFT_EV_WORKFLOW_EXECUTION_STARTED,
                     .workflow_type = r.workflow_type,
                     .task_queue = r.task_queue,
                     .input = p->input,
                     .workflow_run_timeout_ms = r.run_timeout_ms,
                     .workflow_execution_timeout_ms = r.execution_timeout_ms,
                     .workflow_task_timeout_ms = r.task_timeout_ms,
                     .continued_run_id = r.continued_from_run_id,
                     .first_run_id = r.first_run_id,
                     .attempt = 1,
                     .identity = p->identity,
                     .request_id = p->request_id};
    rc = sh_hist_write(c, &r, &ev);
    if (rc == 0) rc = run_index(c, &r);
    if (rc == 0) rc = run_timeouts(c, &r);
    if (rc != 0) return rc;
    *out = r;
    return 0;
}

/* ---- Policies ---- */

static bool reuse_allows(uint32_t policy, uint32_t status) {
    switch (policy) {
    case WEFT_REUSE_ALLOW: return true;
    case WEFT_REUSE_ALLOW_FAILED:
        return status == WEFT_STATUS_FAILED || status == WEFT_STATUS_CANCELED ||
               status == WEFT_STATUS_TERMINATED || status == WEFT_STATUS_TIMED_OUT;
    default: return false;
    }
}

static int reuse_reject(sh_ctx *c, const weft_start_req *req, const sh_exec *e) {
    const char *advice = req->id_reuse_policy == WEFT_REUSE_REJECT
                             ? "id_reuse_policy is reject: use another workflow id, or "
                               "id_reuse_policy allow (weft: --id-reuse-policy allow)"
                             : "id_reuse_policy is allow-failed, which reuses only ids whose "
                               "last run failed, was canceled, terminated or timed out: use "
                               "another workflow id, or id_reuse_policy allow (weft: "
                               "--id-reuse-policy allow)";
    return sh_reject(c, WEFT_E_ALREADY_EXISTS, "workflow_id",
                     "workflow '%.*s' already ran (run %.*s, %s) and %s",
                     (int)req->workflow_id.len, req->workflow_id.ptr, (int)e->run_id.len,
                     e->run_id.ptr, weft_status_names[e->status], advice);
}

static int conflict_reject(sh_ctx *c, const weft_start_req *req, const sh_exec *e) {
    return sh_reject(c, WEFT_E_ALREADY_EXISTS, "workflow_id",
                     "workflow '%.*s' is already running as run %.*s: wait for it to close, or "
                     "set id_conflict_policy to use-existing or terminate-existing (weft: "
                     "--id-conflict-policy use-existing)",
                     (int)req->workflow_id.len, req->workflow_id.ptr, (int)e->run_id.len,
                     e->run_id.ptr);
}

/* ---- The command ---- */

typedef struct start_outcome {
    weft_str run_id;
    bool started;
} start_outcome;

static int start_new(sh_ctx *c, const weft_start_req *req, weft_str run_id, bool with_signal,
                     start_outcome *out) {
    sh_new_run p = {.namespace_ = req->namespace_,
                    .workflow_id = req->workflow_id,
                    .run_id = run_id,
                    .workflow_type = req->workflow_type,
                    .task_queue = req->task_queue,
                    .input = req->input,
                    .run_timeout_ms = req->workflow_run_timeout_ms,
                    .execution_timeout_ms = req->workflow_execution_timeout_ms,
                    .task_timeout_ms = req->workflow_task_timeout_ms,
                    .request_id = req->request_id,
                    .identity = req->identity};
    sh_run r;
    int rc = sh_run_create(c, &p, &r);
    /* SignalWithStart is atomic: Started, Signaled, then the first task (section 7). */
    if (rc == 0 && with_signal) {
        rc = sh_signal_deliver(c, &r, req->signal_name, req->signal_input, req->identity,
                               req->request_id);
    }
    if (rc == 0) rc = sh_wft_schedule(c, &r);
    if (rc == 0) rc = sh_run_store(c, &r);
    *out = (start_outcome){.run_id = run_id, .started = true};
    return rc;
}

/* True when the open run `e` was started by this request's id: `req` is a retry of the start
 * that created it (continue-as-new gives a run no request id). */
static bool start_same_request(const weft_start_req *req, const sh_exec *e) {
    return req->request_id.len > 0 && weft_str_eq(req->request_id, e->start_request_id);
}

/* SignalWithStart on a running run signals it; the conflict policy does not apply. */
static int start_signal_open(sh_ctx *c, const weft_start_req *req, const sh_exec *e,
                             start_outcome *out) {
    sh_run r;
    int rc = sh_run_load(c, e->run_key, &r);
    bool dup = false;
    if (rc == 0) rc = sh_signal_check(c, &r, req->request_id, &dup);
    if (rc == 0 && !dup) {
        rc = sh_signal_deliver(c, &r, req->signal_name, req->signal_input, req->identity,
                               req->request_id);
        if (rc == 0) rc = sh_run_store(c, &r);
    }
    /* A retry that outlived its dedup entry: when this very request started the run (and
     * signaled it), that was its first outcome (G4). */
    bool started = dup && start_same_request(req, e);
    *out = (start_outcome){.run_id = e->run_id, .started = started};
    return rc;
}

/* A run is open: the conflict policy decides. */
static int start_on_open(sh_ctx *c, const weft_start_req *req, weft_str run_id, const sh_exec *e,
                         start_outcome *out) {
    /* A retry that outlived its dedup entry (dedup_ttl_ms) finds the run its first attempt
     * started, and answers as that attempt did (G4). */
    if (start_same_request(req, e)) {
        *out = (start_outcome){.run_id = e->run_id, .started = true};
        return 0;
    }
    if (req->id_conflict_policy == WEFT_CONFLICT_USE_EXISTING) {
        *out = (start_outcome){.run_id = e->run_id, .started = false};
        return 0;
    }
    if (req->id_conflict_policy == WEFT_CONFLICT_FAIL) return conflict_reject(c, req, e);
    sh_run old;
    int rc = sh_run_load(c, e->run_key, &old);
    if (rc != 0) return rc;
    rc = sh_run_terminate(c, &old,
                          sh_str_fmt(c, "terminated by a new start of the same workflow id "
                                        "(id_conflict_policy terminate-existing, run %.*s)",
                                     (int)run_id.len, run_id.ptr),
                          (weft_bytes){0}, req->identity, req->request_id);
    if (rc != 0) return rc;
    return start_new(c, req, run_id, false, out);
}

static int start_apply(sh_ctx *c, const weft_start_req *req, weft_str run_id, bool with_signal,
                       start_outcome *out) {
    weft_key k;
    weft_key_run_id(&k, req->namespace_, req->workflow_id, run_id);
    weft_val v;
    int rc = sh_get(c, WEFT_TBL_RUN_IDS, &k, &v);
    if (rc == 0) {
        return sh_reject(c, WEFT_E_ALREADY_EXISTS, "run_id",
                         "run id %.*s is already used by this workflow: the leader must generate "
                         "a fresh run id for every start",
                         (int)run_id.len, run_id.ptr);
    }
    if (rc != -WEFT_E_NOT_FOUND) return rc;
    sh_exec e;
    rc = sh_exec_load(c, req->namespace_, req->workflow_id, &e);
    if (rc == -WEFT_E_NOT_FOUND) return start_new(c, req, run_id, with_signal, out);
    if (rc != 0) return rc;
    if (e.status == WEFT_STATUS_RUNNING) {
        if (with_signal) return start_signal_open(c, req, &e, out);
        return start_on_open(c, req, run_id, &e, out);
    }
    if (!reuse_allows(req->id_reuse_policy, e.status)) return reuse_reject(c, req, &e);
    return start_new(c, req, run_id, with_signal, out);
}

int sh_start_on_cmd(sh_ctx *c, const weft_shard_cmd *cmd, bool with_signal) {
    weft_start_req req;
    int rc = sh_decode(c, &weft_start_req_schema, cmd->body.ptr, cmd->body.len, false, false, &req);
    if (rc == 0) rc = sh_start_validate(c, &req, cmd->run_id, with_signal);
    if (rc != 0) return rc;
    req.namespace_ = sh_namespace(req.namespace_);
    uint32_t op = with_signal ? WEFT_SC_SIGNAL_WITH_START : WEFT_SC_START;
    bool found = false;
    sh_dedup d;
    rc = sh_dedup_find(c, req.namespace_, req.request_id, op, &found, &d);
    if (rc != 0) return rc;
    if (found) return sh_dedup_reply(c, &d, true);
    start_outcome out = {0};
    uint64_t writes = c->writes;
    rc = start_apply(c, &req, cmd->run_id, with_signal, &out);
    d = (sh_dedup){.op = op, .run_id = out.run_id, .started = out.started};
    rc = sh_dedup_finish(c, req.namespace_, req.request_id, &d, rc, writes);
    if (rc != 0 || c->reply->err.code != 0) return rc;
    weft_start_resp resp = {.run_id = out.run_id, .started = out.started};
    return sh_reply_body(c, &weft_start_resp_schema, &resp);
}
