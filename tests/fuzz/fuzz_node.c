/* fuzz_node.c: client frames and requests, through everything the node does with them. One
 * weftd node runs in this process (weft_node_start on a scratch data dir, two shards, raft on
 * 127.0.0.1), so every request reaches its real handler: validation, routing, the shard
 * command proposed through raft and applied to LMDB, reads with their barriers and long-poll
 * waits, list fan-out with page tokens, task polls and completions.
 * Each input is the byte stream one client connection sends after a successful Hello (which
 * this harness sends first). The harness counts the complete frames in it and waits until the
 * node has answered each one (a broken length prefix ends the stream with one error frame).
 * Frames are pipelined, except that a frame holding a placeholder task token (FN_WFT_TOKEN or
 * FN_ACT_TOKEN, as a msgpack bin) waits for the answers before it, and is sent with the
 * placeholder replaced by the last token a workflow or activity poll answered in this input:
 * so polls and completions in one input run a task's whole life, as a worker would.
 * Beyond "no crash", a request the node never answers is a finding: it aborts after
 * FN_DEADLINE_MS. The node restarts on a fresh data dir every FN_INPUTS_PER_NODE inputs, so
 * its state stays small however long the fuzzer runs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "node/config.h"
#include "node/node.h"
#include "node/replica.h"
#include "proto/base.h"
#include "proto/frame.h"
#include "proto/log.h"
#include "proto/msg.h"

/* How long one input may take, Hello to last answer. Long polls and read waits are capped at
 * FN_LONG_POLL_MS by the node's config, so anything near this is a request left unanswered. */
#define FN_DEADLINE_MS 20000u
/* Long-poll cap the node runs with: polls and waiting reads answer quickly. */
#define FN_LONG_POLL_MS "20"
/* Inputs served by one node before it is stopped and started afresh. */
#define FN_INPUTS_PER_NODE 20000u
/* How long the node may take to start and lead its shards. */
#define FN_START_MS 30000u
/* Frames of one input that are sent one by one (a token may be substituted), at most; the
 * rest goes as it is. Inputs are a few kilobytes. */
#define FN_FRAMES_MAX 2048u
/* Placeholder task tokens (msgpack bin bodies of 19 bytes): fuzz_seeds writes them into the
 * completions of its node seeds. */
#define FN_WFT_TOKEN "WEFT-FUZZ-WFT-TOKEN"
#define FN_ACT_TOKEN "WEFT-FUZZ-ACT-TOKEN"
#define FN_TOKEN_PLACEHOLDER_BYTES 19u
/* Longest task token kept for substitution (the node's are a few dozen bytes; bin8). */
#define FN_TOKEN_BYTES_MAX 255u

_Static_assert(sizeof FN_WFT_TOKEN - 1 == FN_TOKEN_PLACEHOLDER_BYTES &&
                   sizeof FN_ACT_TOKEN - 1 == FN_TOKEN_PLACEHOLDER_BYTES,
               "placeholders are bin8 bodies of the same length");

/* One write in flight; `owned` is a substituted frame freed with it. */
typedef struct fn_write {
    uv_write_t req; /* libuv's request (first: the callback casts back) */
    uint8_t *owned; /* malloc'd bytes to free once written, or NULL */
} fn_write;

typedef struct fn_state {
    uv_loop_t loop;          /* the node's loop, which the harness also runs */
    char dir[256];           /* data dir of the current node */
    char listen[64];         /* its client address */
    char raft_listen[64];    /* its raft address */
    struct sockaddr_in addr; /* the client address, parsed */
    unsigned inputs;         /* inputs served by the current node */
    msgpack_sbuffer hello;   /* the Hello frame sent before each input */
    /* per input */
    const uint8_t *data;                /* the input */
    size_t size;                        /* its bytes */
    size_t frame_end[FN_FRAMES_MAX];    /* end offset of each complete frame, in order */
    uint32_t frames;                    /* complete frames in frame_end */
    uint32_t next;                      /* first frame not sent yet */
    size_t sent_bytes;                  /* input bytes handed to uv_write */
    bool tail_sent;                     /* bytes after the last complete frame went too */
    uint8_t tokens[2][FN_TOKEN_BYTES_MAX]; /* last workflow [0] and activity [1] task token */
    size_t tokens_len[2];               /* their bytes, 0 none yet */
    uv_tcp_t client;
    uv_connect_t connect;
    weft_frame_reader answers; /* splits what the node sends back */
    uint32_t expected;         /* answers the input calls for */
    uint32_t answered;         /* answers read so far */
    bool broken;               /* a length prefix in the input breaks the stream */
    bool eof;                  /* the node ended the stream */
    bool closed;               /* our end's close callback ran */
} fn_state;

static fn_state fn;
static weft_node fn_node; /* large (poll buckets): static, as in main.c */

/* A free loopback port, for the node's addresses. */
static unsigned fn_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    WEFT_ASSERT(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    WEFT_ASSERT(rc == 0);
    rc = getsockname(fd, (struct sockaddr *)&a, &len);
    WEFT_ASSERT(rc == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool fn_node_ready(void) {
    if (fn_node.state != WEFT_NODE_RUNNING) return false;
    for (uint32_t i = 0; i < fn_node.replicas_count; i++) {
        const weft_replica *rep = &fn_node.replicas[i];
        if (rep->hosted && !weft_replica_ready(rep)) return false;
    }
    return true;
}

static void fn_node_start(void) {
    fuzz_tmpdir(fn.dir, sizeof fn.dir, "node");
    unsigned port = fn_free_port(), raft_port = fn_free_port();
    while (raft_port == port) raft_port = fn_free_port();
    snprintf(fn.listen, sizeof fn.listen, "127.0.0.1:%u", port);
    snprintf(fn.raft_listen, sizeof fn.raft_listen, "127.0.0.1:%u", raft_port);
    char *argv[] = {"weftd", "--data", fn.dir, "--listen", fn.listen, "--raft-listen",
                    fn.raft_listen, "--shards", "2", "--log-level", "error",
                    "--poll-timeout-ms", FN_LONG_POLL_MS, "--long-poll-ms-max", FN_LONG_POLL_MS,
                    "--shutdown-drain-ms", "100", NULL};
    memset(&fn_node, 0, sizeof fn_node);
    weft_config_default(&fn_node.cfg);
    int rc = weft_config_parse(&fn_node.cfg, (int)WEFT_ARRAY_LEN(argv) - 1, argv);
    WEFT_ASSERT(rc == 0);
    weft_log_set_level((weft_log_level)fn_node.cfg.log_level);
    rc = weft_node_start(&fn_node, &fn.loop);
    if (rc != 0) {
        fprintf(stderr, "fuzz_node: the node did not start (exit code %d)\n", rc);
        abort();
    }
    uint64_t until = weft_mono_ms() + FN_START_MS;
    while (!fn_node_ready()) {
        uv_run(&fn.loop, UV_RUN_ONCE);
        if (weft_mono_ms() > until) {
            fprintf(stderr, "fuzz_node: the node's shards were not led within %u ms\n",
                    FN_START_MS);
            abort();
        }
    }
    char host[64];
    snprintf(host, sizeof host, "%s", fn.listen);
    *strrchr(host, ':') = '\0';
    rc = uv_ip4_addr(host, atoi(strrchr(fn.listen, ':') + 1), &fn.addr);
    WEFT_ASSERT(rc == 0);
    fn.inputs = 0;
}

static void fn_node_stop(void) {
    weft_node_shutdown(&fn_node);
    uv_run(&fn.loop, UV_RUN_DEFAULT);
    WEFT_ASSERT(fn_node.state == WEFT_NODE_STOPPED);
    weft_node_free(&fn_node);
    fuzz_rmtree(fn.dir);
}

/* ---- one input ---- */

static void fn_closed_cb(uv_handle_t *h) {
    (void)h;
    fn.closed = true;
}

static void fn_close(void) {
    if (!uv_is_closing((uv_handle_t *)&fn.client))
        uv_close((uv_handle_t *)&fn.client, fn_closed_cb);
}

static void fn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    static char chunk[65536];
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void fn_write_cb(uv_write_t *req, int status) {
    fn_write *w = (fn_write *)req;
    free(w->owned);
    free(w);
    if (status < 0) fn_close(); /* the node ended the stream after a broken length prefix */
}

/* Queues bytes on the connection; `owned` (malloc'd or NULL) is freed once written. */
static void fn_write_bytes(const uint8_t *bytes, size_t len, uint8_t *owned) {
    if (len == 0 || uv_is_closing((uv_handle_t *)&fn.client)) {
        free(owned);
        return;
    }
    fn_write *w = calloc(1, sizeof *w);
    WEFT_ASSERT(w != NULL);
    w->owned = owned;
    uv_buf_t b = uv_buf_init((char *)bytes, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&fn.client, &b, 1, fn_write_cb) != 0) {
        free(owned);
        free(w);
        fn_close();
    }
}

/* Which placeholder frame i holds: 0 (workflow task token), 1 (activity), or -1 (none). */
static int fn_placeholder(uint32_t i, const uint8_t **at) {
    size_t start = i == 0 ? 0 : fn.frame_end[i - 1];
    size_t len = fn.frame_end[i] - start;
    static const char *const names[2] = {FN_WFT_TOKEN, FN_ACT_TOKEN};
    for (int kind = 0; kind < 2; kind++) {
        uint8_t needle[2 + FN_TOKEN_PLACEHOLDER_BYTES] = {0xc4, FN_TOKEN_PLACEHOLDER_BYTES};
        memcpy(needle + 2, names[kind], FN_TOKEN_PLACEHOLDER_BYTES);
        *at = memmem(fn.data + start, len, needle, sizeof needle);
        if (*at != NULL) return kind;
    }
    return -1;
}

/* Sends frame i with its placeholder (at `at`) replaced by the last token of `kind`, or as it
 * is when no poll of this input answered with one. */
static void fn_send_substituted(uint32_t i, int kind, const uint8_t *at) {
    size_t start = i == 0 ? 0 : fn.frame_end[i - 1];
    size_t len = fn.frame_end[i] - start;
    size_t tok = fn.tokens_len[kind];
    if (tok == 0) {
        fn_write_bytes(fn.data + start, len, NULL);
        return;
    }
    size_t old_bytes = 2 + FN_TOKEN_PLACEHOLDER_BYTES, new_bytes = 2 + tok;
    size_t out_len = len - old_bytes + new_bytes;
    uint8_t *out = malloc(out_len);
    WEFT_ASSERT(out != NULL);
    size_t before = (size_t)(at - (fn.data + start));
    memcpy(out, fn.data + start, before);
    out[before] = 0xc4;
    out[before + 1] = (uint8_t)tok;
    memcpy(out + before + 2, fn.tokens[kind], tok);
    memcpy(out + before + new_bytes, at + old_bytes, len - before - old_bytes);
    uint32_t payload = (uint32_t)(out_len - WEFT_FRAME_HEADER_BYTES);
    for (int b = 0; b < 4; b++) out[b] = (uint8_t)(payload >> (8 * (3 - b)));
    fn_write_bytes(out, out_len, out);
}

/* Sends what may go now: frames up to the next one holding a placeholder, which waits until
 * every frame before it (and the Hello) is answered; after the last frame, the tail. */
static void fn_send_more(void) {
    while (fn.next < fn.frames) {
        const uint8_t *at = NULL;
        int kind = fn_placeholder(fn.next, &at);
        if (kind >= 0) {
            if (fn.answered < 1 + fn.next) return;
            fn_send_substituted(fn.next, kind, at);
            fn.sent_bytes = fn.frame_end[fn.next++];
            continue;
        }
        uint32_t run_end = fn.next + 1;
        while (run_end < fn.frames && fn_placeholder(run_end, &at) < 0) run_end++;
        size_t until = fn.frame_end[run_end - 1];
        fn_write_bytes(fn.data + fn.sent_bytes, until - fn.sent_bytes, NULL);
        fn.sent_bytes = until;
        fn.next = run_end;
    }
    if (!fn.tail_sent) {
        fn.tail_sent = true;
        fn_write_bytes(fn.data + fn.sent_bytes, fn.size - fn.sent_bytes, NULL);
    }
}

/* Keeps the task token of a poll's answer, for the placeholders that follow. */
static void fn_take_token(uint32_t type, const msgpack_object *body) {
    int kind = type == (WEFT_MSG_POLL_WORKFLOW_TASK | WEFT_MSG_RESPONSE_BIT)   ? 0
               : type == (WEFT_MSG_POLL_ACTIVITY_TASK | WEFT_MSG_RESPONSE_BIT) ? 1
                                                                               : -1;
    if (kind < 0) return;
    for (uint32_t i = 0; i < body->via.map.size; i++) {
        const msgpack_object *k = &body->via.map.ptr[i].key, *v = &body->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 10 ||
            memcmp(k->via.str.ptr, "task_token", 10) != 0 || v->type != MSGPACK_OBJECT_BIN ||
            v->via.bin.size == 0 || v->via.bin.size > FN_TOKEN_BYTES_MAX)
            continue;
        memcpy(fn.tokens[kind], v->via.bin.ptr, v->via.bin.size);
        fn.tokens_len[kind] = v->via.bin.size;
    }
}

static void fn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)s;
    if (nread == 0) return;
    if (nread < 0) {
        fn.eof = true;
        fn_close();
        return;
    }
    weft_err err = {0};
    int rc = weft_frame_reader_feed(&fn.answers, (const uint8_t *)buf->base, (size_t)nread, &err);
    WEFT_ASSERT(rc == 0); /* the node never sends a broken stream */
    const uint8_t *frame = NULL;
    size_t len = 0;
    while ((rc = weft_frame_reader_next(&fn.answers, &frame, &len, &err)) == 1) {
        /* Every answer is a well-formed frame: a response to a known type, or an error. */
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        uint32_t type = 0;
        uint64_t id = 0;
        const msgpack_object *body = NULL;
        weft_limits lim;
        weft_limits_default(&lim);
        lim.frame_bytes_max = fn_node.cfg.limits.frame_bytes_max;
        rc = weft_frame_parse(frame, len, &up, &type, &id, &body, &lim, &err);
        WEFT_ASSERT(rc == 0);
        WEFT_ASSERT(type == WEFT_MSG_ERROR ||
                    ((type & WEFT_MSG_RESPONSE_BIT) != 0 &&
                     weft_op_find(type & ~WEFT_MSG_RESPONSE_BIT) != NULL));
        fn_take_token(type, body);
        msgpack_unpacked_destroy(&up);
        fn.answered++;
    }
    WEFT_ASSERT(rc == 0);
    if (fn.answered >= fn.expected) {
        fn_close();
        return;
    }
    fn_send_more();
}

static void fn_connect_cb(uv_connect_t *req, int status) {
    (void)req;
    WEFT_ASSERT(status == 0);
    int rc = uv_read_start((uv_stream_t *)&fn.client, fn_alloc_cb, fn_read_cb);
    WEFT_ASSERT(rc == 0);
    fn_write_bytes((const uint8_t *)fn.hello.data, fn.hello.size, NULL);
    fn_send_more();
}

/* Answers the stream calls for: one per complete frame, up to and including the first one
 * whose length prefix breaks the stream (answered with one error frame, then the end). */
static uint32_t fn_expected(const uint8_t *data, size_t size) {
    weft_frame_reader r;
    weft_frame_reader_init(&r, fn_node.cfg.limits.frame_bytes_max);
    weft_err err = {0};
    uint32_t frames = 1; /* the Hello */
    int rc = weft_frame_reader_feed(&r, data, size, &err);
    const uint8_t *frame = NULL;
    size_t len = 0;
    size_t end = 0;
    fn.frames = 0;
    if (rc == 0) {
        while ((rc = weft_frame_reader_next(&r, &frame, &len, &err)) == 1) {
            frames++;
            end += WEFT_FRAME_HEADER_BYTES + len;
            if (fn.frames < FN_FRAMES_MAX) fn.frame_end[fn.frames++] = end;
        }
    }
    fn.broken = rc < 0;
    if (fn.broken) frames++;
    weft_frame_reader_free(&r);
    return frames;
}

/* At exit (the end of a libFuzzer run, or of a replay), the node stops cleanly and its data
 * dir goes: the stop is part of what is tested, and scratch dirs must not pile up. */
static void fn_atexit(void) {
    fn_node_stop();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    int rc = uv_loop_init(&fn.loop);
    WEFT_ASSERT(rc == 0);
    msgpack_sbuffer_init(&fn.hello);
    weft_hello_req hello = {.protocol_version = WEFT_PROTOCOL_VERSION,
                            .client_name = WEFT_STR_LIT("fuzz")};
    rc = weft_frame_encode(&fn.hello, WEFT_MSG_HELLO, 0, &weft_hello_req_schema, &hello);
    WEFT_ASSERT(rc == 0);
    fn_node_start();
    atexit(fn_atexit);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fn.inputs++ == FN_INPUTS_PER_NODE) {
        fn_node_stop();
        fn_node_start();
    }
    fn.data = data;
    fn.size = size;
    fn.expected = fn_expected(data, size);
    fn.answered = 0;
    fn.next = 0;
    fn.sent_bytes = 0;
    fn.tail_sent = false;
    fn.tokens_len[0] = fn.tokens_len[1] = 0;
    fn.eof = fn.closed = false;
    weft_frame_reader_init(&fn.answers, fn_node.cfg.limits.frame_bytes_max);
    int rc = uv_tcp_init(&fn.loop, &fn.client);
    WEFT_ASSERT(rc == 0);
    rc = uv_tcp_connect(&fn.connect, &fn.client, (const struct sockaddr *)&fn.addr,
                        fn_connect_cb);
    WEFT_ASSERT(rc == 0);
    fuzz_loop_until(&fn.loop, &fn.closed, FN_DEADLINE_MS, "the node's answers to a connection");
    /* Every frame is answered exactly once. Only a broken length prefix lets the node end the
     * stream early: it answers that with one error frame and drops what is still in flight. */
    bool ok = fn.broken ? fn.answered <= fn.expected : fn.answered == fn.expected && !fn.eof;
    if (!ok) {
        fprintf(stderr, "fuzz_node: %u answers for %u frames (%s stream, %s)\n", fn.answered,
                fn.expected, fn.broken ? "broken" : "sound",
                fn.eof ? "the node ended it" : "we ended it");
        abort();
    }
    weft_frame_reader_free(&fn.answers);
    return 0;
}

#ifdef WEFT_FUZZ_LIBFUZZER
/* Mostly mutates inside one frame and keeps the stream's framing, so most inputs reach the
 * handlers rather than the frame reader (fuzz_util.h). */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    return fuzz_mutate_records(data, size, max_size, seed, true, NULL);
}
#endif
