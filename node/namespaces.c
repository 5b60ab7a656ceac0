/* namespaces.c: the check that a request's namespace is registered, with the node's cache of
 * registered names (namespaces.h). */
#include "namespaces.h"

#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "conn.h"
#include "forward.h"
#include "replica.h"
#include "req.h"

_Static_assert(WEFT_CLUSTER_NODES_MAX <= 32, "weft_req.ns_asked has a bit per member");

struct weft_ns_cache {
    char *names[WEFTD_NS_CACHE_MAX]; /* malloc'd, NUL-terminated */
    uint32_t count;
};

static bool ns_cached(const weft_node *n, weft_str ns) {
    const struct weft_ns_cache *c = n->ns_cache;
    if (c == NULL) return false;
    for (uint32_t i = 0; i < c->count; i++) {
        if (weft_str_eq_c(ns, c->names[i])) return true;
    }
    return false;
}

static void ns_cache_add(weft_node *n, const char *ns) {
    if (n->ns_cache == NULL) {
        n->ns_cache = calloc(1, sizeof *n->ns_cache);
        if (n->ns_cache == NULL) return; /* a cache is an optimisation: look it up next time */
    }
    struct weft_ns_cache *c = n->ns_cache;
    if (c->count >= WEFTD_NS_CACHE_MAX || ns_cached(n, weft_str_c(ns))) return;
    char *copy = strdup(ns);
    if (copy != NULL) c->names[c->count++] = copy;
}

void weft_namespaces_free(weft_node *n) {
    if (n->ns_cache == NULL) return;
    for (uint32_t i = 0; i < n->ns_cache->count; i++)
        free(n->ns_cache->names[i]);
    free(n->ns_cache);
    n->ns_cache = NULL;
}

/* The DescribeNamespace body for r->ns_checked; *out is malloc'd. */
static int ns_describe_body(const weft_req *r, uint8_t **out, size_t *len) {
    weft_describe_ns_req q = {.namespace_ = weft_str_c(r->ns_checked)};
    return weft_schema_encode_buf(&weft_describe_ns_req_schema, &q, out, len);
}

/* Edit distance of a and b (both at most WEFTD_NS_SIMILAR_BYTES_MAX bytes). */
static uint32_t ns_distance(const char *a, size_t la, const char *b, size_t lb) {
    uint32_t prev[WEFTD_NS_SIMILAR_BYTES_MAX + 1], cur[WEFTD_NS_SIMILAR_BYTES_MAX + 1];
    WEFT_ASSERT(la <= WEFTD_NS_SIMILAR_BYTES_MAX && lb <= WEFTD_NS_SIMILAR_BYTES_MAX);
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (uint32_t)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (uint32_t)i;
        for (size_t j = 1; j <= lb; j++) {
            uint32_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            cur[j] = WEFT_MIN(sub, WEFT_MIN(prev[j], cur[j - 1]) + 1u);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

static bool ns_similar(const char *refused, const char *known) {
    size_t la = strlen(refused), lb = strlen(known);
    if (la > WEFTD_NS_SIMILAR_BYTES_MAX || lb > WEFTD_NS_SIMILAR_BYTES_MAX) return false;
    return ns_distance(refused, la, known, lb) <= WEFTD_NS_SIMILAR_EDITS_MAX;
}

/* Appends "; did you mean: a, b?" to a refusal, from the names this node knows. */
static void ns_add_similar(const weft_node *n, const char *refused, weft_err *err) {
    size_t used = strlen(err->message);
    const char *sep = "; did you mean: ";
    bool any = false;
    uint32_t count = n->ns_cache != NULL ? n->ns_cache->count : 0;
    for (uint32_t i = 0; i <= count; i++) {
        const char *known = i < count ? n->ns_cache->names[i] : WEFT_DEFAULT_NAMESPACE;
        if (!ns_similar(refused, known)) continue;
        int w = snprintf(err->message + used, sizeof err->message - used, "%s%s", sep, known);
        if (w < 0 || (size_t)w >= sizeof err->message - used) {
            err->message[used] = '\0'; /* no room: leave the hint out */
            break;
        }
        used += (size_t)w;
        sep = ", ";
        any = true;
    }
    if (any && used + 1 < sizeof err->message) {
        err->message[used] = '?';
        err->message[used + 1] = '\0';
    }
}

static void ns_finish(weft_req *r, const weft_err *err) {
    weft_err refused;
    if (err != NULL && err->code == WEFT_E_NOT_FOUND) {
        refused = *err;
        ns_add_similar(r->node, r->ns_checked, &refused);
        err = &refused;
    }
    if (err == NULL) ns_cache_add(r->node, r->ns_checked);
    weft_err closed = {0};
    if (err == NULL && r->conn == NULL) { /* nobody to answer: propose nothing */
        weft_err_set(&closed, WEFT_E_UNAVAILABLE, "", "connection closed");
        err = &closed;
    }
    r->ns_done(r, err);
}

static void ns_fail(weft_req *r, int code, const char *fmt, const char *why) {
    weft_err err = {0};
    weft_err_set(&err, code, "namespace", fmt, r->ns_checked, why);
    ns_finish(r, &err);
}

static void ns_barrier_cb(void *data, int status) {
    weft_req *r = data;
    WEFT_ASSERT(r->async_pending > 0);
    r->async_pending--;
    weft_replica *rep = &r->node->replicas[WEFT_NAMESPACE_REGISTRY_SHARD];
    if (status != 0 || rep->shard == NULL) {
        ns_fail(r, WEFT_E_UNAVAILABLE,
                "cannot check that namespace '%s' is registered: %s; retry",
                "the namespace registry's shard changed leader during the read");
        return;
    }
    uint8_t *body = NULL;
    size_t len = 0;
    if (ns_describe_body(r, &body, &len) != 0) {
        ns_fail(r, WEFT_E_RESOURCE_EXHAUSTED, "cannot check namespace '%s': %s; retry",
                "node is out of memory");
        return;
    }
    weft_reply reply = {0};
    weft_read_wait wait = {0};
    int rc = weft_shard_read(rep->shard, WEFT_MSG_DESCRIBE_NAMESPACE, body, len, true, &reply,
                             &wait);
    free(body);
    if (rc != 0 && reply.err.code != WEFT_E_NOT_FOUND) {
        weft_replica_notice_failure(rep);
        ns_fail(r, WEFT_E_UNAVAILABLE, "cannot check that namespace '%s' is registered: %s",
                reply.err.code != 0 ? reply.err.message : "the registry read failed");
    } else {
        ns_finish(r, rc == 0 ? NULL : &reply.err);
    }
    weft_reply_reset(&reply);
}

static void ns_ask(weft_req *r);
static void ns_forward_cb(void *data, const weft_fwd_reply *reply);

/* Asks shard 0's leader, as this node knows it, whether r->ns_checked is registered: through
 * a barrier when this node leads the registry, else by forwarding DescribeNamespace to
 * `target`. Each node is asked at most once per check (r->ns_asked), so the check ends after
 * at most one question per member. When `target` was asked already, is 0 or cannot be called,
 * the registry's other replicas are asked in placement order: a peer that does not lead it
 * names the node that does. Returns true when an answer will come (ns_forward_cb). */
static bool ns_forward(weft_req *r, uint64_t target, weft_err *err) {
    weft_node *n = r->node;
    const weft_cluster *cl = &n->cfg.cluster;
    uint32_t next_replica = 0;
    for (;;) {
        uint32_t index = weft_cluster_index_of(cl, target);
        if (target == 0 || index == UINT32_MAX || (r->ns_asked & (1u << index)) != 0 ||
            !weft_forward_allowed(r, target)) {
            if (next_replica >= cl->replication_factor) return false; /* err says why */
            target = cl->nodes[weft_placement_node(WEFT_NAMESPACE_REGISTRY_SHARD, next_replica++,
                                                   cl->nodes_count)]
                         .id;
            continue;
        }
        r->ns_asked |= 1u << index;
        uint8_t *body = NULL;
        size_t len = 0;
        if (ns_describe_body(r, &body, &len) != 0) {
            weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory");
            return false;
        }
        int rc = weft_forward_call(n, target, WEFT_MSG_DESCRIBE_NAMESPACE, body, len, 0,
                                   ns_forward_cb, r, err);
        free(body);
        if (rc == 0) {
            r->async_pending++;
            return true;
        }
        if (err->code == WEFT_E_RESOURCE_EXHAUSTED) return false;
        target = 0;
    }
}

static void ns_forward_cb(void *data, const weft_fwd_reply *reply) {
    weft_req *r = data;
    WEFT_ASSERT(r->async_pending > 0);
    r->async_pending--;
    if (reply->err.code == 0 || reply->err.code == WEFT_E_NOT_FOUND) {
        ns_finish(r, reply->err.code == 0 ? NULL : &reply->err);
        return;
    }
    /* DescribeNamespace is a read: asking again elsewhere is always safe. A peer that does not
     * lead the registry names the node that does (or none, mid-election); one that failed or
     * did not answer in time is passed over for the registry's next replica. */
    weft_err err = reply->err;
    if (reply->err.code == WEFT_E_NOT_LEADER || reply->err.code == WEFT_E_UNAVAILABLE) {
        uint64_t hint = reply->leader_hint;
        if (hint == r->node->datadir.node_id) {
            ns_ask(r); /* it names this node: it has become the registry's leader meanwhile */
            return;
        }
        if (ns_forward(r, hint, &err)) return;
    }
    ns_fail(r, WEFT_E_UNAVAILABLE,
            "cannot check that namespace '%s' is registered: the namespace registry answered: "
            "%s; retry",
            err.message);
}

static void ns_ask(weft_req *r) {
    weft_replica *rep = &r->node->replicas[WEFT_NAMESPACE_REGISTRY_SHARD];
    weft_err err = {0};
    uint64_t hint = 0;
    if (weft_replica_check_leader(rep, &err, &hint) == 0) {
        if (weft_replica_barrier(rep, ns_barrier_cb, r, &err) == 0) {
            r->async_pending++;
            return;
        }
    } else if (err.code == WEFT_E_NOT_LEADER && ns_forward(r, hint, &err)) {
        return;
    }
    ns_fail(r, WEFT_E_UNAVAILABLE, "cannot check that namespace '%s' is registered: %s", err.message);
}

void weft_namespaces_check(weft_req *r, weft_str ns,
                           void (*done)(weft_req *r, const weft_err *err)) {
    WEFT_ASSERT(r != NULL && done != NULL && r->ns_checked == NULL);
    weft_node *n = r->node;
    bool from_peer = r->conn != NULL && r->conn->forwarding_node != 0;
    if (weft_namespace_is_default(ns) || from_peer || ns_cached(n, ns)) {
        done(r, NULL);
        return;
    }
    r->ns_done = done;
    r->ns_asked = 0;
    r->ns_checked = malloc((size_t)ns.len + 1);
    if (r->ns_checked == NULL) {
        weft_err err = {0};
        weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry later");
        done(r, &err);
        return;
    }
    weft_str_copy(r->ns_checked, (size_t)ns.len + 1, ns);
    ns_ask(r);
}
