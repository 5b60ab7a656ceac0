/* fuzz_mutate.c: the structure-aware mutator of length-prefixed records (fuzz_util.h). Built
 * into the libFuzzer targets only: it calls libFuzzer's LLVMFuzzerMutate. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "proto/base.h"

/* ---- Structure-aware mutation ---- */

/* Records one mutation may see, at most (inputs are a few kilobytes). */
#define FUZZ_RECORDS_MAX 1024u

typedef struct fuzz_record {
    size_t off; /* of its payload, after the prefix */
    size_t len; /* payload bytes */
} fuzz_record;

uint64_t fuzz_rand(uint64_t *rng) {
    uint64_t x = *rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    return x;
}

static uint32_t rec_get(const uint8_t *p, bool be) {
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static void rec_put(uint8_t *p, uint32_t v, bool be) {
    for (int i = 0; i < 4; i++) p[be ? 3 - i : i] = (uint8_t)(v >> (8 * i));
}

/* Splits data into whole records; returns how many, and the tail's offset in *tail. */
static size_t rec_split(const uint8_t *data, size_t size, bool be, fuzz_record *recs,
                        size_t *tail) {
    size_t n = 0, off = 0;
    while (n < FUZZ_RECORDS_MAX && size - off >= 4) {
        uint32_t len = rec_get(data + off, be);
        if (len > size - off - 4) break;
        recs[n++] = (fuzz_record){.off = off + 4, .len = len};
        off += 4 + (size_t)len;
    }
    *tail = off;
    return n;
}

/* Appends record bytes to out (capacity cap); false when they do not fit. */
static bool rec_append(uint8_t *out, size_t *used, size_t cap, const uint8_t *rec, size_t len,
                       bool be) {
    if (len > UINT32_MAX || cap - *used < 4 + len) return false;
    rec_put(out + *used, (uint32_t)len, be);
    memcpy(out + *used + 4, rec, len);
    *used += 4 + len;
    return true;
}

size_t fuzz_mutate_records(uint8_t *data, size_t size, size_t max_size, unsigned seed,
                           bool big_endian, fuzz_inner_mutator inner) {
    static fuzz_record recs[FUZZ_RECORDS_MAX];
    uint64_t rng = (uint64_t)seed * 0x9E3779B97F4A7C15ull | 1u;
    size_t tail = 0;
    size_t n = rec_split(data, size, big_endian, recs, &tail);
    if (n == 0 || fuzz_rand(&rng) % 8 == 0) return LLVMFuzzerMutate(data, size, max_size);
    uint8_t *out = malloc(max_size);
    uint8_t *scratch = malloc(max_size);
    WEFT_ASSERT(out != NULL && scratch != NULL);
    size_t used = 0;
    size_t pick = (size_t)(fuzz_rand(&rng) % n);
    size_t next = (pick + 1) % n;
    uint64_t op = fuzz_rand(&rng) % 16;
    for (size_t i = 0; i < n; i++) {
        /* op 1 swaps the picked record with the next one. */
        size_t from = op == 1 && i == pick ? next : op == 1 && i == next ? pick : i;
        const uint8_t *rec = data + recs[from].off;
        size_t len = recs[from].len;
        if (i == pick && op == 0) continue; /* drop it */
        if (i == pick && op >= 3) {         /* mutate inside it */
            size_t room = max_size - used;
            size_t cap = room > 4 ? room - 4 : 0;
            if (cap < len) cap = len;
            memcpy(scratch, rec, len);
            len = inner != NULL ? inner(scratch, len, cap, &rng)
                                : LLVMFuzzerMutate(scratch, len, cap);
            rec = scratch;
        }
        if (!rec_append(out, &used, max_size, rec, len, big_endian)) break;
        if (i == pick && op == 2) rec_append(out, &used, max_size, rec, len, big_endian);
    }
    if (used == 0) {
        free(out);
        free(scratch);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    /* The tail (a partial record) stays, if it fits. */
    size_t tail_len = size - tail;
    if (tail_len > 0 && max_size - used >= tail_len) {
        memcpy(out + used, data + tail, tail_len);
        used += tail_len;
    }
    memcpy(data, out, used);
    free(out);
    free(scratch);
    return used;
}
