/* reads.c: the read paths. Single-run reads route by workflow key; a read the shard cannot
 * answer yet (should_wait) parks in waits.c until its run changes or its wait times out. List
 * and count walk the shards in order, one barrier per shard for linearizable reads. A list
 * asks every shard for one run more than the page after the cursor, newest first, and answers
 * the newest of them all in the global order (listtoken.h); its page token is the position of
 * the page's last run, which every shard resumes from. A shard this node cannot read (no
 * replica here, or led elsewhere for a linearizable read) is read by the node that leads it:
 * this node sends it the same request for that one shard (the token [start_ms, shard, run_key,
 * only] says "shard `only` alone"), then goes on with the next shard, so one answer covers the
 * cluster. Single-run reads go to the leader the same way (forward.h). */
#include "reads.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/base.h"
#include "../proto/frame.h"
#include "../proto/log.h"
#include "../proto/partition.h"
#include "../storage/keys.h"
#include "cluster.h"
#include "forward.h"
#include "listtoken.h"
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

/* A shard's row position in its list answer: be64 start_ms, be64 run_key (shards/read.c). */
#define FAN_POS_BYTES 16u

/* One run gathered for a LIST page: its place in the global order and its packed summary. */
typedef struct fan_row {
    weft_list_pos pos;
    size_t off, len; /* the packed execution map in fan_list.items */
} fan_row;

/* A LIST page being assembled across shards: each shard gives up to page + 1 runs after the
 * cursor, and the newest `page` of them all make the page (the extra one says more follow). */
typedef struct fan_list {
    msgpack_sbuffer items; /* packed execution maps, concatenated */
    fan_row *rows;         /* one per map in items */
    uint32_t rows_count, rows_cap;
    uint32_t page;         /* executions wanted for this page */
    weft_list_token token; /* where the page resumes (WEFT_LIST_POS_TOP for the first) */
} fan_list;

static void fan_list_free(weft_req *r) {
    fan_list *fl = r->fan_state;
    if (fl == NULL) return;
    msgpack_sbuffer_destroy(&fl->items);
    free(fl->rows);
    free(fl);
    r->fan_state = NULL;
}

static void fan_fail(weft_req *r, const weft_err *err, uint64_t hint) {
    fan_list_free(r);
    weft_req_err(r, err, hint);
}

/* Decodes the client's (or a peer's) page token into where the fan-out starts and ends. */
static int fan_token_decode(weft_req *r, weft_bytes tok, fan_list *fl, weft_err *err) {
    weft_list_token t;
    int rc = weft_list_token_decode(tok.ptr, tok.len, r->node->replicas_count, &t, err);
    if (rc != 0) return rc;
    if (t.has_only) {
        r->fan_shard = t.only;
        r->fan_end = t.only + 1;
    }
    if (fl != NULL) fl->token = t;
    return 0;
}

/* Packs the token `t` as a bin. */
static int fan_token_pack(const weft_list_token *t, msgpack_packer *pk) {
    msgpack_sbuffer tok;
    msgpack_sbuffer_init(&tok);
    int rc = weft_list_token_encode(t, &tok);
    rc |= msgpack_pack_bin(pk, tok.size);
    rc |= msgpack_pack_bin_body(pk, tok.data, tok.size);
    msgpack_sbuffer_destroy(&tok);
    return rc;
}

static int fan_row_cmp(const void *a, const void *b) {
    return weft_list_pos_cmp(&((const fan_row *)a)->pos, &((const fan_row *)b)->pos);
}

/* The rows of the answer, in order, with what follows "executions": the client's page is the
 * newest fl->page rows and the token of the last one when more follow; a peer that asked for
 * one shard gets every row, in the shard's order, and their positions (as a shard answers). */
static int fan_list_pack(fan_list *fl, msgpack_sbuffer *sb) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    uint32_t n = fl->rows_count;
    bool more = false;
    if (!fl->token.has_only) {
        if (n > 1) qsort(fl->rows, n, sizeof *fl->rows, fan_row_cmp);
        more = n > fl->page;
        n = WEFT_MIN(n, fl->page);
    }
    bool token = more || (fl->token.has_only && n > 0);
    int rc = msgpack_pack_map(&pk, token ? 2 : 1);
    rc |= weft_pack_cstr(&pk, "executions");
    rc |= msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        rc = msgpack_sbuffer_write(sb, fl->items.data + fl->rows[i].off, fl->rows[i].len);
    }
    if (rc == 0 && more) {
        rc |= weft_pack_cstr(&pk, "next_page_token");
        weft_list_token next = {.after = fl->rows[n - 1].pos};
        rc |= fan_token_pack(&next, &pk);
    } else if (rc == 0 && token) {
        rc |= weft_pack_cstr(&pk, "next_page_token");
        rc |= msgpack_pack_bin(&pk, (size_t)n * FAN_POS_BYTES);
        for (uint32_t i = 0; i < n; i++) {
            uint8_t pos[FAN_POS_BYTES];
            weft_be64_put(pos, fl->rows[i].pos.start_ms);
            weft_be64_put(pos + 8, fl->rows[i].pos.run_key);
            rc |= msgpack_pack_bin_body(&pk, pos, sizeof pos);
        }
    }
    return rc;
}

/* Answers LIST with the page made of the executions gathered from every shard. */
static void fan_list_finish(weft_req *r) {
    fan_list *fl = r->fan_state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = fan_list_pack(fl, &sb);
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

/* The request body for one shard: the client's filters, one run more than the page (to learn
 * whether more follow), and the shard's bound after the cursor as its token. */
static int fan_list_shard_body(weft_req *r, uint32_t shard, uint8_t **out, size_t *out_len,
                               weft_err *err) {
    fan_list *fl = r->fan_state;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_list_req q;
    uint8_t bound[FAN_POS_BYTES];
    int rc = weft_schema_decode_buf(&weft_list_req_schema, r->body, r->body_len, &q, &up,
                                    &r->node->cfg.limits, err);
    if (rc == 0) {
        uint64_t bound_ms = 0, bound_key = 0;
        q.page_size = fl->page + 1;
        q.next_page_token = (weft_bytes){0};
        if (weft_list_cursor_bound(&fl->token.after, shard, &bound_ms, &bound_key)) {
            weft_be64_put(bound, bound_ms);
            weft_be64_put(bound + 8, bound_key);
            q.next_page_token = (weft_bytes){.ptr = bound, .len = sizeof bound};
        }
        rc = weft_schema_encode_buf(&weft_list_req_schema, &q, out, out_len);
        if (rc != 0)
            rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* Appends one shard's runs (a local shard's answer, or a peer's for that one shard: the same
 * shape) to the rows gathered: each execution map with its position from the answer's
 * next_page_token. A shard gives at most page + 1 runs; more is a malformed answer. */
static int fan_list_merge(fan_list *fl, uint32_t shard, const uint8_t *body, size_t len,
                          weft_err *err) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    const msgpack_object *execs = NULL, *pos = NULL;
    if (msgpack_unpack_next(&up, (const char *)body, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &up.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR) continue;
            weft_str key = {.ptr = k->via.str.ptr, .len = k->via.str.size};
            if (weft_str_eq_c(key, "executions") && v->type == MSGPACK_OBJECT_ARRAY) execs = v;
            if (weft_str_eq_c(key, "next_page_token") && v->type == MSGPACK_OBJECT_BIN) pos = v;
        }
    }
    uint32_t n = execs != NULL ? execs->via.array.size : 0;
    if (up.data.type != MSGPACK_OBJECT_MAP || n > fl->page + 1 ||
        (n > 0 && (pos == NULL || pos->via.bin.size != (size_t)n * FAN_POS_BYTES))) {
        msgpack_unpacked_destroy(&up);
        WEFT_LOGF(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
                  "shard %u answered a list with %u runs and %u position bytes", shard, n,
                  pos != NULL ? pos->via.bin.size : 0u);
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "a shard returned a malformed list page; see the server log");
    }
    if (fl->rows_count + n > fl->rows_cap) {
        uint32_t cap = WEFT_MAX(fl->rows_count + n, fl->rows_cap * 2);
        fan_row *rows = realloc(fl->rows, (size_t)cap * sizeof *rows);
        WEFT_ASSERT(rows != NULL);
        fl->rows = rows;
        fl->rows_cap = cap;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fl->items, msgpack_sbuffer_write);
    int rc = 0;
    for (uint32_t j = 0; j < n && rc == 0; j++) {
        const uint8_t *p = (const uint8_t *)pos->via.bin.ptr + (size_t)j * FAN_POS_BYTES;
        fan_row *row = &fl->rows[fl->rows_count++];
        *row = (fan_row){.pos = {weft_be64_get(p), shard, weft_be64_get(p + 8)},
                         .off = fl->items.size};
        rc = msgpack_pack_object(&pk, execs->via.array.ptr[j]);
        row->len = fl->items.size - row->off;
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0)
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "node is out of memory; retry");
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

/* Reads the current shard: a count adds up, a list page merges. Returns 0 to go on with the
 * next shard, or a negative error. */
static int fan_read_shard(weft_req *r, weft_replica *rep, weft_err *err) {
    uint8_t *body = r->body;
    size_t body_len = r->body_len;
    bool list = r->op->msg_type == WEFT_MSG_LIST_WORKFLOWS;
    if (list && fan_list_shard_body(r, rep->shard_id, &body, &body_len, err) != 0)
        return -err->code;
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
    rc = fan_list_merge(r->fan_state, rep->shard_id, reply.body, reply.body_len, err);
    weft_reply_reset(&reply);
    return rc;
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
 * filters with the token [start_ms, shard, run_key, only] (and this page's size, for a list). */
static int fan_remote_body(weft_req *r, uint8_t **out, size_t *out_len, weft_err *err) {
    fan_list *fl = r->fan_state;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_list_req q;
    msgpack_sbuffer tok;
    msgpack_sbuffer_init(&tok);
    int rc = weft_schema_decode_buf(&weft_list_req_schema, r->body, r->body_len, &q, &up,
                                    &r->node->cfg.limits, err);
    weft_list_token t = {.after = fl != NULL ? fl->token.after : WEFT_LIST_POS_TOP,
                         .has_only = true,
                         .only = r->fan_shard};
    if (rc == 0 && weft_list_token_encode(&t, &tok) != 0) rc = -WEFT_E_RESOURCE_EXHAUSTED;
    if (rc == 0) {
        if (fl != NULL) q.page_size = fl->page;
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
        rc = fan_list_merge(r->fan_state, r->fan_shard, reply->body, reply->body_len, &err);
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
        r->fan_shard++;
    }
    if (r->op->msg_type == WEFT_MSG_LIST_WORKFLOWS) {
        fan_list_finish(r);
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
            fl->page = WEFT_MIN(page, WEFT_LIST_PAGE_SIZE_MAX);
            fl->token.after = WEFT_LIST_POS_TOP;
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
