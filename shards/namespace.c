/* namespace.c: the namespace registry (issue 10). It lives in shard
 * WEFT_NAMESPACE_REGISTRY_SHARD, in the namespaces table: one record per registered namespace,
 * written by the NS_REGISTER command like any other write (G1), read by DescribeNamespace and
 * ListNamespaces. WEFT_DEFAULT_NAMESPACE exists without a record. Other shards never read the
 * registry at apply (they cannot: it is another group's state); node/ checks a request's
 * namespace before it proposes it (node/namespaces.c). */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Registered namespaces, at most: every node caches the names, and ListNamespaces answers them
 * in one frame (proto/msg.c WEFT_NAMESPACES_MAX is the same number). */
#define SH_NAMESPACES_MAX 1000u
/* Meta counter of registered namespaces, for SH_NAMESPACES_MAX. */
#define SH_META_NAMESPACES "namespaces_registered"

/* The stored record: what describe answers, plus the request id that registered it, so that a
 * retry of that request is answered as the first was (G4), for the namespace's whole life. */
typedef struct sh_ns_rec {
    weft_namespace_info info;
    weft_str request_id;
} sh_ns_rec;

static const weft_field ns_rec_rows[] = {
    WEFT_FIELD_OBJ(sh_ns_rec, info, weft_namespace_info_schema, 0),
    WEFT_FIELD(sh_ns_rec, request_id, WEFT_F_STR, 0),
};
static const weft_schema sh_ns_rec_schema = WEFT_SCHEMA(sh_ns_rec, ns_rec_rows);

bool weft_namespace_is_default(weft_str ns) {
    return ns.len == 0 || weft_str_eq_c(ns, WEFT_DEFAULT_NAMESPACE);
}

static bool ns_char_ok(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

int weft_namespace_name_check(weft_str ns, weft_err *err) {
    if (ns.len == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "namespace",
                            "namespace is required: name the namespace to register");
    }
    for (uint32_t i = 0; i < ns.len; i++) {
        if (!ns_char_ok(ns.ptr[i])) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "namespace",
                                "namespace '%.*s' has the character '%c' at byte %u: use only "
                                "letters, digits, '.', '_' and '-'",
                                (int)ns.len, ns.ptr, ns.ptr[i] >= 0x20 && ns.ptr[i] < 0x7f ? ns.ptr[i] : '?', i);
        }
    }
    return 0;
}

int sh_ns_validate(sh_ctx *c, const weft_register_ns_req *req) {
    if (c->s->shard_id != WEFT_NAMESPACE_REGISTRY_SHARD) {
        return sh_reject(c, WEFT_E_INVALID_ARGUMENT, "namespace",
                         "namespaces are registered in shard %u, not in shard %u",
                         WEFT_NAMESPACE_REGISTRY_SHARD, c->s->shard_id);
    }
    if (weft_namespace_name_check(req->namespace_, &c->err) != 0) return -c->err.code;
    if (weft_namespace_is_default(req->namespace_)) {
        return sh_reject(c, WEFT_E_ALREADY_EXISTS, "namespace",
                         "namespace '%s' always exists and cannot be registered again",
                         WEFT_DEFAULT_NAMESPACE);
    }
    return sh_check_duration(c, "retention_ms", req->retention_ms);
}

int sh_ns_on_register(sh_ctx *c, const weft_shard_cmd *cmd) {
    weft_register_ns_req req;
    int rc = sh_decode(c, &weft_register_ns_req_schema, cmd->body.ptr, cmd->body.len, false, false,
                       &req);
    if (rc == 0) rc = sh_ns_validate(c, &req);
    if (rc != 0) return rc;
    weft_key k;
    weft_key_namespace(&k, req.namespace_);
    sh_ns_rec old;
    rc = sh_get_rec(c, WEFT_TBL_NAMESPACES, &k, &sh_ns_rec_schema, &old);
    if (rc == 0) {
        /* Only a retry of the request that registered it is answered as success (G4). */
        if (req.request_id.len > 0 && weft_str_eq(req.request_id, old.request_id)) {
            return sh_reply_empty(c);
        }
        return sh_reject(c, WEFT_E_ALREADY_EXISTS, "namespace",
                         "namespace '%.*s' is already registered: see it with: weft namespace "
                         "describe --namespace %.*s",
                         (int)req.namespace_.len, req.namespace_.ptr, (int)req.namespace_.len,
                         req.namespace_.ptr);
    }
    if (rc != -WEFT_E_NOT_FOUND) return rc;
    uint64_t count = 0;
    if (weft_meta_get_u64(c->txn, SH_META_NAMESPACES, &count, &c->err) != 0) {
        return -WEFT_E_INTERNAL;
    }
    if (count >= SH_NAMESPACES_MAX) {
        return sh_reject(c, WEFT_E_RESOURCE_EXHAUSTED, "namespace",
                         "%llu namespaces are registered, the most a cluster holds (%u): use an "
                         "existing namespace",
                         (unsigned long long)count, SH_NAMESPACES_MAX);
    }
    sh_ns_rec rec = {.info = {.namespace_ = req.namespace_,
                              .description = req.description,
                              .retention_ms = req.retention_ms,
                              .created_time_ms = c->now_ms},
                     .request_id = req.request_id};
    rc = sh_put_rec(c, WEFT_TBL_NAMESPACES, &k, &sh_ns_rec_schema, &rec);
    if (rc != 0) return rc;
    c->writes++;
    if (weft_meta_put_u64(c->txn, SH_META_NAMESPACES, count + 1, &c->err) != 0) {
        return -WEFT_E_INTERNAL;
    }
    return sh_reply_empty(c);
}

static weft_namespace_info ns_default_info(void) {
    return (weft_namespace_info){.namespace_ = WEFT_STR_LIT(WEFT_DEFAULT_NAMESPACE),
                                 .description = WEFT_STR_LIT("the namespace of requests that name none")};
}

int sh_ns_read_describe(sh_ctx *c, const uint8_t *body, size_t len) {
    weft_describe_ns_req req;
    int rc = sh_decode(c, &weft_describe_ns_req_schema, body, len, false, false, &req);
    if (rc != 0) return rc;
    if (weft_namespace_is_default(req.namespace_)) {
        weft_namespace_info info = ns_default_info();
        return sh_reply_body(c, &weft_namespace_info_schema, &info);
    }
    weft_key k;
    weft_key_namespace(&k, req.namespace_);
    sh_ns_rec rec;
    rc = sh_get_rec(c, WEFT_TBL_NAMESPACES, &k, &sh_ns_rec_schema, &rec);
    if (rc == -WEFT_E_NOT_FOUND) {
        return sh_reject(c, WEFT_E_NOT_FOUND, "namespace",
                         "namespace '%.*s' is not registered: register it with: weft namespace "
                         "register --namespace %.*s",
                         (int)req.namespace_.len, req.namespace_.ptr, (int)req.namespace_.len,
                         req.namespace_.ptr);
    }
    if (rc != 0) return rc;
    return sh_reply_body(c, &weft_namespace_info_schema, &rec.info);
}

static int ns_info_cmp(const void *a, const void *b) {
    weft_str x = ((const weft_namespace_info *)a)->namespace_;
    weft_str y = ((const weft_namespace_info *)b)->namespace_;
    int d = memcmp(x.ptr, y.ptr, WEFT_MIN(x.len, y.len));
    if (d != 0) return d;
    return x.len < y.len ? -1 : x.len > y.len;
}

int sh_ns_read_list(sh_ctx *c, const uint8_t *body, size_t len) {
    weft_list_ns_req req;
    int rc = sh_decode(c, &weft_list_ns_req_schema, body, len, false, false, &req);
    if (rc != 0) return rc;
    uint32_t cap = SH_NAMESPACES_MAX + 1u; /* the default one too */
    weft_namespace_info *items = sh_alloc(c, (size_t)cap * sizeof *items);
    uint32_t n = 0;
    items[n++] = ns_default_info();
    weft_cursor *cur = NULL;
    if (weft_cursor_open(c->txn, WEFT_TBL_NAMESPACES, &cur, &c->err) != 0) return -WEFT_E_INTERNAL;
    weft_val k, v;
    weft_err scratch;
    weft_err_clear(&scratch);
    int crc = weft_cursor_seek(cur, NULL, 0, &k, &v, &scratch);
    while (crc == 0 && rc == 0 && n < cap) {
        sh_ns_rec rec;
        rc = sh_decode(c, &sh_ns_rec_schema, v.ptr, v.len, true, true, &rec);
        if (rc != 0) {
            weft_err_prefix(&c->err, "stored namespace is corrupt: ");
            c->err.code = WEFT_E_INTERNAL;
            rc = -WEFT_E_INTERNAL;
            break;
        }
        items[n++] = rec.info;
        crc = weft_cursor_next(cur, &k, &v, &scratch);
    }
    weft_cursor_close(cur);
    if (rc != 0) return rc;
    if (crc != 0 && crc != -WEFT_E_NOT_FOUND && n < cap) {
        c->err = scratch;
        return -WEFT_E_INTERNAL;
    }
    qsort(items, n, sizeof *items, ns_info_cmp);
    weft_list_ns_resp resp = {.namespaces = items, .namespaces_count = n};
    return sh_reply_body(c, &weft_list_ns_resp_schema, &resp);
}
