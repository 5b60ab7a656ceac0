/* placement.c: the peer list, the placement of shard replicas on nodes, and the derived cluster
 * id (DESIGN section 5). Everything here is a pure function of the configuration, so every
 * node of a cluster computes the same placement and the same id without talking to the others. */
#include "placement.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../proto/base.h"

/* Version tag of the text the cluster id hashes: a new layout must give new ids. */
#define PLACEMENT_ID_TEXT_VERSION "weft-cluster-v1"
/* Longest text the cluster id hashes: the tag, two numbers and the canonical peer list. */
#define PLACEMENT_ID_TEXT_BYTES_MAX (WEFTD_PEERS_CANONICAL_BYTES_MAX + 128u)

static bool placement_address_ok(const char *addr) {
    char host[WEFTD_ADDRESS_BYTES_MAX];
    uint16_t port = 0;
    return strlen(addr) < WEFTD_ADDRESS_BYTES_MAX &&
           weft_address_split(addr, host, sizeof host, &port) == 0;
}

/* Copies [p, p + len) without surrounding spaces into out (cap bytes). Returns its length, or
 * -1 when it does not fit. */
static int placement_trim(const char *p, size_t len, char *out, size_t cap) {
    while (len > 0 && (*p == ' ' || *p == '\t'))
        p++, len--;
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len >= cap) return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return (int)len;
}

/* Parses one "ID=CLIENT/RAFT" entry (already trimmed). */
static int placement_entry(const char *entry, unsigned ordinal, weft_cluster_node *node,
                           weft_err *err) {
    const char *eq = strchr(entry, '=');
    const char *slash = eq != NULL ? strchr(eq + 1, '/') : NULL;
    char id_text[24] = "";
    uint64_t id = 0;
    bool ok = eq != NULL && slash != NULL && eq > entry && (size_t)(eq - entry) < sizeof id_text;
    if (ok) {
        memcpy(id_text, entry, (size_t)(eq - entry));
        id_text[eq - entry] = '\0';
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(id_text, &end, 10);
        ok = id_text[0] >= '0' && id_text[0] <= '9' && errno == 0 && *end == '\0' && v > 0;
        id = v;
    }
    size_t client_len = ok ? (size_t)(slash - eq - 1) : 0;
    ok = ok && client_len > 0 && client_len < WEFTD_ADDRESS_BYTES_MAX &&
         strlen(slash + 1) < WEFTD_ADDRESS_BYTES_MAX;
    if (ok) {
        memset(node, 0, sizeof *node);
        node->id = id;
        memcpy(node->client_address, eq + 1, client_len);
        snprintf(node->raft_address, sizeof node->raft_address, "%s", slash + 1);
        ok = placement_address_ok(node->client_address) && placement_address_ok(node->raft_address);
    }
    if (!ok) {
        return weft_err_set(
            err, WEFT_E_INVALID_ARGUMENT, "peers",
            "entry %u (\"%.80s\") must look like ID=CLIENT_HOST:PORT/RAFT_HOST:PORT "
            "with an id > 0, where HOST is an IPv4 address, a host name or (for the client "
            "address) an IPv6 address in brackets, e.g. 1=10.0.0.1:7400/10.0.0.1:7401",
            ordinal, entry);
    }
    return 0;
}

static int placement_node_cmp(const void *a, const void *b) {
    const weft_cluster_node *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

/* Ids unique, and every address (client and raft, of every node) used once. */
static int placement_check_unique(const weft_cluster *c, weft_err *err) {
    for (uint32_t i = 0; i < c->nodes_count; i++) {
        const weft_cluster_node *a = &c->nodes[i];
        if (strcmp(a->client_address, a->raft_address) == 0) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                                "gives node %" PRIu64 " the same client and raft address %s; "
                                "every node needs two ports",
                                a->id, a->client_address);
        }
        if (i > 0 && c->nodes[i - 1].id == a->id) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                                "lists node %" PRIu64 " twice; every node needs its own id", a->id);
        }
        for (uint32_t j = 0; j < i; j++) {
            const weft_cluster_node *b = &c->nodes[j];
            const char *dup = NULL;
            if (strcmp(a->client_address, b->client_address) == 0 ||
                strcmp(a->client_address, b->raft_address) == 0) {
                dup = a->client_address;
            } else if (strcmp(a->raft_address, b->raft_address) == 0 ||
                       strcmp(a->raft_address, b->client_address) == 0) {
                dup = a->raft_address;
            }
            if (dup != NULL) {
                return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                                    "uses address %s for nodes %" PRIu64 " and %" PRIu64
                                    "; every node needs its own client and raft ports",
                                    dup, b->id, a->id);
            }
        }
    }
    return 0;
}

int weft_cluster_parse(weft_cluster *c, const char *text, weft_err *err) {
    WEFT_ASSERT(c != NULL && text != NULL);
    c->nodes_count = 0;
    unsigned ordinal = 0;
    for (const char *p = text; *p != '\0';) {
        const char *start = p;
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char entry[WEFTD_ADDRESS_BYTES_MAX * 2 + 32];
        ordinal++;
        int n = placement_trim(start, len, entry, sizeof entry);
        p += len + (end != NULL ? 1 : 0);
        if (n == 0) continue; /* "a,,b" and a trailing comma are harmless */
        if (c->nodes_count == WEFT_CLUSTER_NODES_MAX) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                                "lists more than %u nodes (WEFT_CLUSTER_NODES_MAX); a weft "
                                "cluster has 1 to %u nodes",
                                WEFT_CLUSTER_NODES_MAX, WEFT_CLUSTER_NODES_MAX);
        }
        if (n < 0) snprintf(entry, sizeof entry, "%.40s...", start);
        int rc = n < 0 ? weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                                      "entry %u (\"%s\") is too long for "
                                      "ID=CLIENT_HOST:PORT/RAFT_HOST:PORT",
                                      ordinal, entry)
                       : placement_entry(entry, ordinal, &c->nodes[c->nodes_count], err);
        if (rc != 0) return rc;
        c->nodes_count++;
    }
    if (c->nodes_count == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "peers",
                            "is empty; list every node as ID=CLIENT_HOST:PORT/RAFT_HOST:PORT, "
                            "comma-separated, or leave it out for a single node");
    }
    qsort(c->nodes, c->nodes_count, sizeof c->nodes[0], placement_node_cmp);
    return placement_check_unique(c, err);
}

uint32_t weft_cluster_index_of(const weft_cluster *c, uint64_t id) {
    WEFT_ASSERT(c != NULL && c->nodes_count <= WEFT_CLUSTER_NODES_MAX);
    for (uint32_t i = 0; i < c->nodes_count; i++) {
        if (c->nodes[i].id == id) return i;
    }
    return UINT32_MAX;
}

const weft_cluster_node *weft_cluster_node_by_id(const weft_cluster *c, uint64_t id) {
    uint32_t i = weft_cluster_index_of(c, id);
    return i == UINT32_MAX ? NULL : &c->nodes[i];
}

uint32_t weft_replication_factor_default(uint32_t nodes_count) {
    WEFT_ASSERT(nodes_count >= 1 && nodes_count <= WEFT_CLUSTER_NODES_MAX);
    return WEFT_MIN(nodes_count, WEFT_REPLICATION_FACTOR_DEFAULT_MAX);
}

uint32_t weft_placement_node(uint32_t shard, uint32_t j, uint32_t nodes_count) {
    WEFT_ASSERT(nodes_count >= 1 && j < nodes_count);
    uint32_t node = (uint32_t)(((uint64_t)shard + j) % nodes_count);
    WEFT_ASSERT(node < nodes_count);
    return node;
}

uint32_t weft_placement_preferred(uint32_t shard, uint32_t nodes_count) {
    return weft_placement_node(shard, 0, nodes_count);
}

bool weft_placement_hosts(uint32_t shard, uint32_t node_index, uint32_t nodes_count, uint32_t rf) {
    WEFT_ASSERT(nodes_count >= 1 && node_index < nodes_count);
    WEFT_ASSERT(rf >= 1 && rf <= nodes_count);
    /* Node k holds shard i when k = (i + j) mod N for some j < R, i.e. (k - i) mod N < R. */
    uint32_t j =
        (uint32_t)(((uint64_t)node_index + nodes_count - shard % nodes_count) % nodes_count);
    return j < rf;
}

int weft_cluster_canonical(const weft_cluster *c, char *out, size_t cap) {
    WEFT_ASSERT(c != NULL && out != NULL && cap > 0);
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < c->nodes_count; i++) {
        WEFT_ASSERT(i == 0 || c->nodes[i - 1].id < c->nodes[i].id); /* sorted, unique */
        int n = snprintf(out + used, cap - used, "%s%" PRIu64 "=%s", i > 0 ? "," : "",
                         c->nodes[i].id, c->nodes[i].raft_address);
        if (n < 0 || (size_t)n >= cap - used) return -1;
        used += (size_t)n;
    }
    return 0;
}

void weft_cluster_id_derive(const weft_cluster *c, uint32_t shards, char *out, size_t cap) {
    WEFT_ASSERT(c != NULL && out != NULL && cap > WEFTD_CLUSTER_ID_HEX_BYTES);
    WEFT_ASSERT(shards > 0 && c->replication_factor >= 1);
    char peers[WEFTD_PEERS_CANONICAL_BYTES_MAX];
    int rc = weft_cluster_canonical(c, peers, sizeof peers);
    WEFT_ASSERT(rc == 0); /* sized for WEFT_CLUSTER_NODES_MAX maximal entries */
    char text[PLACEMENT_ID_TEXT_BYTES_MAX];
    int n = snprintf(text, sizeof text, "%s\nshards=%u\nreplication_factor=%u\npeers=%s\n",
                     PLACEMENT_ID_TEXT_VERSION, shards, c->replication_factor, peers);
    WEFT_ASSERT(n > 0 && (size_t)n < sizeof text);
    XXH128_hash_t h = XXH3_128bits(text, (size_t)n);
    snprintf(out, cap, "%016" PRIx64 "%016" PRIx64, (uint64_t)h.high64, (uint64_t)h.low64);
    WEFT_ASSERT(strlen(out) == WEFTD_CLUSTER_ID_HEX_BYTES);
}
