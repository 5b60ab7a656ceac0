/* cmd.c: the shard command (the payload of raft entries): its schema, how a client request
 * becomes one (weft_shard_client_cmd), and the table that routes a decoded command to its
 * handler at apply (DESIGN section 5, "Entries are commands"). */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static const weft_field timer_ref_rows[] = {
    WEFT_FIELD(weft_timer_ref, fire_at_ms, WEFT_F_U64, 0),
    WEFT_FIELD(weft_timer_ref, seq, WEFT_F_U64, WEFT_FF_REQUIRED),
};
const weft_schema weft_timer_ref_schema = WEFT_SCHEMA(weft_timer_ref, timer_ref_rows);

/* A command carries a whole client body; node already refused frames over frame_bytes_max, so
 * the body's own cap is the largest frame the codec could ever have accepted. */
#define SH_CMD_BODY_BYTES_MAX UINT32_MAX
/* Timer refs in one FIRE_TIMERS command (weft_shard_fire_cmd's `max` is capped to it). */
#define SH_FIRE_TIMERS_MAX 4096u

/* The rows of weft_shard_cmd, shared by the public schema and the wire schema below. */
#define SH_SHARD_CMD_ROWS                                                                     \
    WEFT_FIELD(weft_shard_cmd, type, WEFT_F_U32, 0),                                          \
        {.name = "body", .type = WEFT_F_BYTES, .offset = offsetof(weft_shard_cmd, body),      \
         .max_bytes = SH_CMD_BODY_BYTES_MAX},                                                 \
        WEFT_FIELD(weft_shard_cmd, run_id, WEFT_F_STR, WEFT_FF_ID),                           \
        WEFT_FIELD(weft_shard_cmd, task_token, WEFT_F_BYTES, 0),                              \
        WEFT_FIELD(weft_shard_cmd, identity, WEFT_F_STR, WEFT_FF_ID),                         \
        WEFT_FIELD(weft_shard_cmd, task_queue, WEFT_F_STR, WEFT_FF_ID),                       \
        WEFT_FIELD(weft_shard_cmd, request_id, WEFT_F_STR, WEFT_FF_ID),                       \
        WEFT_FIELD_ARR(weft_shard_cmd, timers, timers_count, weft_timer_ref_schema, 0,        \
                       SH_FIRE_TIMERS_MAX)

static const weft_field shard_cmd_rows[] = {SH_SHARD_CMD_ROWS};
const weft_schema weft_shard_cmd_schema = WEFT_SCHEMA(weft_shard_cmd, shard_cmd_rows);

/* What shards/ puts in the log: the public command plus the leader's limits stamp (limits.c).
 * Decoders that know only weft_shard_cmd_schema skip the stamp (unknown keys are ignored), and
 * a command without one (node builds TASK_REQUEUE itself) decodes with a zero stamp. */
typedef struct sh_cmd_wire {
    weft_shard_cmd cmd;  /* first: its rows' offsets hold for this struct too */
    weft_limits limits;  /* the leader's limits when they differ from the applied ones */
} sh_cmd_wire;
static const weft_field cmd_wire_rows[] = {
    SH_SHARD_CMD_ROWS,
    {.name = "limits", .type = WEFT_F_OBJ, .offset = offsetof(sh_cmd_wire, limits),
     .sub = &sh_limits_schema},
};
static const weft_schema sh_cmd_wire_schema = WEFT_SCHEMA(sh_cmd_wire, cmd_wire_rows);
_Static_assert(offsetof(sh_cmd_wire, cmd) == 0, "the shared rows index weft_shard_cmd");

int sh_cmd_encode(const weft_shard *s, const weft_shard_cmd *sc, uint8_t **out, size_t *len) {
    WEFT_ASSERT(s != NULL && sc != NULL && out != NULL && len != NULL);
    sh_cmd_wire w = {.cmd = *sc};
    const weft_limits *stamp = sh_limits_stamp_for(s);
    if (stamp != NULL) {
        w.limits = *stamp;
        WEFT_ASSERT(sh_limits_stamped(&w.limits));
    }
    return weft_schema_encode_buf(&sh_cmd_wire_schema, &w, out, len) != 0
               ? -WEFT_E_RESOURCE_EXHAUSTED
               : 0;
}

/* ---- Apply-side routing ---- */

/* TASK_REQUEUE: a dispatched task's poller vanished (section 8). */
static int cmd_requeue(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_task_token t;
    int rc = sh_token_parse(c, cmd->task_token, 0, &t);
    if (rc != 0) return rc;
    sh_run r;
    rc = sh_run_load(c, t.run_key, &r);
    if (rc == -WEFT_E_NOT_FOUND || (rc == 0 && !sh_run_is_open(&r))) {
        return sh_reject(c, WEFT_E_NOT_FOUND, "task_token",
                         "the task's run is closed or gone: nothing to requeue");
    }
    if (rc != 0) return rc;
    if (t.kind == WEFT_TASK_KIND_WORKFLOW) return sh_wft_on_requeue(c, &r, &t);
    return sh_act_on_requeue(c, &r, &t);
}

int sh_cmd_apply(sh_ctx *c, weft_bytes raw) {
    sh_cmd_wire w;
    int rc = sh_decode(c, &sh_cmd_wire_schema, raw.ptr, raw.len, false, true, &w);
    if (rc != 0) {
        weft_err_prefix(&c->err, "shard command: ");
        c->err.code = WEFT_E_INVALID_ARGUMENT;
        return -WEFT_E_INVALID_ARGUMENT;
    }
    rc = sh_limits_on_stamp(c, &w.limits);
    if (rc != 0) return rc;
    const weft_shard_cmd cmd = w.cmd;
    switch (cmd.type) {
    case WEFT_SC_NOOP: return sh_reply_empty(c);
    case WEFT_SC_START: return sh_start_on_cmd(c, &cmd, false);
    case WEFT_SC_SIGNAL_WITH_START: return sh_start_on_cmd(c, &cmd, true);
    case WEFT_SC_SIGNAL: return sh_signal_on_cmd(c, &cmd);
    case WEFT_SC_CANCEL: return sh_cancel_on_cmd(c, &cmd);
    case WEFT_SC_TERMINATE: return sh_terminate_on_cmd(c, &cmd);
    case WEFT_SC_WFT_STARTED: return sh_wft_on_started(c, &cmd);
    case WEFT_SC_WFT_COMPLETE: return sh_wft_on_complete(c, &cmd);
    case WEFT_SC_WFT_FAIL: return sh_wft_on_fail(c, &cmd);
    case WEFT_SC_ACT_STARTED: return sh_act_on_started(c, &cmd);
    case WEFT_SC_ACT_COMPLETE: return sh_act_on_complete(c, &cmd);
    case WEFT_SC_ACT_FAIL: return sh_act_on_fail(c, &cmd);
    case WEFT_SC_ACT_HEARTBEAT: return sh_act_on_heartbeat(c, &cmd);
    case WEFT_SC_FIRE_TIMERS: return sh_timers_on_fire(c, &cmd);
    case WEFT_SC_TASK_REQUEUE: return cmd_requeue(c, &cmd);
    case WEFT_SC_NS_REGISTER: return sh_ns_on_register(c, &cmd);
    }
    return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "type",
                     "unknown shard command type %u: this replica runs an older weft than the "
                     "leader; upgrade it",
                     cmd.type);
}

/* ---- Client requests -> commands ---- */

typedef struct cmd_route {
    uint32_t msg_type;  /* enum weft_msg_type */
    uint32_t cmd_type;  /* enum weft_shard_cmd_type */
} cmd_route;

/* The client operations that write (WEFT_OPS rows with writes=1) and are plain commands.
 * Polls are not here: they become WFT_STARTED / ACT_STARTED through dispatch. */
static const cmd_route cmd_routes[] = {
    {WEFT_MSG_START_WORKFLOW, WEFT_SC_START},
    {WEFT_MSG_SIGNAL_WORKFLOW, WEFT_SC_SIGNAL},
    {WEFT_MSG_SIGNAL_WITH_START, WEFT_SC_SIGNAL_WITH_START},
    {WEFT_MSG_CANCEL_WORKFLOW, WEFT_SC_CANCEL},
    {WEFT_MSG_TERMINATE_WORKFLOW, WEFT_SC_TERMINATE},
    {WEFT_MSG_COMPLETE_WORKFLOW_TASK, WEFT_SC_WFT_COMPLETE},
    {WEFT_MSG_FAIL_WORKFLOW_TASK, WEFT_SC_WFT_FAIL},
    {WEFT_MSG_COMPLETE_ACTIVITY, WEFT_SC_ACT_COMPLETE},
    {WEFT_MSG_FAIL_ACTIVITY, WEFT_SC_ACT_FAIL},
    {WEFT_MSG_HEARTBEAT_ACTIVITY, WEFT_SC_ACT_HEARTBEAT},
    {WEFT_MSG_REGISTER_NAMESPACE, WEFT_SC_NS_REGISTER},
};

/* The request checks that need no state, so a bad request is refused before it reaches the
 * log. Apply runs the same checks again (a command may come from an older leader). */
static int client_validate(sh_ctx *c, uint32_t cmd_type, void *req, weft_str run_id) {
    switch (cmd_type) {
    case WEFT_SC_START: return sh_start_validate(c, req, run_id, false);
    case WEFT_SC_SIGNAL_WITH_START: return sh_start_validate(c, req, run_id, true);
    case WEFT_SC_SIGNAL: return sh_signal_validate(c, req);
    case WEFT_SC_CANCEL:
    case WEFT_SC_TERMINATE: return sh_close_validate(c, req);
    case WEFT_SC_NS_REGISTER: return sh_ns_validate(c, req);
    case WEFT_SC_WFT_COMPLETE: {
        weft_task_token t;
        return sh_token_parse(c, ((weft_complete_wft_req *)req)->task_token,
                              WEFT_TASK_KIND_WORKFLOW, &t);
    }
    case WEFT_SC_WFT_FAIL: {
        weft_task_token t;
        return sh_token_parse(c, ((weft_fail_wft_req *)req)->task_token, WEFT_TASK_KIND_WORKFLOW,
                              &t);
    }
    default: {
        weft_task_token t;
        return sh_token_parse(c, ((weft_activity_req *)req)->task_token, WEFT_TASK_KIND_ACTIVITY,
                              &t);
    }
    }
}

static int client_encode(const weft_shard *s, const weft_shard_cmd *sc, uint8_t **cmd,
                         size_t *cmd_len, weft_err *err) {
    if (sh_cmd_encode(s, sc, cmd, cmd_len) != 0) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, NULL,
                            "out of memory building a shard command; retry later");
    }
    return 0;
}

int weft_shard_client_cmd(weft_shard *s, uint32_t msg_type, const uint8_t *body,
                          size_t body_len, weft_str run_id, uint8_t **cmd, size_t *cmd_len,
                          weft_err *err) {
    WEFT_ASSERT(s != NULL && cmd != NULL && cmd_len != NULL);
    const cmd_route *route = NULL;
    for (size_t i = 0; i < WEFT_ARRAY_LEN(cmd_routes); i++) {
        if (cmd_routes[i].msg_type == msg_type) route = &cmd_routes[i];
    }
    const weft_op *op = weft_op_find(msg_type);
    if (route == NULL || op == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "msg_type",
                            "message type %u is not a shard write request", msg_type);
    }
    sh_ctx c;
    sh_ctx_init(&c, s, NULL, s->clock_ms, NULL);
    void *req = sh_alloc(&c, op->req_schema->size);
    int rc = sh_decode(&c, op->req_schema, body, body_len, false, false, req);
    if (rc == 0) rc = client_validate(&c, route->cmd_type, req, run_id);
    if (rc != 0) {
        if (err != NULL) *err = c.err;
        sh_ctx_close(&c);
        return rc;
    }
    sh_ctx_close(&c);
    weft_shard_cmd sc = {.type = route->cmd_type,
                         .body = {.ptr = body, .len = (uint32_t)body_len},
                         .run_id = run_id};
    return client_encode(s, &sc, cmd, cmd_len, err);
}
