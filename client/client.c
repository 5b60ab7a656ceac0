/* client.c: the client object's lifecycle: options, the seed list, the first Hello, close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "client_internal.h"

/* Fills the resolved options from `opts` (NULL = all defaults). */
static void client_apply_opts(weft_client *c, const weft_client_opts *opts) {
    weft_client_opts none = {0};
    if (opts == NULL) opts = &none;
    c->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                     : WEFT_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
    c->call_timeout_ms =
        opts->call_timeout_ms ? opts->call_timeout_ms : WEFT_CLIENT_CALL_TIMEOUT_MS_DEFAULT;
    c->retries_max = opts->retries_max ? opts->retries_max : WEFT_CLIENT_RETRIES_DEFAULT;
    if (opts->no_retries) c->retries_max = 0;
    c->call_deadline_ms =
        opts->call_deadline_ms ? opts->call_deadline_ms : WEFT_CLIENT_CALL_DEADLINE_MS_DEFAULT;
    c->backoff_initial_ms = opts->backoff_initial_ms ? opts->backoff_initial_ms
                                                     : WEFT_CLIENT_BACKOFF_INITIAL_MS_DEFAULT;
    c->backoff_max_ms =
        opts->backoff_max_ms ? opts->backoff_max_ms : WEFT_CLIENT_BACKOFF_MAX_MS_DEFAULT;
    if (c->backoff_max_ms < c->backoff_initial_ms) c->backoff_max_ms = c->backoff_initial_ms;
    c->frame_bytes_max =
        opts->frame_bytes_max ? opts->frame_bytes_max : WEFT_FRAME_BYTES_MAX_DEFAULT;
    snprintf(c->client_name, sizeof c->client_name, "%s",
             opts->client_name ? opts->client_name : "libweft");
    if (opts->identity != NULL) {
        snprintf(c->identity, sizeof c->identity, "%s", opts->identity);
    } else {
        char host[128] = "unknown-host";
        (void)gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(c->identity, sizeof c->identity, "%s:%ld", host, (long)getpid());
    }
    snprintf(c->token, sizeof c->token, "%s", opts->token ? opts->token : "");
    weft_limits_default(&c->limits);
    c->limits.frame_bytes_max = c->frame_bytes_max;
    /* Replies may carry whatever the server's frame allows; the decoder's payload cap must not
     * be stricter than the frame cap the caller chose. */
    if (c->limits.payload_bytes_max < c->frame_bytes_max) {
        c->limits.payload_bytes_max = c->frame_bytes_max;
    }
}

/* Splits the comma-separated seed list into c->nodes. */
static int client_parse_seeds(weft_client *c, const char *addresses, weft_err *err) {
    const char *p = addresses;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (*p == ' ')) {
            p++;
            len--;
        }
        if (len == 0 || len >= WEFT_CLIENT_ADDRESS_BYTES_MAX) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "addresses",
                                "addresses '%s' has an empty or too long entry; write "
                                "host:port[,host:port...]",
                                addresses);
        }
        char addr[WEFT_CLIENT_ADDRESS_BYTES_MAX];
        memcpy(addr, p, len);
        addr[len] = '\0';
        if (client_node_add(c, addr, 0) == UINT32_MAX) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "addresses",
                                "more than %u addresses; list a few seeds, the client learns "
                                "the other nodes from the topology",
                                WEFT_CLIENT_NODES_MAX);
        }
        p += len;
        if (*p == ',') p++;
    }
    c->seeds_count = c->nodes_count;
    if (c->seeds_count == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "addresses",
                            "no address given; pass host:port, e.g. 127.0.0.1:7400");
    }
    return 0;
}

/* Connects to the seeds in turn, with backoff between rounds, until one answers Hello. */
static int client_first_hello(weft_client *c, weft_err *err) {
    int rc = -WEFT_E_UNAVAILABLE;
    for (uint32_t round = 0; round <= c->retries_max; round++) {
        if (round > 0) {
            uint64_t delay = (uint64_t)c->backoff_initial_ms << WEFT_MIN(round - 1, 20u);
            usleep((useconds_t)WEFT_MIN(delay, (uint64_t)c->backoff_max_ms) * 1000u);
        }
        for (uint32_t i = 0; i < c->seeds_count; i++) {
            client_conn *conn = NULL;
            rc = client_pool_get(c, i, &conn, err);
            if (rc == 0) {
                c->preferred_node = i;
                client_pool_put(c, conn);
                return 0;
            }
            if (rc != -WEFT_E_UNAVAILABLE && rc != -WEFT_E_DEADLINE_EXCEEDED) return rc;
        }
    }
    return rc;
}

int client_new(const char *addresses, const weft_client_opts *opts, weft_client **out,
               weft_err *err) {
    WEFT_ASSERT(addresses != NULL && out != NULL);
    *out = NULL;
    weft_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory for the client");
    }
    int rc = pthread_mutex_init(&c->mu, NULL);
    if (rc != 0) {
        free(c);
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "pthread_mutex_init failed");
    }
    client_apply_opts(c, opts);
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = weft_mono_ms();
    c->rng_state = seed | 1u;
    rc = client_parse_seeds(c, addresses, err);
    if (rc != 0) {
        weft_client_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* A node's Hello names the leaders of the shards it holds a replica of only. With more nodes
 * than the replication factor some shards stay unknown, and their calls would go to whichever
 * node answered last: forwarded there, one hop longer, and failing whenever that node is slow
 * or paused although the shard itself is healthy. One ClusterStatus, which the node that just
 * answered gathers from every node (each names the shards it leads), fills them in. Best
 * effort, and one attempt only, to that node, so that opening a client in a degraded cluster
 * waits at most one call timeout for it: on failure, calls still reach the leaders through
 * forwarding and NOT_LEADER. */
static void client_learn_leaders(weft_client *c) {
    pthread_mutex_lock(&c->mu);
    bool unknown = c->nodes_count > 1 && client_leaders_unknown(c);
    uint64_t node_id = c->nodes[client_node_canonical(c, c->preferred_node)].node_id;
    pthread_mutex_unlock(&c->mu);
    if (!unknown || node_id == 0) return;
    weft_cluster_status_req req = {0};
    weft_cluster_status_resp resp;
    weft_response holder = {0};
    weft_err err;
    weft_err_clear(&err);
    if (client_call_on(c, node_id, WEFT_MSG_CLUSTER_STATUS, &req, &resp, &holder, &err) == 0) {
        pthread_mutex_lock(&c->mu);
        client_topology_update(c, &resp);
        pthread_mutex_unlock(&c->mu);
    }
    weft_response_free(&holder);
}

int weft_client_open(const char *addresses, const weft_client_opts *opts, weft_client **out,
                     weft_err *err) {
    if (addresses == NULL || out == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, addresses ? "out" : "addresses",
                            "weft_client_open needs an address list and an out pointer");
    }
    *out = NULL;
    weft_client *c = NULL;
    int rc = client_new(addresses, opts, &c, err);
    if (rc == 0) rc = client_first_hello(c, err);
    if (rc != 0) {
        weft_client_close(c);
        return rc;
    }
    client_learn_leaders(c);
    *out = c;
    return 0;
}

void weft_client_close(weft_client *c) {
    if (c == NULL) return;
    for (uint32_t i = 0; i < c->nodes_count; i++) {
        client_node *n = &c->nodes[i];
        WEFT_ASSERT(n->idle_count <= WEFT_CLIENT_IDLE_CONNS_PER_NODE_MAX);
        for (uint32_t k = 0; k < n->idle_count; k++)
            client_pool_discard(n->idle[k]);
        n->idle_count = 0;
    }
    free(c->shard_leaders);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int weft_client_cluster_id(weft_client *c, char *buf, size_t cap, weft_err *err) {
    if (c == NULL || buf == NULL || cap == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "buf",
                            "weft_client_cluster_id needs a client and a non-empty buffer");
    }
    pthread_mutex_lock(&c->mu);
    snprintf(buf, cap, "%s", c->cluster_id);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int weft_client_nodes(weft_client *c, bool refresh, weft_node_ref *out, uint32_t cap,
                      uint32_t *count, weft_err *err) {
    if (c == NULL || count == NULL || (out == NULL && cap > 0)) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT,
                            c == NULL ? "c"
                            : count   ? "out"
                                      : "count",
                            "weft_client_nodes needs a client, a count pointer, and an array "
                            "unless cap is 0");
    }
    *count = 0;
    if (refresh) {
        weft_response h = {0};
        weft_cluster_status_resp status;
        int rc = weft_client_cluster_status(c, &status, &h, err);
        weft_response_free(&h);
        if (rc != 0) return rc;
    }
    weft_node_ref all[WEFT_CLIENT_NODES_MAX];
    uint32_t n = 0;
    pthread_mutex_lock(&c->mu);
    for (uint32_t i = 0; i < c->nodes_count; i++) {
        const client_node *node = &c->nodes[i];
        if (node->alias_of != UINT32_MAX || node->node_id == 0) continue;
        WEFT_ASSERT(n < WEFT_CLIENT_NODES_MAX);
        all[n].node_id = node->node_id;
        memcpy(all[n].address, node->address, sizeof all[n].address);
        all[n].up = node->up;
        n++;
    }
    pthread_mutex_unlock(&c->mu);
    /* Ascending id (insertion sort: at most WEFT_CLIENT_NODES_MAX entries); ids are unique
     * among canonical entries. */
    for (uint32_t i = 1; i < n; i++) {
        weft_node_ref x = all[i];
        uint32_t j = i;
        while (j > 0 && all[j - 1].node_id > x.node_id) {
            all[j] = all[j - 1];
            j--;
        }
        all[j] = x;
    }
    for (uint32_t i = 0; i < n && i < cap; i++)
        out[i] = all[i];
    *count = n;
    return 0;
}

uint64_t client_rand(weft_client *c) {
    /* xorshift64: enough to spread retries of many clients; never used for ids. */
    uint64_t x = c->rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng_state = x;
    return x;
}

int weft_request_id_new(char buf[WEFT_CLIENT_REQUEST_ID_BYTES], weft_err *err) {
    if (buf == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "buf", "request id buffer is NULL");
    }
    uint8_t raw[(WEFT_CLIENT_REQUEST_ID_BYTES - 1) / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            return weft_err_set(err, WEFT_E_INTERNAL, "",
                                "getrandom failed while generating a request id");
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 0xF];
    }
    buf[WEFT_CLIENT_REQUEST_ID_BYTES - 1] = '\0';
    return 0;
}
