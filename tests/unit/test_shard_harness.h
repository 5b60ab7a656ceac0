/* test_shard_harness.h: a shard on a real LMDB env in a temp dir, and a small "leader" that
 * drives it the way node/ will: client requests through weft_shard_client_cmd, polls through
 * dispatch_pop + *_dispatch + the Started command, timers through weft_shard_fire_cmd at a
 * clock the test chooses. Header-only (static inline) so each test_shard_*.c stays its own
 * ctest executable. */
#ifndef WEFT_TEST_SHARD_HARNESS_H
#define WEFT_TEST_SHARD_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/log.h"
#include "proto/msg.h"
#include "shards/shard.h"

#define TH_UNPACKED_MAX 4096
#define TH_T0_MS 1000000ull

typedef struct th {
    char dir[128];                        /* mkdtemp dir holding the env */
    weft_shard *s;
    weft_limits limits;
    uint64_t index;                       /* last raft index applied */
    uint64_t now_ms;                      /* the leader clock entries are stamped with */
    weft_reply reply;                     /* last command's reply */
    unsigned run_seq;                     /* run ids handed to starts */
    char run_id[64];                      /* the run id of the last start command */
    msgpack_unpacked *unpacked[TH_UNPACKED_MAX]; /* decoded replies, freed at close */
    uint8_t *bufs[TH_UNPACKED_MAX];       /* the bytes they borrow */
    unsigned unpacked_count;
    uint64_t ready_calls, timer_calls, changed_calls; /* observer counts */
    bool record;                          /* keep every entry in `log` (determinism tests) */
    struct th_entry {
        uint64_t index, time_ms;
        uint8_t *cmd;
        size_t len;
    } log[4096];
    unsigned log_count;
} th;

static inline void th_obs_ready(void *ctx, weft_shard *s, const weft_ready_task *t) {
    (void)s;
    (void)t;
    ((th *)ctx)->ready_calls++;
}
static inline void th_obs_timer(void *ctx, weft_shard *s, uint64_t at) {
    (void)s;
    (void)at;
    ((th *)ctx)->timer_calls++;
}
static inline void th_obs_changed(void *ctx, weft_shard *s, uint64_t run_key, bool closed) {
    (void)s;
    (void)run_key;
    (void)closed;
    ((th *)ctx)->changed_calls++;
}

static inline void th_open_dir(th *h, const char *dir) {
    weft_err err;
    weft_err_clear(&err);
    int rc = weft_shard_open(&h->s, 7, "test-cluster", dir, &h->limits, NULL, &err);
    if (rc != 0) fprintf(stderr, "open: %s\n", err.message);
    assert_int_equal(rc, 0);
    weft_shard_observer obs = {.ctx = h,
                               .task_ready = th_obs_ready,
                               .timer_added = th_obs_timer,
                               .run_changed = th_obs_changed};
    weft_shard_set_observer(h->s, &obs);
    assert_int_equal(weft_shard_leader_start(h->s, &err), 0);
}

/* Opens a fresh shard. Set h->limits fields after th_init and before th_open to test limits. */
static inline void th_init(th *h) {
    memset(h, 0, sizeof *h);
    /* WEFT_LOG=debug shows every state transition the tests drive. */
    const char *lv = getenv("WEFT_LOG");
    int level = lv != NULL ? weft_log_level_parse(lv) : -1;
    weft_log_set_level(level >= 0 ? (weft_log_level)level : WEFT_LOG_WARN);
    weft_limits_default(&h->limits);
    h->now_ms = TH_T0_MS;
}

static inline void th_open(th *h) {
    snprintf(h->dir, sizeof h->dir, "/tmp/weft-shard-test-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    th_open_dir(h, h->dir);
}

/* A harness on the heap (th is large: it records entries): th_new initialises it, th_up also
 * opens its shard, th_free closes and frees it. */
static inline th *th_new(void) {
    th *h = calloc(1, sizeof *h);
    assert_non_null(h);
    th_init(h);
    return h;
}

static inline th *th_up(void) {
    th *h = th_new();
    th_open(h);
    return h;
}

static inline void th_rmdir(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static inline void th_close(th *h) {
    weft_shard_close(h->s);
    h->s = NULL;
    weft_reply_reset(&h->reply);
    for (unsigned i = 0; i < h->unpacked_count; i++) {
        msgpack_unpacked_destroy(h->unpacked[i]);
        free(h->unpacked[i]);
        free(h->bufs[i]);
    }
    h->unpacked_count = 0;
    for (unsigned i = 0; i < h->log_count; i++) free(h->log[i].cmd);
    h->log_count = 0;
    th_rmdir(h->dir);
}

static inline void th_free(th *h) {
    th_close(h);
    free(h);
}

/* Decodes bytes with a schema; the struct stays valid until th_close. */
static inline void th_decode(th *h, const weft_schema *schema, const uint8_t *buf, size_t len,
                             void *out) {
    assert_true(h->unpacked_count < TH_UNPACKED_MAX);
    msgpack_unpacked *up = malloc(sizeof *up);
    msgpack_unpacked_init(up);
    h->unpacked[h->unpacked_count] = up;
    /* Strings borrow the bytes: keep a copy, replies are reset by the next command. */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    h->bufs[h->unpacked_count++] = copy;
    weft_err err;
    weft_err_clear(&err);
    weft_limits lim;
    weft_limits_default(&lim);
    int rc = weft_schema_decode_buf(schema, copy, len, out, up, &lim, &err);
    if (rc != 0) fprintf(stderr, "decode %s: %s\n", schema->name, err.message);
    assert_int_equal(rc, 0);
}

/* Applies commands as one raft entry at h->now_ms. Returns the first command's error code. */
static inline int th_apply_n(th *h, const weft_bytes *cmds, uint32_t n, weft_reply *replies) {
    h->index++;
    if (h->record) {
        assert_true(n == 1 && h->log_count < 4096);
        struct th_entry *e = &h->log[h->log_count++];
        e->index = h->index;
        e->time_ms = h->now_ms;
        e->cmd = malloc(cmds[0].len);
        memcpy(e->cmd, cmds[0].ptr, cmds[0].len);
        e->len = cmds[0].len;
    }
    int rc = weft_shard_apply(h->s, h->index, h->now_ms, cmds, n, replies);
    assert_int_equal(rc, 0);
    return replies[0].err.code;
}

static inline int th_apply(th *h, const uint8_t *cmd, size_t len) {
    weft_reply_reset(&h->reply);
    weft_bytes b = {.ptr = cmd, .len = (uint32_t)len};
    int code = th_apply_n(h, &b, 1, &h->reply);
    if (code != 0 && getenv("TH_VERBOSE")) fprintf(stderr, "reply: %s\n", h->reply.err.message);
    return code;
}

/* Encodes a request, turns it into a command and applies it. Returns the error code
 * (client_cmd's or apply's). */
static inline int th_request(th *h, uint32_t msg_type, const void *req) {
    const weft_op *op = weft_op_find(msg_type);
    assert_non_null(op);
    uint8_t *body = NULL;
    size_t body_len = 0;
    assert_int_equal(weft_schema_encode_buf(op->req_schema, req, &body, &body_len), 0);
    snprintf(h->run_id, sizeof h->run_id, "run-%u", ++h->run_seq);
    uint8_t *cmd = NULL;
    size_t cmd_len = 0;
    weft_reply_reset(&h->reply);
    int rc = weft_shard_client_cmd(h->s, msg_type, body, body_len, weft_str_c(h->run_id), &cmd,
                                   &cmd_len, &h->reply.err);
    free(body);
    if (rc != 0) return h->reply.err.code;
    int code = th_apply(h, cmd, cmd_len);
    free(cmd);
    return code;
}

static inline weft_start_req th_start_req(const char *wfid) {
    return (weft_start_req){.workflow_id = weft_str_c(wfid),
                            .workflow_type = WEFT_STR_LIT("order"),
                            .task_queue = WEFT_STR_LIT("q"),
                            .input = {.ptr = (const uint8_t *)"in", .len = 2}};
}

/* Starts a workflow; asserts success; returns its run id (static storage of h). */
static inline const char *th_start(th *h, const char *wfid) {
    weft_start_req req = th_start_req(wfid);
    int code = th_request(h, WEFT_MSG_START_WORKFLOW, &req);
    if (code != 0) fprintf(stderr, "start: %s\n", h->reply.err.message);
    assert_int_equal(code, 0);
    weft_start_resp resp;
    th_decode(h, &weft_start_resp_schema, h->reply.body, h->reply.body_len, &resp);
    assert_true(resp.started);
    return h->run_id;
}

/* The dispatch name of a task queue in the default namespace (shard.h). Two rotating static
 * buffers, so two names may be used in one expression. */
static inline weft_str th_dq(const char *queue) {
    static char bufs[2][WEFT_DISPATCH_QUEUE_BYTES_MAX];
    static unsigned next;
    char *buf = bufs[next++ % 2];
    return weft_dispatch_queue_name(WEFT_STR_LIT(""), weft_str_c(queue), buf,
                                    WEFT_DISPATCH_QUEUE_BYTES_MAX);
}

/* Pops and starts a workflow task from `queue`. Returns 0 and fills *out, or -1 if no task
 * was ready, or the Started command's error code. */
static inline int th_poll_wft(th *h, const char *queue, weft_poll_wft_resp *out) {
    weft_ready_task t;
    for (;;) {
        if (!weft_shard_dispatch_pop(h->s, th_dq(queue), WEFT_TASK_KIND_WORKFLOW, &t)) return -1;
        uint8_t *cmd = NULL;
        size_t len = 0;
        weft_err err;
        weft_err_clear(&err);
        int rc = weft_shard_workflow_dispatch(h->s, &t, WEFT_STR_LIT("worker-1"), weft_str_c(queue),
                                              WEFT_STR_LIT("poll-1"), &cmd, &len, &err);
        if (rc == -WEFT_E_NOT_FOUND) continue; /* stale: drop it, like node does */
        assert_int_equal(rc, 0);
        int code = th_apply(h, cmd, len);
        free(cmd);
        if (code != 0) return code;
        th_decode(h, &weft_poll_wft_resp_schema, h->reply.body, h->reply.body_len, out);
        return 0;
    }
}

static inline int th_complete_wft(th *h, weft_bytes token, weft_command *cmds, uint32_t n,
                                  const char *sticky) {
    weft_complete_wft_req req = {.task_token = token,
                                 .identity = WEFT_STR_LIT("worker-1"),
                                 .commands = cmds,
                                 .commands_count = n,
                                 .sticky_queue = weft_str_c(sticky)};
    return th_request(h, WEFT_MSG_COMPLETE_WORKFLOW_TASK, &req);
}

static inline int th_fail_wft(th *h, weft_bytes token, const char *cause) {
    weft_fail_wft_req req = {.task_token = token,
                             .identity = WEFT_STR_LIT("worker-1"),
                             .cause = weft_str_c(cause),
                             .failure = {.type = WEFT_STR_LIT("Panic"),
                                         .message = WEFT_STR_LIT("boom")}};
    return th_request(h, WEFT_MSG_FAIL_WORKFLOW_TASK, &req);
}

/* Pops an activity task and applies its Started, whose apply reply is the poll response (the
 * node hands a task out only then). Returns 0 and fills *out, -1 if no task was ready, or the
 * Started command's error code. */
static inline int th_poll_act(th *h, const char *queue, weft_poll_activity_resp *out) {
    weft_ready_task t;
    for (;;) {
        if (!weft_shard_dispatch_pop(h->s, th_dq(queue), WEFT_TASK_KIND_ACTIVITY, &t)) return -1;
        uint8_t *cmd = NULL;
        size_t cmd_len = 0;
        weft_err err;
        weft_err_clear(&err);
        int rc = weft_shard_activity_dispatch(h->s, &t, WEFT_STR_LIT("act-worker"), &cmd, &cmd_len,
                                              &err);
        if (rc == -WEFT_E_NOT_FOUND) continue;
        assert_int_equal(rc, 0);
        int code = th_apply(h, cmd, cmd_len);
        free(cmd);
        if (code != 0) return code;
        th_decode(h, &weft_poll_activity_resp_schema, h->reply.body, h->reply.body_len, out);
        return 0;
    }
}

static inline int th_act(th *h, uint32_t msg_type, weft_bytes token, const char *result,
                         const char *failure_type) {
    weft_activity_req req = {.task_token = token, .identity = WEFT_STR_LIT("act-worker")};
    if (result != NULL) req.result = (weft_bytes){.ptr = (const uint8_t *)result, .len = (uint32_t)strlen(result)};
    if (failure_type != NULL) {
        req.failure.type = weft_str_c(failure_type);
        req.failure.message = WEFT_STR_LIT("it failed");
    }
    return th_request(h, msg_type, &req);
}

/* Fires every timer due at h->now_ms (repeats while firing makes more due). Returns how many
 * rows the gate proposed. */
static inline uint32_t th_fire(th *h) {
    uint32_t total = 0;
    for (int round = 0; round < 8; round++) {
        uint8_t *cmd = NULL;
        size_t len = 0;
        uint32_t count = 0;
        weft_err err;
        weft_err_clear(&err);
        assert_int_equal(weft_shard_fire_cmd(h->s, h->now_ms, 1000, &cmd, &len, &count, &err), 0);
        if (count == 0) break;
        total += count;
        assert_int_equal(th_apply(h, cmd, len), 0);
        free(cmd);
    }
    return total;
}

static inline uint32_t th_advance(th *h, uint64_t ms) {
    h->now_ms += ms;
    return th_fire(h);
}

/* Reads a whole history. */
static inline uint32_t th_history(th *h, const char *wfid, const char *run_id, weft_event **evs) {
    weft_history_req req = {.workflow_id = weft_str_c(wfid), .run_id = weft_str_c(run_id)};
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_history_req_schema, &req, &body, &len), 0);
    weft_reply reply = {0};
    weft_read_wait wait;
    int rc = weft_shard_read(h->s, WEFT_MSG_GET_HISTORY, body, len, false, &reply, &wait);
    free(body);
    if (rc != 0) fprintf(stderr, "history: %s\n", reply.err.message);
    assert_int_equal(rc, 0);
    weft_history_resp resp;
    th_decode(h, &weft_history_resp_schema, reply.body, reply.body_len, &resp);
    weft_reply_reset(&reply);
    *evs = resp.events;
    return resp.events_count;
}

/* The history's event types as "A,B,C" (static buffer). */
static inline const char *th_types(th *h, const char *wfid, const char *run_id) {
    static char buf[8192];
    weft_event *evs = NULL;
    uint32_t n = th_history(h, wfid, run_id, &evs);
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(evs[i].event_id, i + 1); /* dense from 1 (G2) */
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", i ? "," : "",
                                weft_event_type_names[evs[i].event_type]);
    }
    return buf;
}

static inline int th_read(th *h, uint32_t msg_type, const weft_schema *req_schema, const void *req,
                          const weft_schema *resp_schema, void *resp, bool final,
                          weft_read_wait *wait) {
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(req_schema, req, &body, &len), 0);
    weft_reply_reset(&h->reply);
    weft_read_wait w;
    int rc = weft_shard_read(h->s, msg_type, body, len, final, &h->reply, wait ? wait : &w);
    free(body);
    if (rc != 0) return h->reply.err.code;
    th_decode(h, resp_schema, h->reply.body, h->reply.body_len, resp);
    return 0;
}

static inline void th_describe(th *h, const char *wfid, weft_describe_resp *out) {
    weft_describe_req req = {.workflow_id = weft_str_c(wfid)};
    assert_int_equal(th_read(h, WEFT_MSG_DESCRIBE_WORKFLOW, &weft_describe_req_schema, &req,
                             &weft_describe_resp_schema, out, false, NULL),
                     0);
}

/* Command builders. */
static inline weft_command th_cmd_activity(const char *id, const char *type) {
    return (weft_command){.type = WEFT_CMD_SCHEDULE_ACTIVITY,
                          .activity_id = weft_str_c(id),
                          .activity_type = weft_str_c(type),
                          .start_to_close_timeout_ms = 10000};
}
static inline weft_command th_cmd_timer(const char *id, uint64_t ms) {
    return (weft_command){.type = WEFT_CMD_START_TIMER,
                          .timer_id = weft_str_c(id),
                          .start_to_fire_timeout_ms = ms};
}
static inline weft_command th_cmd_complete(const char *result) {
    return (weft_command){.type = WEFT_CMD_COMPLETE_WORKFLOW,
                          .result = {.ptr = (const uint8_t *)result, .len = (uint32_t)strlen(result)}};
}

static inline int th_signal(th *h, const char *wfid, const char *name, const char *request_id) {
    weft_signal_req req = {.workflow_id = weft_str_c(wfid),
                           .signal_name = weft_str_c(name),
                           .request_id = weft_str_c(request_id),
                           .input = {.ptr = (const uint8_t *)"sig", .len = 3}};
    return th_request(h, WEFT_MSG_SIGNAL_WORKFLOW, &req);
}

#endif
