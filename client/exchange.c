/* exchange.c: one request and its reply on one connection: framing, correlation, and turning an
 * error frame into a weft_err (DESIGN section 10). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

void weft_response_free(weft_response *h) {
    if (h == NULL || h->priv == NULL) return;
    struct weft_response_priv *p = h->priv;
    msgpack_unpacked_destroy(&p->up);
    if (p->zone != NULL) msgpack_zone_free(p->zone);
    free(p->frame);
    free(p);
    h->priv = NULL;
}

uint64_t weft_response_node(const weft_response *h) {
    return h != NULL && h->priv != NULL ? h->priv->node_id : 0;
}

/* Parses `frame` (ownership moves into `holder`) and checks that it answers our request.
 * On success *body points at the body map inside holder. */
static int exchange_unpack(weft_client *c, weft_response *holder, uint8_t *frame, size_t len,
                           uint32_t msg_type, uint64_t frame_id, uint32_t *type_out,
                           const msgpack_object **body_out, weft_err *err) {
    WEFT_ASSERT(holder->priv == NULL);
    struct weft_response_priv *p = calloc(1, sizeof *p);
    if (p == NULL) {
        free(frame);
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "out of memory holding a %zu-byte reply", len);
    }
    p->frame = frame;
    msgpack_unpacked_init(&p->up);
    holder->priv = p;
    uint32_t type = 0;
    uint64_t id = 0;
    weft_err perr;
    weft_err_clear(&perr);
    int rc = weft_frame_parse(frame, len, &p->up, &type, &id, body_out, &c->limits, &perr);
    if (rc != 0) {
        return weft_err_set(err, WEFT_E_INTERNAL, perr.field,
                            "undecodable reply to message type %u: %s", msg_type, perr.message);
    }
    if (id != frame_id) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "reply carries request id %llu, expected %llu", (unsigned long long)id,
                            (unsigned long long)frame_id);
    }
    if (type != WEFT_MSG_ERROR && type != (msg_type | WEFT_MSG_RESPONSE_BIT)) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "reply has message type %u, expected %u or %u", type,
                            msg_type | WEFT_MSG_RESPONSE_BIT, WEFT_MSG_ERROR);
    }
    *type_out = type;
    return 0;
}

/* Turns an error body into err, and NOT_LEADER hints into out. Returns the negative code. */
static int exchange_error(weft_client *c, const msgpack_object *body, msgpack_zone *zone,
                          client_outcome *out, weft_err *err) {
    weft_error_resp e;
    weft_err derr;
    weft_err_clear(&derr);
    if (weft_schema_decode(&weft_error_resp_schema, body, &e, zone, &c->limits, &derr) != 0) {
        return weft_err_set(err, WEFT_E_INTERNAL, "", "undecodable error reply: %s", derr.message);
    }
    int code = (int)e.code;
    if (code <= 0 || code >= WEFT_E__COUNT) code = WEFT_E_INTERNAL;
    char field[WEFT_ERR_FIELD_BYTES_MAX];
    weft_str_copy(field, sizeof field, e.field);
    out->leader_hint = e.leader_hint;
    weft_str_copy(out->leader_address, sizeof out->leader_address, e.leader_address);
    return weft_err_set(err, code, field, "%.*s", (int)e.message.len,
                        e.message.ptr ? e.message.ptr : "");
}

int client_exchange(weft_client *c, client_conn *conn, uint32_t msg_type, const char *body,
                    size_t body_len, uint64_t timeout_ms, const weft_schema *resp_schema,
                    void *resp, weft_response *holder, client_outcome *out, weft_err *err) {
    WEFT_ASSERT(c != NULL && conn != NULL && conn->fd >= 0);
    WEFT_ASSERT(holder != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    weft_response_free(holder);
    uint64_t frame_id = conn->next_frame_id++;
    uint64_t deadline_ms = weft_mono_ms() + timeout_ms;

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = weft_frame_encode_raw(&sb, msg_type, frame_id, (const uint8_t *)body, body_len);
    if (rc != 0) {
        rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                          "out of memory framing a %zu-byte request", body_len);
    }
    if (rc == 0) rc = client_conn_write_all(conn->fd, sb.data, sb.size, deadline_ms, err);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0) {
        out->conn_broken = true;
        return rc;
    }
    out->sent = true;

    uint8_t *frame = NULL;
    size_t len = 0;
    rc = client_conn_read_frame(conn->fd, c->frame_bytes_max, deadline_ms, &frame, &len, err);
    if (rc != 0) {
        out->conn_broken = true;
        return rc;
    }
    uint32_t type = 0;
    const msgpack_object *rbody = NULL;
    rc = exchange_unpack(c, holder, frame, len, msg_type, frame_id, &type, &rbody, err);
    if (rc != 0) {
        out->conn_broken = true; /* a peer that breaks the protocol is not trusted again */
        return rc;
    }
    holder->priv->node_id = conn->node_id;
    msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    holder->priv->zone = zone;
    if (zone == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory decoding reply");
    }
    if (type == WEFT_MSG_ERROR) return exchange_error(c, rbody, zone, out, err);
    if (resp == NULL) return 0;
    weft_err derr;
    weft_err_clear(&derr);
    rc = weft_schema_decode(resp_schema, rbody, resp, zone, &c->limits, &derr);
    if (rc != 0) {
        /* The server's reply does not match our schema: a version skew or a bug, not the
         * caller's argument, hence INTERNAL (with the decoder's field path kept). */
        return weft_err_set(err, WEFT_E_INTERNAL, derr.field,
                            "decoding the reply to message type %u: %s", msg_type, derr.message);
    }
    return 0;
}
