/* fuzz_client.c: what libweft reads from a server, and what its SDK does with it. The first
 * input byte picks the request (an index into weft_ops, modulo their count); the rest is the
 * byte stream the "server" sends back on the connection, which then ends. The answer goes
 * through the client's own path, client_exchange (frame read, parse, correlation, error
 * frames, the op's response schema), and then where the library takes it further:
 *   - Hello and ClusterStatus answers update the client's topology and shard routing;
 *   - a PollWorkflowTask answer is processed as a worker does without a cache: the events are
 *     fed to a fresh run of fuzz_workflow on the SDK's engine, up to the task's started event,
 *     and replayed by the replayer;
 *   - a GetHistory answer's events are replayed by the replayer.
 * A first byte of 0xFF instead makes the rest a JSON history file, as `weft workflow show
 * --output json` saves it, loaded with weft_history_load_json and replayed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "client/sdk/engine.h"
#include "fuzz_util.h"
#include "fuzz_workflow.h"
#include "proto/base.h"
#include "proto/log.h"
#include "weft/json.h"
#include "weft/worker.h"

/* First byte that selects a JSON history file instead of a frame. */
#define FC_MODE_JSON 0xFFu
/* How long one exchange may wait: the answer is already in the socket and the stream ends. */
#define FC_CALL_TIMEOUT_MS 2000u
/* Room for any response struct (checked against each schema's size). */
#define FC_RESP_BYTES 4096u

static weft_replayer *fc_replayer;

static void fc_replay(const weft_event *events, uint32_t n) {
    weft_err err = {0};
    (void)weft_replayer_replay(fc_replayer, events, n, &err); /* any verdict is fine */
}

/* The worker's path for a polled task: a fresh run fed the whole history up to the started
 * event, whose commands would complete the task (wftask.c, wft_feed_fresh). */
static void fc_workflow_task(const weft_poll_wft_resp *t) {
    wfe_run_params p = {.workflow_id = t->workflow_id,
                        .run_id = t->run_id,
                        .workflow_type = t->workflow_type,
                        .task_queue = t->task_queue,
                        .fn = fuzz_workflow,
                        .stack_bytes = WEFT_WORKER_WF_STACK_BYTES_MIN};
    wfe_run *run = NULL;
    weft_err err = {0};
    if (wfe_run_new(&p, &run, &err) != 0) return;
    wfe_task_result res;
    if (wfe_run_feed(run, t->events, t->events_count, t->started_event_id, &res, &err) == 0 &&
        !res.failed) {
        /* The commands must be sendable: they encode with the request's schema. */
        weft_complete_wft_req req = {.task_token = t->task_token,
                                     .commands = res.commands,
                                     .commands_count = res.commands_count};
        uint8_t *body = NULL;
        size_t len = 0;
        WEFT_ASSERT(weft_schema_encode_buf(&weft_complete_wft_req_schema, &req, &body, &len) == 0);
        free(body);
    }
    wfe_run_free(run);
}

static void fc_answer(weft_client *c, uint32_t msg_type, void *resp) {
    switch (msg_type) {
    case WEFT_MSG_HELLO:
    case WEFT_MSG_CLUSTER_STATUS: {
        const weft_hello_resp *h = resp;
        pthread_mutex_lock(&c->mu);
        (void)client_node_answered(c, 0, h->node_id);
        client_topology_update(c, h);
        pthread_mutex_unlock(&c->mu);
        break;
    }
    case WEFT_MSG_POLL_WORKFLOW_TASK: {
        const weft_poll_wft_resp *t = resp;
        if (t->task_token.len == 0) break;
        fc_workflow_task(t);
        fc_replay(t->events, t->events_count);
        break;
    }
    case WEFT_MSG_GET_HISTORY: {
        const weft_history_resp *h = resp;
        fc_replay(h->events, h->events_count);
        break;
    }
    default:
        break;
    }
}

/* One exchange on a socket pair whose far end already holds the answer and is half-closed. */
static void fc_exchange(const weft_op *op, const uint8_t *data, size_t size) {
    weft_client *c = NULL;
    weft_err err = {0};
    weft_client_opts opts = {.client_name = "fuzz", .identity = "fuzz"};
    int rc = client_new("127.0.0.1:7400", &opts, &c, &err);
    WEFT_ASSERT(rc == 0);
    int fds[2];
    rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
    WEFT_ASSERT(rc == 0);
    /* libFuzzer's -max_len keeps inputs well inside a socket buffer. */
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fds[1], data + off, size - off);
        WEFT_ASSERT(n > 0);
        off += (size_t)n;
    }
    shutdown(fds[1], SHUT_WR);
    client_conn conn = {.fd = fds[0], .next_frame_id = 1, .node_index = 0};
    static _Alignas(16) uint8_t resp[FC_RESP_BYTES];
    WEFT_ASSERT(op->resp_schema->size <= sizeof resp);
    weft_response holder = {0};
    client_outcome out;
    static const char empty_map[] = "\x80";
    rc = client_exchange(c, &conn, op->msg_type, empty_map, 1, FC_CALL_TIMEOUT_MS,
                         op->resp_schema, resp, &holder, &out, &err);
    if (rc == 0) fc_answer(c, op->msg_type, resp);
    WEFT_ASSERT(rc == 0 || err.code > 0); /* every failure names its error */
    weft_response_free(&holder);
    close(fds[0]);
    close(fds[1]);
    weft_client_close(c);
}

/* A saved JSON history, loaded as the replayer's users load it (from a path). */
static void fc_json(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-history", MFD_CLOEXEC);
    WEFT_ASSERT(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        WEFT_ASSERT(n > 0);
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    weft_history_file *h = NULL;
    weft_err err = {0};
    if (weft_history_load_json(path, &h, &err) == 0) {
        fc_replay(h->events, h->events_count);
        weft_history_file_free(h);
    }
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    weft_log_set_level(WEFT_LOG_ERROR);
    weft_err err = {0};
    int rc = weft_replayer_new(&fc_replayer, &err);
    if (rc == 0)
        rc = weft_replayer_register_workflow(fc_replayer, FUZZ_WORKFLOW_TYPE, fuzz_workflow, NULL,
                                             &err);
    if (rc != 0) {
        fprintf(stderr, "fuzz_client: %s\n", err.message);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] == FC_MODE_JSON) {
        fc_json(data + 1, size - 1);
        return 0;
    }
    fc_exchange(&weft_ops[data[0] % weft_ops_count], data + 1, size - 1);
    return 0;
}

#ifdef WEFT_FUZZ_LIBFUZZER
/* Keeps the answer's length prefix consistent and mutates inside the frame (fuzz_util.h);
 * sometimes picks another request instead. JSON histories mutate byte-wise. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    if (size < 2 || max_size < 2 || data[0] == FC_MODE_JSON) {
        return LLVMFuzzerMutate(data, size, max_size);
    }
    if (seed % 16 == 0) {
        data[0] = (uint8_t)(seed / 16 % weft_ops_count);
        return size;
    }
    return 1 + fuzz_mutate_records(data + 1, size - 1, max_size - 1, seed, true, NULL);
}
#endif
