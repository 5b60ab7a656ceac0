/* test_batch.c: the raft entry framing [version, leader_time_ms, [bin cmd...]]: round trips
 * and hostile entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "raft/batch.h"

static void *test_alloc(size_t n) { return malloc(n); }

/* Encodes with msgpack-c directly, so hostile shapes can be built. */
typedef struct raw {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} raw;

static void raw_init(raw *r) {
    msgpack_sbuffer_init(&r->sb);
    msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
}

static int raw_decode(raw *r, uint64_t *t, weft_bytes *cmds, uint32_t cap, uint32_t *n,
                      weft_err *err) {
    return weft_batch_decode(r->sb.data, r->sb.size, t, cmds, cap, n, err);
}

static void test_round_trip(void **state) {
    (void)state;
    const char *texts[] = {"start", "", "a longer command with some bytes in it"};
    weft_bytes cmds[3];
    for (int i = 0; i < 3; i++) {
        cmds[i].ptr = (const uint8_t *)texts[i];
        cmds[i].len = (uint32_t)strlen(texts[i]);
    }
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_batch_encode(1700000000123ull, cmds, 3, &buf, &len, test_alloc), 0);
    assert_non_null(buf);
    /* raft_uv needs entry lengths in multiples of 8 (batch.h). */
    assert_int_equal(len % WEFT_BATCH_ALIGN_BYTES, 0);

    uint64_t t = 0;
    uint32_t n = 0;
    weft_bytes out[4];
    weft_err err;
    assert_int_equal(weft_batch_decode(buf, len, &t, out, 4, &n, &err), 0);
    assert_int_equal(t, 1700000000123ull);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i].len, cmds[i].len);
        if (out[i].len > 0) assert_memory_equal(out[i].ptr, texts[i], out[i].len);
        /* Decoding borrows: the bytes live inside the entry. */
        if (out[i].len > 0) {
            assert_true(out[i].ptr >= (const uint8_t *)buf &&
                        out[i].ptr + out[i].len <= (const uint8_t *)buf + len);
        }
    }
    free(buf);
}

static void test_round_trip_limits(void **state) {
    (void)state;
    /* The most commands an entry may hold, and leader times at every integer width (the
     * widest up to the latest stamp allowed). */
    weft_bytes *cmds = calloc(WEFT_RAFT_BATCH_CMDS_MAX, sizeof *cmds);
    weft_bytes *out = calloc(WEFT_RAFT_BATCH_CMDS_MAX, sizeof *out);
    uint8_t one = 7;
    for (uint32_t i = 0; i < WEFT_RAFT_BATCH_CMDS_MAX; i++) cmds[i] = (weft_bytes){&one, 1};
    const uint64_t times[] = {0, 127, 128, 65535, 65536, UINT32_MAX, WEFT_LEADER_TIME_MS_MAX};
    for (size_t k = 0; k < WEFT_ARRAY_LEN(times); k++) {
        void *buf = NULL;
        size_t len = 0;
        assert_int_equal(
            weft_batch_encode(times[k], cmds, WEFT_RAFT_BATCH_CMDS_MAX, &buf, &len, test_alloc),
            0);
        uint64_t t = 1;
        uint32_t n = 0;
        assert_int_equal(
            weft_batch_decode(buf, len, &t, out, WEFT_RAFT_BATCH_CMDS_MAX, &n, NULL), 0);
        assert_int_equal(t, times[k]);
        assert_int_equal(n, WEFT_RAFT_BATCH_CMDS_MAX);
        assert_int_equal(out[WEFT_RAFT_BATCH_CMDS_MAX - 1].ptr[0], 7);
        free(buf);
    }
    free(cmds);
    free(out);
}

/* Short zero padding (what the encoder writes) is accepted; unpadded entries too. */
static void test_padding_accepted(void **state) {
    (void)state;
    for (unsigned pad = 0; pad < WEFT_BATCH_ALIGN_BYTES; pad++) {
        raw r;
        raw_init(&r);
        msgpack_pack_array(&r.pk, 3);
        msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
        msgpack_pack_uint64(&r.pk, 5);
        msgpack_pack_array(&r.pk, 1);
        msgpack_pack_bin_with_body(&r.pk, "xy", 2);
        for (unsigned i = 0; i < pad; i++) msgpack_pack_uint8(&r.pk, 0);
        uint64_t t = 0;
        uint32_t n = 0;
        weft_bytes cmds[1];
        assert_int_equal(raw_decode(&r, &t, cmds, 1, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(cmds[0].len, 2);
        msgpack_sbuffer_destroy(&r.sb);
    }
}

static void test_encode_refuses(void **state) {
    (void)state;
    void *buf = NULL;
    size_t len = 0;
    uint8_t b = 0;
    weft_bytes one = {&b, 1};
    /* Empty batches and oversized ones are the caller's bug: refused, nothing allocated. */
    assert_int_equal(weft_batch_encode(1, &one, 0, &buf, &len, test_alloc),
                     -WEFT_E_INVALID_ARGUMENT);
    weft_bytes *many = calloc(WEFT_RAFT_BATCH_CMDS_MAX + 1, sizeof *many);
    for (uint32_t i = 0; i <= WEFT_RAFT_BATCH_CMDS_MAX; i++) many[i] = one;
    assert_int_equal(
        weft_batch_encode(1, many, WEFT_RAFT_BATCH_CMDS_MAX + 1, &buf, &len, test_alloc),
        -WEFT_E_INVALID_ARGUMENT);
    free(many);
    weft_bytes huge = {&b, WEFT_RAFT_BATCH_BYTES_MAX + 1};
    assert_int_equal(weft_batch_encode(1, &huge, 1, &buf, &len, test_alloc),
                     -WEFT_E_RESOURCE_EXHAUSTED);
    assert_null(buf);
}

/* Found by tests/fuzz/fuzz_apply: an entry stamped with leader time UINT64_MAX moved the shard
 * clock so far that the next deadline (clock + duration) wrapped, and apply aborted on
 * sh_timer_add's assertion on every replica, again at every restart. Such stamps are refused
 * by the decoder, so every replica skips the entry alike; the encoder never makes one. */
static void test_leader_time_bounded(void **state) {
    (void)state;
    uint8_t b = 0;
    weft_bytes one = {&b, 1};
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_batch_encode(WEFT_LEADER_TIME_MS_MAX + 1, &one, 1, &buf, &len,
                                       test_alloc),
                     -WEFT_E_INVALID_ARGUMENT);
    assert_null(buf);
    assert_int_equal(weft_batch_encode(WEFT_LEADER_TIME_MS_MAX, &one, 1, &buf, &len, test_alloc),
                     0);
    uint64_t t = 0;
    uint32_t n = 0;
    weft_bytes cmds[1];
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(weft_batch_decode(buf, len, &t, cmds, 1, &n, &err), 0);
    assert_true(t == WEFT_LEADER_TIME_MS_MAX);
    free(buf);

    const uint64_t late[] = {WEFT_LEADER_TIME_MS_MAX + 1, UINT64_MAX};
    for (unsigned i = 0; i < 2; i++) {
        raw r;
        raw_init(&r);
        msgpack_pack_array(&r.pk, 3);
        msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
        msgpack_pack_uint64(&r.pk, late[i]);
        msgpack_pack_array(&r.pk, 1);
        msgpack_pack_bin(&r.pk, 1);
        msgpack_pack_bin_body(&r.pk, &b, 1);
        while (r.sb.size % WEFT_BATCH_ALIGN_BYTES != 0) msgpack_sbuffer_write(&r.sb, "", 1);
        weft_err_clear(&err);
        n = 99;
        assert_int_equal(raw_decode(&r, &t, cmds, 1, &n, &err), -WEFT_E_INVALID_ARGUMENT);
        assert_int_equal(n, 0);
        assert_non_null(strstr(err.message, "leader time"));
        msgpack_sbuffer_destroy(&r.sb);
    }
}

static void expect_malformed(raw *r, uint32_t cap) {
    uint64_t t = 0;
    uint32_t n = 99;
    weft_bytes cmds[4];
    weft_err err;
    weft_err_clear(&err);
    assert_int_equal(raw_decode(r, &t, cmds, cap, &n, &err), -WEFT_E_INVALID_ARGUMENT);
    assert_int_equal(err.code, WEFT_E_INVALID_ARGUMENT);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(n, 0);
    msgpack_sbuffer_destroy(&r->sb);
}

static void test_hostile_shapes(void **state) {
    (void)state;
    raw r;
    /* Not an array. */
    raw_init(&r);
    msgpack_pack_map(&r.pk, 0);
    expect_malformed(&r, 4);
    /* Wrong arity. */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 2);
    msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
    msgpack_pack_uint64(&r.pk, 5);
    expect_malformed(&r, 4);
    /* Unknown version. */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION + 1);
    msgpack_pack_uint64(&r.pk, 5);
    msgpack_pack_array(&r.pk, 1);
    msgpack_pack_bin_with_body(&r.pk, "x", 1);
    expect_malformed(&r, 4);
    /* Negative leader time. */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
    msgpack_pack_int64(&r.pk, -5);
    msgpack_pack_array(&r.pk, 1);
    msgpack_pack_bin_with_body(&r.pk, "x", 1);
    expect_malformed(&r, 4);
    /* A command as str instead of bin. */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
    msgpack_pack_uint64(&r.pk, 5);
    msgpack_pack_array(&r.pk, 1);
    msgpack_pack_str_with_body(&r.pk, "x", 1);
    expect_malformed(&r, 4);
    /* No commands. */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
    msgpack_pack_uint64(&r.pk, 5);
    msgpack_pack_array(&r.pk, 0);
    expect_malformed(&r, 4);
    /* More commands than the caller has room for. */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
    msgpack_pack_uint64(&r.pk, 5);
    msgpack_pack_array(&r.pk, 3);
    for (int i = 0; i < 3; i++) msgpack_pack_bin_with_body(&r.pk, "x", 1);
    expect_malformed(&r, 2);
    /* Trailing garbage. */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
    msgpack_pack_uint64(&r.pk, 5);
    msgpack_pack_array(&r.pk, 1);
    msgpack_pack_bin_with_body(&r.pk, "x", 1);
    msgpack_pack_nil(&r.pk);
    expect_malformed(&r, 4);
    /* Zero padding longer than the alignment needs. */
    raw_init(&r);
    msgpack_pack_array(&r.pk, 3);
    msgpack_pack_uint32(&r.pk, WEFT_BATCH_VERSION);
    msgpack_pack_uint64(&r.pk, 5);
    msgpack_pack_array(&r.pk, 1);
    msgpack_pack_bin_with_body(&r.pk, "x", 1);
    for (unsigned i = 0; i < WEFT_BATCH_ALIGN_BYTES; i++) msgpack_pack_uint8(&r.pk, 0);
    expect_malformed(&r, 4);
}

static void test_hostile_lengths(void **state) {
    (void)state;
    /* A command count of 2^32-1 in an array32 header, with nothing behind it. */
    const uint8_t huge_count[] = {0x93, 0x01, 0x05, 0xdd, 0xff, 0xff, 0xff, 0xff};
    /* A bin32 claiming 4 GiB. */
    const uint8_t huge_bin[] = {0x93, 0x01, 0x05, 0x91, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
    /* A bin8 claiming more bytes than remain. */
    const uint8_t short_bin[] = {0x93, 0x01, 0x05, 0x91, 0xc4, 0x05, 'a', 'b'};
    /* Truncated uint64 leader time. */
    const uint8_t short_time[] = {0x93, 0x01, 0xcf, 0x00, 0x00};
    const struct {
        const uint8_t *p;
        size_t len;
    } cases[] = {{huge_count, sizeof huge_count}, {huge_bin, sizeof huge_bin},
                 {short_bin, sizeof short_bin},   {short_time, sizeof short_time},
                 {huge_count, 0},                 {huge_count, 1}};
    for (size_t i = 0; i < WEFT_ARRAY_LEN(cases); i++) {
        uint64_t t = 0;
        uint32_t n = 0;
        weft_bytes cmds[4];
        assert_int_equal(weft_batch_decode(cases[i].p, cases[i].len, &t, cmds, 4, &n, NULL),
                         -WEFT_E_INVALID_ARGUMENT);
    }
    /* Every truncation of a valid entry is refused, never read past. */
    weft_bytes cmd = {(const uint8_t *)"hello", 5};
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(weft_batch_encode(99, &cmd, 1, &buf, &len, test_alloc), 0);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut + 1); /* exact-size copy so ASan sees any overread */
        memcpy(copy, buf, cut);
        uint64_t t = 0;
        uint32_t n = 0;
        weft_bytes cmds[1];
        int rc = weft_batch_decode(cut ? copy : NULL, cut, &t, cmds, 1, &n, NULL);
        if (rc == 0) {
            /* Only the zero padding may be cut; the batch itself is whole. */
            assert_true(cut + WEFT_BATCH_ALIGN_BYTES > len);
            assert_int_equal(n, 1);
            assert_int_equal(cmds[0].len, 5);
            assert_memory_equal(cmds[0].ptr, "hello", 5);
        } else {
            assert_int_equal(rc, -WEFT_E_INVALID_ARGUMENT);
        }
        free(copy);
    }
    free(buf);
}

/* Random bytes must never crash the decoder or be accepted as more than they hold. */
static void test_fuzz_bytes(void **state) {
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    weft_bytes cmds[8];
    for (int round = 0; round < 20000; round++) {
        uint8_t buf[48];
        size_t len = 1 + (size_t)(x % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        /* Bias toward plausible prefixes so the deeper paths run. */
        if (round % 2 == 0) {
            buf[0] = 0x93;
            if (len > 1) buf[1] = 0x01;
        }
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        uint64_t t = 0;
        uint32_t n = 0;
        int rc = weft_batch_decode(copy, len, &t, cmds, 8, &n, NULL);
        if (rc == 0) {
            assert_true(n >= 1 && n <= 8);
            for (uint32_t i = 0; i < n; i++) {
                assert_true(cmds[i].len == 0 ||
                            (cmds[i].ptr >= copy && cmds[i].ptr + cmds[i].len <= copy + len));
            }
        } else {
            assert_int_equal(rc, -WEFT_E_INVALID_ARGUMENT);
        }
        free(copy);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_round_trip_limits),
        cmocka_unit_test(test_encode_refuses),  cmocka_unit_test(test_hostile_shapes),
        cmocka_unit_test(test_padding_accepted), cmocka_unit_test(test_leader_time_bounded),
        cmocka_unit_test(test_hostile_lengths), cmocka_unit_test(test_fuzz_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
