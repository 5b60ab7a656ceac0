/* test_list_token.c: the ListWorkflows page token (node/listtoken.c): round trips, the global
 * order, each shard's bound after a cursor, and the refusal of every malformed token with
 * INVALID_ARGUMENT naming next_page_token. weftd is an executable, so the file is compiled in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/listtoken.c"

/* Shards in the cluster the tokens are decoded for. */
#define TEST_SHARDS 4u

static void round_trip(weft_list_token in) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(weft_list_token_encode(&in, &sb), 0);
    weft_list_token out;
    weft_err err = {0};
    assert_int_equal(
        weft_list_token_decode((const uint8_t *)sb.data, sb.size, TEST_SHARDS, &out, &err), 0);
    assert_int_equal(out.after.start_ms, in.after.start_ms);
    assert_int_equal(out.after.shard, in.after.shard);
    assert_int_equal(out.after.run_key, in.after.run_key);
    assert_int_equal(out.has_only, in.has_only);
    if (in.has_only) assert_int_equal(out.only, in.only);
    msgpack_sbuffer_destroy(&sb);
}

static void test_round_trip(void **state) {
    (void)state;
    round_trip((weft_list_token){.after = {1765097000000u, 2, 17}});
    round_trip((weft_list_token){.after = {0, 0, 0}});
    round_trip((weft_list_token){.after = WEFT_LIST_POS_TOP});
    round_trip((weft_list_token){.after = {UINT64_MAX - 1, 3, UINT64_MAX}, .has_only = true,
                                 .only = 3});
}

static void refuse(const uint8_t *tok, size_t len, const char *what) {
    weft_list_token out;
    weft_err err = {0};
    int rc = weft_list_token_decode(tok, len, TEST_SHARDS, &out, &err);
    if (rc != -WEFT_E_INVALID_ARGUMENT) fail_msg("%s: accepted (rc %d)", what, rc);
    assert_int_equal(err.code, WEFT_E_INVALID_ARGUMENT);
    assert_string_equal(err.field, "next_page_token");
    assert_non_null(strstr(err.message, "list again without it"));
}

static void test_refusals(void **state) {
    (void)state;
    const uint8_t empty[1] = {0};
    refuse(empty, 0, "empty");
    const uint8_t old_form[] = {0x92, 0x00, 0xc4, 0x00}; /* [0, bin0]: the former token */
    refuse(old_form, sizeof old_form, "former [shard, inner]");
    const uint8_t two[] = {0x92, 0x01, 0x00};
    refuse(two, sizeof two, "two items");
    const uint8_t five[] = {0x95, 0x01, 0x00, 0x01, 0x00, 0x00};
    refuse(five, sizeof five, "five items");
    const uint8_t no_shard[] = {0x93, 0x01, 0x04, 0x01}; /* shard 4 of 4 */
    refuse(no_shard, sizeof no_shard, "unknown shard");
    const uint8_t no_only[] = {0x94, 0x01, 0x00, 0x01, 0x63}; /* only shard 99 */
    refuse(no_only, sizeof no_only, "unknown shard alone");
    const uint8_t negative[] = {0x93, 0xff, 0x00, 0x01}; /* start -1 */
    refuse(negative, sizeof negative, "negative start");
    const uint8_t str[] = {0x93, 0xa1, 'x', 0x00, 0x01};
    refuse(str, sizeof str, "a string item");
    const uint8_t nested[] = {0x93, 0x91, 0x01, 0x00, 0x01};
    refuse(nested, sizeof nested, "a nested array");
    const uint8_t trailing[] = {0x93, 0x01, 0x00, 0x01, 0x00};
    refuse(trailing, sizeof trailing, "a trailing byte");
    const uint8_t truncated[] = {0x93, 0x01, 0x00};
    refuse(truncated, sizeof truncated, "truncated");
    const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    refuse(huge, sizeof huge, "array of 2^32-1 items");
    const uint8_t reserved[] = {0x93, 0x01, 0x00, 0xc1};
    refuse(reserved, sizeof reserved, "a reserved byte");
    const uint8_t map[] = {0x80};
    refuse(map, sizeof map, "a map");
}

/* Newest first; at one start time the higher shard, then the higher run key. */
static void test_order(void **state) {
    (void)state;
    weft_list_pos newer = {200, 0, 1}, older = {100, 3, 9};
    assert_true(weft_list_pos_cmp(&newer, &older) < 0);
    assert_true(weft_list_pos_cmp(&older, &newer) > 0);
    weft_list_pos hi_shard = {100, 3, 1}, lo_shard = {100, 1, 9};
    assert_true(weft_list_pos_cmp(&hi_shard, &lo_shard) < 0);
    weft_list_pos hi_key = {100, 1, 9}, lo_key = {100, 1, 2};
    assert_true(weft_list_pos_cmp(&hi_key, &lo_key) < 0);
    assert_int_equal(weft_list_pos_cmp(&hi_key, &hi_key), 0);
    weft_list_pos top = WEFT_LIST_POS_TOP;
    assert_true(weft_list_pos_cmp(&top, &newer) < 0);
}

/* A shard's bound takes exactly the runs that come after the cursor in the global order. */
static void test_bounds(void **state) {
    (void)state;
    const weft_list_pos cur = {100, 2, 50};
    const uint64_t times[] = {99, 100, 101};
    const uint64_t keys[] = {0, 1, 49, 50, 51, UINT64_MAX - 1};
    for (uint32_t shard = 0; shard < TEST_SHARDS; shard++) {
        uint64_t bms = 0, bkey = 0;
        assert_true(weft_list_cursor_bound(&cur, shard, &bms, &bkey));
        for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
            for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++) {
                weft_list_pos p = {times[i], shard, keys[j]};
                bool after = weft_list_pos_cmp(&cur, &p) < 0;
                bool below = times[i] < bms || (times[i] == bms && keys[j] < bkey);
                if (after != below) {
                    fail_msg("shard %u run (%llu, %llu): after %d, below the bound %d", shard,
                             (unsigned long long)times[i], (unsigned long long)keys[j], after,
                             below);
                }
            }
        }
    }
    /* The first page's cursor leaves shard 0 bounded only by run key UINT64_MAX. */
    weft_list_pos top = WEFT_LIST_POS_TOP;
    uint64_t bms = 0, bkey = 0;
    assert_true(weft_list_cursor_bound(&top, 0, &bms, &bkey));
    assert_int_equal(bms, UINT64_MAX);
    weft_list_pos at_max = {UINT64_MAX, 2, 5};
    assert_false(weft_list_cursor_bound(&at_max, 1, &bms, &bkey));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
