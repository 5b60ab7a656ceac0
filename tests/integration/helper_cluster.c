/* helper_cluster.c: N weftd processes as one cluster for integration tests. */
#include "helper_cluster.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "proto/base.h"

/* Pause between two readiness checks. */
#define HC_POLL_MS 100u

static weftd *hc_node(hc_cluster *c, unsigned id) {
    WEFT_ASSERT(id >= 1 && id <= c->nodes);
    return &c->node[id - 1];
}

const char *hc_address(const hc_cluster *c, unsigned id) {
    WEFT_ASSERT(id >= 1 && id <= c->nodes);
    return c->node[id - 1].listen;
}

bool hc_alive(hc_cluster *c, unsigned id) {
    return proc_child_alive(&hc_node(c, id)->proc);
}

/* `count` distinct free loopback ports: all bound at once (port 0), so the kernel cannot hand
 * out one twice, then released for weftd to bind. */
static int hc_free_ports(uint16_t *ports, unsigned count) {
    int fds[2 * HC_NODES_MAX];
    WEFT_ASSERT(count <= WEFT_ARRAY_LEN(fds));
    int rc = 0;
    unsigned opened = 0;
    for (; opened < count && rc == 0; opened++) {
        fds[opened] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[opened] < 0) {
            rc = -1;
            break;
        }
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        rc = bind(fds[opened], (struct sockaddr *)&a, sizeof a);
        if (rc == 0) rc = getsockname(fds[opened], (struct sockaddr *)&a, &len);
        ports[opened] = ntohs(a.sin_port);
    }
    for (unsigned i = 0; i < opened; i++)
        if (fds[i] >= 0) close(fds[i]);
    return rc == 0 ? 0 : -1;
}

int hc_start(hc_cluster *c, unsigned nodes, uint32_t shards, unsigned replication_factor,
             const char *const *extra) {
    memset(c, 0, sizeof *c);
    if (nodes == 0 || nodes > HC_NODES_MAX) {
        fprintf(stderr, "hc_start: %u nodes; 1 to %u allowed\n", nodes, HC_NODES_MAX);
        return -1;
    }
    c->nodes = nodes;
    c->shards = shards;
    c->replication_factor = replication_factor;
    uint16_t ports[2 * HC_NODES_MAX];
    if (hc_free_ports(ports, 2 * nodes) != 0) {
        fprintf(stderr, "hc_start: cannot find %u free loopback ports\n", 2 * nodes);
        return -1;
    }
    char listen[HC_NODES_MAX][WEFTD_ADDR_BYTES], raft[HC_NODES_MAX][WEFTD_ADDR_BYTES];
    size_t pl = 0, al = 0;
    for (unsigned i = 0; i < nodes; i++) {
        snprintf(listen[i], sizeof listen[i], "127.0.0.1:%u", ports[2 * i]);
        snprintf(raft[i], sizeof raft[i], "127.0.0.1:%u", ports[2 * i + 1]);
        pl += (size_t)snprintf(c->peers + pl, sizeof c->peers - pl, "%s%u=%s/%s", i ? "," : "",
                               i + 1, listen[i], raft[i]);
        al += (size_t)snprintf(c->addresses + al, sizeof c->addresses - al, "%s%s", i ? "," : "",
                               listen[i]);
        WEFT_ASSERT(pl < sizeof c->peers && al < sizeof c->addresses);
    }
    char shards_s[16], rf_s[16], id_s[16];
    snprintf(shards_s, sizeof shards_s, "%u", shards);
    snprintf(rf_s, sizeof rf_s, "%u", replication_factor);
    for (unsigned i = 0; i < nodes; i++) {
        const char *flags[WEFTD_EXTRA_ARGS_MAX];
        unsigned n = 0;
        snprintf(id_s, sizeof id_s, "%u", i + 1);
        flags[n++] = "--node-id";
        flags[n++] = id_s;
        flags[n++] = "--peers";
        flags[n++] = c->peers;
        flags[n++] = "--shards";
        flags[n++] = shards_s;
        if (replication_factor > 0) {
            flags[n++] = "--replication-factor";
            flags[n++] = rf_s;
        }
        for (unsigned k = 0; extra != NULL && extra[k] != NULL; k++) {
            WEFT_ASSERT(n + 1 < WEFTD_EXTRA_ARGS_MAX);
            flags[n++] = extra[k];
        }
        flags[n] = NULL;
        if (weftd_prepare(&c->node[i], listen[i], raft[i], flags) != 0) return -1;
    }
    for (unsigned i = 0; i < nodes; i++) {
        if (weftd_spawn(&c->node[i]) != 0) return -1;
    }
    return hc_wait_ready(c, HC_READY_TIMEOUT_MS);
}

/* A client for status checks of one node: one quick attempt. */
static int hc_open_quick(const char *address, weft_client **out, weft_err *err) {
    weft_client_opts o = {
        .client_name = "hc-status",
        .connect_timeout_ms = 500,
        .call_timeout_ms = 2000,
        .no_retries = true,
    };
    return weft_client_open(address, &o, out, err);
}

int hc_status(const hc_cluster *c, unsigned id, weft_cluster_status_resp *resp,
              weft_response *holder, weft_err *err) {
    weft_client *cl = NULL;
    int rc = hc_open_quick(hc_address(c, id), &cl, err);
    if (rc == 0) rc = weft_client_cluster_status(cl, resp, holder, err);
    if (rc == 0 && resp->node_id != id) {
        rc = weft_err_set(err, WEFT_E_INTERNAL, "", "%s answered as node %llu, not node %u",
                          hc_address(c, id), (unsigned long long)resp->node_id, id);
    }
    weft_client_close(cl);
    return rc;
}

int hc_wait_answers(hc_cluster *c, unsigned id, uint32_t timeout_ms) {
    uint64_t deadline = weft_mono_ms() + timeout_ms;
    weft_err err;
    weft_err_clear(&err);
    for (;;) {
        if (!hc_alive(c, id)) {
            fprintf(stderr, "node %u exited (status %d)\n", id,
                    proc_exit_code(hc_node(c, id)->proc.last_status));
            weftd_print_stderr(hc_node(c, id), WEFTD_STDERR_TAIL_LINES);
            return -1;
        }
        weft_cluster_status_resp s;
        weft_response h = {0};
        int rc = hc_status(c, id, &s, &h, &err);
        weft_response_free(&h);
        if (rc == 0) return 0;
        if (weft_mono_ms() >= deadline) {
            fprintf(stderr, "node %u at %s does not answer after %u ms (last: %s %s)\n", id,
                    hc_address(c, id), timeout_ms, weft_error_name(err.code), err.message);
            weftd_print_stderr(hc_node(c, id), WEFTD_STDERR_TAIL_LINES);
            return -1;
        }
        weftd_sleep_ms(HC_POLL_MS);
    }
}

/* Each running node's ClusterStatus, summed up per shard: the node that reports itself the
 * ready leader (0 if none), and whether a running node names another leader. */
typedef struct hc_view {
    uint64_t *self_leader; /* [shards] */
    bool *contradicted;    /* [shards] */
    unsigned answered;     /* running nodes that answered */
    unsigned running;      /* running nodes */
    char why[1024];        /* the first reason it is not ready */
} hc_view;

static void hc_view_take(hc_cluster *c, hc_view *v) {
    memset(v->self_leader, 0, c->shards * sizeof *v->self_leader);
    memset(v->contradicted, 0, c->shards * sizeof *v->contradicted);
    v->answered = v->running = 0;
    v->why[0] = '\0';
    /* Reported leaders per node, to check for contradictions once the self-reports are in. */
    uint64_t *seen = calloc((size_t)c->nodes * c->shards, sizeof *seen);
    WEFT_ASSERT(seen != NULL);
    for (unsigned id = 1; id <= c->nodes; id++) {
        if (!hc_alive(c, id)) continue;
        v->running++;
        weft_cluster_status_resp s;
        weft_response h = {0};
        weft_err err;
        if (hc_status(c, id, &s, &h, &err) != 0) {
            if (v->why[0] == '\0')
                snprintf(v->why, sizeof v->why, "node %u: %s %s", id, weft_error_name(err.code),
                         err.message);
            weft_response_free(&h);
            continue;
        }
        v->answered++;
        for (uint32_t k = 0; k < s.shards_count; k++) {
            const weft_shard_info *si = &s.shards[k];
            if (si->shard_id >= c->shards) continue;
            seen[(size_t)(id - 1) * c->shards + si->shard_id] = si->leader_node;
            if (si->leader_node == id && si->ready) v->self_leader[si->shard_id] = id;
        }
        weft_response_free(&h);
    }
    for (uint32_t sh = 0; sh < c->shards; sh++) {
        uint64_t l = v->self_leader[sh];
        for (unsigned id = 1; l != 0 && id <= c->nodes; id++) {
            uint64_t other = seen[(size_t)(id - 1) * c->shards + sh];
            if (other != 0 && other != l) v->contradicted[sh] = true;
        }
    }
    free(seen);
}

int hc_wait_ready(hc_cluster *c, uint32_t timeout_ms) {
    uint64_t deadline = weft_mono_ms() + timeout_ms;
    hc_view v = {
        .self_leader = calloc(c->shards, sizeof(uint64_t)),
        .contradicted = calloc(c->shards, sizeof(bool)),
    };
    WEFT_ASSERT(v.self_leader != NULL && v.contradicted != NULL);
    int rc = -1;
    for (;;) {
        for (unsigned id = 1; id <= c->nodes; id++) {
            weftd *w = hc_node(c, id);
            if (w->proc.pid != 0 && !hc_alive(c, id)) {
                fprintf(stderr, "node %u exited (status %d)\n", id,
                        proc_exit_code(w->proc.last_status));
                weftd_print_stderr(w, WEFTD_STDERR_TAIL_LINES);
                goto done;
            }
        }
        hc_view_take(c, &v);
        bool ready = v.running > 0 && v.answered == v.running;
        for (uint32_t sh = 0; ready && sh < c->shards; sh++) {
            if (v.self_leader[sh] == 0) {
                snprintf(v.why, sizeof v.why, "shard %u has no ready leader", sh);
                ready = false;
            } else if (v.contradicted[sh]) {
                snprintf(v.why, sizeof v.why, "the nodes disagree on the leader of shard %u", sh);
                ready = false;
            }
        }
        if (ready) {
            rc = 0;
            goto done;
        }
        if (weft_mono_ms() >= deadline) {
            fprintf(stderr, "cluster not ready after %u ms: %s\n", timeout_ms, v.why);
            hc_print_stderr(c, WEFTD_STDERR_TAIL_LINES);
            goto done;
        }
        weftd_sleep_ms(HC_POLL_MS);
    }
done:
    free(v.self_leader);
    free(v.contradicted);
    return rc;
}

uint64_t hc_leader(hc_cluster *c, uint32_t shard) {
    WEFT_ASSERT(shard < c->shards);
    for (unsigned id = 1; id <= c->nodes; id++) {
        if (!hc_alive(c, id)) continue;
        weft_cluster_status_resp s;
        weft_response h = {0};
        weft_err err;
        bool leads = false;
        if (hc_status(c, id, &s, &h, &err) == 0) {
            for (uint32_t k = 0; k < s.shards_count; k++) {
                const weft_shard_info *si = &s.shards[k];
                if (si->shard_id == shard && si->leader_node == id && si->ready) leads = true;
            }
        }
        weft_response_free(&h);
        if (leads) return id;
    }
    return 0;
}

int hc_shard_replicas(hc_cluster *c, unsigned via, uint32_t shard, unsigned *ids, unsigned cap,
                      unsigned *count) {
    weft_cluster_status_resp s;
    weft_response h = {0};
    weft_err err;
    weft_err_clear(&err);
    *count = 0;
    if (hc_status(c, via, &s, &h, &err) != 0) {
        fprintf(stderr, "ClusterStatus from node %u: %s\n", via, err.message);
        weft_response_free(&h);
        return -1;
    }
    for (uint32_t k = 0; k < s.shards_count; k++) {
        if (s.shards[k].shard_id != shard) continue;
        for (uint32_t j = 0; j < s.shards[k].replicas_count && *count < cap; j++)
            ids[(*count)++] = (unsigned)s.shards[k].replicas[j].node_id;
    }
    weft_response_free(&h);
    return 0;
}

uint64_t hc_wait_leader(hc_cluster *c, uint32_t shard, uint32_t timeout_ms) {
    uint64_t deadline = weft_mono_ms() + timeout_ms;
    for (;;) {
        uint64_t l = hc_leader(c, shard);
        if (l != 0 || weft_mono_ms() >= deadline) return l;
        weftd_sleep_ms(HC_POLL_MS);
    }
}

void hc_kill9(hc_cluster *c, unsigned id) {
    weftd_kill9(hc_node(c, id));
}

int hc_restart(hc_cluster *c, unsigned id) {
    weftd *w = hc_node(c, id);
    if (w->proc.pid != 0) {
        fprintf(stderr, "hc_restart: node %u still running (pid %d)\n", id, (int)w->proc.pid);
        return -1;
    }
    if (weftd_spawn(w) != 0) return -1;
    if (hc_wait_answers(c, id, HC_READY_TIMEOUT_MS) != 0) return -1;
    return hc_wait_ready(c, HC_READY_TIMEOUT_MS);
}

int hc_stop(hc_cluster *c, unsigned id) {
    return weftd_stop(hc_node(c, id));
}

int hc_stop_all(hc_cluster *c) {
    int first = 0;
    for (unsigned id = 1; id <= c->nodes; id++) {
        if (c->node[id - 1].proc.pid == 0) continue;
        int code = hc_stop(c, id);
        if (code != 0) fprintf(stderr, "node %u exited with %d after SIGTERM\n", id, code);
        if (code != 0 && first == 0) first = code;
    }
    return first;
}

int hc_client(const hc_cluster *c, const char *name, weft_client **out) {
    return weftd_client_at(c->addresses, name, out);
}

int hc_node_client(const hc_cluster *c, unsigned id, const char *name, weft_client **out) {
    int rc = weftd_client_at(hc_address(c, id), name, out);
    if (rc != 0) return rc;
    /* Learn the node ids now, so that calls pinned to node `id` (weft_client_poll_*_on) know it. */
    weft_err err;
    uint32_t count = 0;
    rc = weft_client_nodes(*out, true, NULL, 0, &count, &err);
    if (rc != 0) {
        fprintf(stderr, "node %u: topology: %s %s\n", id, weft_error_name(rc), err.message);
        weft_client_close(*out);
        *out = NULL;
    }
    return rc;
}

int hc_call_seed(weft_client *c, uint32_t msg_type, const void *req, void *resp,
                 weft_response *holder, weft_err *err) {
    const weft_op *op = weft_op_find(msg_type);
    if (op == NULL) return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "unknown msg type");
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (weft_schema_encode_buf(op->req_schema, req, &body, &body_len) != 0) {
        return weft_err_set(err, WEFT_E_INTERNAL, "", "cannot encode the request");
    }
    client_conn *conn = NULL;
    int rc = client_pool_get(c, 0, &conn, err); /* node 0: the first seed */
    if (rc == 0) {
        client_outcome o;
        rc = client_exchange(c, conn, msg_type, (const char *)body, body_len, c->call_timeout_ms,
                             op->resp_schema, resp, holder, &o, err);
        if (o.conn_broken) {
            client_pool_discard(conn);
        } else {
            client_pool_put(c, conn);
        }
    }
    free(body);
    return rc;
}

int hc_capture_stale(weft_client *c, const char *workflow_id, const char *run_id, wk_capture *cap,
                     weft_err *err) {
    WEFT_ASSERT(cap->describe == NULL && cap->history == NULL);
    weft_describe_req q = {
        .workflow_id = weft_str_c(workflow_id),
        .run_id = weft_str_c(run_id),
        .consistency = WEFT_CONSISTENCY_STALE,
    };
    weft_describe_resp d;
    weft_response h = {0};
    int rc = hc_call_seed(c, WEFT_MSG_DESCRIBE_WORKFLOW, &q, &d, &h, err);
    if (rc == 0 && weft_schema_encode_buf(&weft_describe_resp_schema, &d, &cap->describe,
                                          &cap->describe_len) != 0) {
        rc = weft_err_set(err, WEFT_E_INTERNAL, "", "cannot encode the describe response");
    }
    weft_response_free(&h);
    /* The history, page by page, into a wk_history (events borrow from its page holders). */
    wk_history hist;
    memset(&hist, 0, sizeof hist);
    uint64_t next = 1;
    while (rc == 0) {
        if (hist.pages_count == WK_HISTORY_PAGES_MAX) {
            rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "history too long");
            break;
        }
        weft_history_req hq = {
            .workflow_id = weft_str_c(workflow_id),
            .run_id = weft_str_c(run_id),
            .first_event_id = next,
            .consistency = WEFT_CONSISTENCY_STALE,
        };
        weft_history_resp page;
        rc =
            hc_call_seed(c, WEFT_MSG_GET_HISTORY, &hq, &page, &hist.pages[hist.pages_count++], err);
        if (rc != 0 || page.events_count == 0) break;
        weft_event *grown = realloc(hist.events, (hist.count + page.events_count) * sizeof *grown);
        WEFT_ASSERT(grown != NULL);
        hist.events = grown;
        memcpy(hist.events + hist.count, page.events, page.events_count * sizeof *grown);
        hist.count += page.events_count;
        hist.closed = page.closed;
        if (page.next_event_id <= next) break;
        next = page.next_event_id;
    }
    if (rc == 0 && wk_history_encode(&hist, &cap->history, &cap->history_len) != 0) {
        rc = weft_err_set(err, WEFT_E_INTERNAL, "", "cannot encode the history");
    }
    wk_history_free(&hist);
    return rc;
}

void hc_print_stderr(const hc_cluster *c, unsigned lines) {
    for (unsigned i = 0; i < c->nodes; i++) {
        fprintf(stderr, "==== node %u (%s) ====\n", i + 1, c->node[i].listen);
        weftd_print_stderr(&c->node[i], lines);
    }
}

void hc_destroy(hc_cluster *c) {
    for (unsigned i = 0; i < c->nodes; i++)
        weftd_destroy(&c->node[i]);
    c->nodes = 0;
}

/* The index of shard `s` in a status response, or UINT32_MAX when it is not listed. */
static uint32_t hc_shard_index(const weft_cluster_status_resp *st, uint32_t s) {
    for (uint32_t k = 0; k < st->shards_count; k++) {
        if (st->shards[k].shard_id == s) return k;
    }
    return UINT32_MAX;
}

int hc_wait_caught_up(hc_cluster *c, unsigned id, uint32_t timeout_ms) {
    uint64_t *target = calloc(c->shards, sizeof *target);
    if (target == NULL) return -1;
    int rc = 0;
    for (uint32_t s = 0; s < c->shards && rc == 0; s++) {
        uint64_t l = hc_wait_leader(c, s, timeout_ms);
        weft_cluster_status_resp st;
        weft_response h = {0};
        weft_err err;
        if (l == 0 || hc_status(c, (unsigned)l, &st, &h, &err) != 0) {
            fprintf(stderr, "hc_wait_caught_up: no leader status for shard %u\n", s);
            rc = -1;
        } else {
            uint32_t k = hc_shard_index(&st, s);
            if (k != UINT32_MAX) target[s] = st.shards[k].commit_index;
        }
        weft_response_free(&h);
    }
    uint64_t deadline = weft_mono_ms() + timeout_ms;
    while (rc == 0) {
        weft_cluster_status_resp st;
        weft_response h = {0};
        weft_err err;
        bool done = hc_status(c, id, &st, &h, &err) == 0;
        uint32_t lagging = 0;
        for (uint32_t s = 0; done && s < c->shards; s++) {
            uint32_t k = hc_shard_index(&st, s);
            if (k == UINT32_MAX || st.shards[k].applied_index < target[s]) {
                done = false;
                lagging = s;
            }
        }
        weft_response_free(&h);
        if (done) break;
        if (weft_mono_ms() >= deadline) {
            fprintf(stderr, "hc_wait_caught_up: node %u has not caught up on shard %u\n", id,
                    lagging);
            rc = -1;
            break;
        }
        weftd_sleep_ms(100);
    }
    free(target);
    return rc;
}
