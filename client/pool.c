/* pool.c: the client's nodes and their idle connections, the Hello every new connection sends
 * first, and the topology its reply carries (DESIGN section 10, "Hello first", "Routing"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_internal.h"

uint32_t client_node_canonical(const weft_client *c, uint32_t index) {
    WEFT_ASSERT(index < c->nodes_count);
    /* Aliases point at entries that were canonical when merged; chains stay short and acyclic
     * because only two canonical entries are ever merged. */
    for (uint32_t hops = 0; c->nodes[index].alias_of != UINT32_MAX; hops++) {
        WEFT_ASSERT(hops < c->nodes_count);
        index = c->nodes[index].alias_of;
        WEFT_ASSERT(index < c->nodes_count);
    }
    return index;
}

uint32_t client_node_by_id(const weft_client *c, uint64_t node_id) {
    if (node_id == 0) return UINT32_MAX;
    for (uint32_t i = 0; i < c->nodes_count; i++) {
        if (c->nodes[i].alias_of == UINT32_MAX && c->nodes[i].node_id == node_id) return i;
    }
    return UINT32_MAX;
}

/* Gives canonical entry `i` the id `node_id`. If another canonical entry already has that id,
 * the two are one node seen under two addresses (a seed written as "localhost:7400" that the
 * topology calls "127.0.0.1:7400"): the one whose address answered a Hello stays (else the
 * older), and the other becomes its alias. Returns the entry that stands for the node. */
static uint32_t node_set_id(weft_client *c, uint32_t i, uint64_t node_id) {
    WEFT_ASSERT(i < c->nodes_count && c->nodes[i].alias_of == UINT32_MAX);
    if (node_id == 0) return i;
    uint32_t other = client_node_by_id(c, node_id);
    c->nodes[i].node_id = node_id;
    if (other == UINT32_MAX || other == i) return i;
    client_node *a = &c->nodes[i], *b = &c->nodes[other];
    bool keep_i = a->answered != b->answered ? a->answered : i < other;
    uint32_t keep = keep_i ? i : other;
    uint32_t drop = keep_i ? other : i;
    c->nodes[keep].up = c->nodes[keep].up || c->nodes[drop].up;
    c->nodes[drop].alias_of = keep;
    /* The dropped entry's idle connections still reach the same node; they stay pooled there
     * (used by a call that routed to it before the merge) and are closed with the client. */
    if (c->preferred_node == drop) c->preferred_node = keep;
    return keep;
}

uint32_t client_node_add(weft_client *c, const char *address, uint64_t node_id) {
    WEFT_ASSERT(c != NULL && address != NULL);
    WEFT_ASSERT(c->nodes_count <= WEFT_CLIENT_NODES_MAX);
    for (uint32_t i = 0; i < c->nodes_count; i++) {
        if (strcmp(c->nodes[i].address, address) == 0) {
            return node_set_id(c, client_node_canonical(c, i), node_id);
        }
    }
    /* A node known under another address (the seed as the user wrote it) keeps that entry and
     * that address: the node is one entry, and an address that answered is not replaced by
     * one that only the topology vouches for. */
    uint32_t known = client_node_by_id(c, node_id);
    if (known != UINT32_MAX) return known;
    if (c->nodes_count == WEFT_CLIENT_NODES_MAX) return UINT32_MAX;
    if (strlen(address) >= WEFT_CLIENT_ADDRESS_BYTES_MAX || address[0] == '\0') return UINT32_MAX;
    client_node *n = &c->nodes[c->nodes_count];
    memset(n, 0, sizeof *n);
    n->node_id = node_id;
    n->alias_of = UINT32_MAX;
    snprintf(n->address, sizeof n->address, "%s", address);
    return c->nodes_count++;
}

uint32_t client_node_answered(weft_client *c, uint32_t index, uint64_t node_id) {
    WEFT_ASSERT(c != NULL && index < c->nodes_count);
    c->nodes[index].answered = true;
    c->nodes[index].up = true;
    uint32_t i = client_node_canonical(c, index);
    if (i != index) return i; /* already merged into another entry; nothing to learn */
    return node_set_id(c, i, node_id);
}

void client_topology_update(weft_client *c, const weft_hello_resp *hello) {
    WEFT_ASSERT(c != NULL && hello != NULL);
    weft_str_copy(c->cluster_id, sizeof c->cluster_id, hello->cluster_id);
    for (uint32_t i = 0; i < hello->nodes_count; i++) {
        char addr[WEFT_CLIENT_ADDRESS_BYTES_MAX];
        if (hello->nodes[i].address.len == 0 || hello->nodes[i].address.len >= sizeof addr) {
            continue; /* a node without a usable address is only reachable via forwarding */
        }
        weft_str_copy(addr, sizeof addr, hello->nodes[i].address);
        uint32_t idx = client_node_add(c, addr, hello->nodes[i].node_id);
        if (idx != UINT32_MAX) c->nodes[idx].up = hello->nodes[i].up;
    }
    uint32_t count = hello->shard_count;
    if (count == 0 || count > WEFT_SHARDS_MAX) return; /* keep the previous routing */
    if (count != c->shard_count) {
        uint64_t *leaders = calloc(count, sizeof *leaders);
        if (leaders == NULL) return; /* routing falls back to any node: still correct */
        free(c->shard_leaders);
        c->shard_leaders = leaders;
        c->shard_count = count;
    }
    /* A node names the leaders of the shards it holds a replica of, and 0 for the others
     * (and for a shard mid-election): 0 says "I do not know", so it never erases a leader
     * learned from another node. A stale leader costs one NOT_LEADER or forward at most. */
    for (uint32_t i = 0; i < hello->shards_count; i++) {
        const weft_shard_info *s = &hello->shards[i];
        if (s->shard_id < c->shard_count && s->leader_node != 0)
            c->shard_leaders[s->shard_id] = s->leader_node;
    }
}

bool client_leaders_unknown(const weft_client *c) {
    for (uint32_t i = 0; i < c->shard_count; i++) {
        if (c->shard_leaders[i] == 0) return true;
    }
    return false;
}

/* Sends Hello on a fresh connection and applies its reply to the topology. */
static int pool_hello(weft_client *c, client_conn *conn, const char *address, weft_err *err) {
    weft_hello_req req = {
        .protocol_version = WEFT_PROTOCOL_VERSION,
        .client_name = weft_str_c(c->client_name),
        .token = weft_str_c(c->token),
    };
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (weft_schema_encode_buf(&weft_hello_req_schema, &req, &body, &body_len) != 0) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory encoding Hello");
    }
    weft_response holder = {0};
    weft_hello_resp resp;
    client_outcome out;
    int rc =
        client_exchange(c, conn, WEFT_MSG_HELLO, (const char *)body, body_len,
                        c->connect_timeout_ms, &weft_hello_resp_schema, &resp, &holder, &out, err);
    free(body);
    if (rc == 0) {
        pthread_mutex_lock(&c->mu);
        /* The answering entry learns its id first, so that the topology's entry for the same
         * node (perhaps under another address) merges into it rather than the other way. */
        WEFT_ASSERT(conn->node_index < c->nodes_count);
        (void)client_node_answered(c, conn->node_index, resp.node_id);
        client_topology_update(c, &resp);
        pthread_mutex_unlock(&c->mu);
        conn->node_id = resp.node_id;
    } else {
        weft_err_prefix(err, "Hello to %s", address);
    }
    weft_response_free(&holder);
    return rc;
}

int client_pool_get(weft_client *c, uint32_t node_index, client_conn **out, weft_err *err) {
    WEFT_ASSERT(c != NULL && out != NULL);
    char address[WEFT_CLIENT_ADDRESS_BYTES_MAX];
    pthread_mutex_lock(&c->mu);
    WEFT_ASSERT(node_index < c->nodes_count);
    client_node *n = &c->nodes[node_index];
    if (n->idle_count > 0) {
        *out = n->idle[--n->idle_count];
        pthread_mutex_unlock(&c->mu);
        WEFT_ASSERT((*out)->node_index == node_index);
        return 0;
    }
    memcpy(address, n->address, sizeof address);
    pthread_mutex_unlock(&c->mu);

    client_conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory for a connection");
    }
    conn->node_index = node_index;
    conn->next_frame_id = 1;
    int rc = client_conn_dial(address, c->connect_timeout_ms, &conn->fd, err);
    if (rc != 0) {
        free(conn);
        return rc;
    }
    rc = pool_hello(c, conn, address, err);
    if (rc != 0) {
        client_pool_discard(conn);
        return rc;
    }
    *out = conn;
    return 0;
}

void client_pool_put(weft_client *c, client_conn *conn) {
    WEFT_ASSERT(c != NULL && conn != NULL && conn->fd >= 0);
    pthread_mutex_lock(&c->mu);
    WEFT_ASSERT(conn->node_index < c->nodes_count);
    client_node *n = &c->nodes[conn->node_index];
    if (n->idle_count < WEFT_CLIENT_IDLE_CONNS_PER_NODE_MAX) {
        n->idle[n->idle_count++] = conn;
        conn = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (conn != NULL) client_pool_discard(conn);
}

void client_pool_discard(client_conn *conn) {
    if (conn == NULL) return;
    if (conn->fd >= 0) close(conn->fd);
    free(conn);
}

void client_pool_drain(weft_client *c, uint32_t node_index) {
    WEFT_ASSERT(c != NULL);
    client_conn *drained[WEFT_CLIENT_IDLE_CONNS_PER_NODE_MAX];
    uint32_t count = 0;
    pthread_mutex_lock(&c->mu);
    WEFT_ASSERT(node_index < c->nodes_count);
    client_node *n = &c->nodes[node_index];
    count = n->idle_count;
    memcpy(drained, n->idle, count * sizeof drained[0]);
    n->idle_count = 0;
    pthread_mutex_unlock(&c->mu);
    /* Sockets are closed outside the lock: close(2) may block on lingering data. */
    for (uint32_t i = 0; i < count; i++)
        client_pool_discard(drained[i]);
}
