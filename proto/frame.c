/* frame.c: length-prefixed msgpack frames: raw pre-check, encoders, stream reader and parser
 * (frame.h is the contract; DESIGN section 10). */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "msg.h"

/* Levels the raw pre-check can track; callers ask for at most this many. */
#define CHECK_DEPTH_MAX 16u
/* First allocation of a reader's buffer: one typical read from a socket. */
#define READER_BUF_BYTES_MIN 4096u

_Static_assert(WEFT_FRAME_DEPTH_MAX <= CHECK_DEPTH_MAX, "the pre-check must cover a frame");

const char *weft_msgpack_type_name(const msgpack_object *o) {
    WEFT_ASSERT(o != NULL);
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "negative integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "string";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "binary";
    case MSGPACK_OBJECT_EXT: return "extension";
    }
    return "unknown type";
}

/* ---- Raw pre-check ---- */

/* What one msgpack header announces. */
typedef struct mp_head {
    size_t head_bytes;   /* the type byte plus any length, count or ext-type bytes */
    uint64_t skip_bytes; /* payload that follows the header: number, string, binary, ext data */
    uint64_t items;      /* arrays: elements; maps: pairs */
    uint64_t children;   /* objects that follow: items, or 2 x pairs for a map */
    bool container;      /* an array or a map */
} mp_head;

static uint64_t read_be(const uint8_t *p, size_t n) {
    WEFT_ASSERT(n <= 8);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Length-prefixed kinds: `len_bytes` of big-endian length after the type byte, then `extra`
 * fixed header bytes (the ext type), then the payload. Returns false if truncated. */
static bool head_sized(const uint8_t *p, size_t avail, size_t len_bytes, size_t extra,
                       mp_head *h) {
    if (avail < 1 + len_bytes + extra) return false;
    h->head_bytes = 1 + len_bytes + extra;
    h->skip_bytes = read_be(p + 1, len_bytes);
    return true;
}

static bool head_container(const uint8_t *p, size_t avail, size_t len_bytes, uint64_t fixed,
                           bool map, mp_head *h) {
    if (avail < 1 + len_bytes) return false;
    h->head_bytes = 1 + len_bytes;
    h->items = len_bytes > 0 ? read_be(p + 1, len_bytes) : fixed;
    h->children = map ? 2 * h->items : h->items;
    h->container = true;
    return true;
}

/* Decodes the header at p (avail > 0 bytes). Returns 0, 1 when the buffer ends inside the
 * header, or 2 for the reserved byte 0xc1. Payload bounds are the caller's check. */
static int head_read(const uint8_t *p, size_t avail, mp_head *h) {
    static const uint8_t fixed_payload[] = {
        [0xca - 0xca] = 4, [0xcb - 0xca] = 8, [0xcc - 0xca] = 1, [0xcd - 0xca] = 2,
        [0xce - 0xca] = 4, [0xcf - 0xca] = 8, [0xd0 - 0xca] = 1, [0xd1 - 0xca] = 2,
        [0xd2 - 0xca] = 4, [0xd3 - 0xca] = 8, [0xd4 - 0xca] = 1, [0xd5 - 0xca] = 2,
        [0xd6 - 0xca] = 4, [0xd7 - 0xca] = 8, [0xd8 - 0xca] = 16};
    uint8_t b = p[0];
    memset(h, 0, sizeof *h);
    h->head_bytes = 1;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return 0;
    if (b <= 0x8f) return head_container(p, avail, 0, b & 0x0fu, true, h) ? 0 : 1;
    if (b <= 0x9f) return head_container(p, avail, 0, b & 0x0fu, false, h) ? 0 : 1;
    if (b <= 0xbf) {
        h->skip_bytes = b & 0x1fu;
        return 0;
    }
    if (b == 0xc1) return 2;
    if (b >= 0xc4 && b <= 0xc6) return head_sized(p, avail, 1u << (b - 0xc4), 0, h) ? 0 : 1;
    if (b >= 0xc7 && b <= 0xc9) return head_sized(p, avail, 1u << (b - 0xc7), 1, h) ? 0 : 1;
    if (b >= 0xd9 && b <= 0xdb) return head_sized(p, avail, 1u << (b - 0xd9), 0, h) ? 0 : 1;
    if (b == 0xdc || b == 0xdd) return head_container(p, avail, b == 0xdc ? 2 : 4, 0, false, h) ? 0 : 1;
    if (b == 0xde || b == 0xdf) return head_container(p, avail, b == 0xde ? 2 : 4, 0, true, h) ? 0 : 1;
    /* 0xca..0xd8: numbers and fixext (whose one ext-type byte counts as header). */
    WEFT_ASSERT(b >= 0xca && b <= 0xd8);
    h->head_bytes = b >= 0xd4 ? 2 : 1;
    h->skip_bytes = fixed_payload[b - 0xca];
    return avail >= h->head_bytes ? 0 : 1;
}

static int check_truncated(const char *what, size_t pos, weft_err *err) {
    return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, what,
                        "%s is truncated: its msgpack ends inside a value at byte %zu; send the "
                        "whole object", what, pos);
}

/* Validates the container announced by `h` at `pos` (depth `top` + 1). */
static int check_container(const mp_head *h, unsigned top, unsigned depth_max, size_t left_bytes,
                           size_t pos, const char *what, weft_err *err) {
    if (top + 1 > depth_max) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, what,
                            "%s nests maps and arrays more than %u levels deep: send a flatter "
                            "request (a body may nest WEFT_DECODE_DEPTH_MAX = %u levels)",
                            what, depth_max, WEFT_DECODE_DEPTH_MAX);
    }
    if (h->items > WEFT_DECODE_ARRAY_ITEMS_MAX) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, what,
                            "%s holds a map or array of %llu items; the limit is %u items "
                            "(WEFT_DECODE_ARRAY_ITEMS_MAX): send fewer", what,
                            (unsigned long long)h->items, WEFT_DECODE_ARRAY_ITEMS_MAX);
    }
    /* Every element takes at least one byte: a larger count cannot be real. */
    if (h->children > left_bytes) return check_truncated(what, pos, err);
    return 0;
}

int weft_msgpack_check(const uint8_t *buf, size_t len, unsigned depth_max, const char *what,
                       weft_err *err) {
    WEFT_ASSERT(depth_max >= 1 && depth_max <= CHECK_DEPTH_MAX && what != NULL);
    WEFT_ASSERT(buf != NULL || len == 0);
    if (len == 0) return check_truncated(what, 0, err);
    uint64_t left[CHECK_DEPTH_MAX]; /* children still expected at each open level */
    unsigned top = 0;
    size_t pos = 0;
    for (;;) {
        if (pos >= len) return check_truncated(what, pos, err);
        mp_head h;
        int rc = head_read(buf + pos, len - pos, &h);
        if (rc == 1) return check_truncated(what, pos, err);
        if (rc == 2) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, what,
                                "%s is not valid msgpack: byte 0xc1 at offset %zu is reserved",
                                what, pos);
        }
        size_t at = pos;
        pos += h.head_bytes;
        if (h.skip_bytes > len - pos) return check_truncated(what, at, err);
        pos += (size_t)h.skip_bytes;
        if (h.container) {
            rc = check_container(&h, top, depth_max, len - pos, at, what, err);
            if (rc != 0) return rc;
            if (h.children > 0) {
                left[top++] = h.children;
                continue;
            }
        }
        /* One object is complete: close every level it completes. */
        while (top > 0 && --left[top - 1] == 0) top--;
        if (top == 0) break;
    }
    if (pos != len) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, what,
                            "%s has %zu trailing bytes after its msgpack object: send exactly "
                            "one object", what, len - pos);
    }
    return 0;
}

/* ---- Encoding ---- */

static void write_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes a placeholder length and [type, req_id, ...; the body follows. */
static int frame_begin(msgpack_sbuffer *out, msgpack_packer *pk, uint32_t type, uint64_t req_id) {
    static const char zero_len[WEFT_FRAME_HEADER_BYTES];
    if (msgpack_sbuffer_write(out, zero_len, sizeof zero_len) != 0) return -1;
    msgpack_packer_init(pk, out, msgpack_sbuffer_write);
    if (msgpack_pack_array(pk, WEFT_FRAME_ARRAY_ITEMS) != 0) return -1;
    if (msgpack_pack_uint32(pk, type) != 0) return -1;
    return msgpack_pack_uint64(pk, req_id);
}

/* Patches the length prefix of the frame starting at `start`, or rolls `out` back to `start`
 * when the frame failed (rc != 0) or is too long to describe. */
static int frame_end(msgpack_sbuffer *out, size_t start, int rc) {
    WEFT_ASSERT(out->size >= start);
    if (rc == 0 && out->size - start - WEFT_FRAME_HEADER_BYTES > UINT32_MAX) rc = -1;
    if (rc != 0) {
        out->size = start;
        return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    size_t body_bytes = out->size - start - WEFT_FRAME_HEADER_BYTES;
    write_be32((uint8_t *)out->data + start, (uint32_t)body_bytes);
    return 0;
}

int weft_frame_encode(msgpack_sbuffer *out, uint32_t type, uint64_t req_id, const weft_schema *s,
                      const void *body) {
    WEFT_ASSERT(out != NULL && s != NULL && body != NULL);
    size_t start = out->size;
    msgpack_packer pk;
    int rc = frame_begin(out, &pk, type, req_id);
    if (rc == 0) rc = weft_schema_encode(s, body, &pk);
    return frame_end(out, start, rc);
}

static bool is_map_header(uint8_t b) { return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf; }

int weft_frame_encode_raw(msgpack_sbuffer *out, uint32_t type, uint64_t req_id,
                          const uint8_t *body_map, size_t len) {
    WEFT_ASSERT(out != NULL && body_map != NULL && len > 0);
    WEFT_ASSERT(is_map_header(body_map[0]));
    size_t start = out->size;
    msgpack_packer pk;
    int rc = frame_begin(out, &pk, type, req_id);
    if (rc == 0) rc = msgpack_sbuffer_write(out, (const char *)body_map, len);
    return frame_end(out, start, rc);
}


int weft_frame_encode_error(msgpack_sbuffer *out, uint64_t req_id, const weft_err *err,
                            uint64_t leader_hint, const char *leader_address) {
    WEFT_ASSERT(out != NULL && err != NULL);
    WEFT_ASSERT(err->code > 0 && err->code < WEFT_E__COUNT);
    char message[WEFT_ERR_MESSAGE_BYTES_MAX];
    char field[WEFT_ERR_FIELD_BYTES_MAX];
    size_t message_len = strnlen(err->message, sizeof message - 1);
    size_t field_len = strnlen(err->field, sizeof field - 1);
    memcpy(message, err->message, message_len);
    memcpy(field, err->field, field_len);
    /* Messages can quote user input cut mid-character by a fixed buffer. */
    weft_utf8_repair(message, message_len);
    weft_utf8_repair(field, field_len);
    weft_error_resp body = {
        .code = (uint32_t)err->code,
        .name = weft_str_c(weft_error_name(err->code)),
        .message = {.ptr = message, .len = (uint32_t)message_len},
        .field = {.ptr = field, .len = (uint32_t)field_len},
        .leader_hint = leader_hint,
        .leader_address = weft_str_c(leader_address),
    };
    return weft_frame_encode(out, WEFT_MSG_ERROR, req_id, &weft_error_resp_schema, &body);
}

/* ---- Incremental reader ---- */

void weft_frame_reader_init(weft_frame_reader *r, uint32_t frame_bytes_max) {
    WEFT_ASSERT(r != NULL && frame_bytes_max > 0);
    memset(r, 0, sizeof *r);
    r->frame_bytes_max = frame_bytes_max;
}

void weft_frame_reader_free(weft_frame_reader *r) {
    WEFT_ASSERT(r != NULL);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* The request methods of HTTP/1 (and "HTTP", how a response starts, and "PRI ", how HTTP/2
 * starts), as their first four bytes: a peer that speaks HTTP to a weft port sends one. */
static const char *const reader_http_heads[] = {"GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI",
                                                "PATC", "CONN", "TRAC", "PRI ", "HTTP"};

static bool reader_head_is_http(const uint8_t head[4]) {
    for (unsigned i = 0; i < WEFT_ARRAY_LEN(reader_http_heads); i++) {
        if (memcmp(head, reader_http_heads[i], 4) == 0) return true;
    }
    return false;
}

static bool reader_head_is_text(const uint8_t head[4]) {
    for (unsigned i = 0; i < 4; i++) {
        if (head[i] < 0x20 || head[i] > 0x7e) return false;
    }
    return true;
}

/* A length prefix that is too large is most often not a length at all but another protocol's
 * first bytes (HTTP's "GET " reads as 1195725856): the message says which, since raising
 * frame_bytes_max would not help. */
static int reader_error_foreign(const weft_frame_reader *r, weft_err *err) {
    const uint8_t *h = r->bad_head;
    if (reader_head_is_http(h)) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame",
                            "received HTTP (\"%.4s...\") where a weft frame belongs: this port "
                            "speaks weft's binary protocol, not HTTP; use the weft CLI or "
                            "libweft (docs/protocol.md); the connection is closed",
                            (const char *)h);
    }
    if (h[0] == 0x16 && h[1] == 0x03) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame",
                            "received a TLS handshake where a weft frame belongs: this port "
                            "speaks weft's binary protocol over plain TCP, not TLS; the "
                            "connection is closed");
    }
    return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame",
                        "received text (\"%.4s...\") where a weft frame's 4-byte length "
                        "belongs: this port speaks weft's binary protocol (docs/protocol.md), "
                        "not a text protocol; the connection is closed",
                        (const char *)h);
}

static int reader_error(const weft_frame_reader *r, weft_err *err) {
    WEFT_ASSERT(r->failed < 0);
    if (r->failed == -WEFT_E_INVALID_ARGUMENT && r->bad_len == 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame",
                            "frame length is 0: every frame holds a msgpack array [msg_type, "
                            "request_id, body]; the connection is closed");
    }
    if (r->failed == -WEFT_E_INVALID_ARGUMENT) return reader_error_foreign(r, err);
    return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "frame",
                        "frame is %u bytes; the limit is %u bytes (frame_bytes_max): send "
                        "smaller requests or raise frame_bytes_max; the connection is closed",
                        r->bad_len, r->frame_bytes_max);
}

/* Drops the bytes of frames already returned, and gives back a large idle buffer. */
static void reader_compact(weft_frame_reader *r) {
    WEFT_ASSERT(r->start <= r->len);
    if (r->start == 0) return;
    size_t left = r->len - r->start;
    if (left > 0) memmove(r->buf, r->buf + r->start, left);
    r->len = left;
    r->start = 0;
    if (left == 0 && r->cap > WEFT_FRAME_READER_IDLE_BYTES_MAX) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
}

int weft_frame_reader_feed(weft_frame_reader *r, const uint8_t *data, size_t len, weft_err *err) {
    WEFT_ASSERT(r != NULL && (data != NULL || len == 0));
    if (r->failed != 0) return reader_error(r, err);
    reader_compact(r);
    if (len == 0) return 0;
    if (len > SIZE_MAX - r->len) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "frame", "reader buffer overflow");
    }
    size_t need = r->len + len;
    if (need > r->cap) {
        size_t cap = WEFT_MAX(WEFT_MAX(r->cap * 2, need), (size_t)READER_BUF_BYTES_MIN);
        uint8_t *buf = realloc(r->buf, cap);
        if (buf == NULL) {
            return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "frame",
                                "out of memory buffering %zu bytes; retry later", need);
        }
        r->buf = buf;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    WEFT_ASSERT(r->len <= r->cap);
    return 0;
}

int weft_frame_reader_next(weft_frame_reader *r, const uint8_t **frame, size_t *frame_len,
                           weft_err *err) {
    WEFT_ASSERT(r != NULL && frame != NULL && frame_len != NULL);
    WEFT_ASSERT(r->start <= r->len);
    if (r->failed != 0) return reader_error(r, err);
    size_t avail = r->len - r->start;
    if (avail < WEFT_FRAME_HEADER_BYTES) return 0;
    const uint8_t *p = r->buf + r->start;
    uint32_t n = (uint32_t)read_be(p, WEFT_FRAME_HEADER_BYTES);
    if (n == 0 || n > r->frame_bytes_max) {
        /* The stream cannot be resynchronised after a bad length: poison the reader. */
        memcpy(r->bad_head, p, sizeof r->bad_head);
        bool foreign = reader_head_is_http(p) || (p[0] == 0x16 && p[1] == 0x03) ||
                       reader_head_is_text(p);
        r->failed = n == 0 || foreign ? -WEFT_E_INVALID_ARGUMENT : -WEFT_E_RESOURCE_EXHAUSTED;
        r->bad_len = n;
        return reader_error(r, err);
    }
    if (avail - WEFT_FRAME_HEADER_BYTES < n) return 0;
    *frame = p + WEFT_FRAME_HEADER_BYTES;
    *frame_len = n;
    r->start += WEFT_FRAME_HEADER_BYTES + n;
    return 1;
}

/* ---- Parsing ---- */

static int frame_unpack(const uint8_t *frame, size_t len, msgpack_unpacked *up,
                        const weft_limits *l, weft_err *err) {
    if (len > l->frame_bytes_max) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "frame",
                            "frame is %zu bytes; the limit is %u bytes (frame_bytes_max): send "
                            "smaller requests or raise frame_bytes_max", len, l->frame_bytes_max);
    }
    int rc = weft_msgpack_check(frame, len, WEFT_FRAME_DEPTH_MAX, "frame", err);
    if (rc != 0) return rc;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(up, (const char *)frame, len, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "frame",
                            "out of memory unpacking a %zu-byte frame; retry later", len);
    }
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame",
                            "frame is not one valid msgpack object (unpack result %d)", (int)ur);
    }
    return 0;
}

int weft_frame_parse(const uint8_t *frame, size_t len, msgpack_unpacked *up, uint32_t *type,
                     uint64_t *req_id, const msgpack_object **body, const weft_limits *l,
                     weft_err *err) {
    WEFT_ASSERT(frame != NULL && up != NULL && type != NULL && req_id != NULL);
    WEFT_ASSERT(body != NULL && l != NULL);
    *type = 0;
    *req_id = 0;
    *body = NULL;
    int rc = frame_unpack(frame, len, up, l, err);
    if (rc != 0) return rc;
    const msgpack_object *o = &up->data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != WEFT_FRAME_ARRAY_ITEMS) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame",
                            "frame must be an array [msg_type, request_id, body], got %s",
                            weft_msgpack_type_name(o));
    }
    const msgpack_object *el = o->via.array.ptr;
    /* request_id first, so that an error about the rest can still be correlated. */
    if (el[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame.request_id",
                            "frame.request_id must be a non-negative integer, got %s",
                            weft_msgpack_type_name(&el[1]));
    }
    *req_id = el[1].via.u64;
    if (el[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || el[0].via.u64 > UINT32_MAX) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame.msg_type",
                            "frame.msg_type must be an unsigned 32-bit integer, got %s",
                            weft_msgpack_type_name(&el[0]));
    }
    *type = (uint32_t)el[0].via.u64;
    if (el[2].type != MSGPACK_OBJECT_MAP) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "frame.body",
                            "frame.body must be a map, got %s", weft_msgpack_type_name(&el[2]));
    }
    *body = &el[2];
    return 0;
}
