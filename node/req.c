/* req.c: a request's lifecycle. Every path ends in req_finish, which runs once; memory is
 * released only when nothing can call back into the request any more (no proposal or barrier in
 * flight, no wait list, the timer handle closed). */
#include "req.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "../proto/base.h"
#include "../proto/log.h"
#include "conn.h"
#include "poll.h"
#include "waits.h"

weft_req *weft_req_new(weft_conn *conn, const weft_op *op, uint64_t request_id, uint8_t *body,
                       size_t body_len) {
    WEFT_ASSERT(conn != NULL && op != NULL && body != NULL);
    weft_req *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->node = conn->node;
    r->conn = conn;
    r->op = op;
    r->request_id = request_id;
    r->body = body;
    r->body_len = body_len;
    r->started_mono_ms = weft_mono_ms();
    r->conn_next = conn->inflight_head;
    if (conn->inflight_head != NULL) conn->inflight_head->conn_prev = r;
    conn->inflight_head = r;
    conn->inflight_count++;
    return r;
}

static void req_free(weft_req *r) {
    WEFT_ASSERT(r->finished && r->async_pending == 0 && r->wait == WEFT_REQ_WAIT_NONE);
    WEFT_ASSERT(r->conn == NULL && r->fan_state == NULL);
    free(r->body);
    free(r->task_queue);
    free(r->polled_queue);
    free(r->identity);
    free(r->ns_checked);
    free(r);
}

static void req_timer_closed_cb(uv_handle_t *h) {
    req_free(h->data);
}

/* Frees the request once its timer handle is closed. */
static void req_release(weft_req *r) {
    if (r->timer_init) {
        uv_close((uv_handle_t *)&r->timer, req_timer_closed_cb);
        return;
    }
    req_free(r);
}

/* Marks the request answered and unlinks it from its connection, returning that connection
 * (NULL if it is gone). The response must be queued on the returned connection afterwards:
 * unlinking first means a write failure that closes the connection cannot reach this request. */
static weft_conn *req_finish_begin(weft_req *r) {
    WEFT_ASSERT(!r->finished);
    WEFT_ASSERT(r->wait == WEFT_REQ_WAIT_NONE && r->async_pending == 0);
    r->finished = true;
    if (r->timer_init) uv_timer_stop(&r->timer);
    weft_conn *c = r->conn;
    if (c != NULL) weft_conn_req_done(c, r);
    return c;
}

void weft_req_ok(weft_req *r, uint8_t *body, size_t body_len) {
    WEFT_ASSERT(body != NULL && body_len > 0);
    weft_conn *c = req_finish_begin(r);
    WEFT_LOGF(WEFT_LOG_TRACE, WEFT_LOG_NO_SHARD, "request %s id %llu ok in %llu ms", r->op->name,
              (unsigned long long)r->request_id,
              (unsigned long long)(weft_mono_ms() - r->started_mono_ms));
    if (c != NULL) weft_conn_send_ok(c, r->op->msg_type, r->request_id, body, body_len);
    free(body);
    req_release(r);
}

void weft_req_err(weft_req *r, const weft_err *err, uint64_t leader_hint) {
    WEFT_ASSERT(err != NULL && err->code > 0);
    weft_conn *c = req_finish_begin(r);
    WEFT_LOGF(WEFT_LOG_DEBUG, WEFT_LOG_NO_SHARD, "request %s id %llu failed: %s: %s", r->op->name,
              (unsigned long long)r->request_id, weft_error_name(err->code), err->message);
    if (c != NULL) weft_conn_send_error(c, r->request_id, err, leader_hint);
    req_release(r);
}

void weft_req_fail(weft_req *r, int code, const char *field, const char *fmt, ...) {
    weft_err err = {0};
    err.code = code;
    snprintf(err.field, sizeof err.field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    weft_req_err(r, &err, 0);
}

void weft_req_reply(weft_req *r, weft_reply *reply) {
    if (reply->err.code != 0) {
        weft_req_err(r, &reply->err, reply->leader_hint);
        weft_reply_reset(reply);
        return;
    }
    uint8_t *body = reply->body;
    size_t len = reply->body_len;
    reply->body = NULL;
    reply->body_len = 0;
    if (body == NULL || len == 0) {
        /* An empty success map (msgpack fixmap of 0 entries). */
        free(body);
        body = malloc(1);
        WEFT_ASSERT(body != NULL);
        body[0] = 0x80;
        len = 1;
    }
    weft_reply_reset(reply);
    weft_req_ok(r, body, len);
}

void weft_req_detach(weft_req *r) {
    WEFT_ASSERT(r->conn == NULL && !r->finished);
    if (r->wait == WEFT_REQ_WAIT_READ) weft_waits_remove(r);
    if (r->wait == WEFT_REQ_WAIT_POLL) weft_poll_remove(r);
    WEFT_ASSERT(r->wait == WEFT_REQ_WAIT_NONE);
    /* With a proposal or barrier in flight, its callback finishes the request. */
    if (r->async_pending > 0) return;
    req_finish_begin(r);
    req_release(r);
}

void weft_req_timer_start(weft_req *r, uint64_t timeout_ms, uv_timer_cb cb) {
    WEFT_ASSERT(!r->finished && cb != NULL);
    if (!r->timer_init) {
        int rc = uv_timer_init(r->node->loop, &r->timer);
        WEFT_ASSERT(rc == 0);
        r->timer.data = r;
        r->timer_init = true;
    }
    r->deadline_mono_ms = weft_mono_ms() + timeout_ms;
    uv_timer_start(&r->timer, cb, timeout_ms, 0);
}

void weft_req_timer_stop(weft_req *r) {
    if (r->timer_init) uv_timer_stop(&r->timer);
}
