/* test_keys.c: key encodings sort in numeric and length-then-byte order, long identifiers are
 * hashed yet distinct, and every key stays within WEFT_KEY_BYTES_MAX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/limits.h"
#include "storage/keys.h"

/* Identifier length the key layer must handle: the default id limit of the protocol. */
#define TEST_ID_BYTES WEFT_ID_BYTES_MAX_DEFAULT
/* Numbers compared pairwise in the ordering test. */
#define TEST_U64_SAMPLES_COUNT 64

/* memcmp order with shorter-first ties, as LMDB compares keys. */
static int key_cmp(const weft_key *a, const weft_key *b) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->bytes, b->bytes, n);
    if (c != 0) return c;
    return (a->len > b->len) - (a->len < b->len);
}

static bool key_eq(const weft_key *a, const weft_key *b) {
    return key_cmp(a, b) == 0;
}

static weft_str str_of(const char *p, size_t len) {
    return (weft_str){.ptr = p, .len = (uint32_t)len};
}

static void test_be_layout(void **state) {
    (void)state;
    uint8_t b[8];
    weft_be64_put(b, 0x0102030405060708ull);
    const uint8_t want64[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(b, want64, 8);
    assert_int_equal(weft_be64_get(b), 0x0102030405060708ull);
    weft_be32_put(b, 0xA1B2C3D4u);
    const uint8_t want32[4] = {0xA1, 0xB2, 0xC3, 0xD4};
    assert_memory_equal(b, want32, 4);
    assert_int_equal(weft_be32_get(b), 0xA1B2C3D4u);
}

/* Byte order of integer keys must be numeric order, or timers would fire out of order. */
static void test_u64_order(void **state) {
    (void)state;
    uint64_t v[TEST_U64_SAMPLES_COUNT];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < TEST_U64_SAMPLES_COUNT; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Mix small, large and boundary values. */
        v[i] = (i % 4 == 0) ? (uint64_t)i : (i % 4 == 1) ? UINT64_MAX - (uint64_t)i : x >> (i % 63);
    }
    for (int i = 0; i < TEST_U64_SAMPLES_COUNT; i++) {
        for (int j = 0; j < TEST_U64_SAMPLES_COUNT; j++) {
            weft_key a, b;
            weft_key_timer(&a, v[i], 7);
            weft_key_timer(&b, v[j], 7);
            int want = (v[i] > v[j]) - (v[i] < v[j]);
            int got = key_cmp(&a, &b);
            assert_int_equal((got > 0) - (got < 0), want);
        }
    }
}

static void test_history_order(void **state) {
    (void)state;
    weft_key a, b, c;
    weft_key_history(&a, 1, 0xFFFFFFFFull);
    weft_key_history(&b, 2, 1);
    weft_key_history(&c, 2, 256);
    assert_true(key_cmp(&a, &b) < 0); /* run key first */
    assert_true(key_cmp(&b, &c) < 0); /* then event id, numerically */
    assert_int_equal(a.len, 16);
    weft_key_run_part(&a, 5, 0, 0);
    weft_key_run_part(&b, 5, 1, 0);
    assert_true(key_cmp(&a, &b) < 0);
    assert_int_equal(a.len, 17);
}

/* Identifiers order by length, then bytes; the length prefix means no id is a prefix trap. */
static void test_ident_order(void **state) {
    (void)state;
    weft_key e, a, b, ab, ba;
    weft_key_reset(&e);
    weft_key_ident(&e, str_of(NULL, 0));
    weft_key_reset(&a);
    weft_key_ident(&a, weft_str_c("a"));
    weft_key_reset(&b);
    weft_key_ident(&b, weft_str_c("b"));
    weft_key_reset(&ab);
    weft_key_ident(&ab, weft_str_c("ab"));
    weft_key_reset(&ba);
    weft_key_ident(&ba, weft_str_c("ba"));
    assert_int_equal(e.len, 2);
    assert_int_equal(a.len, 3);
    assert_true(key_cmp(&e, &a) < 0);
    assert_true(key_cmp(&a, &b) < 0);
    assert_true(key_cmp(&b, &ab) < 0); /* shorter first, even though "b" > "ab" */
    assert_true(key_cmp(&ab, &ba) < 0);
    const uint8_t want[4] = {0, 2, 'a', 'b'};
    assert_memory_equal(ab.bytes, want, 4);
}

/* Splitting the same bytes differently between two identifiers gives different keys. */
static void test_ident_boundaries(void **state) {
    (void)state;
    weft_key x, y;
    weft_key_execution(&x, weft_str_c("a"), weft_str_c("bc"));
    weft_key_execution(&y, weft_str_c("ab"), weft_str_c("c"));
    assert_false(key_eq(&x, &y));
    weft_key_dedup(&x, weft_str_c(""), weft_str_c("abc"));
    weft_key_dedup(&y, weft_str_c("abc"), weft_str_c(""));
    assert_false(key_eq(&x, &y));
}

static void test_long_ident_hashed(void **state) {
    (void)state;
    char *p = malloc(TEST_ID_BYTES);
    assert_non_null(p);
    memset(p, 'x', TEST_ID_BYTES);
    weft_key a, b, a2, inl;
    /* Same prefix, different tail: the hash must tell them apart. */
    weft_key_reset(&a);
    weft_key_ident(&a, str_of(p, TEST_ID_BYTES));
    p[TEST_ID_BYTES - 1] = 'y';
    weft_key_reset(&b);
    weft_key_ident(&b, str_of(p, TEST_ID_BYTES));
    p[TEST_ID_BYTES - 1] = 'x';
    weft_key_reset(&a2);
    weft_key_ident(&a2, str_of(p, TEST_ID_BYTES));
    assert_int_equal(a.len, 2 + WEFT_KEY_IDENT_INLINE_BYTES);
    assert_int_equal(a.len, b.len);
    assert_false(key_eq(&a, &b));
    assert_true(key_eq(&a, &a2));                                  /* deterministic */
    assert_int_equal(weft_be32_get(a.bytes) >> 16, TEST_ID_BYTES); /* length field kept */
    /* An inline identifier whose bytes equal the hashed form's body still differs: its length
     * field can never exceed the inline limit. */
    weft_key_reset(&inl);
    weft_key_ident(&inl, str_of((const char *)a.bytes + 2, a.len - 2));
    assert_int_equal(inl.len, a.len);
    assert_false(key_eq(&a, &inl));
    assert_true(key_cmp(&inl, &a) < 0); /* still ordered by length */
    free(p);
}

/* The boundary: the longest inline id and the shortest hashed one. */
static void test_inline_boundary(void **state) {
    (void)state;
    char p[WEFT_KEY_IDENT_INLINE_BYTES + 1];
    memset(p, 'q', sizeof p);
    weft_key in, out;
    weft_key_reset(&in);
    weft_key_ident(&in, str_of(p, WEFT_KEY_IDENT_INLINE_BYTES));
    weft_key_reset(&out);
    weft_key_ident(&out, str_of(p, WEFT_KEY_IDENT_INLINE_BYTES + 1));
    assert_int_equal(in.len, 2 + WEFT_KEY_IDENT_INLINE_BYTES);
    assert_memory_equal(in.bytes + 2, p, WEFT_KEY_IDENT_INLINE_BYTES);
    assert_int_equal(out.len, 2 + WEFT_KEY_IDENT_INLINE_BYTES);
    assert_false(key_eq(&in, &out));
    assert_true(key_cmp(&in, &out) < 0);
}

/* Identifiers past the u16 length field still encode, hashed, within the limit. */
static void test_huge_ident(void **state) {
    (void)state;
    size_t n = 70000;
    char *p = malloc(n);
    assert_non_null(p);
    memset(p, 'z', n);
    weft_key a, b;
    weft_key_reset(&a);
    weft_key_ident(&a, str_of(p, n));
    weft_key_reset(&b);
    weft_key_ident(&b, str_of(p, n - 1));
    assert_int_equal(a.len, 2 + WEFT_KEY_IDENT_INLINE_BYTES);
    assert_false(key_eq(&a, &b));
    free(p);
}

/* Every constructor with maximal identifiers stays under LMDB's key limit. */
static void test_max_ids_fit(void **state) {
    (void)state;
    char *p = malloc(TEST_ID_BYTES);
    assert_non_null(p);
    memset(p, 'm', TEST_ID_BYTES);
    weft_str id = str_of(p, TEST_ID_BYTES);
    weft_key k;
    weft_key_run_id(&k, id, id, id);
    assert_true(k.len <= WEFT_KEY_BYTES_MAX);
    assert_int_equal(k.len, 3 * (2 + WEFT_KEY_IDENT_INLINE_BYTES));
    weft_key_vis(&k, id, id, UINT64_MAX, UINT64_MAX);
    assert_true(k.len <= WEFT_KEY_BYTES_MAX);
    weft_key_execution(&k, id, id);
    assert_true(k.len <= WEFT_KEY_BYTES_MAX);
    weft_key_dedup(&k, id, id);
    assert_true(k.len <= WEFT_KEY_BYTES_MAX);
    weft_key_ready(&k, id, 3, 9);
    assert_true(k.len <= WEFT_KEY_BYTES_MAX);
    assert_int_equal(k.bytes[k.len - 9], 3);
    free(p);
}

/* The visibility index lists by start time within (ns, status). */
static void test_vis_order(void **state) {
    (void)state;
    weft_key a, b, c;
    weft_key_vis(&a, weft_str_c("ns"), weft_str_c("Running"), 1000, 99);
    weft_key_vis(&b, weft_str_c("ns"), weft_str_c("Running"), 2000, 1);
    weft_key_vis(&c, weft_str_c("ns"), weft_str_c("Running"), 2000, 2);
    assert_true(key_cmp(&a, &b) < 0);
    assert_true(key_cmp(&b, &c) < 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_be_layout),        cmocka_unit_test(test_u64_order),
        cmocka_unit_test(test_history_order),    cmocka_unit_test(test_ident_order),
        cmocka_unit_test(test_ident_boundaries), cmocka_unit_test(test_long_ident_hashed),
        cmocka_unit_test(test_inline_boundary),  cmocka_unit_test(test_huge_ident),
        cmocka_unit_test(test_max_ids_fit),      cmocka_unit_test(test_vis_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
