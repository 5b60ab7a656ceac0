/* test_frame.c: wire frames: encoding, the incremental reader, parsing of hostile frames, the
 * raw msgpack pre-check, and a seeded mutation fuzz loop over valid frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto/frame.h"
#include "proto/msg.h"

/* Iterations of the fuzz loop unless WEFT_FUZZ_ITERATIONS overrides it. */
#define FUZZ_ITERATIONS_DEFAULT 200000u
/* Room for the largest decoded struct in the fuzz loop. */
#define FUZZ_OUT_BYTES 4096u

static weft_limits g_limits;

static int setup(void **state) {
    (void)state;
    weft_limits_default(&g_limits);
    return 0;
}

static weft_start_req sample_start(void) {
    return (weft_start_req){
        .namespace_ = WEFT_STR_LIT("default"),
        .workflow_id = WEFT_STR_LIT("order-1"),
        .workflow_type = WEFT_STR_LIT("Order"),
        .task_queue = WEFT_STR_LIT("orders"),
        .input = {(const uint8_t *)"\x92\x01\x02", 3},
        .request_id = WEFT_STR_LIT("r-1"),
        .id_reuse_policy = WEFT_REUSE_ALLOW_FAILED,
    };
}

static uint32_t read_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses the frame at `p` (with its prefix) and returns the parse result. */
static int parse_framed(const uint8_t *p, size_t len, msgpack_unpacked *up, uint32_t *type,
                        uint64_t *rid, const msgpack_object **body, weft_err *err) {
    assert_true(len >= WEFT_FRAME_HEADER_BYTES);
    assert_int_equal(read_be32(p), len - WEFT_FRAME_HEADER_BYTES);
    return weft_frame_parse(p + WEFT_FRAME_HEADER_BYTES, len - WEFT_FRAME_HEADER_BYTES, up, type,
                            rid, body, &g_limits, err);
}

/* ---- Encoding and parsing ---- */

static void test_encode_parse_round_trip(void **state) {
    (void)state;
    weft_start_req in = sample_start();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(weft_frame_encode(&sb, WEFT_MSG_START_WORKFLOW, UINT64_MAX,
                                       &weft_start_req_schema, &in), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    uint32_t type = 0;
    uint64_t rid = 0;
    const msgpack_object *body = NULL;
    weft_err err;
    assert_int_equal(parse_framed((const uint8_t *)sb.data, sb.size, &up, &type, &rid, &body,
                                  &err), 0);
    assert_int_equal(type, WEFT_MSG_START_WORKFLOW);
    assert_true(rid == UINT64_MAX);
    weft_start_req out;
    assert_int_equal(weft_schema_decode(&weft_start_req_schema, body, &out, up.zone, &g_limits,
                                        &err), 0);
    assert_true(weft_str_eq_c(out.workflow_id, "order-1"));
    assert_int_equal(out.id_reuse_policy, WEFT_REUSE_ALLOW_FAILED);
    assert_int_equal(out.input.len, 3);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static void test_encode_appends_and_raw_matches(void **state) {
    (void)state;
    weft_start_resp resp = {.run_id = WEFT_STR_LIT("run-9"), .started = true};
    uint8_t *body = NULL;
    size_t body_len = 0;
    assert_int_equal(weft_schema_encode_buf(&weft_start_resp_schema, &resp, &body, &body_len), 0);
    uint32_t type = WEFT_MSG_START_WORKFLOW | WEFT_MSG_RESPONSE_BIT;
    msgpack_sbuffer a, b;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    assert_int_equal(weft_frame_encode(&a, type, 7, &weft_start_resp_schema, &resp), 0);
    size_t one = a.size;
    assert_int_equal(weft_frame_encode(&a, type, 8, &weft_start_resp_schema, &resp), 0);
    assert_int_equal(a.size, 2 * one);
    assert_int_equal(weft_frame_encode_raw(&b, type, 7, body, body_len), 0);
    assert_int_equal(weft_frame_encode_raw(&b, type, 8, body, body_len), 0);
    /* A pre-encoded body frames to the same bytes as encoding the struct. */
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.data, b.data, a.size);
    /* [0x93, 0xcc 0x8a, 0x07, body]: type 138 needs a uint8. */
    assert_int_equal(read_be32((const uint8_t *)a.data), one - 4);
    assert_int_equal((uint8_t)a.data[4], 0x93);
    assert_memory_equal(a.data + 4 + 4, body, body_len);
    free(body);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

static void test_error_frame(void **state) {
    (void)state;
    weft_err e;
    weft_err_set(&e, WEFT_E_NOT_LEADER, "workflow_id", "shard 3 is led by node 2");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(weft_frame_encode_error(&sb, 41, &e, 2, "10.0.0.2:7233"), 0);
    /* A message cut in the middle of a UTF-8 character is repaired, not sent broken. */
    weft_err_set(&e, WEFT_E_INTERNAL, NULL, "bad \xe2\x82");
    assert_int_equal(weft_frame_encode_error(&sb, 42, &e, 0, NULL), 0);

    weft_frame_reader r;
    weft_frame_reader_init(&r, g_limits.frame_bytes_max);
    weft_err err;
    assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)sb.data, sb.size, &err), 0);
    const uint8_t *frame;
    size_t len;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    uint32_t type;
    uint64_t rid;
    const msgpack_object *body;
    weft_error_resp resp;

    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), 1);
    assert_int_equal(weft_frame_parse(frame, len, &up, &type, &rid, &body, &g_limits, &err), 0);
    assert_int_equal(type, WEFT_MSG_ERROR);
    assert_int_equal(rid, 41);
    assert_int_equal(weft_schema_decode(&weft_error_resp_schema, body, &resp, up.zone, &g_limits,
                                        &err), 0);
    assert_int_equal(resp.code, WEFT_E_NOT_LEADER);
    assert_true(weft_str_eq_c(resp.name, "NOT_LEADER"));
    assert_true(weft_str_eq_c(resp.message, "shard 3 is led by node 2"));
    assert_true(weft_str_eq_c(resp.field, "workflow_id"));
    assert_int_equal(resp.leader_hint, 2);
    assert_true(weft_str_eq_c(resp.leader_address, "10.0.0.2:7233"));

    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), 1);
    assert_int_equal(weft_frame_parse(frame, len, &up, &type, &rid, &body, &g_limits, &err), 0);
    assert_int_equal(weft_schema_decode(&weft_error_resp_schema, body, &resp, up.zone, &g_limits,
                                        &err), 0);
    assert_int_equal(resp.code, WEFT_E_INTERNAL);
    assert_true(weft_str_eq_c(resp.message, "bad ??"));
    assert_int_equal(resp.field.len, 0);
    assert_int_equal(resp.leader_address.len, 0);
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), 0);
    msgpack_unpacked_destroy(&up);
    weft_frame_reader_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- The reader ---- */

/* Three frames of different types, concatenated. */
static void three_frames(msgpack_sbuffer *sb) {
    weft_start_req start = sample_start();
    weft_signal_req sig = {.workflow_id = WEFT_STR_LIT("order-1"),
                           .signal_name = WEFT_STR_LIT("cancel")};
    weft_empty_resp empty = {0};
    msgpack_sbuffer_init(sb);
    assert_int_equal(weft_frame_encode(sb, WEFT_MSG_START_WORKFLOW, 1, &weft_start_req_schema,
                                       &start), 0);
    assert_int_equal(weft_frame_encode(sb, WEFT_MSG_SIGNAL_WORKFLOW, 2, &weft_signal_req_schema,
                                       &sig), 0);
    assert_int_equal(weft_frame_encode(sb, WEFT_MSG_SIGNAL_WORKFLOW | WEFT_MSG_RESPONSE_BIT, 3,
                                       &weft_empty_resp_schema, &empty), 0);
}

static void test_reader_byte_by_byte(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    three_frames(&sb);
    weft_frame_reader r;
    weft_frame_reader_init(&r, g_limits.frame_bytes_max);
    weft_err err;
    size_t offset = 0;
    unsigned frames = 0;
    for (size_t i = 0; i < sb.size; i++) {
        assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)sb.data + i, 1, &err), 0);
        const uint8_t *frame;
        size_t len;
        int rc;
        while ((rc = weft_frame_reader_next(&r, &frame, &len, &err)) == 1) {
            /* Each frame comes out exactly as it went in, once, when its last byte arrives. */
            assert_int_equal(i + 1, offset + 4 + len);
            assert_memory_equal(frame, sb.data + offset + 4, len);
            offset += 4 + len;
            frames++;
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(frames, 3);
    assert_int_equal(offset, sb.size);
    weft_frame_reader_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

static void test_reader_frames_stay_valid_until_feed(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    three_frames(&sb);
    weft_frame_reader r;
    weft_frame_reader_init(&r, g_limits.frame_bytes_max);
    weft_err err;
    assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)sb.data, sb.size, &err), 0);
    const uint8_t *frames[3];
    size_t lens[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(weft_frame_reader_next(&r, &frames[i], &lens[i], &err), 1);
    }
    assert_int_equal(weft_frame_reader_next(&r, &frames[0], &lens[0], &err), 0);
    /* All three pointers are still usable: next never moves memory. */
    uint64_t expect_rid = 1;
    for (int i = 0; i < 3; i++) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        uint32_t type;
        uint64_t rid;
        const msgpack_object *body;
        assert_int_equal(weft_frame_parse(frames[i], lens[i], &up, &type, &rid, &body, &g_limits,
                                          &err), 0);
        assert_int_equal(rid, expect_rid++);
        msgpack_unpacked_destroy(&up);
    }
    weft_frame_reader_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

static void test_reader_refuses_oversized_and_empty(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    three_frames(&sb);
    uint32_t first_len = read_be32((const uint8_t *)sb.data);
    weft_err err;
    const uint8_t *frame;
    size_t len;

    /* Exactly at the limit is accepted. */
    weft_frame_reader r;
    weft_frame_reader_init(&r, first_len);
    assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)sb.data, 4 + first_len, &err), 0);
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), 1);
    weft_frame_reader_free(&r);

    /* One byte less: refused as soon as the prefix arrives, and the reader stays poisoned. */
    weft_frame_reader_init(&r, first_len - 1);
    assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)sb.data, 4, &err), 0);
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), -WEFT_E_RESOURCE_EXHAUSTED);
    char expect[200];
    snprintf(expect, sizeof expect, "frame is %u bytes; the limit is %u bytes (frame_bytes_max): "
             "send smaller requests or raise frame_bytes_max; the connection is closed",
             first_len, first_len - 1);
    assert_string_equal(err.message, expect);
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), -WEFT_E_RESOURCE_EXHAUSTED);
    assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)sb.data + 4, 1, &err),
                     -WEFT_E_RESOURCE_EXHAUSTED);
    weft_frame_reader_free(&r);

    /* A 4 GiB prefix never makes the reader allocate. */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x93};
    weft_frame_reader_init(&r, g_limits.frame_bytes_max);
    assert_int_equal(weft_frame_reader_feed(&r, huge, sizeof huge, &err), 0);
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), -WEFT_E_RESOURCE_EXHAUSTED);
    assert_true(r.cap < 8192);
    weft_frame_reader_free(&r);

    static const uint8_t empty[] = {0, 0, 0, 0};
    weft_frame_reader_init(&r, g_limits.frame_bytes_max);
    assert_int_equal(weft_frame_reader_feed(&r, empty, sizeof empty, &err), 0);
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "frame");
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), -WEFT_E_INVALID_ARGUMENT);
    weft_frame_reader_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

/* Another protocol's first bytes read as a huge length; the error says what they were. */
static void expect_foreign(const char *bytes, size_t n, const char *needle) {
    weft_frame_reader r;
    weft_err err;
    const uint8_t *frame;
    size_t len;
    weft_frame_reader_init(&r, g_limits.frame_bytes_max);
    assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)bytes, n, &err), 0);
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), -WEFT_E_INVALID_ARGUMENT);
    if (strstr(err.message, needle) == NULL) fail_msg("'%s' not in '%s'", needle, err.message);
    assert_null(strstr(err.message, "raise frame_bytes_max"));
    assert_string_equal(err.field, "frame");
    weft_frame_reader_free(&r);
}

static void test_reader_names_http_tls_and_text(void **state) {
    (void)state;
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_foreign(http, sizeof http - 1, "this port speaks weft's binary protocol, not HTTP");
    static const char reply[] = "HTTP/1.1 200 OK\r\n";
    expect_foreign(reply, sizeof reply - 1, "not HTTP");
    static const char tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    expect_foreign(tls, sizeof tls, "not TLS");
    static const char text[] = "hello weft\n";
    expect_foreign(text, sizeof text - 1, "received text (\"hell...\")");
}

static void test_reader_gives_back_idle_memory(void **state) {
    (void)state;
    enum { BIG = 200 * 1024 };
    uint8_t *payload = calloc(1, BIG);
    weft_start_req in = sample_start();
    in.input = (weft_bytes){payload, BIG};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(weft_frame_encode(&sb, WEFT_MSG_START_WORKFLOW, 1, &weft_start_req_schema,
                                       &in), 0);
    weft_frame_reader r;
    weft_frame_reader_init(&r, g_limits.frame_bytes_max);
    weft_err err;
    assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)sb.data, sb.size, &err), 0);
    assert_true(r.cap >= sb.size);
    const uint8_t *frame;
    size_t len;
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), 1);
    assert_int_equal(len, sb.size - 4);
    /* Once drained, the next feed shrinks the buffer back to a small one. */
    assert_int_equal(weft_frame_reader_feed(&r, (const uint8_t *)sb.data, 2, &err), 0);
    assert_true(r.cap <= WEFT_FRAME_READER_IDLE_BYTES_MAX);
    assert_int_equal(weft_frame_reader_next(&r, &frame, &len, &err), 0);
    weft_frame_reader_free(&r);
    msgpack_sbuffer_destroy(&sb);
    free(payload);
}

/* ---- Hostile frames ---- */

/* Parses `len` raw bytes (no prefix); returns the result, type and request id. */
static int parse_raw(const uint8_t *p, size_t len, uint32_t *type, uint64_t *rid, weft_err *err) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    const msgpack_object *body = NULL;
    weft_err_clear(err);
    int rc = weft_frame_parse(p, len, &up, type, rid, &body, &g_limits, err);
    assert_true(rc == 0 ? body != NULL && body->type == MSGPACK_OBJECT_MAP : body == NULL);
    msgpack_unpacked_destroy(&up);
    return rc;
}

static void test_parse_refuses_bad_shapes(void **state) {
    (void)state;
    uint32_t type;
    uint64_t rid;
    weft_err err;
    static const uint8_t as_map[] = {0x81, 0x01, 0x02};
    assert_int_equal(parse_raw(as_map, sizeof as_map, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "frame must be an array [msg_type, request_id, body], got map");
    static const uint8_t two[] = {0x92, 0x0a, 0x01};
    assert_int_equal(parse_raw(two, sizeof two, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    static const uint8_t four[] = {0x94, 0x0a, 0x01, 0x80, 0xc0};
    assert_int_equal(parse_raw(four, sizeof four, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    static const uint8_t type_str[] = {0x93, 0xa1, 'x', 0x4d, 0x80};
    assert_int_equal(parse_raw(type_str, sizeof type_str, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "frame.msg_type");
    assert_int_equal(rid, 0x4d); /* read before the failure, for the error reply */
    static const uint8_t type_big[] = {0x93, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0x01, 0x80};
    assert_int_equal(parse_raw(type_big, sizeof type_big, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "frame.msg_type");
    static const uint8_t type_neg[] = {0x93, 0xff, 0x01, 0x80};
    assert_int_equal(parse_raw(type_neg, sizeof type_neg, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    static const uint8_t rid_neg[] = {0x93, 0x0a, 0xff, 0x80};
    assert_int_equal(parse_raw(rid_neg, sizeof rid_neg, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "frame.request_id");
    assert_int_equal(rid, 0);
    static const uint8_t body_nil[] = {0x93, 0x0a, 0x05, 0xc0};
    assert_int_equal(parse_raw(body_nil, sizeof body_nil, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "frame.body must be a map, got nil");
    assert_int_equal(type, 10);
    assert_int_equal(rid, 5);
    static const uint8_t trailing[] = {0x93, 0x0a, 0x05, 0x80, 0x00};
    assert_int_equal(parse_raw(trailing, sizeof trailing, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "frame");
    /* An unknown type parses; dispatch finds no op for it. */
    static const uint8_t unknown[] = {0x93, 0x63, 0x05, 0x80};
    assert_int_equal(parse_raw(unknown, sizeof unknown, &type, &rid, &err), 0);
    assert_int_equal(type, 99);
    assert_null(weft_op_find(type));
}

static void test_parse_refuses_truncation_and_size(void **state) {
    (void)state;
    weft_start_req in = sample_start();
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(weft_frame_encode(&sb, WEFT_MSG_START_WORKFLOW, 9, &weft_start_req_schema,
                                       &in), 0);
    const uint8_t *p = (const uint8_t *)sb.data + 4;
    size_t len = sb.size - 4;
    uint32_t type;
    uint64_t rid;
    weft_err err;
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(parse_raw(p, cut, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    }
    assert_int_equal(parse_raw(p, len, &type, &rid, &err), 0);
    uint32_t saved = g_limits.frame_bytes_max;
    g_limits.frame_bytes_max = (uint32_t)len - 1;
    assert_int_equal(parse_raw(p, len, &type, &rid, &err), -WEFT_E_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(err.message, "(frame_bytes_max)"));
    g_limits.frame_bytes_max = saved;
    msgpack_sbuffer_destroy(&sb);
}

static void test_parse_refuses_deep_nesting(void **state) {
    (void)state;
    enum { LEVELS = 1000 };
    uint32_t type;
    uint64_t rid;
    weft_err err;
    /* [10, 1, {"x": [[[...]]]}] with 1000 arrays, and with 1000 maps. */
    uint8_t *buf = malloc(8 + 3 * LEVELS + 1);
    size_t n = 0;
    buf[n++] = 0x93, buf[n++] = 0x0a, buf[n++] = 0x01;
    buf[n++] = 0x81, buf[n++] = 0xa1, buf[n++] = 'x';
    memset(buf + n, 0x91, LEVELS), n += LEVELS;
    buf[n++] = 0xc0;
    assert_int_equal(parse_raw(buf, n, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "levels deep"));
    n = 6;
    for (int i = 0; i < LEVELS; i++) buf[n++] = 0x81, buf[n++] = 0xa1, buf[n++] = 'k';
    buf[n++] = 0xc0;
    assert_int_equal(parse_raw(buf, n, &type, &rid, &err), -WEFT_E_INVALID_ARGUMENT);
    /* The body may nest WEFT_DECODE_DEPTH_MAX levels inside the frame, not one more. */
    for (unsigned arrays = 6; arrays <= 8; arrays++) {
        n = 6;
        memset(buf + n, 0x91, arrays), n += arrays;
        buf[n++] = 0xc0;
        int rc = parse_raw(buf, n, &type, &rid, &err);
        assert_int_equal(rc, 1 + arrays <= WEFT_DECODE_DEPTH_MAX ? 0 : -WEFT_E_INVALID_ARGUMENT);
    }
    free(buf);
}

/* Every msgpack format the pre-check must walk: it agrees with msgpack-c on all of them. */
static void test_precheck_walks_every_format(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    static char big[70000];
    memset(big, 'a', sizeof big);
    msgpack_pack_array(&pk, 40);
    msgpack_pack_nil(&pk), msgpack_pack_true(&pk), msgpack_pack_false(&pk);
    msgpack_pack_uint64(&pk, 5), msgpack_pack_uint64(&pk, 200), msgpack_pack_uint64(&pk, 60000);
    msgpack_pack_uint64(&pk, 1u << 20), msgpack_pack_uint64(&pk, 1ull << 40);
    msgpack_pack_int64(&pk, -5), msgpack_pack_int64(&pk, -100), msgpack_pack_int64(&pk, -30000);
    msgpack_pack_int64(&pk, -(1 << 20)), msgpack_pack_int64(&pk, -(1ll << 40));
    msgpack_pack_float(&pk, 1.5f), msgpack_pack_double(&pk, 2.5);
    const size_t str_lens[] = {3, 40, 300, 69000};
    for (size_t i = 0; i < 4; i++) {
        msgpack_pack_str(&pk, str_lens[i]), msgpack_pack_str_body(&pk, big, str_lens[i]);
        msgpack_pack_bin(&pk, str_lens[i]), msgpack_pack_bin_body(&pk, big, str_lens[i]);
    }
    const size_t ext_lens[] = {1, 2, 4, 8, 16, 3, 300, 69000};
    for (size_t i = 0; i < 8; i++) {
        msgpack_pack_ext(&pk, ext_lens[i], 7), msgpack_pack_ext_body(&pk, big, ext_lens[i]);
    }
    msgpack_pack_array(&pk, 20);
    for (int i = 0; i < 20; i++) msgpack_pack_uint64(&pk, (uint64_t)i);
    msgpack_pack_map(&pk, 17);
    for (int i = 0; i < 17; i++) msgpack_pack_uint64(&pk, (uint64_t)i), msgpack_pack_nil(&pk);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_array(&pk, 1), msgpack_pack_array(&pk, 1), msgpack_pack_nil(&pk);
    /* 15 + 8 + 8 + 1 + 1 + 2 + 1 = 36 so far; pad to 40. */
    for (int i = 0; i < 4; i++) msgpack_pack_nil(&pk);
    const uint8_t *p = (const uint8_t *)sb.data;
    weft_err err;
    assert_int_equal(weft_msgpack_check(p, sb.size, 3, "x", &err), 0);
    assert_int_equal(weft_msgpack_check(p, sb.size, 2, "x", &err), -WEFT_E_INVALID_ARGUMENT);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb.size);
    assert_int_equal(weft_msgpack_depth(&up.data), 3);
    msgpack_unpacked_destroy(&up);
    /* Every proper prefix is truncated; skip most of the long runs to keep this quick. */
    for (size_t cut = 0; cut < sb.size; cut += (cut % 97 == 0) ? 1 : 13) {
        assert_int_equal(weft_msgpack_check(p, cut, 3, "x", &err), -WEFT_E_INVALID_ARGUMENT);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* ---- Seeded mutation fuzzing ---- */

static uint64_t g_rng;

/* splitmix64: tiny, seedable, good enough to pick mutations. */
static uint64_t rng_next(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n) { return n == 0 ? 0 : (size_t)(rng_next() % n); }

/* Valid frames (with prefixes) to mutate: requests, responses and an error. */
typedef struct corpus {
    msgpack_sbuffer frames[16]; /* one frame each */
    unsigned count;             /* frames in use */
} corpus;

static void corpus_add(corpus *c, uint32_t type, const weft_schema *s, const void *body) {
    assert_true(c->count < WEFT_ARRAY_LEN(c->frames));
    msgpack_sbuffer *sb = &c->frames[c->count++];
    msgpack_sbuffer_init(sb);
    assert_int_equal(weft_frame_encode(sb, type, rng_next(), s, body), 0);
}

static void corpus_build(corpus *c) {
    c->count = 0;
    weft_start_req start = sample_start();
    start.signal_name = WEFT_STR_LIT("go");
    start.id_conflict_policy = WEFT_CONFLICT_TERMINATE_EXISTING;
    corpus_add(c, WEFT_MSG_SIGNAL_WITH_START, &weft_start_req_schema, &start);
    weft_hello_req hello = {.protocol_version = WEFT_PROTOCOL_VERSION,
                            .client_name = WEFT_STR_LIT("fuzz")};
    corpus_add(c, WEFT_MSG_HELLO, &weft_hello_req_schema, &hello);
    weft_str nr[] = {WEFT_STR_LIT("Fatal"), WEFT_STR_LIT("Bad")};
    weft_command cmds[] = {
        {.type = WEFT_CMD_SCHEDULE_ACTIVITY, .activity_id = WEFT_STR_LIT("a1"),
         .activity_type = WEFT_STR_LIT("Charge"),
         .retry_policy = {.backoff_coefficient = 1.5, .non_retryable_error_types = nr,
                          .non_retryable_error_types_count = 2}},
        {.type = WEFT_CMD_START_TIMER, .timer_id = WEFT_STR_LIT("t"), .start_to_fire_timeout_ms = 9},
        {.type = WEFT_CMD_FAIL_WORKFLOW,
         .failure = {.type = WEFT_STR_LIT("E"), .message = WEFT_STR_LIT("boom"), .non_retryable = true}},
    };
    weft_complete_wft_req done = {.task_token = {(const uint8_t *)"\x01\x02\x03", 3},
                                  .commands = cmds, .commands_count = 3};
    corpus_add(c, WEFT_MSG_COMPLETE_WORKFLOW_TASK, &weft_complete_wft_req_schema, &done);
    weft_event events[] = {
        {.event_id = 1, .event_type = WEFT_EV_WORKFLOW_EXECUTION_STARTED,
         .workflow_type = WEFT_STR_LIT("Order"), .input = {(const uint8_t *)"\x90", 1}},
        {.event_id = 2, .event_type = WEFT_EV_ACTIVITY_TASK_TIMED_OUT,
         .timeout_type = WEFT_TIMEOUT_HEARTBEAT, .retry_policy = {.maximum_attempts = 3}},
    };
    weft_history_resp hist = {.run_id = WEFT_STR_LIT("r"), .events = events, .events_count = 2,
                              .next_event_id = 3, .closed = true};
    corpus_add(c, WEFT_MSG_GET_HISTORY | WEFT_MSG_RESPONSE_BIT, &weft_history_resp_schema, &hist);
    weft_pending_timer timers[] = {{.timer_id = WEFT_STR_LIT("t"), .fire_time_ms = 5}};
    weft_describe_resp desc = {.info = {.workflow_id = WEFT_STR_LIT("w"), .status = WEFT_STATUS_RUNNING},
                               .pending_timers = timers, .pending_timers_count = 1};
    corpus_add(c, WEFT_MSG_DESCRIBE_WORKFLOW | WEFT_MSG_RESPONSE_BIT, &weft_describe_resp_schema, &desc);
    weft_list_req list = {.status = WEFT_STATUS_FAILED, .page_size = 10, .consistency = 1};
    corpus_add(c, WEFT_MSG_LIST_WORKFLOWS, &weft_list_req_schema, &list);
    weft_activity_req act = {.task_token = {(const uint8_t *)"\x09", 1},
                             .details = {(const uint8_t *)"d", 1}};
    corpus_add(c, WEFT_MSG_HEARTBEAT_ACTIVITY, &weft_activity_req_schema, &act);
    weft_err e;
    weft_err_set(&e, WEFT_E_NOT_FOUND, "run_id", "no such run");
    assert_true(c->count < WEFT_ARRAY_LEN(c->frames));
    msgpack_sbuffer_init(&c->frames[c->count]);
    assert_int_equal(weft_frame_encode_error(&c->frames[c->count++], 3, &e, 1, "h:1"), 0);
}

static void corpus_free(corpus *c) {
    for (unsigned i = 0; i < c->count; i++) msgpack_sbuffer_destroy(&c->frames[i]);
}

/* Applies 1 to 4 random mutations in place; returns the new length (cap bounds growth). */
static size_t mutate(uint8_t *buf, size_t len, size_t cap) {
    static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
                                          0xc1, 0xc2, 0xc4, 0xc7, 0xca, 0xcf, 0xd4, 0xd9, 0xdb,
                                          0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    unsigned rounds = 1 + (unsigned)rng_below(4);
    for (unsigned r = 0; r < rounds && len > 0; r++) {
        size_t at = rng_below(len), n = 1 + rng_below(8);
        switch (rng_below(6)) {
        case 0: buf[at] ^= (uint8_t)(1u << rng_below(8)); break;
        case 1: buf[at] = interesting[rng_below(sizeof interesting)]; break;
        case 2: len = rng_below(len); break; /* truncate */
        case 3:                               /* insert random bytes */
            n = WEFT_MIN(n, cap - len);
            memmove(buf + at + n, buf + at, len - at);
            for (size_t i = 0; i < n; i++) buf[at + i] = (uint8_t)rng_next();
            len += n;
            break;
        case 4: /* delete a range */
            n = WEFT_MIN(n, len - at);
            memmove(buf + at, buf + at + n, len - at - n);
            len -= n;
            break;
        default: buf[at] = (uint8_t)rng_next(); break;
        }
    }
    return len;
}

/* The schema a parsed frame's body is checked against, or NULL when the type is unknown. */
static const weft_schema *schema_for(uint32_t type) {
    if (type == WEFT_MSG_ERROR) return &weft_error_resp_schema;
    const weft_op *op = weft_op_find(type & ~WEFT_MSG_RESPONSE_BIT);
    if (op == NULL) return NULL;
    return (type & WEFT_MSG_RESPONSE_BIT) ? op->resp_schema : op->req_schema;
}

/* Parses one frame and decodes its body; anything accepted must re-encode and decode again.
 * Returns 1 when the body decoded. */
static int fuzz_one(const uint8_t *p, size_t len) {
    static _Alignas(16) uint8_t out[FUZZ_OUT_BYTES], again[FUZZ_OUT_BYTES];
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    uint32_t type;
    uint64_t rid;
    const msgpack_object *body;
    weft_err err;
    int decoded = 0;
    int rc = weft_frame_parse(p, len, &up, &type, &rid, &body, &g_limits, &err);
    assert_true(rc == 0 || rc == -WEFT_E_INVALID_ARGUMENT);
    const weft_schema *s = rc == 0 ? schema_for(type) : NULL;
    if (s != NULL) {
        assert_true(s->size <= FUZZ_OUT_BYTES);
        rc = weft_schema_decode(s, body, out, up.zone, &g_limits, &err);
        assert_true(rc == 0 || rc == -WEFT_E_INVALID_ARGUMENT);
        if (rc != 0) assert_true(err.message[0] != '\0');
    }
    if (s != NULL && rc == 0) {
        uint8_t *enc = NULL;
        size_t enc_len = 0;
        assert_int_equal(weft_schema_encode_buf(s, out, &enc, &enc_len), 0);
        msgpack_unpacked up2;
        msgpack_unpacked_init(&up2);
        rc = weft_schema_decode_buf(s, enc, enc_len, again, &up2, &g_limits, &err);
        if (rc != 0) print_error("re-decode of an accepted body failed: %s\n", err.message);
        assert_int_equal(rc, 0);
        /* The canonical form is a fixed point: encoding it again gives the same bytes. */
        uint8_t *enc2 = NULL;
        size_t enc2_len = 0;
        assert_int_equal(weft_schema_encode_buf(s, again, &enc2, &enc2_len), 0);
        assert_int_equal(enc2_len, enc_len);
        assert_memory_equal(enc2, enc, enc_len);
        free(enc2);
        msgpack_unpacked_destroy(&up2);
        free(enc);
        decoded = 1;
    }
    msgpack_unpacked_destroy(&up);
    return decoded;
}

/* Feeds mutated framed bytes through a reader in random chunks. */
static void fuzz_reader(const uint8_t *p, size_t len) {
    weft_frame_reader r;
    weft_frame_reader_init(&r, 1u << 16);
    weft_err err;
    size_t off = 0;
    while (off < len) {
        size_t n = WEFT_MIN(len - off, 1 + rng_below(64));
        int rc = weft_frame_reader_feed(&r, p + off, n, &err);
        off += n;
        if (rc != 0) {
            assert_true(rc == -WEFT_E_INVALID_ARGUMENT || rc == -WEFT_E_RESOURCE_EXHAUSTED);
            break;
        }
        const uint8_t *frame;
        size_t flen;
        while ((rc = weft_frame_reader_next(&r, &frame, &flen, &err)) == 1) fuzz_one(frame, flen);
        assert_true(rc == 0 || rc == -WEFT_E_INVALID_ARGUMENT || rc == -WEFT_E_RESOURCE_EXHAUSTED);
        if (rc < 0) break;
    }
    weft_frame_reader_free(&r);
}

static void test_mutation_fuzz(void **state) {
    (void)state;
    const char *env_seed = getenv("WEFT_FUZZ_SEED");
    const char *env_iters = getenv("WEFT_FUZZ_ITERATIONS");
    uint64_t seed = env_seed ? strtoull(env_seed, NULL, 0)
                             : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    unsigned long iterations = env_iters ? strtoul(env_iters, NULL, 0) : FUZZ_ITERATIONS_DEFAULT;
    printf("fuzz seed: %llu (replay with WEFT_FUZZ_SEED=%llu), iterations: %lu\n",
           (unsigned long long)seed, (unsigned long long)seed, iterations);
    fflush(stdout);
    g_rng = seed;
    corpus c;
    corpus_build(&c);
    /* The unmutated corpus decodes: the loop starts from valid frames. */
    for (unsigned i = 0; i < c.count; i++) {
        assert_int_equal(fuzz_one((const uint8_t *)c.frames[i].data + 4, c.frames[i].size - 4), 1);
    }
    enum { SLACK = 64 };
    uint8_t *buf = malloc(8192);
    unsigned long decoded = 0;
    for (unsigned long it = 0; it < iterations; it++) {
        const msgpack_sbuffer *src = &c.frames[rng_below(c.count)];
        assert_true(src->size + SLACK <= 8192);
        bool framed = rng_below(16) == 0; /* sometimes mutate the prefix too, via the reader */
        size_t skip = framed ? 0 : 4;
        size_t len = src->size - skip;
        memcpy(buf, src->data + skip, len);
        len = mutate(buf, len, src->size + SLACK);
        if (framed) {
            fuzz_reader(buf, len);
        } else {
            /* Anything the pre-check accepts, msgpack-c must parse exactly. */
            weft_err err;
            if (len > 0 && weft_msgpack_check(buf, len, WEFT_FRAME_DEPTH_MAX, "frame", &err) == 0) {
                msgpack_unpacked up;
                msgpack_unpacked_init(&up);
                size_t off = 0;
                assert_int_equal(msgpack_unpack_next(&up, (const char *)buf, len, &off),
                                 MSGPACK_UNPACK_SUCCESS);
                assert_int_equal(off, len);
                msgpack_unpacked_destroy(&up);
            }
            decoded += (unsigned long)fuzz_one(buf, len);
        }
    }
    printf("fuzz: %lu of %lu mutated frames still decoded\n", decoded, iterations);
    free(buf);
    corpus_free(&c);
}

/* weft_utf8_repair: valid text is kept; a sequence cut at the end, a stray continuation byte
 * and a byte that never starts UTF-8 each become '?'. */
static void test_utf8_repair(void **state) {
    (void)state;
    char ok[] = "caf\xc3\xa9 \xe2\x82\xac";
    weft_utf8_repair(ok, strlen(ok));
    assert_string_equal(ok, "caf\xc3\xa9 \xe2\x82\xac");
    char cut[] = "ab\xe2\x82"; /* a 3-byte sequence cut after 2 bytes */
    weft_utf8_repair(cut, strlen(cut));
    assert_string_equal(cut, "ab??");
    char bad[] = "\x80x\xc0\xafy\xff";
    weft_utf8_repair(bad, strlen(bad));
    assert_string_equal(bad, "?x??y?");
    assert_true(weft_utf8_valid(bad, strlen(bad)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_repair),
        cmocka_unit_test(test_encode_parse_round_trip),
        cmocka_unit_test(test_encode_appends_and_raw_matches),
        cmocka_unit_test(test_error_frame),
        cmocka_unit_test(test_reader_byte_by_byte),
        cmocka_unit_test(test_reader_frames_stay_valid_until_feed),
        cmocka_unit_test(test_reader_refuses_oversized_and_empty),
        cmocka_unit_test(test_reader_gives_back_idle_memory),
        cmocka_unit_test(test_reader_names_http_tls_and_text),
        cmocka_unit_test(test_parse_refuses_bad_shapes),
        cmocka_unit_test(test_parse_refuses_truncation_and_size),
        cmocka_unit_test(test_parse_refuses_deep_nesting),
        cmocka_unit_test(test_precheck_walks_every_format),
        cmocka_unit_test(test_mutation_fuzz),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
