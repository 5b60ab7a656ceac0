/* latency.c: log-linear latency histograms: fixed memory per thread, merged after the run. */
#include <string.h>

#include "bench.h"

/* Bucket of a sample: values below BENCH_LAT_SUB_COUNT have their own bucket; above, the most
 * significant bit picks the power of two and the next BENCH_LAT_SUB_BITS bits the sub-bucket. */
static uint32_t latency_bucket(uint64_t us) {
    if (us < BENCH_LAT_SUB_COUNT) return (uint32_t)us;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(us);
    if (msb > BENCH_LAT_MSB_MAX) return BENCH_LAT_BUCKETS - 1u;
    uint32_t shift = msb - BENCH_LAT_SUB_BITS;
    uint32_t index = (msb - BENCH_LAT_SUB_BITS + 1u) * BENCH_LAT_SUB_COUNT +
                     (uint32_t)((us >> shift) & (BENCH_LAT_SUB_COUNT - 1u));
    WEFT_ASSERT(index >= BENCH_LAT_SUB_COUNT && index < BENCH_LAT_BUCKETS);
    return index;
}

/* The midpoint of a bucket: the inverse of latency_bucket, halfway across its width. */
static uint64_t latency_bucket_mid_us(uint32_t index) {
    WEFT_ASSERT(index < BENCH_LAT_BUCKETS);
    if (index < BENCH_LAT_SUB_COUNT) return index;
    uint32_t group = index / BENCH_LAT_SUB_COUNT; /* >= 1 */
    uint32_t sub = index % BENCH_LAT_SUB_COUNT;
    uint32_t shift = group - 1u;
    uint64_t low = ((uint64_t)BENCH_LAT_SUB_COUNT + sub) << shift;
    uint64_t width = (uint64_t)1 << shift;
    return low + width / 2u;
}

void bench_latency_add(bench_latency *l, uint64_t us) {
    WEFT_ASSERT(l != NULL);
    uint32_t b = latency_bucket(us);
    l->buckets[b]++;
    l->count++;
    l->sum_us += us;
    if (us > l->max_us) l->max_us = us;
    WEFT_ASSERT(l->buckets[b] <= l->count);
}

void bench_latency_merge(bench_latency *into, const bench_latency *from) {
    WEFT_ASSERT(into != NULL && from != NULL);
    for (uint32_t i = 0; i < BENCH_LAT_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->sum_us += from->sum_us;
    if (from->max_us > into->max_us) into->max_us = from->max_us;
}

uint64_t bench_latency_quantile_us(const bench_latency *l, double q) {
    WEFT_ASSERT(l != NULL && q > 0.0 && q <= 1.0);
    if (l->count == 0) return 0;
    /* The rank of the sample at quantile q, 1-based: the smallest value with at least q of
     * the samples at or below it. */
    double exact = q * (double)l->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact || rank == 0) rank++;
    if (rank > l->count) rank = l->count;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < BENCH_LAT_BUCKETS; i++) {
        seen += l->buckets[i];
        if (seen >= rank) {
            uint64_t mid = latency_bucket_mid_us(i);
            return mid > l->max_us ? l->max_us : mid; /* never report above the exact max */
        }
    }
    WEFT_ASSERT(!"bucket counts do not add up to count");
    return l->max_us;
}
