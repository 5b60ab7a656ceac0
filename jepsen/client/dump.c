/* dump.c: `weft-jepsen dump`, every run held by one node's replicas (jepsen/FORMAT.md "final").
 *
 * libweft sends each request about a workflow to its shard's leader, but G2 needs what each
 * replica stores. So the dump speaks the wire protocol itself (proto/frame.h) on one
 * connection to the node: Hello, ClusterStatus (which shards have a replica there), then
 * ListWorkflows and GetHistory with consistency=stale, which the node answers from its own
 * replica of each shard it hosts (node/reads.c). history_sha256 is taken over each event's
 * msgpack bytes exactly as they arrived in the GetHistory frames, not over a re-encoding. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "jepsen.h"
#include "proto/frame.h"
#include "proto/limits.h"
#include "proto/msg.h"
#include "proto/partition.h"

/* A reply must arrive within this; a stale read never waits for raft. */
#define DUMP_IO_TIMEOUT_MS 30000u
/* Runs listed per page, and events per history page. */
#define DUMP_LIST_PAGE_SIZE 1000u
#define DUMP_HISTORY_PAGE_EVENTS 1000u
/* Runs one dump handles. */
#define DUMP_RUNS_MAX 1000000u

/* One connection to the node, past Hello. */
typedef struct dump_conn {
    int fd;
    uint64_t next_id; /* correlation id of the next frame */
    weft_limits limits;
    uint8_t *frame; /* the latest reply frame (malloc'd), without its length prefix */
    size_t frame_len;
    msgpack_unpacked up; /* the latest reply, unpacked */
    const msgpack_object *body;
} dump_conn;

/* One run to dump. */
typedef struct dump_run {
    char *ns, *workflow_id, *run_id; /* malloc'd */
    uint32_t status;
    uint32_t shard;
} dump_run;

static int dump_dial(const char *address, int *fd_out) {
    char host[256];
    snprintf(host, sizeof host, "%s", address);
    char *colon = strrchr(host, ':');
    if (colon == NULL) {
        fprintf(stderr, "weft-jepsen dump: --node must be HOST:PORT (got %s)\n", address);
        return -1;
    }
    *colon = '\0';
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL) {
        fprintf(stderr, "weft-jepsen dump: cannot resolve %s\n", address);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = DUMP_IO_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0) {
        fprintf(stderr, "weft-jepsen dump: connect %s: %s\n", address, strerror(errno));
        close(fd);
        return -1;
    }
    *fd_out = fd;
    return 0;
}

static int io_full(int fd, void *buf, size_t len, bool writing) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void conn_reset_reply(dump_conn *c) {
    msgpack_unpacked_destroy(&c->up);
    msgpack_unpacked_init(&c->up);
    free(c->frame);
    c->frame = NULL;
    c->body = NULL;
}

/* Sends request `req` of type `type` and reads its reply into c->frame / c->body. Returns 0,
 * or -WEFT_E_* with err filled (the node's error frame, or the connection's failure). */
static int conn_call(dump_conn *c, uint32_t type, const weft_schema *s, const void *req,
                     weft_err *err) {
    conn_reset_reply(c);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    uint64_t id = c->next_id++;
    WEFT_ASSERT(weft_frame_encode(&sb, type, id, s, req) == 0);
    int rc = io_full(c->fd, sb.data, sb.size, true);
    msgpack_sbuffer_destroy(&sb);
    uint8_t prefix[WEFT_FRAME_HEADER_BYTES];
    if (rc == 0) rc = io_full(c->fd, prefix, sizeof prefix, false);
    if (rc != 0) return weft_err_set(err, WEFT_E_UNAVAILABLE, "", "connection lost or timed out");
    c->frame_len =
        (size_t)prefix[0] << 24 | (size_t)prefix[1] << 16 | (size_t)prefix[2] << 8 | prefix[3];
    if (c->frame_len == 0 || c->frame_len > c->limits.frame_bytes_max) {
        return weft_err_set(err, WEFT_E_INTERNAL, "", "reply frame of %zu bytes", c->frame_len);
    }
    c->frame = malloc(c->frame_len);
    WEFT_ASSERT(c->frame != NULL);
    if (io_full(c->fd, c->frame, c->frame_len, false) != 0)
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "", "connection lost reading a reply");
    uint32_t rtype = 0;
    uint64_t rid = 0;
    rc = weft_frame_parse(c->frame, c->frame_len, &c->up, &rtype, &rid, &c->body, &c->limits, err);
    if (rc != 0) return rc;
    WEFT_ASSERT(rid == id);
    if (rtype == WEFT_MSG_ERROR) {
        weft_error_resp e;
        rc = weft_schema_decode(&weft_error_resp_schema, c->body, &e, c->up.zone, &c->limits, err);
        if (rc != 0) return rc;
        char msg[WEFT_ERR_MESSAGE_BYTES_MAX];
        return weft_err_set(err, e.code ? (int)e.code : WEFT_E_INTERNAL, "", "%s",
                            weft_str_copy(msg, sizeof msg, e.message));
    }
    WEFT_ASSERT(rtype == (type | WEFT_MSG_RESPONSE_BIT));
    return 0;
}

/* ---- raw event bytes ---- */

/* Reads a msgpack map or array header at buf[*off]; returns its element count or -1. */
static long mp_header(const uint8_t *buf, size_t len, size_t *off, bool map) {
    if (*off >= len) return -1;
    uint8_t b = buf[(*off)++];
    uint8_t fix = map ? 0x80 : 0x90, b16 = map ? 0xde : 0xdc, b32 = map ? 0xdf : 0xdd;
    if ((b & 0xf0) == fix) return b & 0x0f;
    size_t n = b == b16 ? 2 : b == b32 ? 4 : 0;
    if (n == 0 || *off + n > len) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | buf[(*off)++];
    return v;
}

/* Skips one msgpack object at buf[*off] (msgpack-c measures it). Returns 0 or -1. */
static int mp_skip(const uint8_t *buf, size_t len, size_t *off, msgpack_unpacked *tmp) {
    return msgpack_unpack_next(tmp, (const char *)buf, len, off) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

/* Feeds the bytes of every element of the reply body's "events" array to `md`. Returns the
 * number of events, or -1 when the frame is not what GetHistory sends. */
static long hash_events(const dump_conn *c, EVP_MD_CTX *md) {
    const uint8_t *f = c->frame;
    size_t len = c->frame_len, off = 0;
    msgpack_unpacked tmp;
    msgpack_unpacked_init(&tmp);
    long events = -1;
    /* [msg_type, request_id, body]: skip the first two, then walk the body map. */
    long n = mp_header(f, len, &off, false);
    bool ok = n == WEFT_FRAME_ARRAY_ITEMS && mp_skip(f, len, &off, &tmp) == 0 &&
              mp_skip(f, len, &off, &tmp) == 0;
    long pairs = ok ? mp_header(f, len, &off, true) : -1;
    for (long i = 0; i < pairs && ok; i++) {
        ok = mp_skip(f, len, &off, &tmp) == 0;
        bool is_events = ok && tmp.data.type == MSGPACK_OBJECT_STR && tmp.data.via.str.size == 6 &&
                         memcmp(tmp.data.via.str.ptr, "events", 6) == 0;
        if (!is_events) {
            ok = ok && mp_skip(f, len, &off, &tmp) == 0;
            continue;
        }
        events = mp_header(f, len, &off, false);
        for (long e = 0; e < events && ok; e++) {
            size_t start = off;
            ok = mp_skip(f, len, &off, &tmp) == 0;
            if (ok) EVP_DigestUpdate(md, f + start, off - start);
        }
    }
    msgpack_unpacked_destroy(&tmp);
    if (!ok) return -1;
    return events < 0 ? 0 : events;
}

/* ---- the dump ---- */

/* Which shards have a replica on node `self`, from ClusterStatus. Returns 0 or -1. */
static int hosted_shards(dump_conn *c, uint64_t self, bool *hosted, uint32_t *shards) {
    weft_err err;
    weft_err_clear(&err);
    weft_cluster_status_req req = {0};
    int rc = conn_call(c, WEFT_MSG_CLUSTER_STATUS, &weft_cluster_status_req_schema, &req, &err);
    weft_cluster_status_resp st;
    if (rc == 0)
        rc =
            weft_schema_decode(&weft_hello_resp_schema, c->body, &st, c->up.zone, &c->limits, &err);
    if (rc != 0) {
        fprintf(stderr, "weft-jepsen dump: ClusterStatus: %s %s\n", weft_error_name(rc),
                err.message);
        return -1;
    }
    *shards = st.shard_count;
    for (uint32_t i = 0; i < st.shards_count; i++) {
        const weft_shard_info *s = &st.shards[i];
        for (uint32_t r = 0; r < s->replicas_count && s->shard_id < WEFT_SHARDS_MAX; r++) {
            if (s->replicas[r].node_id == self) hosted[s->shard_id] = true;
        }
    }
    return 0;
}

static char *str_dup(weft_str s) {
    char *p = malloc(s.len + 1u);
    WEFT_ASSERT(p != NULL);
    return weft_str_copy(p, s.len + 1u, s);
}

/* Lists every run of namespace `ns` (stale reads) whose shard is hosted here. */
static int list_runs(dump_conn *c, const char *ns, const bool *hosted, uint32_t shards,
                     dump_run *runs, uint32_t *count) {
    uint8_t *token = NULL;
    size_t token_len = 0;
    int rc = 0;
    weft_err err;
    weft_err_clear(&err);
    do {
        weft_list_req req = {.namespace_ = weft_str_c(ns),
                             .page_size = DUMP_LIST_PAGE_SIZE,
                             .next_page_token = {.ptr = token, .len = (uint32_t)token_len},
                             .consistency = WEFT_CONSISTENCY_STALE};
        rc = conn_call(c, WEFT_MSG_LIST_WORKFLOWS, &weft_list_req_schema, &req, &err);
        free(token);
        token = NULL;
        weft_list_resp lr;
        if (rc == 0)
            rc = weft_schema_decode(&weft_list_resp_schema, c->body, &lr, c->up.zone, &c->limits,
                                    &err);
        if (rc != 0) break;
        for (uint32_t i = 0; i < lr.executions_count && *count < DUMP_RUNS_MAX; i++) {
            const weft_execution_info *e = &lr.executions[i];
            weft_str n = e->namespace_.len ? e->namespace_ : weft_str_c(ns);
            uint32_t shard = weft_shard_for_hash(weft_partition_hash(n, e->workflow_id), shards);
            if (!hosted[shard]) continue;
            runs[*count] = (dump_run){str_dup(n), str_dup(e->workflow_id), str_dup(e->run_id),
                                      e->status, shard};
            (*count)++;
        }
        token_len = lr.next_page_token.len;
        if (token_len > 0) {
            token = malloc(token_len);
            WEFT_ASSERT(token != NULL);
            memcpy(token, lr.next_page_token.ptr, token_len);
        }
    } while (token_len > 0);
    free(token);
    if (rc != 0)
        fprintf(stderr, "weft-jepsen dump: ListWorkflows: %s %s\n", weft_error_name(rc),
                err.message);
    return rc;
}

/* Reads one run's whole history; appends its events' JSON to `events` and hashes its bytes. */
static int dump_history(dump_conn *c, const dump_run *r, json_t *events, char hex[65]) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    uint64_t first = 1;
    int rc = 0;
    weft_err err;
    weft_err_clear(&err);
    for (;;) {
        weft_history_req req = {.namespace_ = weft_str_c(r->ns),
                                .workflow_id = weft_str_c(r->workflow_id),
                                .run_id = weft_str_c(r->run_id),
                                .first_event_id = first,
                                .max_events = DUMP_HISTORY_PAGE_EVENTS,
                                .consistency = WEFT_CONSISTENCY_STALE};
        rc = conn_call(c, WEFT_MSG_GET_HISTORY, &weft_history_req_schema, &req, &err);
        weft_history_resp hr;
        if (rc == 0)
            rc = weft_schema_decode(&weft_history_resp_schema, c->body, &hr, c->up.zone, &c->limits,
                                    &err);
        if (rc != 0) break;
        long hashed = hash_events(c, md);
        if (hashed != (long)hr.events_count) {
            rc = weft_err_set(&err, WEFT_E_INTERNAL, "", "could not find the events' bytes");
            break;
        }
        for (uint32_t i = 0; i < hr.events_count; i++)
            json_array_append_new(events, weft_json_from_struct(&weft_event_schema, &hr.events[i]));
        if (hr.events_count == 0 || hr.next_event_id <= first ||
            hr.events_count < DUMP_HISTORY_PAGE_EVENTS)
            break;
        first = hr.next_event_id;
    }
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    if (rc != 0)
        fprintf(stderr, "weft-jepsen dump: GetHistory %s/%s: %s %s\n", r->workflow_id, r->run_id,
                weft_error_name(rc), err.message);
    return rc;
}

static int dump_hello(dump_conn *c, uint64_t *self) {
    weft_err err;
    weft_err_clear(&err);
    weft_hello_req h = {.protocol_version = WEFT_PROTOCOL_VERSION,
                        .client_name = weft_str_c("weft-jepsen-dump")};
    int rc = conn_call(c, WEFT_MSG_HELLO, &weft_hello_req_schema, &h, &err);
    weft_hello_resp hr;
    if (rc == 0)
        rc =
            weft_schema_decode(&weft_hello_resp_schema, c->body, &hr, c->up.zone, &c->limits, &err);
    if (rc != 0) {
        fprintf(stderr, "weft-jepsen dump: Hello: %s %s\n", weft_error_name(rc), err.message);
        return -1;
    }
    *self = hr.node_id;
    return 0;
}

static int dump_write(dump_conn *c, const char *name, const dump_run *runs, uint32_t count,
                      jepsen_log *out) {
    int failures = 0;
    for (uint32_t i = 0; i < count; i++) {
        const dump_run *r = &runs[i];
        json_t *events = json_array();
        char hex[65] = "";
        if (dump_history(c, r, events, hex) != 0) failures++;
        json_t *line = json_object();
        json_object_set_new(line, "node", json_string(name));
        json_object_set_new(line, "shard", json_integer(r->shard));
        json_object_set_new(line, "namespace", json_string(r->ns));
        json_object_set_new(line, "workflow_id", json_string(r->workflow_id));
        json_object_set_new(line, "run_id", json_string(r->run_id));
        json_object_set_new(line, "status", json_string(weft_status_names[r->status]));
        json_object_set_new(line, "history_sha256", json_string(hex));
        json_object_set_new(line, "events", events);
        jepsen_log_write(out, line);
        json_decref(line);
    }
    return failures;
}

int jepsen_cmd_dump(int argc, char **argv) {
    const char *node = NULL, *name = NULL, *out_path = NULL, *ns = WEFT_DEFAULT_NAMESPACE;
    const jepsen_flag flags[] = {
        {"node", &node, NULL, "the node's client address HOST:PORT"},
        {"name", &name, NULL, "the node's name in the store (n1, ...)"},
        {"out", &out_path, NULL, "the file to write (final/<name>.jsonl)"},
        {"namespace", &ns, NULL, "namespace to dump (default: default)"},
        {NULL, NULL, NULL, NULL},
    };
    if (jepsen_flags_parse("dump", flags, argc, argv, 2) != 0) return 2;
    if (node == NULL || name == NULL || out_path == NULL) {
        fprintf(stderr, "weft-jepsen dump: --node, --name and --out are required\n");
        return 2;
    }
    dump_conn c = {.fd = -1, .next_id = 1};
    weft_limits_default(&c.limits);
    msgpack_unpacked_init(&c.up);
    bool hosted[WEFT_SHARDS_MAX] = {false};
    uint32_t shards = 0, count = 0;
    uint64_t self = 0;
    dump_run *runs = calloc(DUMP_RUNS_MAX, sizeof *runs);
    WEFT_ASSERT(runs != NULL);
    jepsen_log out = {.fd = -1};
    int rc = 1;
    if (dump_dial(node, &c.fd) == 0 && dump_hello(&c, &self) == 0 &&
        hosted_shards(&c, self, hosted, &shards) == 0 && shards > 0 &&
        list_runs(&c, ns, hosted, shards, runs, &count) == 0 &&
        jepsen_log_open(&out, out_path) == 0) {
        int failures = dump_write(&c, name, runs, count, &out);
        fprintf(stderr, "weft-jepsen dump: %s (node %llu): %u runs, %d unreadable\n", name,
                (unsigned long long)self, count, failures);
        rc = failures == 0 ? 0 : 1;
    }
    jepsen_log_close(&out);
    for (uint32_t i = 0; i < count; i++) {
        free(runs[i].ns);
        free(runs[i].workflow_id);
        free(runs[i].run_id);
    }
    free(runs);
    conn_reset_reply(&c);
    msgpack_unpacked_destroy(&c.up);
    if (c.fd >= 0) close(c.fd);
    return rc;
}
