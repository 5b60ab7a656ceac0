/* reads.c: the read paths. Single-run reads route by workflow key; a read the shard cannot
 * answer yet (should_wait) parks in waits.c until its run changes or its wait times out. List
 * and count walk the shards in order, one barrier per shard for linearizable reads; a list
 * page token is msgpack [shard, inner token] so paging resumes where it stopped. A shard this
 * node cannot read (no replica here, or led elsewhere for a linearizable read) is read by the
 * node that leads it: this node sends it the same request for that one shard (the token
 * [shard, inner token, true] says "this shard only"), then goes on with the next shard, so one
 * answer covers the cluster. Single-run reads go to the leader the same way (forward.h). */
#include "reads.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/frame.h"
#include "../proto/log.h"
#include "../proto/partition.h"
#include "cluster.h"
#include "forward.h"
#include "ops.h"
#include "replica.h"
#include "req.h"
#include "router.h"
#include "waits.h"

/* ---- single-run reads ---- */

/* The routing fields of DESCRIBE_WORKFLOW, GET_HISTORY and GET_RESULT requests. */
typedef struct read_target {
    weft_str ns;              /* namespace ("" = default) */
    weft_str workflow_id;     /* required */
    uint32_t consistency;     /* enum weft_consistency */
    uint64_t wait_timeout_ms; /* 0 = the server default */
    bool waits;               /* the request asks to wait for a change (long-poll) */
} read_target;

static int reads_decode_target(weft_req *r, msgpack_unpacked *up, read_target *t, weft_err *err) {
    union {
        weft_describe_req describe;
        weft_history_req history;
        weft_result_req result;
    } u;
    int rc = weft_schema_decode_buf(r->op->req_schema, r->body, r->body_len, &u, up,
                                    &r->node->cfg.limits, err);
    if (rc != 0) return rc;
    memset(t, 0, sizeof *t);
    switch (r->op->msg_type) {
    case WEFT_MSG_DESCRIBE_WORKFLOW:
        *t = (read_target){u.describe.namespace_, u.describe.workflow_id, u.describe.consistency, 0,
                           false};
        break;
    case WEFT_MSG_GET_HISTORY:
        *t = (read_target){u.history.namespace_, u.history.workflow_id, u.history.consistency,
                           u.history.wait_timeout_ms, u.history.wait_new_events};
        break;
    case WEFT_MSG_GET_RESULT:
        *t = (read_target){u.result.namespace_, u.result.workflow_id, u.result.consistency,
                           u.result.wait_timeout_ms, u.result.wait};
        break;
    default:
        WEFT_ASSERT(!"not a single-run read");
    }
    if (t->workflow_id.len == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "workflow_id", "workflow_id is required");
    }
    return 0;
}

/* This replica cannot answer: the node that leads the shard does, through this one (forward.h),
 * or the client hears NOT_LEADER with where to go. */
static void reads_fail_not_leader(weft_req *r, const weft_replica *rep) {
    weft_err err = {0};
    uint64_t hint = 0;
    if (weft_replica_check_leader(rep, &err, &hint) == 0) {
        weft_err_set(&err, WEFT_E_UNAVAILABLE, "", "shard %u changed leader during the read; retry",
                     rep->shard_id);
    }
    if (err.code == WEFT_E_NOT_LEADER && weft_forward_req(r, hint, r->wait_timeout_ms)) return;
    weft_req_err(r, &err, hint);
}

static void reads_wait_timeout_cb(uv_timer_t *t) {
    weft_req *r = t->data;
    if (r->wait != WEFT_REQ_WAIT_READ) return;
    weft_waits_remove(r);
    weft_reads_rerun(r, true);
}

void weft_reads_rerun(weft_req *r, bool final) {
    WEFT_ASSERT(r->wait == WEFT_REQ_WAIT_NONE && !r->finished);
    weft_replica *rep = &r->node->replicas[r->shard];
    if ((!r->stale && !weft_replica_ready(rep)) || !rep->hosted) {
        reads_fail_not_leader(r, rep); /* no replica here: NOT_LEADER names where it is */
        return;
    }
    if (rep->shard == NULL) {
        weft_req_fail(r, WEFT_E_UNAVAILABLE, "",
                      "shard %u is restarting after a storage failure; retry", rep->shard_id);
        return;
    }
    if (!weft_node_serving(r->node)) final = true; /* a stopping node parks nothing new */
    weft_reply reply = {0};
    weft_read_wait wait = {0};
    int rc =
        weft_shard_read(rep->shard, r->op->msg_type, r->body, r->body_len, final, &reply, &wait);
    if (rc != 0) weft_replica_notice_failure(rep);
    if (rc != 0 && reply.err.code == 0) {
        weft_err_set(&reply.err, WEFT_E_INTERNAL, "",
                     "shard %u read failed (%s); see the server log", rep->shard_id,
                     weft_error_name(rc));
    }
    if (rc == 0 && reply.err.code == 0 && !final && wait.should_wait) {
        weft_reply_reset(&reply);
        weft_waits_add(rep, r, wait.run_key);
        if (r->deadline_mono_ms == 0)
            weft_req_timer_start(r, r->wait_timeout_ms, reads_wait_timeout_cb);
        return;
    }
    weft_req_reply(r, &reply);
}

static void reads_barrier_cb(void *data, int status) {
    weft_req *r = data;
    WEFT_ASSERT(r->async_pending > 0);
    r->async_pending--;
    if (r->conn == NULL) {
        weft_req_fail(r, WEFT_E_UNAVAILABLE, "", "connection closed");
        return;
    }
    if (status != 0) {
        reads_fail_not_leader(r, &r->node->replicas[r->shard]);
        return;
    }
    weft_reads_rerun(r, false);
}

/* Starts the read on the routed replica: at once for stale reads, after a barrier otherwise. */
static void reads_begin(weft_req *r) {
    weft_replica *rep = &r->node->replicas[r->shard];
    if (r->stale) {
        weft_reads_rerun(r, false);
        return;
    }
    weft_err err = {0};
    uint64_t hint = 0;
    if (weft_replica_check_leader(rep, &err, &hint) != 0) {
        reads_fail_not_leader(r, rep);
        return;
    }
    if (weft_replica_barrier(rep, reads_barrier_cb, r, &err) != 0) {
        weft_req_err(r, &err, 0);
        return;
    }
    r->async_pending++;
}

void weft_reads_run(weft_req *r) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    read_target t;
    weft_err err = {0};
    int rc = reads_decode_target(r, &up, &t, &err);
    if (rc == 0) {
        r->shard = weft_router_shard(r->node, t.ns, t.workflow_id);
        r->stale = t.consistency == WEFT_CONSISTENCY_STALE;
        uint64_t timeout =
            t.wait_timeout_ms ? t.wait_timeout_ms : r->node->cfg.limits.poll_timeout_ms;
        /* 0 for a read that does not wait: a forwarded one must not be given a long-poll's
         * time to answer. */
        r->wait_timeout_ms =
            t.waits ? WEFT_MIN(timeout, (uint64_t)r->node->cfg.long_poll_ms_max) : 0;
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        weft_req_err(r, &err, 0);
        return;
    }
    reads_begin(r);
}

/* DescribeNamespace and ListNamespaces: linearizable reads of the registry shard. */
void weft_reads_registry(weft_req *r) {
    r->shard = WEFT_NAMESPACE_REGISTRY_SHARD;
    r->stale = false;
    r->wait_timeout_ms = 0;
    reads_begin(r);
}

/* ---- list and count over every local shard ---- */

/* A LIST page being assembled across shards. */
typedef struct fan_list {
    msgpack_sbuffer items; /* packed execution maps, concatenated */
    uint32_t items_count;  /* maps in items */
    uint32_t remaining;    /* executions still wanted for this page */
    uint8_t *inner;        /* inner page token for the current shard (owned), or NULL */
    size_t inner_len;      /* bytes in inner */
    uint32_t consistency;  /* of the request */
} fan_list;

static void fan_list_free(weft_req *r) {
    fan_list *fl = r->fan_state;
    if (fl == NULL) return;
    msgpack_sbuffer_destroy(&fl->items);
    free(fl->inner);
    free(fl);
    r->fan_state = NULL;
}

static void fan_fail(weft_req *r, const weft_err *err, uint64_t hint) {
    fan_list_free(r);
    weft_req_err(r, err, hint);
}

/* A page token is [shard, inner(, only)]: an array of scalars, one level of nesting. */
#define FAN_TOKEN_DEPTH_MAX 1u

/* Unpacks a page token that came from outside this process (a client's, or the one inside a
 * peer's answer). The raw pre-check runs first, so that no count or length the token declares
 * can make msgpack-c reserve memory its bytes cannot back (STYLE rule 12): a 155-byte token of
 * nested array32 headers would otherwise reserve gigabytes. `up` is initialised by the caller.
 * Returns 0, or -WEFT_E_INVALID_ARGUMENT with the reason in `why`. */
static int fan_token_unpack(const uint8_t *tok, size_t len, msgpack_unpacked *up, weft_err *why) {
    WEFT_ASSERT(up != NULL && why != NULL);
    int rc = weft_msgpack_check(tok, len, FAN_TOKEN_DEPTH_MAX, "next_page_token", why);
    if (rc != 0) return rc;
    size_t off = 0;
    if (msgpack_unpack_next(up, (const char *)tok, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        return weft_err_set(why, WEFT_E_INVALID_ARGUMENT, "next_page_token",
                            "next_page_token is not one msgpack value");
    }
    WEFT_ASSERT(up->data.type != MSGPACK_OBJECT_ARRAY || up->data.via.array.size <= len);
    return 0;
}

/* True when `o` has the shape of a page token of a cluster with `shards` shards. */
static bool fan_token_shaped(const msgpack_object *o, uint32_t shards) {
    return o->type == MSGPACK_OBJECT_ARRAY &&
           (o->via.array.size == 2 || o->via.array.size == 3) &&
           o->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
           o->via.array.ptr[0].via.u64 < shards &&
           (o->via.array.ptr[1].type == MSGPACK_OBJECT_BIN ||
            o->via.array.ptr[1].type == MSGPACK_OBJECT_NIL) &&
           (o->via.array.size == 2 || o->via.array.ptr[2].type == MSGPACK_OBJECT_BOOLEAN);
}

/* Decodes the client's page token: msgpack [shard, inner token bytes]. */
static int fan_token_decode(weft_req *r, weft_bytes tok, fan_list *fl, weft_err *err) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_err why = {0};
    int rc = fan_token_unpack(tok.ptr, tok.len, &up, &why);
    if (rc == 0 && !fan_token_shaped(&up.data, r->node->replicas_count)) {
        rc = weft_err_set(&why, WEFT_E_INVALID_ARGUMENT, "next_page_token",
                          "it is not [shard, inner token] for one of this cluster's %u shards",
                          r->node->replicas_count);
    }
    if (rc == 0) {
        const msgpack_object *o = &up.data;
        r->fan_shard = (uint32_t)o->via.array.ptr[0].via.u64;
        r->fan_end = o->via.array.size == 3 && o->via.array.ptr[2].via.boolean
                         ? r->fan_shard + 1
                         : r->node->replicas_count;
        const msgpack_object *in = &o->via.array.ptr[1];
        if (fl != NULL && in->type == MSGPACK_OBJECT_BIN && in->via.bin.size > 0) {
            fl->inner = malloc(in->via.bin.size);
            WEFT_ASSERT(fl->inner != NULL);
            memcpy(fl->inner, in->via.bin.ptr, in->via.bin.size);
            fl->inner_len = in->via.bin.size;
        }
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "next_page_token",
                            "next_page_token is not a token this cluster issued (%s); list "
                            "again without it",
                            why.message);
    }
    return 0;
}

/* Writes the page token's bytes, [shard, inner] (or [shard, inner, true]: that shard only),
 * into `tok` (initialised by the caller). */
static int fan_token_build(uint32_t shard, const uint8_t *inner, size_t inner_len, bool only,
                           msgpack_sbuffer *tok) {
    msgpack_packer tp;
    msgpack_packer_init(&tp, tok, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&tp, only ? 3 : 2);
    rc |= msgpack_pack_uint32(&tp, shard);
    rc |= msgpack_pack_bin(&tp, inner_len);
    if (inner_len > 0) rc |= msgpack_pack_bin_body(&tp, inner, inner_len);
    if (only) rc |= msgpack_pack_true(&tp);
    return rc;
}

/* Packs the page token [shard, inner] as a bin. */
static int fan_token_encode(uint32_t shard, const uint8_t *inner, size_t inner_len,
                            msgpack_packer *pk) {
    msgpack_sbuffer tok;
    msgpack_sbuffer_init(&tok);
    int rc = fan_token_build(shard, inner, inner_len, false, &tok);
    rc |= msgpack_pack_bin(pk, tok.size);
    rc |= msgpack_pack_bin_body(pk, tok.data, tok.size);
    msgpack_sbuffer_destroy(&tok);
    return rc;
}

/* Answers LIST with the executions gathered so far and, unless the listing is complete, a
 * token for (shard, inner). */
static void fan_list_finish(weft_req *r, bool more, uint32_t shard) {
    fan_list *fl = r->fan_state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, more ? 2 : 1);
    rc |= weft_pack_cstr(&pk, "executions");
    rc |= msgpack_pack_array(&pk, fl->items_count);
    if (fl->items.size > 0) rc |= msgpack_sbuffer_write(&sb, fl->items.data, fl->items.size);
    if (more) {
        rc |= weft_pack_cstr(&pk, "next_page_token");
        rc |= fan_token_encode(shard, fl->inner, fl->inner_len, &pk);
    }
    fan_list_free(r);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        weft_req_fail(r, WEFT_E_RESOURCE_EXHAUSTED, "",
                      "node is out of memory building the list; retry");
        return;
    }
    size_t len = sb.size;
    weft_req_ok(r, (uint8_t *)msgpack_sbuffer_release(&sb), len);
}

/* The request body for one shard: the client's filters with this page's size and token. */
static int fan_list_shard_body(weft_req *r, uint8_t **out, size_t *out_len, weft_err *err) {
    fan_list *fl = r->fan_state;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_list_req q;
    int rc = weft_schema_decode_buf(&weft_list_req_schema, r->body, r->body_len, &q, &up,
                                    &r->node->cfg.limits, err);
    if (rc == 0) {
        q.page_size = fl->remaining;
        q.next_page_token = (weft_bytes){.ptr = fl->inner, .len = (uint32_t)fl->inner_len};
        rc = weft_schema_encode_buf(&weft_list_req_schema, &q, out, out_len);
        if (rc != 0)
            rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* Copies the inner token out of a page token [shard, inner(, only)] a peer answered with.
 * Returns false when the peer's token is malformed. */
static bool fan_take_outer_token(fan_list *fl, const char *tok, size_t len) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_err why = {0};
    bool ok = fan_token_unpack((const uint8_t *)tok, len, &up, &why) == 0 &&
              up.data.type == MSGPACK_OBJECT_ARRAY && up.data.via.array.size >= 2;
    if (ok && up.data.via.array.ptr[1].type == MSGPACK_OBJECT_BIN &&
        up.data.via.array.ptr[1].via.bin.size > 0) {
        const msgpack_object_bin *in = &up.data.via.array.ptr[1].via.bin;
        fl->inner = malloc(in->size);
        WEFT_ASSERT(fl->inner != NULL);
        memcpy(fl->inner, in->ptr, in->size);
        fl->inner_len = in->size;
    }
    msgpack_unpacked_destroy(&up);
    if (!ok) {
        WEFT_LOGF(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD, "a peer answered a list with a malformed "
                  "page token: %s", why.message[0] ? why.message : "not [shard, inner]");
    }
    return ok;
}

/* Appends one shard's page to the list being built and takes its inner token: the shard's own
 * token from a local read, or (`outer`) the one inside a peer's page token. */
static int fan_list_merge(fan_list *fl, const uint8_t *body, size_t len, bool outer,
                          weft_err *err) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = 0;
    free(fl->inner);
    fl->inner = NULL;
    fl->inner_len = 0;
    if (msgpack_unpack_next(&up, (const char *)body, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&up);
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "a shard returned a malformed list page; see the server log");
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fl->items, msgpack_sbuffer_write);
    const msgpack_object_map *m = &up.data.via.map;
    for (uint32_t i = 0; i < m->size && rc == 0; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) continue;
        weft_str key = {.ptr = k->via.str.ptr, .len = k->via.str.size};
        if (weft_str_eq_c(key, "executions") && v->type == MSGPACK_OBJECT_ARRAY) {
            for (uint32_t j = 0; j < v->via.array.size && rc == 0; j++) {
                rc = msgpack_pack_object(&pk, v->via.array.ptr[j]);
                fl->items_count++;
            }
        } else if (weft_str_eq_c(key, "next_page_token") && v->type == MSGPACK_OBJECT_BIN &&
                   v->via.bin.size > 0 && outer) {
            if (!fan_take_outer_token(fl, v->via.bin.ptr, v->via.bin.size)) {
                msgpack_unpacked_destroy(&up);
                return weft_err_set(err, WEFT_E_INTERNAL, "",
                                    "a node answered a list page with a malformed page token; "
                                    "see the server log");
            }
        } else if (weft_str_eq_c(key, "next_page_token") && v->type == MSGPACK_OBJECT_BIN &&
                   v->via.bin.size > 0) {
            fl->inner = malloc(v->via.bin.size);
            WEFT_ASSERT(fl->inner != NULL);
            memcpy(fl->inner, v->via.bin.ptr, v->via.bin.size);
            fl->inner_len = v->via.bin.size;
        }
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0)
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
    return 0;
}

/* After a shard's page (local or remote) merged `got` executions: finishes the request with a
 * token when the page is full or the shard has more (returns 1), else 0 to go on. */
static int fan_list_after_page(weft_req *r, uint32_t shard, uint32_t got) {
    fan_list *fl = r->fan_state;
    fl->remaining = got >= fl->remaining ? 0 : fl->remaining - got;
    if (fl->inner != NULL) {
        fan_list_finish(r, true, shard);
        return 1;
    }
    if (fl->remaining == 0 && shard + 1 < r->fan_end) {
        fan_list_finish(r, true, shard + 1);
        return 1;
    }
    return 0;
}

/* Adds a count response's count to the running sum. */
static int fan_count_add(weft_req *r, const uint8_t *body, size_t len, weft_err *err) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_count_resp cr;
    int rc = weft_schema_decode_buf(&weft_count_resp_schema, body, len, &cr, &up,
                                    &r->node->cfg.limits, err);
    if (rc == 0) r->fan_count += cr.count;
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* Reads the current shard: a count adds up, a list page merges. Returns 1 when the request
 * was finished here (page full), 0 to go on with the next shard, or a negative error. */
static int fan_read_shard(weft_req *r, weft_replica *rep, weft_err *err) {
    uint8_t *body = r->body;
    size_t body_len = r->body_len;
    bool list = r->op->msg_type == WEFT_MSG_LIST_WORKFLOWS;
    if (list && fan_list_shard_body(r, &body, &body_len, err) != 0) return -err->code;
    weft_reply reply = {0};
    weft_read_wait wait = {0};
    int rc = weft_shard_read(rep->shard, r->op->msg_type, body, body_len, true, &reply, &wait);
    if (list) free(body);
    if (rc != 0) weft_replica_notice_failure(rep);
    if (rc != 0 || reply.err.code != 0) {
        if (reply.err.code == 0) {
            weft_err_set(&reply.err, WEFT_E_INTERNAL, "",
                         "shard %u read failed; see the server log", rep->shard_id);
        }
        *err = reply.err;
        weft_reply_reset(&reply);
        return -err->code;
    }
    if (!list) {
        rc = fan_count_add(r, reply.body, reply.body_len, err);
        weft_reply_reset(&reply);
        return rc;
    }
    fan_list *fl = r->fan_state;
    uint32_t before = fl->items_count;
    rc = fan_list_merge(fl, reply.body, reply.body_len, false, err);
    weft_reply_reset(&reply);
    if (rc != 0) return rc;
    return fan_list_after_page(r, rep->shard_id, fl->items_count - before);
}

static void fan_step(weft_req *r);

static void fan_barrier_cb(void *data, int status) {
    weft_req *r = data;
    WEFT_ASSERT(r->async_pending > 0);
    r->async_pending--;
    weft_err err = {0};
    if (r->conn == NULL) {
        weft_err_set(&err, WEFT_E_UNAVAILABLE, "", "connection closed");
        fan_fail(r, &err, 0);
        return;
    }
    if (status != 0) {
        uint64_t hint = 0;
        if (weft_replica_check_leader(&r->node->replicas[r->fan_shard], &err, &hint) == 0) {
            weft_err_set(&err, WEFT_E_UNAVAILABLE, "",
                         "shard %u changed leader during the read; retry", r->fan_shard);
        }
        fan_fail(r, &err, hint);
        return;
    }
    r->fan_barrier_done = true;
    fan_step(r);
}

/* ---- shards read by the node that leads them ---- */

/* The request for shard r->fan_shard alone, as sent to the node that reads it: the client's
 * filters with the token [shard, inner, true] (and this page's size, for a list). */
static int fan_remote_body(weft_req *r, uint8_t **out, size_t *out_len, weft_err *err) {
    fan_list *fl = r->fan_state;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_list_req q;
    msgpack_sbuffer tok;
    msgpack_sbuffer_init(&tok);
    int rc = weft_schema_decode_buf(&weft_list_req_schema, r->body, r->body_len, &q, &up,
                                    &r->node->cfg.limits, err);
    if (rc == 0 && fan_token_build(r->fan_shard, fl != NULL ? fl->inner : NULL,
                                   fl != NULL ? fl->inner_len : 0, true, &tok) != 0) {
        rc = -WEFT_E_RESOURCE_EXHAUSTED;
    }
    if (rc == 0) {
        if (fl != NULL) q.page_size = fl->remaining;
        q.next_page_token =
            (weft_bytes){.ptr = (const uint8_t *)tok.data, .len = (uint32_t)tok.size};
        rc = weft_schema_encode_buf(&weft_list_req_schema, &q, out, out_len);
    }
    msgpack_sbuffer_destroy(&tok);
    msgpack_unpacked_destroy(&up);
    if (rc != 0 && err->code == 0) {
        weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
    }
    return rc;
}

static int fan_remote(weft_req *r, uint64_t node_id, weft_err *err);

static void fan_remote_cb(void *data, const weft_fwd_reply *reply) {
    weft_req *r = data;
    WEFT_ASSERT(r->async_pending > 0);
    r->async_pending--;
    weft_err err = {0};
    /* Leadership moved since: the node named is asked once more. */
    if (reply->err.code == WEFT_E_NOT_LEADER && reply->leader_hint != r->forward_node &&
        r->forward_attempts < WEFTD_FORWARD_ATTEMPTS_MAX &&
        weft_forward_allowed(r, reply->leader_hint) &&
        fan_remote(r, reply->leader_hint, &err) == 0) {
        return;
    }
    if (reply->err.code != 0) {
        fan_fail(r, &reply->err, reply->leader_hint);
        return;
    }
    int rc;
    if (r->op->msg_type == WEFT_MSG_LIST_WORKFLOWS) {
        fan_list *fl = r->fan_state;
        uint32_t before = fl->items_count;
        rc = fan_list_merge(fl, reply->body, reply->body_len, true, &err);
        if (rc == 0) {
            rc = fan_list_after_page(r, r->fan_shard, fl->items_count - before);
            if (rc == 1) return;
        }
    } else {
        rc = fan_count_add(r, reply->body, reply->body_len, &err);
    }
    if (rc != 0) {
        fan_fail(r, &err, 0);
        return;
    }
    r->fan_shard++;
    r->forward_attempts = 0;
    fan_step(r);
}

/* Sends shard r->fan_shard's part of the request to node `node_id`. Returns 0 when sent. */
static int fan_remote(weft_req *r, uint64_t node_id, weft_err *err) {
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = fan_remote_body(r, &body, &len, err);
    if (rc == 0) {
        rc = weft_forward_call(r->node, node_id, r->op->msg_type, body, len, 0, fan_remote_cb, r,
                               err);
    }
    free(body);
    if (rc != 0) return rc;
    r->forward_attempts++;
    r->forward_node = node_id;
    r->async_pending++;
    return 0;
}

/* Where shard r->fan_shard is read: here (0), by another node (*remote gets its id), or
 * nowhere now (the error: a shard still electing, or a request that was itself forwarded here
 * for a shard this node cannot read, which must not be forwarded again). */
static int fan_check_shard(const weft_req *r, const weft_replica *rep, uint64_t *remote,
                           weft_err *err, uint64_t *hint) {
    weft_node *n = r->node;
    *remote = 0;
    *hint = 0;
    if (rep->hosted && (r->stale || weft_replica_ready(rep))) return 0;
    int rc = weft_replica_check_leader(rep, err, hint);
    if (rc == 0) return 0;
    if (err->code == WEFT_E_NOT_LEADER && weft_forward_allowed(r, *hint)) {
        *remote = *hint;
        return 0;
    }
    if (err->code == WEFT_E_NOT_LEADER && n->state < WEFT_NODE_CLOSING) {
        weft_err_prefix(err, "%s must read shard %u", r->op->name, rep->shard_id);
    }
    return rc;
}

/* Walks the shards from r->fan_shard to r->fan_end; yields at each linearizable shard's
 * barrier and at each shard read by another node. */
static void fan_step(weft_req *r) {
    while (r->fan_shard < r->fan_end) {
        weft_replica *rep = &r->node->replicas[r->fan_shard];
        weft_err err = {0};
        uint64_t hint = 0, remote = 0;
        if (fan_check_shard(r, rep, &remote, &err, &hint) != 0) {
            fan_fail(r, &err, hint);
            return;
        }
        if (remote != 0) {
            if (fan_remote(r, remote, &err) != 0) fan_fail(r, &err, 0);
            return;
        }
        if (rep->shard == NULL) {
            weft_err_set(&err, WEFT_E_UNAVAILABLE, "",
                         "shard %u is restarting after a storage failure; retry", rep->shard_id);
            fan_fail(r, &err, 0);
            return;
        }
        if (!r->stale && !r->fan_barrier_done) {
            if (weft_replica_barrier(rep, fan_barrier_cb, r, &err) != 0) {
                fan_fail(r, &err, 0);
                return;
            }
            r->async_pending++;
            return;
        }
        r->fan_barrier_done = false;
        int rc = fan_read_shard(r, rep, &err);
        if (rc < 0) {
            fan_fail(r, &err, 0);
            return;
        }
        if (rc == 1) return;
        r->fan_shard++;
    }
    if (r->op->msg_type == WEFT_MSG_LIST_WORKFLOWS) {
        fan_list_finish(r, false, 0);
        return;
    }
    weft_count_resp cr = {.count = r->fan_count};
    uint8_t *out = NULL;
    size_t len = 0;
    if (weft_schema_encode_buf(&weft_count_resp_schema, &cr, &out, &len) != 0) {
        weft_req_fail(r, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
        return;
    }
    weft_req_ok(r, out, len);
}

void weft_reads_fanout(weft_req *r) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_list_req q;
    weft_err err = {0};
    int rc = weft_schema_decode_buf(&weft_list_req_schema, r->body, r->body_len, &q, &up,
                                    &r->node->cfg.limits, &err);
    if (rc == 0) {
        r->stale = q.consistency == WEFT_CONSISTENCY_STALE;
        r->fan_shard = 0;
        r->fan_end = r->node->replicas_count;
        fan_list *fl = NULL;
        if (r->op->msg_type == WEFT_MSG_LIST_WORKFLOWS) {
            fl = calloc(1, sizeof *fl);
            WEFT_ASSERT(fl != NULL);
            msgpack_sbuffer_init(&fl->items);
            uint32_t page = q.page_size ? q.page_size : WEFTD_LIST_PAGE_SIZE_DEFAULT;
            fl->remaining = WEFT_MIN(page, WEFT_LIST_PAGE_SIZE_MAX);
            r->fan_state = fl;
        }
        /* A count has no pages; its token is only ever a peer's "this shard only", and the
         * shards read the request without it. */
        if (q.next_page_token.len > 0) rc = fan_token_decode(r, q.next_page_token, fl, &err);
        if (rc == 0 && fl == NULL && q.next_page_token.len > 0) {
            q.next_page_token = (weft_bytes){0};
            uint8_t *body = NULL;
            size_t len = 0;
            if (weft_schema_encode_buf(&weft_list_req_schema, &q, &body, &len) != 0) {
                rc = weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory");
            } else {
                free(r->body);
                r->body = body;
                r->body_len = len;
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        fan_fail(r, &err, 0);
        return;
    }
    fan_step(r);
}
