/* test_client_retry.c: libweft's connection handling against scripted fake servers on real
 * loopback sockets: Hello first on every connection, generated request ids reused on every
 * retry (G4), retries on UNAVAILABLE / lost connections / timeouts, no retry of a poll once
 * sent, NOT_LEADER followed to the named leader, server errors passed through with their field,
 * and one client shared by many threads. Then the cluster side, with two fake nodes that each
 * lead one shard: task tokens routed to their shard's leader (and a garbage token falling
 * back), the node list (stable ids, a seed and its advertised address merged into one entry),
 * polls pinned to one node, and a worker that polls every node under the activity slot rule
 * (a slot before the poll, never two activities at once with activity_concurrency 1, no task
 * left waiting, a node that goes down blocking nobody). No weftd needed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helper_sdk.h"
#include "helper_weftd.h"
#include "proto/frame.h"
#include "weft/worker.h"

#define FAKE_CONNS_MAX 32u
#define FAKE_ACTIONS_MAX 16u
#define FAKE_RECORDS_MAX 4096u
#define FAKE_SHARDS_MAX 4u
/* Activity tasks one fake node hands out in a test. */
#define FAKE_TASKS_MAX 16u
/* Longest time a fake holds a poll that has no task (the poll's own timeout if shorter). */
#define FAKE_POLL_HOLD_MS 1000u

typedef enum fake_action {
    FAKE_OK,          /* success reply */
    FAKE_UNAVAILABLE, /* error reply UNAVAILABLE */
    FAKE_INVALID,     /* error reply INVALID_ARGUMENT on field workflow_id */
    FAKE_NOT_LEADER,  /* error reply NOT_LEADER naming fake->leader_hint / leader_address */
    FAKE_DROP,        /* close the connection without replying */
    FAKE_SILENT,      /* never reply */
} fake_action;

/* One request the fake server saw. */
typedef struct fake_record {
    uint32_t type;        /* msg type */
    unsigned conn_serial; /* which accepted connection */
    char request_id[64];  /* body request_id (start/signal), "" otherwise */
    char identity[128];   /* body identity (start), "" otherwise */
    char task_queue[160]; /* body task_queue (polls), "" otherwise */
} fake_record;

typedef struct fake_conn {
    int fd;                   /* -1 when free */
    unsigned serial;          /* accept order */
    bool hello_done;          /* Hello was the first request */
    weft_frame_reader reader; /* splits the stream */
    bool parked;              /* a poll without a task waits for its deadline */
    uint32_t parked_type;     /* its msg type */
    uint64_t parked_id;       /* its request id */
    uint64_t parked_until_ms; /* weft_mono_ms when it is answered empty */
} fake_conn;

typedef struct fake {
    uint64_t node_id;                        /* reported in Hello */
    char address[32];                        /* 127.0.0.1:port */
    int listen_fd;                           /* listening socket */
    pthread_t thread;                        /* the event loop */
    atomic_bool stop;                        /* ends the loop */
    pthread_mutex_t mu;                      /* guards the script and the records */
    fake_action script[FAKE_ACTIONS_MAX];    /* actions for non-Hello requests, in order */
    unsigned script_len, script_next;        /* used / consumed; past the end: FAKE_OK */
    fake_record records[FAKE_RECORDS_MAX];   /* requests seen, Hello excluded */
    unsigned records_count;                  /* entries used */
    unsigned hello_violations;               /* requests that came before Hello */
    unsigned accepted;                       /* connections accepted */
    uint64_t leader_hint;                    /* NOT_LEADER: node id to name */
    char leader_address[32];                 /* NOT_LEADER: address to name */
    char peer_address[32];                   /* a second node for the topology, "" if none */
    uint64_t peer_id;                        /* its node id */
    uint64_t topology_leader;                /* shard 0's leader in Hello */
    uint32_t shard_count;                    /* shards in Hello (0 = 1) */
    uint64_t shard_leaders[FAKE_SHARDS_MAX]; /* leaders of shards 1.. (shard 0: topology_leader) */
    char advertised[32];                     /* own address in Hello, "" = address */
    /* activity tasks this node hands out (tokens name task_shard) */
    uint32_t task_shard;                   /* the shard this node's tokens name */
    unsigned tasks_total;                  /* tasks made available so far */
    unsigned tasks_sent;                   /* tasks handed out so far */
    uint64_t task_sent_ms[FAKE_TASKS_MAX]; /* weft_mono_ms when task n was handed out */
    fake_conn conns[FAKE_CONNS_MAX];       /* open connections */
} fake;

static void fake_send(int fd, msgpack_sbuffer *sb) {
    (void)send(fd, sb->data, sb->size, MSG_NOSIGNAL);
    msgpack_sbuffer_clear(sb);
}

/* The Hello reply, also the ClusterStatus reply (type says which). */
static void fake_reply_hello(fake *f, int fd, uint32_t type, uint64_t id) {
    uint32_t count = f->shard_count ? f->shard_count : 1;
    WEFT_ASSERT(count <= FAKE_SHARDS_MAX);
    weft_shard_info shards[FAKE_SHARDS_MAX];
    for (uint32_t i = 0; i < count; i++) {
        shards[i] =
            (weft_shard_info){.shard_id = i,
                              .leader_node = i == 0 ? f->topology_leader : f->shard_leaders[i],
                              .ready = true};
    }
    const char *self = f->advertised[0] ? f->advertised : f->address;
    weft_node_info nodes[2] = {
        {.node_id = f->node_id, .address = weft_str_c(self), .up = true},
        {.node_id = f->peer_id, .address = weft_str_c(f->peer_address), .up = true}};
    weft_hello_resp r = {.protocol_version = WEFT_PROTOCOL_VERSION,
                         .node_id = f->node_id,
                         .cluster_id = WEFT_STR_LIT("fake-cluster"),
                         .shard_count = count,
                         .shards = shards,
                         .shards_count = count,
                         .nodes = nodes,
                         .nodes_count = f->peer_address[0] ? 2 : 1};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    WEFT_ASSERT(
        weft_frame_encode(&sb, type | WEFT_MSG_RESPONSE_BIT, id, &weft_hello_resp_schema, &r) == 0);
    fake_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* A task token as the server makes it (shards/token.c), naming `shard`. */
static void fake_token(uint32_t shard, uint64_t n, uint8_t **buf, size_t *len) {
    weft_task_token t = {.shard_id = shard,
                         .run_key = 1000 + n,
                         .scheduled_event_id = 5 + n,
                         .attempt = 1,
                         .kind = 2};
    WEFT_ASSERT(weft_schema_encode_buf(&weft_task_token_schema, &t, buf, len) == 0);
}

/* Hands out activity task number f->tasks_sent (f->mu held): type "fake", id "a-<node>-<n>". */
static void fake_reply_task(fake *f, int fd, uint64_t id) {
    unsigned n = f->tasks_sent++;
    WEFT_ASSERT(n < FAKE_TASKS_MAX);
    uint8_t *tok = NULL;
    size_t tok_len = 0;
    fake_token(f->task_shard, n, &tok, &tok_len);
    char activity_id[32];
    snprintf(activity_id, sizeof activity_id, "a-%llu-%u", (unsigned long long)f->node_id, n);
    weft_poll_activity_resp r = {.task_token = {.ptr = tok, .len = (uint32_t)tok_len},
                                 .workflow_id = WEFT_STR_LIT("w"),
                                 .run_id = WEFT_STR_LIT("r"),
                                 .workflow_type = WEFT_STR_LIT("t"),
                                 .activity_id = weft_str_c(activity_id),
                                 .activity_type = WEFT_STR_LIT("fake"),
                                 .attempt = 1,
                                 .scheduled_event_id = 5 + n,
                                 .start_to_close_timeout_ms = 60000};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    WEFT_ASSERT(weft_frame_encode(&sb, WEFT_MSG_POLL_ACTIVITY_TASK | WEFT_MSG_RESPONSE_BIT, id,
                                  &weft_poll_activity_resp_schema, &r) == 0);
    f->task_sent_ms[n] = weft_mono_ms();
    fake_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
    free(tok);
}

/* Success bodies: a run id for starts, an empty task for polls, empty otherwise. */
static void fake_reply_ok(fake *f, int fd, uint32_t type, uint64_t id) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char run[64];
    snprintf(run, sizeof run, "run-of-node-%llu", (unsigned long long)f->node_id);
    weft_start_resp start = {.run_id = weft_str_c(run), .started = true};
    weft_poll_wft_resp poll = {0};
    weft_describe_resp describe = {.info = {.workflow_id = WEFT_STR_LIT("w"),
                                            .run_id = weft_str_c(run),
                                            .status = WEFT_STATUS_RUNNING}};
    weft_empty_resp empty = {0};
    const weft_schema *s = &weft_empty_resp_schema;
    const void *body = &empty;
    if (type == WEFT_MSG_START_WORKFLOW) s = &weft_start_resp_schema, body = &start;
    if (type == WEFT_MSG_POLL_WORKFLOW_TASK) s = &weft_poll_wft_resp_schema, body = &poll;
    if (type == WEFT_MSG_POLL_ACTIVITY_TASK) s = &weft_poll_wft_resp_schema, body = &poll;
    if (type == WEFT_MSG_DESCRIBE_WORKFLOW) s = &weft_describe_resp_schema, body = &describe;
    WEFT_ASSERT(weft_frame_encode(&sb, type | WEFT_MSG_RESPONSE_BIT, id, s, body) == 0);
    fake_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
}

static void fake_reply_error(fake *f, int fd, uint64_t id, int code, const char *field) {
    weft_err e;
    weft_err_set(&e, code, field, "scripted %s from node %llu", weft_error_name(code),
                 (unsigned long long)f->node_id);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bool nl = code == WEFT_E_NOT_LEADER;
    WEFT_ASSERT(weft_frame_encode_error(&sb, id, &e, nl ? f->leader_hint : 0,
                                        nl ? f->leader_address : NULL) == 0);
    fake_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
}

/* Records a request and returns the scripted action for it; *poll_ms receives a poll's wait. */
static fake_action fake_record_request(fake *f, fake_conn *fc, uint32_t type,
                                       const msgpack_object *body, msgpack_unpacked *up,
                                       uint64_t *poll_ms) {
    weft_limits l;
    weft_limits_default(&l);
    pthread_mutex_lock(&f->mu);
    fake_record scratch;
    fake_record *r =
        f->records_count < FAKE_RECORDS_MAX ? &f->records[f->records_count++] : &scratch;
    memset(r, 0, sizeof *r);
    r->type = type;
    r->conn_serial = fc->serial;
    weft_start_req s;
    weft_poll_req q;
    weft_err err;
    if (type == WEFT_MSG_START_WORKFLOW &&
        weft_schema_decode(&weft_start_req_schema, body, &s, up->zone, &l, &err) == 0) {
        weft_str_copy(r->request_id, sizeof r->request_id, s.request_id);
        weft_str_copy(r->identity, sizeof r->identity, s.identity);
    }
    if ((type == WEFT_MSG_POLL_WORKFLOW_TASK || type == WEFT_MSG_POLL_ACTIVITY_TASK) &&
        weft_schema_decode(&weft_poll_req_schema, body, &q, up->zone, &l, &err) == 0) {
        weft_str_copy(r->task_queue, sizeof r->task_queue, q.task_queue);
        *poll_ms = q.poll_timeout_ms;
    }
    fake_action a = f->script_next < f->script_len ? f->script[f->script_next++] : FAKE_OK;
    pthread_mutex_unlock(&f->mu);
    return a;
}

/* A successful poll: a task if this node has one for it, else the poll is held (long-poll)
 * until its wait or FAKE_POLL_HOLD_MS ends, and answered empty then. */
static void fake_reply_poll(fake *f, fake_conn *fc, uint32_t type, uint64_t id, uint64_t wait_ms) {
    pthread_mutex_lock(&f->mu);
    bool task = type == WEFT_MSG_POLL_ACTIVITY_TASK && f->tasks_sent < f->tasks_total;
    if (task) fake_reply_task(f, fc->fd, id);
    pthread_mutex_unlock(&f->mu);
    if (task) return;
    uint64_t hold =
        wait_ms > 0 ? WEFT_MIN(wait_ms, (uint64_t)FAKE_POLL_HOLD_MS) : FAKE_POLL_HOLD_MS;
    fc->parked = true;
    fc->parked_type = type;
    fc->parked_id = id;
    fc->parked_until_ms = weft_mono_ms() + hold;
}

/* Handles one complete frame; returns false when the connection must be closed. */
static bool fake_handle(fake *f, fake_conn *fc, const uint8_t *frame, size_t len) {
    weft_limits l;
    weft_limits_default(&l);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    uint32_t type = 0;
    uint64_t id = 0;
    const msgpack_object *body = NULL;
    weft_err err;
    bool keep = weft_frame_parse(frame, len, &up, &type, &id, &body, &l, &err) == 0;
    if (keep && type == WEFT_MSG_HELLO) {
        fc->hello_done = true;
        fake_reply_hello(f, fc->fd, type, id);
    } else if (keep) {
        if (!fc->hello_done) {
            pthread_mutex_lock(&f->mu);
            f->hello_violations++;
            pthread_mutex_unlock(&f->mu);
        }
        uint64_t poll_ms = 0;
        switch (fake_record_request(f, fc, type, body, &up, &poll_ms)) {
        case FAKE_OK:
            if (type == WEFT_MSG_CLUSTER_STATUS) {
                fake_reply_hello(f, fc->fd, type, id);
            } else if (type == WEFT_MSG_POLL_WORKFLOW_TASK || type == WEFT_MSG_POLL_ACTIVITY_TASK) {
                fake_reply_poll(f, fc, type, id, poll_ms);
            } else {
                fake_reply_ok(f, fc->fd, type, id);
            }
            break;
        case FAKE_UNAVAILABLE:
            fake_reply_error(f, fc->fd, id, WEFT_E_UNAVAILABLE, "");
            break;
        case FAKE_INVALID:
            fake_reply_error(f, fc->fd, id, WEFT_E_INVALID_ARGUMENT, "workflow_id");
            break;
        case FAKE_NOT_LEADER:
            fake_reply_error(f, fc->fd, id, WEFT_E_NOT_LEADER, "");
            break;
        case FAKE_DROP:
            keep = false;
            break;
        case FAKE_SILENT:
            break;
        }
    }
    msgpack_unpacked_destroy(&up);
    return keep;
}

static void fake_close_conn(fake_conn *fc) {
    close(fc->fd);
    fc->fd = -1;
    fc->parked = false;
    weft_frame_reader_free(&fc->reader);
}

/* Answers held polls whose time is up, empty. */
static void fake_unpark(fake *f) {
    uint64_t now = weft_mono_ms();
    for (unsigned i = 0; i < FAKE_CONNS_MAX; i++) {
        fake_conn *fc = &f->conns[i];
        if (fc->fd < 0 || !fc->parked || now < fc->parked_until_ms) continue;
        fc->parked = false;
        fake_reply_ok(f, fc->fd, fc->parked_type, fc->parked_id);
    }
}

static void fake_accept(fake *f) {
    int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return;
    for (unsigned i = 0; i < FAKE_CONNS_MAX; i++) {
        if (f->conns[i].fd < 0) {
            f->conns[i].fd = fd;
            f->conns[i].hello_done = false;
            f->conns[i].parked = false;
            pthread_mutex_lock(&f->mu);
            f->conns[i].serial = f->accepted++;
            pthread_mutex_unlock(&f->mu);
            weft_frame_reader_init(&f->conns[i].reader, WEFT_FRAME_BYTES_MAX_DEFAULT);
            return;
        }
    }
    close(fd);
}

static void fake_read(fake *f, fake_conn *fc) {
    uint8_t buf[65536];
    ssize_t n = recv(fc->fd, buf, sizeof buf, 0);
    if (n <= 0) {
        fake_close_conn(fc);
        return;
    }
    weft_err err;
    if (weft_frame_reader_feed(&fc->reader, buf, (size_t)n, &err) != 0) {
        fake_close_conn(fc);
        return;
    }
    const uint8_t *frame;
    size_t len;
    int rc;
    while ((rc = weft_frame_reader_next(&fc->reader, &frame, &len, &err)) == 1) {
        if (!fake_handle(f, fc, frame, len)) {
            fake_close_conn(fc);
            return;
        }
    }
    if (rc < 0) fake_close_conn(fc);
}

static void *fake_main(void *arg) {
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p[FAKE_CONNS_MAX + 1];
        unsigned idx[FAKE_CONNS_MAX + 1], n = 0;
        p[n] = (struct pollfd){.fd = f->listen_fd, .events = POLLIN};
        idx[n++] = UINT32_MAX;
        for (unsigned i = 0; i < FAKE_CONNS_MAX; i++) {
            if (f->conns[i].fd < 0) continue;
            p[n] = (struct pollfd){.fd = f->conns[i].fd, .events = POLLIN};
            idx[n++] = i;
        }
        int ready = poll(p, n, 20);
        fake_unpark(f);
        if (ready <= 0) continue;
        for (unsigned k = 0; k < n; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (idx[k] == UINT32_MAX) {
                fake_accept(f);
            } else {
                fake_read(f, &f->conns[idx[k]]);
            }
        }
    }
    return NULL;
}

static void fake_start(fake *f, uint64_t node_id) {
    memset(f, 0, sizeof *f);
    f->node_id = node_id;
    f->topology_leader = node_id;
    pthread_mutex_init(&f->mu, NULL);
    for (unsigned i = 0; i < FAKE_CONNS_MAX; i++)
        f->conns[i].fd = -1;
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->listen_fd, 64), 0);
    assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(f->address, sizeof f->address, "127.0.0.1:%u", ntohs(a.sin_port));
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake *f) {
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    for (unsigned i = 0; i < FAKE_CONNS_MAX; i++) {
        if (f->conns[i].fd >= 0) fake_close_conn(&f->conns[i]);
    }
    close(f->listen_fd);
    pthread_mutex_destroy(&f->mu);
}

static void fake_script(fake *f, const fake_action *actions, unsigned n) {
    pthread_mutex_lock(&f->mu);
    memcpy(f->script, actions, n * sizeof *actions);
    f->script_len = n;
    f->script_next = 0;
    pthread_mutex_unlock(&f->mu);
}

static unsigned fake_count(fake *f, uint32_t type) {
    pthread_mutex_lock(&f->mu);
    unsigned n = 0;
    for (unsigned i = 0; i < f->records_count; i++)
        n += f->records[i].type == type;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static weft_client *open_client(const char *addresses, uint32_t call_timeout_ms, uint32_t retries) {
    weft_client_opts o = {.call_timeout_ms = call_timeout_ms,
                          .retries_max = retries,
                          .backoff_initial_ms = 5,
                          .backoff_max_ms = 20,
                          .connect_timeout_ms = 1000,
                          .client_name = "retry-test",
                          .identity = "tester@host"};
    weft_client *c = NULL;
    weft_err err;
    int rc = weft_client_open(addresses, &o, &c, &err);
    if (rc != 0) fprintf(stderr, "open: %s %s\n", weft_error_name(rc), err.message);
    assert_int_equal(rc, 0);
    return c;
}

static int start_wf(weft_client *c, const char *request_id, char *run_out, weft_err *err) {
    weft_start_req s = {.workflow_id = WEFT_STR_LIT("w"),
                        .workflow_type = WEFT_STR_LIT("t"),
                        .task_queue = WEFT_STR_LIT("q"),
                        .request_id = weft_str_c(request_id)};
    weft_response h = {0};
    weft_start_resp r;
    int rc = weft_client_start(c, &s, &r, &h, err);
    if (rc == 0 && run_out != NULL) weft_str_copy(run_out, 64, r.run_id);
    weft_response_free(&h);
    return rc;
}

/* Every START the server saw carried the same, generated, 32-hex-digit request id. */
static void assert_same_generated_id(fake *f, unsigned expected_starts) {
    pthread_mutex_lock(&f->mu);
    unsigned starts = 0;
    const char *first = NULL;
    for (unsigned i = 0; i < f->records_count; i++) {
        if (f->records[i].type != WEFT_MSG_START_WORKFLOW) continue;
        starts++;
        if (first == NULL) first = f->records[i].request_id;
        assert_string_equal(f->records[i].request_id, first);
        assert_string_equal(f->records[i].identity, "tester@host");
    }
    pthread_mutex_unlock(&f->mu);
    assert_int_equal(starts, expected_starts);
    assert_non_null(first);
    assert_int_equal(strlen(first), WEFT_CLIENT_REQUEST_ID_BYTES - 1);
    assert_int_equal(strspn(first, "0123456789abcdef"), WEFT_CLIENT_REQUEST_ID_BYTES - 1);
}

static void test_retry_reuses_generated_request_id(void **state) {
    (void)state;
    static fake f;
    fake_start(&f, 1);
    const fake_action script[] = {FAKE_UNAVAILABLE, FAKE_DROP, FAKE_OK};
    fake_script(&f, script, 3);
    weft_client *c = open_client(f.address, 2000, 5);
    char cluster[64];
    assert_int_equal(weft_client_cluster_id(c, cluster, sizeof cluster, NULL), 0);
    assert_string_equal(cluster, "fake-cluster");
    char run[64];
    weft_err err;
    assert_int_equal(start_wf(c, NULL, run, &err), 0);
    assert_string_equal(run, "run-of-node-1");
    assert_same_generated_id(&f, 3);
    assert_int_equal(f.hello_violations, 0);
    assert_int_equal(f.accepted, 2); /* the drop forced exactly one reconnect */
    weft_client_close(c);
    fake_stop(&f);
}

static void test_timeout_is_retried_with_same_id(void **state) {
    (void)state;
    static fake f;
    fake_start(&f, 1);
    const fake_action script[] = {FAKE_SILENT, FAKE_OK};
    fake_script(&f, script, 2);
    weft_client *c = open_client(f.address, 300, 3);
    weft_err err;
    uint64_t t0 = weft_mono_ms();
    assert_int_equal(start_wf(c, NULL, NULL, &err), 0);
    assert_true(weft_mono_ms() - t0 >= 300);
    assert_same_generated_id(&f, 2);
    weft_client_close(c);
    fake_stop(&f);
}

static void test_caller_request_id_is_kept(void **state) {
    (void)state;
    static fake f;
    fake_start(&f, 1);
    const fake_action script[] = {FAKE_DROP, FAKE_OK};
    fake_script(&f, script, 2);
    weft_client *c = open_client(f.address, 2000, 3);
    weft_err err;
    assert_int_equal(start_wf(c, "my-request-1", NULL, &err), 0);
    assert_int_equal(fake_count(&f, WEFT_MSG_START_WORKFLOW), 2);
    assert_string_equal(f.records[0].request_id, "my-request-1");
    assert_string_equal(f.records[1].request_id, "my-request-1");
    weft_client_close(c);
    fake_stop(&f);
}

static void test_poll_not_retried_once_sent(void **state) {
    (void)state;
    static fake f;
    fake_start(&f, 1);
    const fake_action script[] = {FAKE_DROP};
    fake_script(&f, script, 1);
    weft_client *c = open_client(f.address, 2000, 5);
    weft_poll_req q = {.task_queue = WEFT_STR_LIT("q"), .poll_timeout_ms = 100};
    weft_poll_wft_resp r;
    weft_response h = {0};
    weft_err err;
    assert_int_equal(weft_client_poll_workflow_task(c, &q, &r, &h, &err), -WEFT_E_UNAVAILABLE);
    assert_int_equal(fake_count(&f, WEFT_MSG_POLL_WORKFLOW_TASK), 1);
    /* The next poll reconnects and gets an empty task. */
    assert_int_equal(weft_client_poll_workflow_task(c, &q, &r, &h, &err), 0);
    assert_int_equal(r.task_token.len, 0);
    weft_response_free(&h);
    weft_client_close(c);
    fake_stop(&f);
}

static void test_server_error_passes_through(void **state) {
    (void)state;
    static fake f;
    fake_start(&f, 1);
    const fake_action script[] = {FAKE_INVALID};
    fake_script(&f, script, 1);
    weft_client *c = open_client(f.address, 2000, 5);
    weft_err err;
    assert_int_equal(start_wf(c, NULL, NULL, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(err.code, WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "workflow_id");
    assert_non_null(strstr(err.message, "scripted INVALID_ARGUMENT"));
    assert_int_equal(fake_count(&f, WEFT_MSG_START_WORKFLOW), 1);
    weft_client_close(c);
    fake_stop(&f);
}

static void test_retries_run_out(void **state) {
    (void)state;
    static fake f;
    fake_start(&f, 1);
    const fake_action script[] = {FAKE_UNAVAILABLE, FAKE_UNAVAILABLE, FAKE_UNAVAILABLE,
                                  FAKE_UNAVAILABLE, FAKE_UNAVAILABLE};
    fake_script(&f, script, 5);
    weft_client *c = open_client(f.address, 2000, 3);
    weft_err err;
    assert_int_equal(start_wf(c, NULL, NULL, &err), -WEFT_E_UNAVAILABLE);
    assert_int_equal(fake_count(&f, WEFT_MSG_START_WORKFLOW), 4); /* first try + 3 retries */
    assert_non_null(strstr(err.message, "gave up after 3 retries"));
    weft_client_close(c);
    fake_stop(&f);
}

static void test_not_leader_is_followed(void **state) {
    (void)state;
    static fake a, b;
    fake_start(&a, 1);
    fake_start(&b, 2);
    /* a thinks it leads and knows b; b is the real leader. */
    snprintf(a.peer_address, sizeof a.peer_address, "%s", b.address);
    a.peer_id = 2;
    snprintf(b.peer_address, sizeof b.peer_address, "%s", a.address);
    b.peer_id = 1;
    b.topology_leader = 2;
    a.leader_hint = 2;
    snprintf(a.leader_address, sizeof a.leader_address, "%s", b.address);
    const fake_action script[] = {FAKE_NOT_LEADER};
    fake_script(&a, script, 1);
    weft_client *c = open_client(a.address, 2000, 3);
    char run[64];
    weft_err err;
    assert_int_equal(start_wf(c, NULL, run, &err), 0);
    assert_string_equal(run, "run-of-node-2");
    assert_int_equal(fake_count(&a, WEFT_MSG_START_WORKFLOW), 1);
    assert_int_equal(fake_count(&b, WEFT_MSG_START_WORKFLOW), 1);
    assert_string_equal(a.records[0].request_id, b.records[0].request_id);
    /* The hint updated the routing: the next start goes straight to b. */
    assert_int_equal(start_wf(c, NULL, NULL, &err), 0);
    assert_int_equal(fake_count(&a, WEFT_MSG_START_WORKFLOW), 1);
    assert_int_equal(fake_count(&b, WEFT_MSG_START_WORKFLOW), 2);
    assert_int_equal(a.hello_violations + b.hello_violations, 0);
    weft_client_close(c);
    fake_stop(&a);
    fake_stop(&b);
}

static void test_nobody_listening(void **state) {
    (void)state;
    uint16_t port;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    weft_client_opts o = {.retries_max = 2, .backoff_initial_ms = 5};
    weft_client *c = NULL;
    weft_err err;
    assert_int_equal(weft_client_open(addr, &o, &c, &err), -WEFT_E_UNAVAILABLE);
    assert_null(c);
    assert_non_null(strstr(err.message, addr));
    assert_int_equal(weft_client_open("no-port", &o, &c, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "addresses");
    assert_int_equal(weft_client_open("", &o, &c, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_client_call(NULL, 999, NULL, NULL, NULL, &err), -WEFT_E_INVALID_ARGUMENT);
}

/* Threads sharing one client: every call succeeds and no request crosses connections. */
#define SHARED_THREADS 4u
#define SHARED_CALLS 100u
static atomic_uint shared_failures;

static void *shared_main(void *arg) {
    weft_client *c = arg;
    for (unsigned i = 0; i < SHARED_CALLS; i++) {
        weft_describe_req q = {.workflow_id = WEFT_STR_LIT("w")};
        weft_describe_resp r;
        weft_response h = {0};
        weft_err err;
        int rc = weft_client_describe(c, &q, &r, &h, &err);
        if (rc != 0 || !weft_str_eq_c(r.info.run_id, "run-of-node-1")) {
            atomic_fetch_add(&shared_failures, 1);
        }
        weft_response_free(&h);
    }
    return NULL;
}

static void test_shared_by_threads(void **state) {
    (void)state;
    static fake f;
    fake_start(&f, 1);
    weft_client *c = open_client(f.address, 2000, 3);
    pthread_t th[SHARED_THREADS];
    for (unsigned i = 0; i < SHARED_THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, shared_main, c), 0);
    }
    for (unsigned i = 0; i < SHARED_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&shared_failures), 0);
    assert_int_equal(fake_count(&f, WEFT_MSG_DESCRIBE_WORKFLOW), SHARED_THREADS * SHARED_CALLS);
    assert_true(f.accepted <= SHARED_THREADS + 1);
    assert_int_equal(f.hello_violations, 0);
    weft_client_close(c);
    fake_stop(&f);
}

/* ---- Two fake nodes of one cluster ---- */

/* Node 1 (a) leads shard 0 and node 2 (b) shard 1; each names the other in its topology; the
 * activity tasks each hands out carry tokens of its own shard. */
static void fake_pair_start(fake *a, fake *b) {
    fake_start(a, 1);
    fake_start(b, 2);
    fake *both[2] = {a, b};
    for (unsigned i = 0; i < 2; i++) {
        fake *x = both[i], *y = both[1 - i];
        snprintf(x->peer_address, sizeof x->peer_address, "%s", y->address);
        x->peer_id = y->node_id;
        x->shard_count = 2;
        x->topology_leader = 1;
        x->shard_leaders[1] = 2;
        x->task_shard = i;
    }
}

/* A node that takes requests and never answers (hung, or cut off and holding them) must not hold
 * a call past its deadline, whatever the call timeout and the retry count allow (issue 9: a
 * CLI start took its 8 retries, about 5 s, and a call could take 11 attempts of 10 s). */
#define DEADLINE_TEST_MS 1500u
/* Room for a loaded machine; the call timeout alone (10 s) is far above it. */
#define DEADLINE_TEST_SLACK_MS 2500u

static void test_call_deadline_bounds_a_silent_node(void **state) {
    (void)state;
    static fake f;
    fake_start(&f, 1);
    const fake_action script[] = {FAKE_SILENT, FAKE_SILENT, FAKE_SILENT, FAKE_SILENT,
                                  FAKE_SILENT, FAKE_SILENT, FAKE_SILENT, FAKE_SILENT};
    fake_script(&f, script, 8);
    weft_client_opts o = {.call_timeout_ms = WEFT_CLIENT_CALL_TIMEOUT_MS_DEFAULT,
                          .retries_max = 10,
                          .call_deadline_ms = DEADLINE_TEST_MS,
                          .backoff_initial_ms = 5,
                          .backoff_max_ms = 20,
                          .connect_timeout_ms = 1000,
                          .identity = "tester@host"};
    weft_client *c = NULL;
    weft_err err;
    assert_int_equal(weft_client_open(f.address, &o, &c, &err), 0);
    uint64_t t0 = weft_mono_ms();
    int rc = start_wf(c, NULL, NULL, &err);
    uint64_t took_ms = weft_mono_ms() - t0;
    fprintf(stderr, "start on a silent node: %s after %llu ms: %s\n", weft_error_name(rc),
            (unsigned long long)took_ms, err.message);
    assert_int_equal(rc, -WEFT_E_DEADLINE_EXCEEDED);
    assert_true(took_ms >= DEADLINE_TEST_MS - 100u);
    assert_true(took_ms <= DEADLINE_TEST_MS + DEADLINE_TEST_SLACK_MS);
    assert_non_null(strstr(err.message, "call deadline"));
    weft_client_close(c);
    fake_stop(&f);
}

/* A retry goes to another node than the one that failed: a node that answers UNAVAILABLE (as a
 * node cut off from its peers does) or never answers, and that the client thinks leads the
 * shard, must not take every attempt while another node answers. */
static void test_retry_moves_to_another_node(void **state) {
    (void)state;
    static fake a, b;
    fake_pair_start(&a, &b);
    /* Both say node 1 (a) leads both shards: every start is routed to a first. */
    a.shard_leaders[1] = b.shard_leaders[1] = 1;
    const fake_action script[] = {FAKE_UNAVAILABLE, FAKE_SILENT};
    fake_script(&a, script, 2);
    weft_client *c = open_client(a.address, 300, 5);
    char run[64];
    weft_err err;
    assert_int_equal(start_wf(c, NULL, run, &err), 0); /* a: UNAVAILABLE, then b */
    assert_string_equal(run, "run-of-node-2");
    assert_int_equal(start_wf(c, NULL, run, &err), 0); /* a: no answer in 300 ms, then b */
    assert_string_equal(run, "run-of-node-2");
    assert_int_equal(fake_count(&a, WEFT_MSG_START_WORKFLOW), 2);
    assert_int_equal(fake_count(&b, WEFT_MSG_START_WORKFLOW), 2);
    weft_client_close(c);
    fake_stop(&a);
    fake_stop(&b);
}


static void fake_set_tasks(fake *f, unsigned total) {
    WEFT_ASSERT(total <= FAKE_TASKS_MAX);
    pthread_mutex_lock(&f->mu);
    f->tasks_total = total;
    pthread_mutex_unlock(&f->mu);
}

/* Polls of `type` whose task queue is `queue` (exactly, or containing it when !exact). */
static unsigned fake_count_polls(fake *f, uint32_t type, const char *queue, bool exact) {
    pthread_mutex_lock(&f->mu);
    unsigned n = 0;
    for (unsigned i = 0; i < f->records_count; i++) {
        const fake_record *r = &f->records[i];
        if (r->type != type) continue;
        n += exact ? strcmp(r->task_queue, queue) == 0 : strstr(r->task_queue, queue) != NULL;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* One task-token call of kind `type` with `token`. */
static int token_call(weft_client *c, uint32_t type, weft_bytes token, weft_err *err) {
    weft_activity_req act = {.task_token = token};
    switch (type) {
    case WEFT_MSG_COMPLETE_ACTIVITY:
        return weft_client_complete_activity(c, &act, err);
    case WEFT_MSG_FAIL_ACTIVITY:
        act.failure = (weft_failure){.type = WEFT_STR_LIT("E"), .message = WEFT_STR_LIT("m")};
        return weft_client_fail_activity(c, &act, err);
    case WEFT_MSG_HEARTBEAT_ACTIVITY:
        return weft_client_heartbeat_activity(c, &act, NULL, err);
    case WEFT_MSG_COMPLETE_WORKFLOW_TASK: {
        weft_complete_wft_req q = {.task_token = token};
        return weft_client_complete_workflow_task(c, &q, err);
    }
    default: {
        weft_fail_wft_req q = {.task_token = token, .cause = WEFT_STR_LIT("panic")};
        return weft_client_fail_workflow_task(c, &q, err);
    }
    }
}

static void test_token_routed_to_shard_leader(void **state) {
    (void)state;
    static fake a, b;
    fake_pair_start(&a, &b);
    weft_client *c = open_client(a.address, 2000, 3);
    uint8_t *t0 = NULL, *t1 = NULL, *t7 = NULL;
    size_t l0 = 0, l1 = 0, l7 = 0;
    fake_token(0, 1, &t0, &l0);
    fake_token(1, 2, &t1, &l1);
    fake_token(7, 3, &t7, &l7);
    weft_bytes tok0 = {t0, (uint32_t)l0}, tok1 = {t1, (uint32_t)l1}, tok7 = {t7, (uint32_t)l7};
    weft_err err;
    static const uint32_t ops[] = {WEFT_MSG_COMPLETE_ACTIVITY, WEFT_MSG_FAIL_ACTIVITY,
                                   WEFT_MSG_HEARTBEAT_ACTIVITY, WEFT_MSG_COMPLETE_WORKFLOW_TASK,
                                   WEFT_MSG_FAIL_WORKFLOW_TASK};
    for (unsigned i = 0; i < WEFT_ARRAY_LEN(ops); i++) {
        /* The client's seed is a, but shard 1's token goes straight to b, its leader. */
        assert_int_equal(token_call(c, ops[i], tok1, &err), 0);
        assert_int_equal(fake_count(&b, ops[i]), 1);
        assert_int_equal(fake_count(&a, ops[i]), 0);
        assert_int_equal(token_call(c, ops[i], tok0, &err), 0);
        assert_int_equal(fake_count(&a, ops[i]), 1);
        assert_int_equal(fake_count(&b, ops[i]), 1);
    }
    /* A token the client cannot read, or one naming a shard the topology lacks, goes where
     * unrouted requests go (a, which answered last), unchanged: the server judges it. */
    weft_bytes garbage = {(const uint8_t *)"garbage", 7};
    assert_int_equal(token_call(c, WEFT_MSG_COMPLETE_ACTIVITY, garbage, &err), 0);
    assert_int_equal(token_call(c, WEFT_MSG_COMPLETE_ACTIVITY, tok7, &err), 0);
    weft_bytes empty = {0};
    assert_int_equal(token_call(c, WEFT_MSG_HEARTBEAT_ACTIVITY, empty, &err), 0);
    assert_int_equal(fake_count(&a, WEFT_MSG_COMPLETE_ACTIVITY), 3);
    assert_int_equal(fake_count(&a, WEFT_MSG_HEARTBEAT_ACTIVITY), 2);
    assert_int_equal(fake_count(&b, WEFT_MSG_COMPLETE_ACTIVITY), 1);
    /* Shard 1's leadership moved to node 1: b says NOT_LEADER and names a; the client follows,
     * and sends the next shard-1 token straight to a. */
    b.leader_hint = 1;
    snprintf(b.leader_address, sizeof b.leader_address, "%s", a.address);
    const fake_action script[] = {FAKE_NOT_LEADER};
    fake_script(&b, script, 1);
    assert_int_equal(token_call(c, WEFT_MSG_COMPLETE_ACTIVITY, tok1, &err), 0);
    assert_int_equal(fake_count(&b, WEFT_MSG_COMPLETE_ACTIVITY), 2);
    assert_int_equal(fake_count(&a, WEFT_MSG_COMPLETE_ACTIVITY), 4);
    assert_int_equal(token_call(c, WEFT_MSG_COMPLETE_ACTIVITY, tok1, &err), 0);
    assert_int_equal(fake_count(&b, WEFT_MSG_COMPLETE_ACTIVITY), 2);
    assert_int_equal(fake_count(&a, WEFT_MSG_COMPLETE_ACTIVITY), 5);
    assert_int_equal(a.hello_violations + b.hello_violations, 0);
    free(t0);
    free(t1);
    free(t7);
    weft_client_close(c);
    fake_stop(&a);
    fake_stop(&b);
}

static void test_nodes_and_pinned_polls(void **state) {
    (void)state;
    static fake a, b;
    fake_pair_start(&a, &b);
    /* Long client backoff: a pinned poll that used the client's retries would show. */
    weft_client_opts o = {.call_timeout_ms = 2000,
                          .retries_max = 5,
                          .backoff_initial_ms = 300,
                          .backoff_max_ms = 1000,
                          .connect_timeout_ms = 1000};
    weft_client *c = NULL;
    weft_err err;
    assert_int_equal(weft_client_open(a.address, &o, &c, &err), 0);

    weft_node_ref nodes[WEFT_CLIENT_NODES_MAX];
    uint32_t n = 0;
    assert_int_equal(weft_client_nodes(c, false, nodes, WEFT_CLIENT_NODES_MAX, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(nodes[0].node_id, 1);
    assert_string_equal(nodes[0].address, a.address);
    assert_true(nodes[0].up);
    assert_int_equal(nodes[1].node_id, 2);
    assert_string_equal(nodes[1].address, b.address);
    assert_true(nodes[1].up);
    assert_int_equal(fake_count(&a, WEFT_MSG_CLUSTER_STATUS), 0);
    /* Refresh asks ClusterStatus first; a short array gets the first entries and the count. */
    memset(nodes, 0, sizeof nodes);
    assert_int_equal(weft_client_nodes(c, true, nodes, 1, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(nodes[0].node_id, 1);
    assert_int_equal(nodes[1].node_id, 0); /* not written */
    assert_int_equal(fake_count(&a, WEFT_MSG_CLUSTER_STATUS), 1);
    assert_int_equal(weft_client_nodes(c, false, NULL, 0, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(weft_client_nodes(c, false, NULL, 1, &n, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_client_nodes(c, false, nodes, 1, NULL, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(weft_client_nodes(NULL, false, nodes, 1, &n, &err), -WEFT_E_INVALID_ARGUMENT);

    /* Each pinned poll goes to its node only. */
    weft_poll_req q = {.task_queue = WEFT_STR_LIT("q"), .poll_timeout_ms = 50};
    weft_poll_wft_resp wr;
    weft_poll_activity_resp ar;
    weft_response h = {0};
    assert_int_equal(weft_client_poll_workflow_task_on(c, 2, &q, &wr, &h, &err), 0);
    assert_int_equal(wr.task_token.len, 0);
    assert_int_equal(fake_count(&b, WEFT_MSG_POLL_WORKFLOW_TASK), 1);
    assert_int_equal(weft_client_poll_activity_task_on(c, 1, &q, &ar, &h, &err), 0);
    assert_int_equal(ar.task_token.len, 0);
    assert_int_equal(fake_count(&a, WEFT_MSG_POLL_ACTIVITY_TASK), 1);
    assert_int_equal(fake_count(&a, WEFT_MSG_POLL_WORKFLOW_TASK), 0);
    assert_int_equal(fake_count(&b, WEFT_MSG_POLL_ACTIVITY_TASK), 0);
    /* Unknown ids. */
    assert_int_equal(weft_client_poll_workflow_task_on(c, 99, &q, &wr, &h, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "node_id");
    assert_int_equal(weft_client_poll_activity_task_on(c, 0, &q, &ar, &h, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "node_id");
    /* NOT_LEADER is not followed, and neither a lost connection after sending nor an
     * UNAVAILABLE reply is retried: the caller backs off. */
    b.leader_hint = 1;
    snprintf(b.leader_address, sizeof b.leader_address, "%s", a.address);
    const fake_action script[] = {FAKE_NOT_LEADER, FAKE_DROP, FAKE_UNAVAILABLE};
    fake_script(&b, script, 3);
    assert_int_equal(weft_client_poll_workflow_task_on(c, 2, &q, &wr, &h, &err),
                     -WEFT_E_NOT_LEADER);
    assert_int_equal(weft_client_poll_workflow_task_on(c, 2, &q, &wr, &h, &err),
                     -WEFT_E_UNAVAILABLE);
    uint64_t t0 = weft_mono_ms();
    assert_int_equal(weft_client_poll_workflow_task_on(c, 2, &q, &wr, &h, &err),
                     -WEFT_E_UNAVAILABLE);
    assert_true(weft_mono_ms() - t0 < 250u);
    assert_int_equal(fake_count(&b, WEFT_MSG_POLL_WORKFLOW_TASK), 4);
    assert_int_equal(fake_count(&a, WEFT_MSG_POLL_WORKFLOW_TASK), 0);
    /* A node that is down: UNAVAILABLE at once, not after the client's retries. */
    fake_stop(&b);
    t0 = weft_mono_ms();
    assert_int_equal(weft_client_poll_activity_task_on(c, 2, &q, &ar, &h, &err),
                     -WEFT_E_UNAVAILABLE);
    assert_true(weft_mono_ms() - t0 < 250u);
    /* The routed poll still works, and the down node stays listed under its id. */
    assert_int_equal(weft_client_poll_workflow_task(c, &q, &wr, &h, &err), 0);
    assert_int_equal(fake_count(&a, WEFT_MSG_POLL_WORKFLOW_TASK), 1);
    assert_int_equal(weft_client_nodes(c, false, nodes, WEFT_CLIENT_NODES_MAX, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(nodes[1].node_id, 2);
    weft_response_free(&h);
    weft_client_close(c);
    fake_stop(&a);
}

/* A seed written differently from the address its node advertises is one node, listed under
 * the address that answered; the same holds for a seed that answers only later. */
static void test_seed_and_topology_are_one_node(void **state) {
    (void)state;
    static fake a, b;
    fake_pair_start(&a, &b);
    char seeds[96], seed_a[48], seed_b[48];
    snprintf(seed_a, sizeof seed_a, "localhost:%s", strchr(a.address, ':') + 1);
    snprintf(seed_b, sizeof seed_b, "localhost:%s", strchr(b.address, ':') + 1);
    snprintf(seeds, sizeof seeds, "%s,%s", seed_a, seed_b);
    weft_client *c = open_client(seeds, 2000, 3);
    weft_node_ref nodes[WEFT_CLIENT_NODES_MAX];
    uint32_t n = 0;
    weft_err err;
    assert_int_equal(weft_client_nodes(c, true, nodes, WEFT_CLIENT_NODES_MAX, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(nodes[0].node_id, 1);
    assert_string_equal(nodes[0].address, seed_a); /* the address that answered */
    assert_int_equal(nodes[1].node_id, 2);
    assert_string_equal(nodes[1].address, b.address); /* seed b has not answered yet */
    /* a goes away: an unrouted call moves on to seed b, which answers as node 2 and takes
     * over the topology's entry for node 2. */
    fake_stop(&a);
    uint64_t count = 0;
    weft_list_req lq = {0};
    assert_int_equal(weft_client_count(c, &lq, &count, &err), 0);
    assert_int_equal(fake_count(&b, WEFT_MSG_COUNT_WORKFLOWS), 1);
    assert_int_equal(weft_client_nodes(c, false, nodes, WEFT_CLIENT_NODES_MAX, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(nodes[0].node_id, 1);
    assert_int_equal(nodes[1].node_id, 2);
    assert_string_equal(nodes[1].address, seed_b);
    /* Node 2's pinned polls reach b whichever entry stood for it before. */
    weft_poll_req q = {.task_queue = WEFT_STR_LIT("q"), .poll_timeout_ms = 50};
    weft_poll_wft_resp wr;
    weft_response h = {0};
    assert_int_equal(weft_client_poll_workflow_task_on(c, 2, &q, &wr, &h, &err), 0);
    weft_response_free(&h);
    weft_client_close(c);
    fake_stop(&b);
}

/* ---- A worker on two fake nodes ---- */

/* How long the "fake" activity works. */
#define FK_ACTIVITY_MS 500u
/* Most a task may wait between the fake handing it out and the activity starting: far below
 * FK_ACTIVITY_MS, which a task received while the only slot was busy would wait. */
#define FK_START_SLACK_MS 250u
/* Longest wait for the tasks of a test to complete. */
#define FK_WAIT_MS 30000u
/* Node ids of the fakes (1 and 2), as indexes. */
#define FK_NODES 3u

/* What the "fake" activity saw. */
typedef struct fk_seen {
    atomic_int running;                                      /* executing now */
    atomic_int max_running;                                  /* most executing at once */
    atomic_int running_on[FK_NODES];                         /* executing now, per node id */
    atomic_int max_running_on[FK_NODES];                     /* most at once, per node id */
    atomic_uint_fast64_t start_ms[FK_NODES][FAKE_TASKS_MAX]; /* weft_mono_ms at start */
} fk_seen;

static fk_seen fk;

static void fk_max(atomic_int *max, int v) {
    int m = atomic_load(max);
    while (v > m && !atomic_compare_exchange_weak(max, &m, v)) {
    }
}

static int fk_activity(weft_act *act, weft_bytes input, weft_bytes *out, void *arg) {
    (void)input, (void)arg;
    uint64_t now = weft_mono_ms();
    const weft_act_info *info = weft_act_info_get(act);
    unsigned node = 0, n = 0;
    if (sscanf(info->activity_id, "a-%u-%u", &node, &n) != 2 || node >= FK_NODES ||
        n >= FAKE_TASKS_MAX) {
        return weft_act_fail(act, "BadId", info->activity_id, true);
    }
    atomic_store(&fk.start_ms[node][n], now);
    fk_max(&fk.max_running, atomic_fetch_add(&fk.running, 1) + 1);
    fk_max(&fk.max_running_on[node], atomic_fetch_add(&fk.running_on[node], 1) + 1);
    weftd_sleep_ms(FK_ACTIVITY_MS);
    atomic_fetch_sub(&fk.running_on[node], 1);
    atomic_fetch_sub(&fk.running, 1);
    *out = (weft_bytes){(const uint8_t *)"ok", 2};
    return 0;
}

static int fk_workflow(weft_wf *wf, weft_bytes input, weft_bytes *out, void *arg) {
    (void)wf, (void)input, (void)out, (void)arg;
    return WEFT_WF_RESULT_COMPLETE;
}

static weft_worker *fk_worker(weft_client *c, uint32_t activity_concurrency) {
    memset(&fk, 0, sizeof fk);
    weft_worker_opts o = {.task_queue = "fq",
                          .identity = "fake-worker",
                          .workflow_concurrency = 1,
                          .activity_concurrency = activity_concurrency,
                          .poll_timeout_ms = 1000};
    weft_worker *w = NULL;
    weft_err err;
    assert_int_equal(weft_worker_new(c, &o, &w, &err), 0);
    assert_int_equal(weft_worker_register_activity(w, "fake", fk_activity, NULL, &err), 0);
    assert_int_equal(weft_worker_register_workflow(w, "wf", fk_workflow, NULL, &err), 0);
    return w;
}

/* Waits until fake f received `want` CompleteActivity requests. */
static void fk_wait_completions(fake *f, unsigned want) {
    uint64_t deadline = weft_mono_ms() + FK_WAIT_MS;
    while (fake_count(f, WEFT_MSG_COMPLETE_ACTIVITY) < want) {
        if (weft_mono_ms() > deadline) {
            fail_msg("node %llu: %u of %u activities completed", (unsigned long long)f->node_id,
                     fake_count(f, WEFT_MSG_COMPLETE_ACTIVITY), want);
        }
        weftd_sleep_ms(10);
    }
}

/* Every task of f, from `from` on, started executing right after it was handed out. */
static void fk_assert_started_at_once(fake *f, unsigned from) {
    pthread_mutex_lock(&f->mu);
    unsigned sent = f->tasks_sent;
    pthread_mutex_unlock(&f->mu);
    for (unsigned n = from; n < sent; n++) {
        uint64_t started = atomic_load(&fk.start_ms[f->node_id][n]);
        assert_true(started >= f->task_sent_ms[n]);
        if (started - f->task_sent_ms[n] > FK_START_SLACK_MS) {
            fail_msg("task %u of node %llu waited %llu ms between its start on the server and "
                     "its execution",
                     n, (unsigned long long)f->node_id,
                     (unsigned long long)(started - f->task_sent_ms[n]));
        }
    }
}

/* activity_concurrency 1 on two nodes: both nodes are polled (workflow shared and sticky
 * queues, activities), never two activities run at once, no task waits for the slot after the
 * server handed it out, each completion goes to its token's shard leader, and a node that
 * goes down blocks nobody. */
static void test_worker_polls_every_node(void **state) {
    (void)state;
    static fake a, b;
    fake_pair_start(&a, &b);
    fake_set_tasks(&a, 3);
    fake_set_tasks(&b, 3);
    weft_client *c = open_client(a.address, 2000, 3);
    weft_worker *w = fk_worker(c, 1);
    sdk_runner r;
    sdk_runner_start(&r, w);
    fk_wait_completions(&a, 3);
    fk_wait_completions(&b, 3);
    assert_int_equal(atomic_load(&fk.max_running), 1);
    fk_assert_started_at_once(&a, 0);
    fk_assert_started_at_once(&b, 0);
    fake *both[2] = {&a, &b};
    for (unsigned i = 0; i < 2; i++) {
        assert_true(fake_count_polls(both[i], WEFT_MSG_POLL_WORKFLOW_TASK, "fq", true) > 0);
        assert_true(fake_count_polls(both[i], WEFT_MSG_POLL_WORKFLOW_TASK, ":sticky:", false) > 0);
        assert_true(fake_count_polls(both[i], WEFT_MSG_POLL_ACTIVITY_TASK, "fq", true) > 0);
        assert_int_equal(both[i]->hello_violations, 0);
    }
    /* b goes down; a's new tasks still run, one at a time. */
    fake_stop(&b);
    fake_set_tasks(&a, 6);
    fk_wait_completions(&a, 6);
    assert_int_equal(atomic_load(&fk.max_running), 1);
    fk_assert_started_at_once(&a, 3);
    uint64_t t0 = weft_mono_ms();
    assert_int_equal(sdk_runner_stop(&r), 0);
    assert_true(weft_mono_ms() - t0 < 10000u);
    weft_worker_stats s;
    weft_worker_stats_get(w, &s);
    assert_int_equal(s.activities_completed, 9);
    weft_worker_free(w);
    weft_client_close(c);
    fake_stop(&a);
}

/* activity_concurrency 3 on two nodes: the idle node keeps one poll (one slot), and the node
 * with a backlog gets the other two. */
static void test_worker_busy_node_gets_free_slots(void **state) {
    (void)state;
    static fake a, b;
    fake_pair_start(&a, &b);
    fake_set_tasks(&a, 6);
    weft_client *c = open_client(a.address, 2000, 3);
    weft_worker *w = fk_worker(c, 3);
    sdk_runner r;
    sdk_runner_start(&r, w);
    fk_wait_completions(&a, 6);
    assert_int_equal(atomic_load(&fk.max_running_on[1]), 2);
    assert_true(atomic_load(&fk.max_running) <= 3);
    fk_assert_started_at_once(&a, 0);
    assert_true(fake_count_polls(&b, WEFT_MSG_POLL_ACTIVITY_TASK, "fq", true) > 0);
    assert_int_equal(sdk_runner_stop(&r), 0);
    weft_worker_free(w);
    weft_client_close(c);
    fake_stop(&a);
    fake_stop(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_reuses_generated_request_id),
        cmocka_unit_test(test_timeout_is_retried_with_same_id),
        cmocka_unit_test(test_caller_request_id_is_kept),
        cmocka_unit_test(test_poll_not_retried_once_sent),
        cmocka_unit_test(test_server_error_passes_through),
        cmocka_unit_test(test_retries_run_out),
        cmocka_unit_test(test_not_leader_is_followed),
        cmocka_unit_test(test_nobody_listening),
        cmocka_unit_test(test_shared_by_threads),
        cmocka_unit_test(test_call_deadline_bounds_a_silent_node),
        cmocka_unit_test(test_retry_moves_to_another_node),
        cmocka_unit_test(test_token_routed_to_shard_leader),
        cmocka_unit_test(test_nodes_and_pinned_polls),
        cmocka_unit_test(test_seed_and_topology_are_one_node),
        cmocka_unit_test(test_worker_polls_every_node),
        cmocka_unit_test(test_worker_busy_node_gets_free_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
