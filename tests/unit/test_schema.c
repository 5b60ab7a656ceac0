/* test_schema.c: the schema codec: round trips of every field type, deterministic encoding,
 * and every class of decode error with the message a user would see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/schema.h"

/* ---- A test schema with one field of every type ---- */

typedef struct t_inner {
    uint32_t n;
    weft_str s;
} t_inner;

typedef struct t_rec {
    weft_str name_;     /* wire "name": identifier, required */
    weft_str text;      /* explicit cap of 8 bytes */
    weft_str note;      /* plain string: payload cap */
    weft_bytes blob;
    uint64_t big;
    uint32_t small;
    int64_t signed_;    /* wire "signed" */
    bool flag;
    double ratio;
    t_inner inner;
    t_inner *items;     /* at most 3 */
    uint32_t items_count;
    weft_str *tags;     /* identifiers, at most 4 */
    uint32_t tags_count;
    uint32_t color;     /* enum */
} t_rec;

static const char *const color_names[] = {"none", "red", "green", "blue", NULL};

static const weft_field inner_rows[] = {
    WEFT_FIELD(t_inner, n, WEFT_F_U32, 0),
    WEFT_FIELD(t_inner, s, WEFT_F_STR, 0),
};
static const weft_schema inner_schema = WEFT_SCHEMA(t_inner, inner_rows);

static const weft_field rec_rows[] = {
    WEFT_FIELD(t_rec, name_, WEFT_F_STR, WEFT_FF_ID | WEFT_FF_REQUIRED),
    {.name = "text", .type = WEFT_F_STR, .offset = offsetof(t_rec, text), .max_bytes = 8},
    WEFT_FIELD(t_rec, note, WEFT_F_STR, 0),
    WEFT_FIELD(t_rec, blob, WEFT_F_BYTES, WEFT_FF_PAYLOAD),
    WEFT_FIELD(t_rec, big, WEFT_F_U64, 0),
    WEFT_FIELD(t_rec, small, WEFT_F_U32, 0),
    WEFT_FIELD(t_rec, signed_, WEFT_F_I64, 0),
    WEFT_FIELD(t_rec, flag, WEFT_F_BOOL, 0),
    WEFT_FIELD(t_rec, ratio, WEFT_F_F64, 0),
    WEFT_FIELD_OBJ(t_rec, inner, inner_schema, 0),
    WEFT_FIELD_ARR(t_rec, items, items_count, inner_schema, 0, 3),
    WEFT_FIELD_STRS(t_rec, tags, tags_count, WEFT_FF_ID, 4),
    WEFT_FIELD_ENUM(t_rec, color, color_names, 0),
};
static const weft_schema rec_schema = WEFT_SCHEMA(t_rec, rec_rows);

/* ---- Helpers ---- */

/* A msgpack buffer under construction. */
typedef struct mp {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp;

static void mp_init(mp *m) {
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_str(mp *m, const char *s) { assert_int_equal(weft_pack_cstr(&m->pk, s), 0); }

/* Decodes the buffer with `schema`, keeping the unpacked zone alive in *up. */
static int mp_decode(mp *m, const weft_schema *schema, void *out, msgpack_unpacked *up,
                     weft_err *err) {
    weft_limits l;
    weft_limits_default(&l);
    weft_err_clear(err);
    return weft_schema_decode_buf(schema, (const uint8_t *)m->sb.data, m->sb.size, out, up, &l,
                                  err);
}

/* Builds {"name": "n1", key: <value written by the caller>} and expects decoding to fail with
 * INVALID_ARGUMENT and exactly `message`. */
typedef void (*value_fn)(msgpack_packer *pk);

static void expect_rec_error(const char *key, value_fn value, const char *message) {
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "name");
    mp_str(&m, "n1");
    mp_str(&m, key);
    value(&m.pk);
    t_rec r;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = mp_decode(&m, &rec_schema, &r, &up, &err);
    if (rc != -WEFT_E_INVALID_ARGUMENT || strcmp(err.message, message) != 0) {
        print_error("key %s: rc %d, message \"%s\", expected \"%s\"\n", key, rc, err.message,
                    message);
    }
    assert_int_equal(rc, -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(err.code, WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, message);
    /* A failed decode leaves nothing half-filled. */
    assert_true(weft_schema_is_zero(&rec_schema, &r));
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);
}

static void v_int(msgpack_packer *pk) { msgpack_pack_uint64(pk, 7); }
static void v_neg(msgpack_packer *pk) { msgpack_pack_int64(pk, -7); }
static void v_str(msgpack_packer *pk) { weft_pack_cstr(pk, "x"); }
static void v_bool(msgpack_packer *pk) { msgpack_pack_true(pk); }
static void v_float(msgpack_packer *pk) { msgpack_pack_double(pk, 1.5); }
static void v_map(msgpack_packer *pk) { msgpack_pack_map(pk, 0); }
static void v_arr(msgpack_packer *pk) { msgpack_pack_array(pk, 0); }
static void v_bin(msgpack_packer *pk) { weft_pack_bytes(pk, (weft_bytes){(const uint8_t *)"b", 1}); }
static void v_u32_over(msgpack_packer *pk) { msgpack_pack_uint64(pk, (uint64_t)UINT32_MAX + 1); }
static void v_i64_over(msgpack_packer *pk) { msgpack_pack_uint64(pk, (uint64_t)INT64_MAX + 1); }
static void v_nan(msgpack_packer *pk) { msgpack_pack_double(pk, NAN); }
static void v_inf(msgpack_packer *pk) { msgpack_pack_double(pk, INFINITY); }
static void v_text9(msgpack_packer *pk) { weft_pack_cstr(pk, "123456789"); }
static void v_empty(msgpack_packer *pk) { weft_pack_cstr(pk, ""); }
static void v_purple(msgpack_packer *pk) { weft_pack_cstr(pk, "purple"); }
static void v_items4(msgpack_packer *pk) {
    msgpack_pack_array(pk, 4);
    for (int i = 0; i < 4; i++) msgpack_pack_map(pk, 0);
}
static void v_items_bad_elem(msgpack_packer *pk) {
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 0);
    msgpack_pack_uint64(pk, 1);
}
static void v_items_bad_field(msgpack_packer *pk) {
    msgpack_pack_array(pk, 3);
    msgpack_pack_map(pk, 0);
    msgpack_pack_map(pk, 0);
    msgpack_pack_map(pk, 1);
    weft_pack_cstr(pk, "s");
    msgpack_pack_false(pk);
}
static void v_tags_empty_elem(msgpack_packer *pk) {
    msgpack_pack_array(pk, 2);
    weft_pack_cstr(pk, "ok");
    weft_pack_cstr(pk, "");
}
static void v_tags_int_elem(msgpack_packer *pk) {
    msgpack_pack_array(pk, 1);
    msgpack_pack_uint64(pk, 3);
}
static void v_inner_bad(msgpack_packer *pk) {
    msgpack_pack_map(pk, 1);
    weft_pack_cstr(pk, "n");
    weft_pack_cstr(pk, "three");
}

/* Decodes m's buffer as a t_rec, expects INVALID_ARGUMENT with `message`, and frees m. */
static void expect_refused(mp *m, const char *message) {
    t_rec r;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(mp_decode(m, &rec_schema, &r, &up, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, message);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m->sb);
}

/* A fully populated record; `items` and `tags` point at static storage. */
static t_inner g_items[2];
static weft_str g_tags[3];
static const uint8_t g_blob[] = {0x00, 0xff, 0xc1, 0x80, 0x7f};

static void fill_rec(t_rec *r) {
    memset(r, 0, sizeof *r);
    r->name_ = WEFT_STR_LIT("order-42");
    r->text = WEFT_STR_LIT("short");
    r->note = WEFT_STR_LIT("h\xc3\xa9llo \xe2\x82\xac");
    r->blob = (weft_bytes){g_blob, sizeof g_blob};
    r->big = UINT64_MAX;
    r->small = UINT32_MAX;
    r->signed_ = INT64_MIN;
    r->flag = true;
    r->ratio = -2.25;
    r->inner = (t_inner){.n = 9, .s = WEFT_STR_LIT("in")};
    g_items[0] = (t_inner){.n = 1, .s = WEFT_STR_LIT("a")};
    g_items[1] = (t_inner){.n = 0, .s = {NULL, 0}};
    r->items = g_items;
    r->items_count = 2;
    g_tags[0] = WEFT_STR_LIT("t1");
    g_tags[1] = WEFT_STR_LIT("t2");
    g_tags[2] = WEFT_STR_LIT("t3");
    r->tags = g_tags;
    r->tags_count = 3;
    r->color = 3;
}

static void assert_str_eq(weft_str a, weft_str b) { assert_true(weft_str_eq(a, b)); }

static void assert_rec_eq(const t_rec *a, const t_rec *b) {
    assert_str_eq(a->name_, b->name_);
    assert_str_eq(a->text, b->text);
    assert_str_eq(a->note, b->note);
    assert_int_equal(a->blob.len, b->blob.len);
    assert_memory_equal(a->blob.ptr, b->blob.ptr, a->blob.len);
    assert_true(a->big == b->big);
    assert_int_equal(a->small, b->small);
    assert_true(a->signed_ == b->signed_);
    assert_int_equal(a->flag, b->flag);
    assert_true(a->ratio == b->ratio);
    assert_int_equal(a->inner.n, b->inner.n);
    assert_str_eq(a->inner.s, b->inner.s);
    assert_int_equal(a->items_count, b->items_count);
    for (uint32_t i = 0; i < a->items_count; i++) {
        assert_int_equal(a->items[i].n, b->items[i].n);
        assert_str_eq(a->items[i].s, b->items[i].s);
    }
    assert_int_equal(a->tags_count, b->tags_count);
    for (uint32_t i = 0; i < a->tags_count; i++) assert_str_eq(a->tags[i], b->tags[i]);
    assert_int_equal(a->color, b->color);
}

/* ---- Round trips and encoding ---- */

static void test_round_trip_every_field_type(void **state) {
    (void)state;
    t_rec in;
    fill_rec(&in);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&rec_schema, &in, &buf, &len), 0);
    /* Every field is set, so the map has all 13 keys (fixmap 0x8d). */
    assert_int_equal(buf[0], 0x8d);
    t_rec out;
    weft_limits l;
    weft_limits_default(&l);
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(weft_schema_decode_buf(&rec_schema, buf, len, &out, &up, &l, &err), 0);
    assert_rec_eq(&in, &out);
    /* Encoding the decoded struct gives the same bytes: the encoding is deterministic. */
    uint8_t *again = NULL;
    size_t again_len = 0;
    assert_int_equal(weft_schema_encode_buf(&rec_schema, &out, &again, &again_len), 0);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, buf, len);
    free(again);
    msgpack_unpacked_destroy(&up);
    free(buf);
}

/* decode_map takes a fast path for maps whose keys follow the schema's order (what the encoder
 * writes) and scans otherwise. The two must agree: the same record with its keys reversed
 * decodes to the same struct, and a key repeated after others (so that the keys up to it look
 * ordered) is still refused. */
static void test_key_order_does_not_matter(void **state) {
    (void)state;
    t_rec in;
    fill_rec(&in);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&rec_schema, &in, &buf, &len), 0);
    weft_limits l;
    weft_limits_default(&l);
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, (const char *)buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    msgpack_object_map *m = &up.data.via.map;
    for (uint32_t i = 0, j = m->size - 1; i < j; i++, j--) {
        msgpack_object_kv t = m->ptr[i];
        m->ptr[i] = m->ptr[j];
        m->ptr[j] = t;
    }
    t_rec out;
    assert_int_equal(weft_schema_decode(&rec_schema, &up.data, &out, up.zone, &l, &err), 0);
    assert_rec_eq(&in, &out);
    msgpack_unpacked_destroy(&up);
    free(buf);

    mp mm;
    mp_init(&mm);
    msgpack_pack_map(&mm.pk, 3);
    mp_str(&mm, "name");
    mp_str(&mm, "a");
    mp_str(&mm, "text");
    mp_str(&mm, "x");
    mp_str(&mm, "name");
    mp_str(&mm, "b");
    expect_refused(&mm, "field 'name' appears twice in one map: send it once");
}

static void test_zero_values_are_omitted(void **state) {
    (void)state;
    t_rec r;
    memset(&r, 0, sizeof r);
    assert_true(weft_schema_is_zero(&rec_schema, &r));
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&rec_schema, &r, &buf, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(buf[0], 0x80); /* {} */
    free(buf);
    /* An empty string with a non-NULL pointer is still empty; an inner struct with one field
     * set is not zero; -0.0 equals zero. */
    r.note = (weft_str){.ptr = "x", .len = 0};
    r.ratio = -0.0;
    assert_true(weft_schema_is_zero(&rec_schema, &r));
    r.inner.s = WEFT_STR_LIT("s");
    assert_false(weft_schema_is_zero(&rec_schema, &r));
    assert_int_equal(weft_schema_encode_buf(&rec_schema, &r, &buf, &len), 0);
    static const uint8_t expect[] = {0x81, 0xa5, 'i', 'n', 'n', 'e', 'r', 0x81, 0xa1, 's', 0xa1, 's'};
    assert_int_equal(len, sizeof expect);
    assert_memory_equal(buf, expect, sizeof expect);
    free(buf);
}

static void test_encoding_follows_schema_order(void **state) {
    (void)state;
    t_rec r;
    memset(&r, 0, sizeof r);
    r.color = 1;
    r.name_ = WEFT_STR_LIT("a");
    r.small = 5;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&rec_schema, &r, &buf, &len), 0);
    /* {"name":"a","small":5,"color":"red"}: schema order, the enum as its name, the trailing
     * '_' of the member stripped. */
    static const uint8_t expect[] = {0x83, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'a',
                                     0xa5, 's', 'm', 'a', 'l', 'l', 0x05,
                                     0xa5, 'c', 'o', 'l', 'o', 'r', 0xa3, 'r', 'e', 'd'};
    assert_int_equal(len, sizeof expect);
    assert_memory_equal(buf, expect, sizeof expect);
    free(buf);
}

static void test_wire_key_strips_one_underscore(void **state) {
    (void)state;
    /* The start request's namespace_ member travels as "namespace"; "namespace_" is an unknown
     * key and is ignored. */
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_str(&m, "namespace");
    mp_str(&m, "prod");
    mp_str(&m, "namespace_");
    mp_str(&m, "ignored");
    mp_str(&m, "workflow_id");
    mp_str(&m, "w");
    mp_str(&m, "workflow_type");
    mp_str(&m, "T");
    mp_str(&m, "task_queue");
    mp_str(&m, "q");
    weft_start_req req;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(mp_decode(&m, &weft_start_req_schema, &req, &up, &err), 0);
    assert_true(weft_str_eq_c(req.namespace_, "prod"));
    assert_true(weft_str_eq_c(req.task_queue, "q"));
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);
}

static void test_nil_and_unknown_keys(void **state) {
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_str(&m, "name");
    mp_str(&m, "n");
    mp_str(&m, "small");
    msgpack_pack_nil(&m.pk); /* nil counts as absent */
    mp_str(&m, "future_field");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_uint64(&m.pk, 1);
    msgpack_pack_uint64(&m.pk, 17); /* a non-string key is an unknown key */
    msgpack_pack_true(&m.pk);
    mp_str(&m, "color");
    mp_str(&m, "none"); /* the name of value 0 is accepted */
    t_rec r;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(mp_decode(&m, &rec_schema, &r, &up, &err), 0);
    assert_true(weft_str_eq_c(r.name_, "n"));
    assert_int_equal(r.small, 0);
    assert_int_equal(r.color, 0);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);
}

static void test_lenient_number_forms(void **state) {
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    mp_str(&m, "name");
    mp_str(&m, "n");
    mp_str(&m, "ratio");
    msgpack_pack_int64(&m.pk, -3); /* F64 takes integers */
    mp_str(&m, "signed");
    msgpack_pack_uint64(&m.pk, 12); /* I64 takes positive integers */
    mp_str(&m, "blob");
    mp_str(&m, "as-str"); /* BYTES takes str */
    mp_str(&m, "inner");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "n");
    msgpack_pack_float(&m.pk, 1.0f); /* a float32 is not an integer */
    t_rec r;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(mp_decode(&m, &rec_schema, &r, &up, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "inner.n");
    assert_string_equal(err.message, "field 'inner.n' must be a non-negative integer, got float");
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_str(&m, "name");
    mp_str(&m, "n");
    mp_str(&m, "ratio");
    msgpack_pack_int64(&m.pk, -3);
    mp_str(&m, "signed");
    msgpack_pack_uint64(&m.pk, 12);
    mp_str(&m, "blob");
    mp_str(&m, "as-str");
    msgpack_unpacked_init(&up);
    assert_int_equal(mp_decode(&m, &rec_schema, &r, &up, &err), 0);
    assert_true(r.ratio == -3.0);
    assert_true(r.signed_ == 12);
    assert_int_equal(r.blob.len, 6);
    assert_memory_equal(r.blob.ptr, "as-str", 6);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);
}

/* ---- Errors, one per class ---- */

static void test_wrong_type_for_each_field_type(void **state) {
    (void)state;
    expect_rec_error("text", v_int, "field 'text' must be a string, got integer");
    expect_rec_error("note", v_bin, "field 'note' must be a string, got binary");
    expect_rec_error("blob", v_int, "field 'blob' must be binary or a string, got integer");
    expect_rec_error("big", v_neg, "field 'big' must be a non-negative integer, got negative integer");
    expect_rec_error("big", v_str, "field 'big' must be a non-negative integer, got string");
    expect_rec_error("small", v_float, "field 'small' must be a non-negative integer, got float");
    expect_rec_error("signed", v_str, "field 'signed' must be an integer, got string");
    expect_rec_error("flag", v_int, "field 'flag' must be a boolean, got integer");
    expect_rec_error("flag", v_str, "field 'flag' must be a boolean, got string");
    expect_rec_error("ratio", v_str, "field 'ratio' must be a number, got string");
    expect_rec_error("ratio", v_bool, "field 'ratio' must be a number, got boolean");
    expect_rec_error("inner", v_arr, "field 'inner' must be a map, got array");
    expect_rec_error("items", v_map, "field 'items' must be an array, got map");
    expect_rec_error("tags", v_str, "field 'tags' must be an array, got string");
    expect_rec_error("color", v_int, "field 'color' must be a string, got integer");
}

static void test_ranges(void **state) {
    (void)state;
    expect_rec_error("small", v_u32_over,
                     "field 'small' is 4294967296; the largest allowed value is 4294967295");
    expect_rec_error("signed", v_i64_over,
                     "field 'signed' is 9223372036854775808; the largest allowed value is "
                     "9223372036854775807");
    expect_rec_error("ratio", v_nan, "field 'ratio' must be a finite number");
    expect_rec_error("ratio", v_inf, "field 'ratio' must be a finite number");
}

static void test_lengths_and_emptiness(void **state) {
    (void)state;
    expect_rec_error("text", v_text9,
                     "field 'text' is 9 bytes; the limit is 8 bytes for this field: shorten it");
    /* An empty plain string is simply "not set". */
    expect_rec_error("text", v_int, "field 'text' must be a string, got integer");
}

static void test_unknown_enum_value(void **state) {
    (void)state;
    expect_rec_error("color", v_purple,
                     "field 'color' has unknown value 'purple'; use one of: none, red, green, "
                     "blue");
}

static void test_array_errors_name_the_path(void **state) {
    (void)state;
    expect_rec_error("items", v_items4,
                     "field 'items' has 4 items; the limit is 3 items: send fewer, or split them "
                     "across requests");
    expect_rec_error("items", v_items_bad_elem, "field 'items[1]' must be a map, got integer");
    expect_rec_error("items", v_items_bad_field,
                     "field 'items[2].s' must be a string, got boolean");
    expect_rec_error("tags", v_tags_empty_elem,
                     "field 'tags[1]' must not be empty: give a value or leave the field out");
    expect_rec_error("tags", v_tags_int_elem, "field 'tags[0]' must be a string, got integer");
    expect_rec_error("inner", v_inner_bad, "field 'inner.n' must be a non-negative integer, got string");
}

static void test_required_and_duplicates(void **state) {
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "name");
    msgpack_pack_nil(&m.pk);
    t_rec r;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(mp_decode(&m, &rec_schema, &r, &up, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'name' is required");
    assert_string_equal(err.field, "name");
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "name");
    mp_str(&m, "a");
    mp_str(&m, "name");
    mp_str(&m, "b");
    expect_refused(&m, "field 'name' appears twice in one map: send it once");
}

static void test_required_means_non_zero(void **state) {
    (void)state;
    /* Zero is how an absent field travels, so a required field sent as zero is missing. */
    static const uint8_t hello_zero[] = {0x81, 0xb0, 'p', 'r', 'o', 't', 'o', 'c', 'o', 'l', '_',
                                         'v', 'e', 'r', 's', 'i', 'o', 'n', 0x00};
    weft_hello_req hello;
    weft_limits l;
    weft_limits_default(&l);
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(weft_schema_decode_buf(&weft_hello_req_schema, hello_zero, sizeof hello_zero,
                                            &hello, &up, &l, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'protocol_version' is required; a zero or empty "
                                     "value does not count");
    static const uint8_t hello_one[] = {0x81, 0xb0, 'p', 'r', 'o', 't', 'o', 'c', 'o', 'l', '_',
                                        'v', 'e', 'r', 's', 'i', 'o', 'n', 0x01};
    assert_int_equal(weft_schema_decode_buf(&weft_hello_req_schema, hello_one, sizeof hello_one,
                                            &hello, &up, &l, &err), 0);
    assert_int_equal(hello.protocol_version, 1);
    msgpack_unpacked_destroy(&up);
}

/* Packs a start request whose workflow_id is written by `value`. */
static int decode_start_with_id(value_fn value, weft_err *err) {
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 3);
    mp_str(&m, "workflow_id");
    value(&m.pk);
    mp_str(&m, "workflow_type");
    mp_str(&m, "T");
    mp_str(&m, "task_queue");
    mp_str(&m, "q");
    weft_start_req req;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = mp_decode(&m, &weft_start_req_schema, &req, &up, err);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);
    return rc;
}

static void v_id_1200(msgpack_packer *pk) {
    char id[1200];
    memset(id, 'a', sizeof id);
    weft_pack_str(pk, (weft_str){id, sizeof id});
}
static void v_id_1000(msgpack_packer *pk) {
    char id[1000];
    memset(id, 'a', sizeof id);
    weft_pack_str(pk, (weft_str){id, sizeof id});
}
static void v_bad_utf8(msgpack_packer *pk) { weft_pack_str(pk, WEFT_STR_LIT("ab\xc3\x28")); }
static void v_surrogate(msgpack_packer *pk) { weft_pack_str(pk, WEFT_STR_LIT("\xed\xa0\x80")); }
static void v_overlong(msgpack_packer *pk) { weft_pack_str(pk, WEFT_STR_LIT("\xc0\xaf")); }
static void v_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }

static void test_messages_for_identifiers(void **state) {
    (void)state;
    weft_err err;
    assert_int_equal(decode_start_with_id(v_int, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'workflow_id' must be a string, got integer");
    assert_string_equal(err.field, "workflow_id");
    assert_int_equal(decode_start_with_id(v_nil, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'workflow_id' is required");
    assert_int_equal(decode_start_with_id(v_id_1200, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'workflow_id' is 1200 bytes; the limit is 1000 bytes "
                                     "(id_bytes_max): use a shorter id");
    assert_int_equal(decode_start_with_id(v_id_1000, &err), 0);
    assert_int_equal(decode_start_with_id(v_bad_utf8, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'workflow_id' is not valid UTF-8");
    assert_int_equal(decode_start_with_id(v_surrogate, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(decode_start_with_id(v_overlong, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(decode_start_with_id(v_empty, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message,
                        "field 'workflow_id' must not be empty: give a value or leave the field out");
    assert_int_equal(decode_start_with_id(v_str, &err), 0);
}

static void test_message_for_unknown_policy(void **state) {
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    mp_str(&m, "workflow_id");
    mp_str(&m, "w");
    mp_str(&m, "workflow_type");
    mp_str(&m, "T");
    mp_str(&m, "task_queue");
    mp_str(&m, "q");
    mp_str(&m, "id_reuse_policy");
    mp_str(&m, "x");
    weft_start_req req;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(mp_decode(&m, &weft_start_req_schema, &req, &up, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'id_reuse_policy' has unknown value 'x'; use one of: "
                                     "allow, allow-failed, reject");
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);
}

static void test_payload_limit_follows_config(void **state) {
    (void)state;
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "name");
    mp_str(&m, "n");
    mp_str(&m, "blob");
    weft_pack_bytes(&m.pk, (weft_bytes){(const uint8_t *)"0123456789abcdefX", 17});
    weft_limits l;
    weft_limits_default(&l);
    l.payload_bytes_max = 16;
    t_rec r;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = weft_schema_decode_buf(&rec_schema, (const uint8_t *)m.sb.data, m.sb.size, &r, &up,
                                    &l, &err);
    assert_int_equal(rc, -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "field 'blob' is 17 bytes; the limit is 16 bytes "
                                     "(payload_bytes_max): store large data elsewhere and pass "
                                     "a reference");
    l.payload_bytes_max = 17;
    rc = weft_schema_decode_buf(&rec_schema, (const uint8_t *)m.sb.data, m.sb.size, &r, &up, &l,
                                &err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.blob.len, 17);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);
}

static void test_enum_quote_is_sanitised(void **state) {
    (void)state;
    char long_value[200];
    memset(long_value, 'z', sizeof long_value);
    long_value[0] = '\n';
    long_value[1] = '\'';
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m, "name");
    mp_str(&m, "n");
    mp_str(&m, "color");
    weft_pack_str(&m.pk, (weft_str){long_value, sizeof long_value});
    t_rec r;
    weft_err err;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(mp_decode(&m, &rec_schema, &r, &up, &err), -WEFT_E_INVALID_ARGUMENT);
    /* Control characters and quotes are masked, and the quote is cut short. */
    assert_non_null(strstr(err.message, "unknown value '??zzz"));
    assert_non_null(strstr(err.message, "z...'; use one of"));
    assert_null(strchr(err.message, '\n'));
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&m.sb);
}

/* ---- Hostile buffers ---- */

/* Decodes raw bytes with rec_schema; returns the result code and leaves the message in *err. */
static int decode_raw(const uint8_t *buf, size_t len, weft_err *err) {
    weft_limits l;
    weft_limits_default(&l);
    t_rec r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    weft_err_clear(err);
    int rc = weft_schema_decode_buf(&rec_schema, buf, len, &r, &up, &l, err);
    msgpack_unpacked_destroy(&up);
    return rc;
}

static void test_depth_of_objects(void **state) {
    (void)state;
    /* A hand-built chain of 100 nested arrays, deeper than msgpack-c could ever produce. */
    enum { LEVELS = 100 };
    static msgpack_object chain[LEVELS + 1];
    for (int i = 0; i < LEVELS; i++) {
        chain[i].type = MSGPACK_OBJECT_ARRAY;
        chain[i].via.array.size = 1;
        chain[i].via.array.ptr = &chain[i + 1];
    }
    chain[LEVELS].type = MSGPACK_OBJECT_NIL;
    assert_int_equal(weft_msgpack_depth(&chain[LEVELS]), 0);
    assert_int_equal(weft_msgpack_depth(&chain[LEVELS - 5]), 5);
    assert_true(weft_msgpack_depth(&chain[0]) > WEFT_DECODE_DEPTH_MAX);

    /* A map whose value is that chain is refused before any field is looked at. */
    msgpack_object_kv kv = {.key = {.type = MSGPACK_OBJECT_STR,
                                    .via.str = {.size = 4, .ptr = "name"}},
                            .val = chain[0]};
    msgpack_object map = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = 1, .ptr = &kv}};
    /* Past its stack the walk stops early, still reporting more than the limit. */
    assert_true(weft_msgpack_depth(&map) > WEFT_DECODE_DEPTH_MAX);
    weft_limits l;
    weft_limits_default(&l);
    t_rec r;
    weft_err err;
    assert_int_equal(weft_schema_decode(&rec_schema, &map, &r, NULL, &l, &err),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "body");
    assert_string_equal(err.message, "body nests maps and arrays more than 8 levels deep "
                                     "(WEFT_DECODE_DEPTH_MAX): send a flatter request");
    kv.val = chain[LEVELS - 5];
    assert_int_equal(weft_msgpack_depth(&map), 6);
    /* Depth counts keys too. */
    kv.key = chain[LEVELS - 3];
    kv.val = chain[LEVELS];
    assert_int_equal(weft_msgpack_depth(&map), 4);
}

static void test_nesting_limit_boundary(void **state) {
    (void)state;
    /* {"name":"n","x":[[...[nil]...]]} with the map plus k arrays = depth k + 1. */
    for (unsigned arrays = 6; arrays <= 8; arrays++) {
        uint8_t buf[64];
        size_t n = 0;
        buf[n++] = 0x82;
        buf[n++] = 0xa4;
        memcpy(buf + n, "name", 4), n += 4;
        buf[n++] = 0xa1;
        buf[n++] = 'n';
        buf[n++] = 0xa1;
        buf[n++] = 'x';
        for (unsigned i = 0; i < arrays; i++) buf[n++] = 0x91;
        buf[n++] = 0xc0;
        weft_err err;
        int rc = decode_raw(buf, n, &err);
        if (arrays + 1 <= WEFT_DECODE_DEPTH_MAX) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -WEFT_E_INVALID_ARGUMENT);
            assert_string_equal(err.field, "body");
            assert_non_null(strstr(err.message, "more than 8 levels deep"));
        }
    }
}

static void test_deep_nesting_refused(void **state) {
    (void)state;
    enum { LEVELS = 1000 };
    uint8_t *arrays = malloc(LEVELS + 1);
    memset(arrays, 0x91, LEVELS);
    arrays[LEVELS] = 0xc0;
    weft_err err;
    assert_int_equal(decode_raw(arrays, LEVELS + 1, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "body");
    /* Unclosed: the same prefix with no innermost value. */
    assert_int_equal(decode_raw(arrays, LEVELS, &err), -WEFT_E_INVALID_ARGUMENT);
    free(arrays);

    uint8_t *maps = malloc(3 * LEVELS + 1);
    for (int i = 0; i < LEVELS; i++) {
        maps[3 * i] = 0x81;
        maps[3 * i + 1] = 0xa1;
        maps[3 * i + 2] = 'k';
    }
    maps[3 * LEVELS] = 0xc0;
    assert_int_equal(decode_raw(maps, 3 * LEVELS + 1, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "levels deep"));
    free(maps);
}

static void test_truncation_and_trailing_bytes(void **state) {
    (void)state;
    t_rec in;
    fill_rec(&in);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_schema_encode_buf(&rec_schema, &in, &buf, &len), 0);
    weft_err err;
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(decode_raw(buf, cut, &err), -WEFT_E_INVALID_ARGUMENT);
        assert_string_equal(err.field, "body");
    }
    assert_int_equal(decode_raw(buf, len, &err), 0);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0x00;
    assert_int_equal(decode_raw(longer, len + 1, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "body has 1 trailing bytes after its msgpack object: send "
                                     "exactly one object");
    free(longer);
    free(buf);
}

static void test_malformed_buffers(void **state) {
    (void)state;
    weft_err err;
    static const uint8_t reserved[] = {0x81, 0xa1, 'x', 0xc1};
    assert_int_equal(decode_raw(reserved, sizeof reserved, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "0xc1"));
    /* Counts and lengths the buffer cannot back are refused before msgpack-c allocates. */
    static const uint8_t huge_array[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    assert_int_equal(decode_raw(huge_array, sizeof huge_array, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "4294967295 items"));
    static const uint8_t huge_map[] = {0xdf, 0x00, 0x00, 0x10, 0x00, 0xc0, 0xc0};
    assert_int_equal(decode_raw(huge_map, sizeof huge_map, &err), -WEFT_E_INVALID_ARGUMENT);
    static const uint8_t short_array[] = {0x81, 0xa1, 'x', 0xdd, 0x00, 0x00, 0x00, 0x09, 0xc0};
    assert_int_equal(decode_raw(short_array, sizeof short_array, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "truncated"));
    static const uint8_t huge_str[] = {0x81, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    assert_int_equal(decode_raw(huge_str, sizeof huge_str, &err), -WEFT_E_INVALID_ARGUMENT);
    static const uint8_t not_map[] = {0x91, 0x01};
    assert_int_equal(decode_raw(not_map, sizeof not_map, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.message, "body must be a map, got array");
    assert_int_equal(decode_raw(NULL, 0, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "body");
}

static void test_item_count_cap_in_raw_check(void **state) {
    (void)state;
    /* {"x": [nil x n]}: the codec refuses any container over WEFT_DECODE_ARRAY_ITEMS_MAX, even
     * under an unknown key. */
    for (uint32_t n = WEFT_DECODE_ARRAY_ITEMS_MAX; n <= WEFT_DECODE_ARRAY_ITEMS_MAX + 1; n++) {
        size_t len = 3 + 5 + n + 7;
        uint8_t *buf = malloc(len);
        size_t k = 0;
        buf[k++] = 0x82;
        buf[k++] = 0xa1;
        buf[k++] = 'x';
        buf[k++] = 0xdd;
        buf[k++] = (uint8_t)(n >> 24);
        buf[k++] = (uint8_t)(n >> 16);
        buf[k++] = (uint8_t)(n >> 8);
        buf[k++] = (uint8_t)n;
        memset(buf + k, 0xc0, n);
        k += n;
        memcpy(buf + k, "\xa4name\xa1n", 7);
        k += 7;
        assert_int_equal(k, len);
        weft_err err;
        int rc = decode_raw(buf, len, &err);
        if (n <= WEFT_DECODE_ARRAY_ITEMS_MAX) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -WEFT_E_INVALID_ARGUMENT);
            assert_non_null(strstr(err.message, "65537 items; the limit is 65536 items"));
        }
        free(buf);
    }
}

static void test_pack_helpers(void **state) {
    (void)state;
    mp m;
    mp_init(&m);
    assert_int_equal(weft_pack_cstr(&m.pk, NULL), 0);
    assert_int_equal(weft_pack_str(&m.pk, WEFT_STR_LIT("ab")), 0);
    assert_int_equal(weft_pack_bytes(&m.pk, (weft_bytes){NULL, 0}), 0);
    assert_int_equal(weft_pack_bytes(&m.pk, (weft_bytes){(const uint8_t *)"\x01", 1}), 0);
    static const uint8_t expect[] = {0xa0, 0xa2, 'a', 'b', 0xc4, 0x00, 0xc4, 0x01, 0x01};
    assert_int_equal(m.sb.size, sizeof expect);
    assert_memory_equal(m.sb.data, expect, sizeof expect);
    msgpack_sbuffer_destroy(&m.sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_field_type),
        cmocka_unit_test(test_zero_values_are_omitted),
        cmocka_unit_test(test_encoding_follows_schema_order),
        cmocka_unit_test(test_key_order_does_not_matter),
        cmocka_unit_test(test_wire_key_strips_one_underscore),
        cmocka_unit_test(test_nil_and_unknown_keys),
        cmocka_unit_test(test_lenient_number_forms),
        cmocka_unit_test(test_wrong_type_for_each_field_type),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_lengths_and_emptiness),
        cmocka_unit_test(test_unknown_enum_value),
        cmocka_unit_test(test_array_errors_name_the_path),
        cmocka_unit_test(test_required_and_duplicates),
        cmocka_unit_test(test_required_means_non_zero),
        cmocka_unit_test(test_messages_for_identifiers),
        cmocka_unit_test(test_message_for_unknown_policy),
        cmocka_unit_test(test_payload_limit_follows_config),
        cmocka_unit_test(test_enum_quote_is_sanitised),
        cmocka_unit_test(test_depth_of_objects),
        cmocka_unit_test(test_nesting_limit_boundary),
        cmocka_unit_test(test_deep_nesting_refused),
        cmocka_unit_test(test_truncation_and_trailing_bytes),
        cmocka_unit_test(test_malformed_buffers),
        cmocka_unit_test(test_item_count_cap_in_raw_check),
        cmocka_unit_test(test_pack_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
