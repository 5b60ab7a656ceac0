/* test_partition.c: shard ranges tile the 64-bit hash space exactly and agree with
 * weft_shard_for_hash; the partition hash separates namespace from workflow id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "proto/partition.h"

/* Checks every property of the ranges for one shard count. */
static void check_shard_count(uint32_t shards) {
    uint64_t space_per_shard_min = UINT64_MAX, space_per_shard_max = 0;
    uint64_t prev_last = 0;
    for (uint32_t i = 0; i < shards; i++) {
        uint64_t first = 0, last = 0;
        weft_shard_range(i, shards, &first, &last);
        assert_true(first <= last);
        if (i == 0) {
            assert_int_equal(first, 0);
        } else {
            /* Contiguous: no gap and no overlap with the previous shard. */
            assert_true(prev_last != UINT64_MAX);
            assert_int_equal(first, prev_last + 1);
            assert_int_equal(weft_shard_for_hash(first - 1, shards), i - 1);
        }
        /* Boundary hashes belong to the shard whose range holds them. */
        assert_int_equal(weft_shard_for_hash(first, shards), i);
        assert_int_equal(weft_shard_for_hash(last, shards), i);
        assert_int_equal(weft_shard_for_hash(first + (last - first) / 2, shards), i);
        if (last != UINT64_MAX) assert_int_equal(weft_shard_for_hash(last + 1, shards), i + 1);
        uint64_t span = last - first; /* size - 1, so the full space does not overflow */
        space_per_shard_min = span < space_per_shard_min ? span : space_per_shard_min;
        space_per_shard_max = span > space_per_shard_max ? span : space_per_shard_max;
        prev_last = last;
    }
    /* The last range ends at the top of the space: the cover is exact. */
    assert_int_equal(prev_last, UINT64_MAX);
    /* Equal ranges, to within one hash. */
    assert_true(space_per_shard_max - space_per_shard_min <= 1);
}

static void test_ranges_cover_space_1_to_64(void **state) {
    (void)state;
    for (uint32_t s = 1; s <= 64; s++) check_shard_count(s);
}

static void test_ranges_cover_space_1024(void **state) {
    (void)state;
    check_shard_count(1024);
    check_shard_count(WEFT_SHARDS_MAX);
}

static void test_single_shard_owns_everything(void **state) {
    (void)state;
    uint64_t first = 1, last = 0;
    weft_shard_range(0, 1, &first, &last);
    assert_int_equal(first, 0);
    assert_int_equal(last, UINT64_MAX);
    assert_int_equal(weft_shard_for_hash(0, 1), 0);
    assert_int_equal(weft_shard_for_hash(UINT64_MAX, 1), 0);
}

static void test_hash_is_stable_and_separates_fields(void **state) {
    (void)state;
    uint64_t a = weft_partition_hash(WEFT_STR_LIT("default"), WEFT_STR_LIT("order-1"));
    uint64_t b = weft_partition_hash(WEFT_STR_LIT("default"), WEFT_STR_LIT("order-1"));
    assert_int_equal(a, b);
    assert_int_not_equal(a, weft_partition_hash(WEFT_STR_LIT("default"), WEFT_STR_LIT("order-2")));
    assert_int_not_equal(a, weft_partition_hash(WEFT_STR_LIT("other"), WEFT_STR_LIT("order-1")));
    /* The 0x00 separator keeps ("ab", "c") and ("a", "bc") apart. */
    assert_int_not_equal(weft_partition_hash(WEFT_STR_LIT("ab"), WEFT_STR_LIT("c")),
                         weft_partition_hash(WEFT_STR_LIT("a"), WEFT_STR_LIT("bc")));
    /* Absent strings hash like empty ones. */
    weft_str none = {.ptr = NULL, .len = 0};
    assert_int_equal(weft_partition_hash(none, none),
                     weft_partition_hash(WEFT_STR_LIT(""), WEFT_STR_LIT("")));
}

static void test_hashes_spread_over_shards(void **state) {
    (void)state;
    enum { SHARDS = 8, KEYS = 8000 };
    unsigned counts[SHARDS] = {0};
    char id[32];
    for (int k = 0; k < KEYS; k++) {
        int n = snprintf(id, sizeof id, "wf-%d", k);
        weft_str wid = {.ptr = id, .len = (uint32_t)n};
        counts[weft_shard_for_hash(weft_partition_hash(WEFT_STR_LIT("default"), wid), SHARDS)]++;
    }
    /* xxh3 is uniform: each shard gets its 1000 within a generous margin. */
    for (int s = 0; s < SHARDS; s++) {
        assert_true(counts[s] > 800 && counts[s] < 1200);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_cover_space_1_to_64),
        cmocka_unit_test(test_ranges_cover_space_1024),
        cmocka_unit_test(test_single_shard_owns_everything),
        cmocka_unit_test(test_hash_is_stable_and_separates_fields),
        cmocka_unit_test(test_hashes_spread_over_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
