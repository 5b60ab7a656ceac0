/* fuzz_seeds.c: writes the seed corpus of every fuzz target with the project's own encoders,
 * so that no binary corpus is committed and the seeds follow the protocol as it changes.
 *
 *     fuzz_seeds OUT_DIR    ->  OUT_DIR/{node,apply,client,transport}/seed-NNN
 *
 * It runs a small worker against a real shard in a scratch LMDB env: starts, signals, cancels
 * and terminates workflows; dispatches their workflow tasks and runs fuzz_workflow on the
 * SDK's engine to complete them; dispatches, heartbeats, fails and completes activities; fires
 * timers on an advancing shard clock; and reads every kind of answer. Along the way it records
 *   - apply: the raft entries it applied (weft_batch_encode), length-prefixed as fuzz_apply
 *     reads them, per scenario and as prefixes;
 *   - node: each client request as a frame (weft_frame_encode_raw), alone and as one session,
 *     task tokens replaced by fuzz_node's placeholders;
 *   - client: each answer as the node sends it (a frame with the op's index in front), error
 *     frames included, and each history as a JSON history file;
 *   - transport: preambles (weft_raft_preamble_encode) with raft bytes after them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/sdk/engine.h"
#include "fuzz_util.h"
#include "fuzz_workflow.h"
#include "proto/base.h"
#include "proto/frame.h"
#include "proto/log.h"
#include "raft/batch.h"
#include "raft/transport.h"
#include "shards/shard.h"
#include "weft/json.h"

/* Worker rounds per scenario, at most: each dispatches what is ready, then moves the clock. */
#define GEN_ROUNDS_MAX 40u
/* How far the shard clock moves when nothing is ready: past every timer fuzz_workflow sets. */
#define GEN_CLOCK_STEP_MS 6000u
/* Start of the shard clock (any wall-clock-like value). */
#define GEN_T0_MS 1700000000000ull
/* Entries kept per apply seed: fuzz_apply applies at most 64. */
#define GEN_APPLY_ENTRIES_MAX 64u

typedef struct gen {
    const char *out;         /* corpus root */
    unsigned files[4];       /* seeds written per target, for names */
    char dir[256];           /* the scratch shard's env */
    weft_shard *s;           /* the shard of the scenario being run */
    weft_limits limits;      /* default limits */
    uint64_t index;          /* last applied raft index */
    uint64_t now_ms;         /* the leader clock the next entry carries */
    msgpack_sbuffer entries; /* this scenario's entries, each prefixed by its u32 LE length */
    uint32_t entries_count;  /* entries in it */
    msgpack_sbuffer session; /* every request frame of the run, for one node seed */
    uint64_t frame_id;       /* request id of the next frame */
    unsigned req_seq;        /* request ids (idempotency keys) handed out */
} gen;

enum { GEN_NODE, GEN_APPLY, GEN_CLIENT, GEN_TRANSPORT };
static const char *const gen_targets[] = {"node", "apply", "client", "transport"};

static void gen_die(const char *what, const char *why) {
    fprintf(stderr, "fuzz_seeds: %s: %s\n", what, why);
    exit(1);
}

static void gen_write(gen *g, int target, const void *bytes, size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/seed-%03u", g->out, gen_targets[target],
             g->files[target]++);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(bytes, 1, len, f) != len || fclose(f) != 0)
        gen_die(path, strerror(errno));
}

/* ---- node and client seeds ---- */

/* Records a request body as a node frame: its own seed, and part of the session. */
static void gen_request(gen *g, uint32_t msg_type, const uint8_t *body, size_t len) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (weft_frame_encode_raw(&sb, msg_type, ++g->frame_id, body, len) != 0)
        gen_die("frame", "out of memory");
    gen_write(g, GEN_NODE, sb.data, sb.size);
    msgpack_sbuffer_write(&g->session, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static unsigned gen_op_index(uint32_t msg_type) {
    for (unsigned i = 0; i < weft_ops_count; i++)
        if (weft_ops[i].msg_type == msg_type) return i;
    gen_die("op", "unknown message type");
    return 0;
}

/* Records an answer to `msg_type` as fuzz_client reads it: the op's index, then the frame
 * (request id 1, the first a fresh client connection uses). */
static void gen_answer(gen *g, uint32_t msg_type, const weft_reply *reply) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    uint8_t op = (uint8_t)gen_op_index(msg_type);
    msgpack_sbuffer_write(&sb, (const char *)&op, 1);
    static const uint8_t empty_map = 0x80;
    int rc = reply->err.code != 0
                 ? weft_frame_encode_error(&sb, 1, &reply->err, reply->leader_hint, "")
                 : weft_frame_encode_raw(&sb, msg_type | WEFT_MSG_RESPONSE_BIT, 1,
                                         reply->body ? reply->body : &empty_map,
                                         reply->body ? reply->body_len : 1);
    if (rc != 0) gen_die("answer frame", "out of memory");
    gen_write(g, GEN_CLIENT, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- the shard and its log ---- */

static void gen_shard_open(gen *g) {
    fuzz_tmpdir(g->dir, sizeof g->dir, "seeds");
    weft_store_opts opts = {.no_sync = true};
    weft_err err = {0};
    if (weft_shard_open(&g->s, 0, "fuzz-cluster", g->dir, &g->limits, &opts, &err) != 0 ||
        weft_shard_leader_start(g->s, &err) != 0)
        gen_die("shard", err.message);
    g->index = 0;
    msgpack_sbuffer_init(&g->entries);
    g->entries_count = 0;
}

/* Writes the scenario's entries as apply seeds (the first 1, 2, 4, ... and all of them) and
 * closes its shard. */
static void gen_shard_close(gen *g) {
    size_t off = 0;
    for (uint32_t i = 0; i < g->entries_count && i < GEN_APPLY_ENTRIES_MAX; i++) {
        const uint8_t *prefix = (const uint8_t *)g->entries.data + off;
        uint32_t len = (uint32_t)prefix[0] | (uint32_t)prefix[1] << 8 |
                       (uint32_t)prefix[2] << 16 | (uint32_t)prefix[3] << 24;
        off += 4 + (size_t)len;
        uint32_t n = i + 1;
        if ((n & (n - 1)) == 0 || n == g->entries_count) gen_write(g, GEN_APPLY, g->entries.data, off);
    }
    msgpack_sbuffer_destroy(&g->entries);
    weft_shard_close(g->s);
    g->s = NULL;
    fuzz_rmtree(g->dir);
}

/* Applies one command as a raft entry (as raft/fsm.c would) and records the entry. `cmd` is
 * freed. The command's reply goes to *reply (reset first). */
static void gen_apply(gen *g, uint8_t *cmd, size_t cmd_len, weft_reply *reply) {
    weft_bytes b = {.ptr = cmd, .len = (uint32_t)cmd_len};
    void *entry = NULL;
    size_t entry_len = 0;
    if (weft_batch_encode(g->now_ms, &b, 1, &entry, &entry_len, malloc) != 0)
        gen_die("batch", "cannot encode an entry");
    uint8_t prefix[4] = {(uint8_t)entry_len, (uint8_t)(entry_len >> 8),
                         (uint8_t)(entry_len >> 16), (uint8_t)(entry_len >> 24)};
    msgpack_sbuffer_write(&g->entries, (const char *)prefix, 4);
    msgpack_sbuffer_write(&g->entries, entry, entry_len);
    g->entries_count++;
    free(entry);
    weft_reply_reset(reply);
    if (weft_shard_apply(g->s, ++g->index, g->now_ms, &b, 1, reply) != 0)
        gen_die("apply", "storage failure");
    free(cmd);
}

/* Records a task request as a node frame whose task token is fuzz_node's placeholder
 * (FN_WFT_TOKEN / FN_ACT_TOKEN there): the node's own tokens are not this shard's, and the
 * harness puts in the token the node answered the poll before with. */
static void gen_task_request(gen *g, uint32_t msg_type, const uint8_t *body, size_t len,
                             weft_bytes token) {
    bool workflow =
        msg_type == WEFT_MSG_COMPLETE_WORKFLOW_TASK || msg_type == WEFT_MSG_FAIL_WORKFLOW_TASK;
    const char *placeholder = workflow ? "WEFT-FUZZ-WFT-TOKEN" : "WEFT-FUZZ-ACT-TOKEN";
    uint8_t needle[2 + 255];
    if (token.len == 0 || token.len > 255) gen_die("task token", "empty or longer than bin8");
    needle[0] = 0xc4;
    needle[1] = (uint8_t)token.len;
    memcpy(needle + 2, token.ptr, token.len);
    const uint8_t *at = memmem(body, len, needle, 2 + token.len);
    if (at == NULL) gen_die("task token", "not found in the request body");
    size_t before = (size_t)(at - body), after = len - before - 2 - token.len;
    size_t out_len = before + 2 + strlen(placeholder) + after;
    uint8_t *out = malloc(out_len);
    if (out == NULL) gen_die("task request", "out of memory");
    memcpy(out, body, before);
    out[before] = 0xc4;
    out[before + 1] = (uint8_t)strlen(placeholder);
    memcpy(out + before + 2, placeholder, strlen(placeholder));
    memcpy(out + before + 2 + strlen(placeholder), at + 2 + token.len, after);
    gen_request(g, msg_type, out, out_len);
    free(out);
}

/* A client request: recorded as a node frame, built into a command, applied; the answer is
 * recorded as a client seed. `token` is the task token a task request carries, else empty. */
static void gen_client(gen *g, uint32_t msg_type, const weft_schema *schema, const void *req,
                       const char *run_id, weft_bytes token, weft_reply *reply) {
    uint8_t *body = NULL, *cmd = NULL;
    size_t body_len = 0, cmd_len = 0;
    weft_err err = {0};
    if (weft_schema_encode_buf(schema, req, &body, &body_len) != 0) gen_die("encode", schema->name);
    if (token.len > 0) {
        gen_task_request(g, msg_type, body, body_len, token);
    } else {
        gen_request(g, msg_type, body, body_len);
    }
    if (weft_shard_client_cmd(g->s, msg_type, body, body_len, weft_str_c(run_id), &cmd, &cmd_len,
                              &err) != 0)
        gen_die("client command", err.message);
    free(body);
    gen_apply(g, cmd, cmd_len, reply);
    gen_answer(g, msg_type, reply);
}

static weft_str gen_request_id(gen *g) {
    static char ids[256][16];
    char *id = ids[g->req_seq++ % 256];
    snprintf(id, 16, "req-%u", g->req_seq);
    return weft_str_c(id);
}

static void gen_start(gen *g, uint32_t msg_type, const char *workflow_id, const char *run_id) {
    weft_start_req req = {.workflow_id = weft_str_c(workflow_id),
                          .workflow_type = WEFT_STR_LIT(FUZZ_WORKFLOW_TYPE),
                          .task_queue = WEFT_STR_LIT(FUZZ_TASK_QUEUE),
                          .input = {.ptr = (const uint8_t *)"\xa5order", .len = 6},
                          .request_id = gen_request_id(g),
                          .workflow_run_timeout_ms = 3600000,
                          .identity = WEFT_STR_LIT("fuzz-seeds")};
    if (msg_type == WEFT_MSG_SIGNAL_WITH_START) {
        req.signal_name = WEFT_STR_LIT(FUZZ_SIGNAL_NAME);
        req.signal_input = (weft_bytes){.ptr = (const uint8_t *)"\xc3", .len = 1};
    }
    weft_reply reply = {0};
    gen_client(g, msg_type, &weft_start_req_schema, &req, run_id, (weft_bytes){0}, &reply);
    weft_reply_reset(&reply);
}

static void gen_signal(gen *g, const char *workflow_id) {
    weft_signal_req req = {.workflow_id = weft_str_c(workflow_id),
                           .signal_name = WEFT_STR_LIT(FUZZ_SIGNAL_NAME),
                           .input = {.ptr = (const uint8_t *)"\xa2ok", .len = 3},
                           .request_id = gen_request_id(g)};
    weft_reply reply = {0};
    gen_client(g, WEFT_MSG_SIGNAL_WORKFLOW, &weft_signal_req_schema, &req, "", (weft_bytes){0},
               &reply);
    weft_reply_reset(&reply);
}

static void gen_close(gen *g, uint32_t msg_type, const char *workflow_id) {
    weft_close_req req = {.workflow_id = weft_str_c(workflow_id),
                          .reason = WEFT_STR_LIT("fuzz seeds"),
                          .request_id = gen_request_id(g)};
    weft_reply reply = {0};
    gen_client(g, msg_type, &weft_close_req_schema, &req, "", (weft_bytes){0}, &reply);
    weft_reply_reset(&reply);
}

/* ---- the worker ---- */

static weft_str gen_queue(char *buf, size_t cap) {
    return weft_dispatch_queue_name((weft_str){0}, WEFT_STR_LIT(FUZZ_TASK_QUEUE), buf, cap);
}

static void gen_poll_request(gen *g, uint32_t msg_type) {
    weft_poll_req req = {.task_queue = WEFT_STR_LIT(FUZZ_TASK_QUEUE),
                         .identity = WEFT_STR_LIT("fuzz-worker"),
                         .poll_timeout_ms = 10};
    uint8_t *body = NULL;
    size_t len = 0;
    if (weft_schema_encode_buf(&weft_poll_req_schema, &req, &body, &len) != 0)
        gen_die("encode", "poll");
    gen_request(g, msg_type, body, len);
    free(body);
}

/* Runs fuzz_workflow on the task's history, as a worker without a cache does, and answers
 * the task with CompleteWorkflowTask or FailWorkflowTask. */
static void gen_run_task(gen *g, const weft_poll_wft_resp *t) {
    wfe_run_params p = {.workflow_id = t->workflow_id,
                        .run_id = t->run_id,
                        .workflow_type = t->workflow_type,
                        .task_queue = WEFT_STR_LIT(FUZZ_TASK_QUEUE),
                        .fn = fuzz_workflow,
                        .stack_bytes = WEFT_WORKER_WF_STACK_BYTES_DEFAULT};
    wfe_run *run = NULL;
    weft_err err = {0};
    wfe_task_result res;
    if (wfe_run_new(&p, &run, &err) != 0 ||
        wfe_run_feed(run, t->events, t->events_count, t->started_event_id, &res, &err) != 0)
        gen_die("engine", err.message);
    weft_reply reply = {0};
    if (res.failed) {
        weft_fail_wft_req req = {.task_token = t->task_token,
                                 .identity = WEFT_STR_LIT("fuzz-worker"),
                                 .cause = weft_str_c(res.cause),
                                 .failure = res.failure};
        gen_client(g, WEFT_MSG_FAIL_WORKFLOW_TASK, &weft_fail_wft_req_schema, &req, "",
                   t->task_token, &reply);
    } else {
        weft_complete_wft_req req = {.task_token = t->task_token,
                                     .identity = WEFT_STR_LIT("fuzz-worker"),
                                     .commands = res.commands,
                                     .commands_count = res.commands_count};
        gen_client(g, WEFT_MSG_COMPLETE_WORKFLOW_TASK, &weft_complete_wft_req_schema, &req, "",
                   t->task_token, &reply);
    }
    weft_reply_reset(&reply);
    wfe_run_free(run);
}

/* Dispatches and runs every ready workflow task. Returns how many ran. */
static unsigned gen_workflow_tasks(gen *g) {
    char qbuf[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    weft_str q = gen_queue(qbuf, sizeof qbuf);
    weft_ready_task t;
    unsigned ran = 0;
    while (weft_shard_dispatch_pop(g->s, q, WEFT_TASK_KIND_WORKFLOW, &t)) {
        uint8_t *cmd = NULL;
        size_t cmd_len = 0;
        weft_err err = {0};
        if (weft_shard_workflow_dispatch(g->s, &t, WEFT_STR_LIT("fuzz-worker"),
                                         WEFT_STR_LIT(FUZZ_TASK_QUEUE), gen_request_id(g), &cmd,
                                         &cmd_len, &err) != 0)
            continue; /* no longer current */
        gen_poll_request(g, WEFT_MSG_POLL_WORKFLOW_TASK);
        weft_reply reply = {0};
        gen_apply(g, cmd, cmd_len, &reply);
        if (reply.err.code != 0) {
            weft_reply_reset(&reply);
            continue;
        }
        gen_answer(g, WEFT_MSG_POLL_WORKFLOW_TASK, &reply);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        weft_poll_wft_resp task;
        if (weft_schema_decode_buf(&weft_poll_wft_resp_schema, reply.body, reply.body_len, &task,
                                   &up, &g->limits, &err) != 0)
            gen_die("poll response", err.message);
        gen_run_task(g, &task);
        msgpack_unpacked_destroy(&up);
        weft_reply_reset(&reply);
        ran++;
    }
    return ran;
}

/* Answers one dispatched activity: a heartbeat, then the first attempt of "charge" fails
 * (and is retried after its backoff), every other attempt completes. */
static void gen_activity_answer(gen *g, const weft_poll_activity_resp *a) {
    weft_reply reply = {0};
    weft_activity_req hb = {.task_token = a->task_token,
                            .identity = WEFT_STR_LIT("fuzz-worker"),
                            .details = {.ptr = (const uint8_t *)"\x01", .len = 1}};
    gen_client(g, WEFT_MSG_HEARTBEAT_ACTIVITY, &weft_activity_req_schema, &hb, "", a->task_token,
               &reply);
    bool fail = a->attempt == 1 && weft_str_eq_c(a->activity_type, "charge");
    weft_activity_req req = {.task_token = a->task_token, .identity = WEFT_STR_LIT("fuzz-worker")};
    if (fail) {
        req.failure = (weft_failure){.type = WEFT_STR_LIT("CardDeclined"),
                                     .message = WEFT_STR_LIT("try again")};
    } else {
        req.result = (weft_bytes){.ptr = (const uint8_t *)"\xa4paid", .len = 5};
    }
    gen_client(g, fail ? WEFT_MSG_FAIL_ACTIVITY : WEFT_MSG_COMPLETE_ACTIVITY,
               &weft_activity_req_schema, &req, "", a->task_token, &reply);
    weft_reply_reset(&reply);
}

/* Dispatches and answers every ready activity task. Returns how many ran. */
static unsigned gen_activity_tasks(gen *g) {
    char qbuf[WEFT_DISPATCH_QUEUE_BYTES_MAX];
    weft_str q = gen_queue(qbuf, sizeof qbuf);
    weft_ready_task t;
    unsigned ran = 0;
    while (weft_shard_dispatch_pop(g->s, q, WEFT_TASK_KIND_ACTIVITY, &t)) {
        uint8_t *cmd = NULL;
        size_t cmd_len = 0;
        weft_err err = {0};
        if (weft_shard_activity_dispatch(g->s, &t, WEFT_STR_LIT("fuzz-worker"), &cmd, &cmd_len,
                                         &err) != 0)
            continue; /* no longer current */
        gen_poll_request(g, WEFT_MSG_POLL_ACTIVITY_TASK);
        /* The Started entry's apply reply is the poll's answer (node/poll.c). */
        weft_reply answer = {0};
        gen_apply(g, cmd, cmd_len, &answer);
        if (answer.err.code != 0) {
            weft_reply_reset(&answer);
            continue;
        }
        gen_answer(g, WEFT_MSG_POLL_ACTIVITY_TASK, &answer);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        weft_poll_activity_resp a;
        if (weft_schema_decode_buf(&weft_poll_activity_resp_schema, answer.body, answer.body_len,
                                   &a, &up, &g->limits, &err) != 0)
            gen_die("activity response", err.message);
        gen_activity_answer(g, &a);
        msgpack_unpacked_destroy(&up);
        weft_reply_reset(&answer);
        ran++;
    }
    return ran;
}

/* Moves the clock and fires what came due. */
static void gen_fire_timers(gen *g) {
    g->now_ms += GEN_CLOCK_STEP_MS;
    uint8_t *cmd = NULL;
    size_t cmd_len = 0;
    uint32_t count = 0;
    weft_err err = {0};
    if (weft_shard_fire_cmd(g->s, g->now_ms, 64, &cmd, &cmd_len, &count, &err) != 0)
        gen_die("fire", err.message);
    if (count == 0) return;
    weft_reply reply = {0};
    gen_apply(g, cmd, cmd_len, &reply);
    weft_reply_reset(&reply);
}

/* Works until nothing is ready for GEN_ROUNDS_MAX rounds; signals `signal_id` at round 2. */
static void gen_work(gen *g, const char *signal_id) {
    for (unsigned round = 0; round < GEN_ROUNDS_MAX; round++) {
        if (round == 2 && signal_id != NULL) gen_signal(g, signal_id);
        unsigned ran = gen_workflow_tasks(g);
        ran += gen_activity_tasks(g);
        if (ran == 0) gen_fire_timers(g);
    }
}

/* ---- reads ---- */

/* Writes a history answer's events as the JSON history file `weft workflow show --output
 * json` saves, behind fuzz_client's JSON mode byte. */
static void gen_history_json(gen *g, const weft_reply *reply) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_history_resp h;
    weft_err err = {0};
    if (weft_schema_decode_buf(&weft_history_resp_schema, reply->body, reply->body_len, &h, &up,
                               &g->limits, &err) != 0)
        gen_die("history", err.message);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) gen_die("history", strerror(errno));
    fputc(0xFF, f);
    for (uint32_t i = 0; i < h.events_count; i++) {
        if (weft_history_write_event_json(f, &h.events[i], &err) != 0)
            gen_die("history json", err.message);
    }
    fclose(f);
    gen_write(g, GEN_CLIENT, text, len);
    free(text);
    msgpack_unpacked_destroy(&up);
}

static void gen_read(gen *g, uint32_t msg_type, const weft_schema *schema, const void *req) {
    uint8_t *body = NULL;
    size_t len = 0;
    if (weft_schema_encode_buf(schema, req, &body, &len) != 0) gen_die("encode", schema->name);
    gen_request(g, msg_type, body, len);
    weft_reply reply = {0};
    weft_read_wait wait = {0};
    if (weft_shard_read(g->s, msg_type, body, len, true, &reply, &wait) != 0)
        gen_die("read", schema->name);
    gen_answer(g, msg_type, &reply);
    if (msg_type == WEFT_MSG_GET_HISTORY && reply.err.code == 0) gen_history_json(g, &reply);
    weft_reply_reset(&reply);
    free(body);
}

static void gen_reads(gen *g, const char *workflow_id) {
    weft_str wid = weft_str_c(workflow_id);
    weft_describe_req d = {.workflow_id = wid};
    gen_read(g, WEFT_MSG_DESCRIBE_WORKFLOW, &weft_describe_req_schema, &d);
    weft_history_req h = {.workflow_id = wid, .first_event_id = 1};
    gen_read(g, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &h);
    h.first_event_id = 5;
    h.max_events = 3;
    h.wait_new_events = true;
    h.wait_timeout_ms = 10;
    gen_read(g, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &h);
    weft_result_req r = {.workflow_id = wid, .wait = true, .wait_timeout_ms = 10,
                         .follow_runs = true};
    gen_read(g, WEFT_MSG_GET_RESULT, &weft_result_req_schema, &r);
    weft_list_req l = {.page_size = 2};
    gen_read(g, WEFT_MSG_LIST_WORKFLOWS, &weft_list_req_schema, &l);
    l.status = WEFT_STATUS_COMPLETED;
    l.workflow_type = WEFT_STR_LIT(FUZZ_WORKFLOW_TYPE);
    gen_read(g, WEFT_MSG_COUNT_WORKFLOWS, &weft_list_req_schema, &l);
}

/* ---- scenarios ---- */

/* One order runs to completion: activities fail and retry, a timer races, a signal arrives. */
static void gen_scenario_order(gen *g) {
    gen_shard_open(g);
    gen_start(g, WEFT_MSG_START_WORKFLOW, "order-1", "run-order-1");
    gen_work(g, "order-1");
    gen_reads(g, "order-1");
    gen_shard_close(g);
}

/* Signal-with-start, a duplicate start, then a cancel the code honours. */
static void gen_scenario_cancel(gen *g) {
    gen_shard_open(g);
    gen_start(g, WEFT_MSG_SIGNAL_WITH_START, "order-2", "run-order-2");
    gen_start(g, WEFT_MSG_START_WORKFLOW, "order-2", "run-order-2b");
    gen_workflow_tasks(g);
    gen_close(g, WEFT_MSG_CANCEL_WORKFLOW, "order-2");
    gen_work(g, NULL);
    gen_reads(g, "order-2");
    gen_shard_close(g);
}

/* A run terminated while its activity is out, then read. */
static void gen_scenario_terminate(gen *g) {
    gen_shard_open(g);
    gen_start(g, WEFT_MSG_START_WORKFLOW, "order-3", "run-order-3");
    gen_workflow_tasks(g);
    gen_close(g, WEFT_MSG_TERMINATE_WORKFLOW, "order-3");
    gen_reads(g, "order-3");
    gen_shard_close(g);
}

/* Requests only the node answers (Hello, ClusterStatus, list paging), and error answers. */
static void gen_node_only(gen *g) {
    weft_hello_req hello = {.protocol_version = WEFT_PROTOCOL_VERSION,
                            .client_name = WEFT_STR_LIT("fuzz")};
    uint8_t *body = NULL;
    size_t len = 0;
    if (weft_schema_encode_buf(&weft_hello_req_schema, &hello, &body, &len) != 0)
        gen_die("encode", "hello");
    gen_request(g, WEFT_MSG_HELLO, body, len);
    free(body);
    weft_cluster_status_req cs = {0};
    if (weft_schema_encode_buf(&weft_cluster_status_req_schema, &cs, &body, &len) != 0)
        gen_die("encode", "cluster status");
    gen_request(g, WEFT_MSG_CLUSTER_STATUS, body, len);
    free(body);
    /* A list page token as the node issues it: msgpack [shard, inner token(, only)]. */
    static const uint8_t token[] = {0x93, 0x01, 0xc4, 0x02, 0x91, 0x05, 0xc3};
    weft_list_req l = {.page_size = 1, .next_page_token = {.ptr = token, .len = sizeof token}};
    if (weft_schema_encode_buf(&weft_list_req_schema, &l, &body, &len) != 0)
        gen_die("encode", "list");
    gen_request(g, WEFT_MSG_LIST_WORKFLOWS, body, len);
    gen_request(g, WEFT_MSG_COUNT_WORKFLOWS, body, len);
    free(body);
    /* A Hello answer, and the errors clients meet most. */
    weft_reply reply = {0};
    weft_hello_resp hr = {.protocol_version = WEFT_PROTOCOL_VERSION,
                          .node_id = 1,
                          .cluster_id = WEFT_STR_LIT("fuzz-cluster"),
                          .shard_count = 1};
    if (weft_schema_encode_buf(&weft_hello_resp_schema, &hr, &reply.body, &reply.body_len) != 0)
        gen_die("encode", "hello response");
    gen_answer(g, WEFT_MSG_HELLO, &reply);
    weft_reply_reset(&reply);
    weft_err_set(&reply.err, WEFT_E_NOT_LEADER, "", "shard 0 is led by node 2");
    reply.leader_hint = 2;
    gen_answer(g, WEFT_MSG_START_WORKFLOW, &reply);
    weft_err_set(&reply.err, WEFT_E_INVALID_ARGUMENT, "workflow_id", "workflow_id is required");
    gen_answer(g, WEFT_MSG_GET_RESULT, &reply);
}

static void gen_transport(gen *g) {
    uint8_t buf[WEFT_RAFT_PREAMBLE_BYTES + 32];
    memset(buf, 0xab, sizeof buf);
    struct {
        uint32_t group;
        const char *cluster;
        size_t tail;
    } rows[] = {{1, "fuzz-cluster", 0}, {2, "fuzz-cluster", 32}, {3, "fuzz-cluster", 8},
                {1, "other-cluster", 16}};
    for (size_t i = 0; i < WEFT_ARRAY_LEN(rows); i++) {
        if (!weft_raft_preamble_encode(buf, WEFT_RAFT_PREAMBLE_MAGIC, rows[i].group, 2, rows[i].cluster, "127.0.0.1:7500"))
            gen_die("preamble", "does not fit");
        gen_write(g, GEN_TRANSPORT, buf, WEFT_RAFT_PREAMBLE_BYTES + rows[i].tail);
    }
    gen_write(g, GEN_TRANSPORT, buf, WEFT_RAFT_PREAMBLE_BYTES / 2);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    weft_log_set_level(WEFT_LOG_ERROR);
    static gen g;
    g.out = argv[1];
    g.now_ms = GEN_T0_MS;
    weft_limits_default(&g.limits);
    msgpack_sbuffer_init(&g.session);
    mkdir(g.out, 0755);
    for (size_t i = 0; i < WEFT_ARRAY_LEN(gen_targets); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", g.out, gen_targets[i]);
        if (mkdir(path, 0755) != 0 && errno != EEXIST) gen_die(path, strerror(errno));
    }
    gen_scenario_order(&g);
    gen_scenario_cancel(&g);
    gen_scenario_terminate(&g);
    gen_node_only(&g);
    gen_write(&g, GEN_NODE, g.session.data, g.session.size);
    msgpack_sbuffer_destroy(&g.session);
    gen_transport(&g);
    printf("fuzz_seeds: %u node, %u apply, %u client, %u transport seeds in %s\n", g.files[0],
           g.files[1], g.files[2], g.files[3], g.out);
    return 0;
}
