/* test_client_retry.c: libweft's connection handling against scripted fake servers on real
 * loopback sockets: Hello first on every connection, generated request ids reused on every
 * retry (G4), retries on UNAVAILABLE / lost connections / timeouts, no retry of a poll once
 * sent, NOT_LEADER followed to the named leader, server errors passed through with their field,
 * and one client shared by many threads. No weftd needed. */
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

#include "helper_weftd.h"
#include "proto/frame.h"

#define FAKE_CONNS_MAX 32u
#define FAKE_ACTIONS_MAX 16u
#define FAKE_RECORDS_MAX 512u

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
} fake_record;

typedef struct fake_conn {
    int fd;                   /* -1 when free */
    unsigned serial;          /* accept order */
    bool hello_done;          /* Hello was the first request */
    weft_frame_reader reader; /* splits the stream */
} fake_conn;

typedef struct fake {
    uint64_t node_id;                      /* reported in Hello */
    char address[32];                      /* 127.0.0.1:port */
    int listen_fd;                         /* listening socket */
    pthread_t thread;                      /* the event loop */
    atomic_bool stop;                      /* ends the loop */
    pthread_mutex_t mu;                    /* guards the script and the records */
    fake_action script[FAKE_ACTIONS_MAX];  /* actions for non-Hello requests, in order */
    unsigned script_len, script_next;      /* used / consumed; past the end: FAKE_OK */
    fake_record records[FAKE_RECORDS_MAX]; /* requests seen, Hello excluded */
    unsigned records_count;                /* entries used */
    unsigned hello_violations;             /* requests that came before Hello */
    unsigned accepted;                     /* connections accepted */
    uint64_t leader_hint;                  /* NOT_LEADER: node id to name */
    char leader_address[32];               /* NOT_LEADER: address to name */
    char peer_address[32];                 /* a second node for the topology, "" if none */
    uint64_t peer_id;                      /* its node id */
    uint64_t topology_leader;              /* shard 0's leader in Hello */
    fake_conn conns[FAKE_CONNS_MAX];       /* open connections */
} fake;

static void fake_send(int fd, msgpack_sbuffer *sb) {
    (void)send(fd, sb->data, sb->size, MSG_NOSIGNAL);
    msgpack_sbuffer_clear(sb);
}

static void fake_reply_hello(fake *f, int fd, uint64_t id) {
    weft_shard_info shard = {.shard_id = 0,
                             .range_start = 0,
                             .range_end = UINT64_MAX,
                             .leader_node = f->topology_leader,
                             .ready = true};
    weft_node_info nodes[2] = {
        {.node_id = f->node_id, .address = weft_str_c(f->address), .up = true},
        {.node_id = f->peer_id, .address = weft_str_c(f->peer_address), .up = true}};
    weft_hello_resp r = {.protocol_version = WEFT_PROTOCOL_VERSION,
                         .node_id = f->node_id,
                         .cluster_id = WEFT_STR_LIT("fake-cluster"),
                         .shard_count = 1,
                         .shards = &shard,
                         .shards_count = 1,
                         .nodes = nodes,
                         .nodes_count = f->peer_address[0] ? 2 : 1};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    WEFT_ASSERT(weft_frame_encode(&sb, WEFT_MSG_HELLO | WEFT_MSG_RESPONSE_BIT, id,
                                  &weft_hello_resp_schema, &r) == 0);
    fake_send(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
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

/* Records a request and returns the scripted action for it. */
static fake_action fake_record_request(fake *f, fake_conn *fc, uint32_t type,
                                       const msgpack_object *body, msgpack_unpacked *up) {
    weft_limits l;
    weft_limits_default(&l);
    pthread_mutex_lock(&f->mu);
    if (f->records_count < FAKE_RECORDS_MAX) {
        fake_record *r = &f->records[f->records_count++];
        memset(r, 0, sizeof *r);
        r->type = type;
        r->conn_serial = fc->serial;
        weft_start_req s;
        weft_err err;
        if (type == WEFT_MSG_START_WORKFLOW &&
            weft_schema_decode(&weft_start_req_schema, body, &s, up->zone, &l, &err) == 0) {
            weft_str_copy(r->request_id, sizeof r->request_id, s.request_id);
            weft_str_copy(r->identity, sizeof r->identity, s.identity);
        }
    }
    fake_action a = f->script_next < f->script_len ? f->script[f->script_next++] : FAKE_OK;
    pthread_mutex_unlock(&f->mu);
    return a;
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
        fake_reply_hello(f, fc->fd, id);
    } else if (keep) {
        if (!fc->hello_done) {
            pthread_mutex_lock(&f->mu);
            f->hello_violations++;
            pthread_mutex_unlock(&f->mu);
        }
        switch (fake_record_request(f, fc, type, body, &up)) {
        case FAKE_OK:
            fake_reply_ok(f, fc->fd, type, id);
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
    weft_frame_reader_free(&fc->reader);
}

static void fake_accept(fake *f) {
    int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return;
    for (unsigned i = 0; i < FAKE_CONNS_MAX; i++) {
        if (f->conns[i].fd < 0) {
            f->conns[i].fd = fd;
            f->conns[i].hello_done = false;
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
        if (poll(p, n, 50) <= 0) continue;
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
