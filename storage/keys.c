/* keys.c: byte encodings of every table key (DESIGN section 6): big-endian integers and
 * length-prefixed identifiers, long ones shortened to a prefix plus a 128-bit hash. */
#include "keys.h"

#include <string.h>
#include <xxhash.h>

/* Bytes of a long identifier kept in front of its hash: enough to keep keys readable in a
 * dump and similar ids near each other, chosen so that a hashed identifier takes exactly as
 * many bytes as the longest inline one. */
#define KEYS_IDENT_HASH_BYTES 16u
#define KEYS_IDENT_PREFIX_BYTES (WEFT_KEY_IDENT_INLINE_BYTES - KEYS_IDENT_HASH_BYTES)
/* The most bytes weft_key_ident appends, in either form. */
#define KEYS_IDENT_ENCODED_BYTES_MAX (2u + WEFT_KEY_IDENT_INLINE_BYTES)
/* The length field is u16; longer identifiers store this value there (they are hashed). */
#define KEYS_IDENT_LEN_FIELD_MAX 0xFFFFu

_Static_assert(WEFT_KEY_IDENT_INLINE_BYTES < KEYS_IDENT_LEN_FIELD_MAX,
               "the length field must be able to say 'longer than inline'");
_Static_assert(2u + KEYS_IDENT_PREFIX_BYTES + KEYS_IDENT_HASH_BYTES == KEYS_IDENT_ENCODED_BYTES_MAX,
               "both identifier forms have the same worst case");
/* The widest key: run_ids holds three identifiers; vis holds two plus two u64. */
_Static_assert(3u * KEYS_IDENT_ENCODED_BYTES_MAX <= WEFT_KEY_BYTES_MAX,
               "a run_ids key must fit LMDB's key limit");
_Static_assert(2u * KEYS_IDENT_ENCODED_BYTES_MAX + 16u <= WEFT_KEY_BYTES_MAX,
               "a vis key must fit LMDB's key limit");

uint64_t weft_be64_get(const void *p) {
    WEFT_ASSERT(p != NULL);
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

void weft_be64_put(void *p, uint64_t v) {
    WEFT_ASSERT(p != NULL);
    uint8_t *b = p;
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint32_t weft_be32_get(const void *p) {
    WEFT_ASSERT(p != NULL);
    const uint8_t *b = p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

void weft_be32_put(void *p, uint32_t v) {
    WEFT_ASSERT(p != NULL);
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

void weft_key_reset(weft_key *k) {
    WEFT_ASSERT(k != NULL);
    k->len = 0;
}

/* Every append goes through here, so no constructor can run past WEFT_KEY_BYTES_MAX. */
static uint8_t *key_grow(weft_key *k, size_t n) {
    WEFT_ASSERT(k != NULL && k->len <= WEFT_KEY_BYTES_MAX);
    WEFT_ASSERT(n <= WEFT_KEY_BYTES_MAX - k->len);
    uint8_t *p = k->bytes + k->len;
    k->len += n;
    return p;
}

void weft_key_u8(weft_key *k, uint8_t v) {
    *key_grow(k, 1) = v;
}

void weft_key_u32(weft_key *k, uint32_t v) {
    weft_be32_put(key_grow(k, 4), v);
}

void weft_key_u64(weft_key *k, uint64_t v) {
    weft_be64_put(key_grow(k, 8), v);
}

static void key_u16(weft_key *k, uint16_t v) {
    uint8_t *p = key_grow(k, 2);
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* The length field doubles as the form marker: an inline identifier never has a length above
 * WEFT_KEY_IDENT_INLINE_BYTES, so a field above it always means "prefix plus hash" and the
 * two forms cannot collide. Either form has a fixed size once the field is read, so keys of
 * several identifiers stay unambiguous, and ordering is by length first, then bytes. */
void weft_key_ident(weft_key *k, weft_str s) {
    WEFT_ASSERT(k != NULL);
    WEFT_ASSERT(s.ptr != NULL || s.len == 0);
    size_t before = k->len;
    key_u16(k, (uint16_t)WEFT_MIN(s.len, KEYS_IDENT_LEN_FIELD_MAX));
    if (s.len <= WEFT_KEY_IDENT_INLINE_BYTES) {
        if (s.len > 0) memcpy(key_grow(k, s.len), s.ptr, s.len);
    } else {
        memcpy(key_grow(k, KEYS_IDENT_PREFIX_BYTES), s.ptr, KEYS_IDENT_PREFIX_BYTES);
        XXH128_hash_t h = XXH3_128bits(s.ptr, s.len);
        weft_be64_put(key_grow(k, 8), h.high64);
        weft_be64_put(key_grow(k, 8), h.low64);
    }
    WEFT_ASSERT(k->len - before <= KEYS_IDENT_ENCODED_BYTES_MAX);
}

/* Ends every constructor: a key is never empty and never over the limit. */
static void key_done(const weft_key *k) {
    WEFT_ASSERT(k->len > 0);
    WEFT_ASSERT(k->len <= WEFT_KEY_BYTES_MAX);
}

void weft_key_execution(weft_key *k, weft_str ns, weft_str workflow_id) {
    weft_key_reset(k);
    weft_key_ident(k, ns);
    weft_key_ident(k, workflow_id);
    key_done(k);
}

void weft_key_run_id(weft_key *k, weft_str ns, weft_str workflow_id, weft_str run_id) {
    weft_key_reset(k);
    weft_key_ident(k, ns);
    weft_key_ident(k, workflow_id);
    weft_key_ident(k, run_id);
    key_done(k);
}

void weft_key_run_part(weft_key *k, uint64_t run_key, uint8_t part, uint64_t sub_id) {
    weft_key_reset(k);
    weft_key_u64(k, run_key);
    weft_key_u8(k, part);
    weft_key_u64(k, sub_id);
    key_done(k);
}

void weft_key_history(weft_key *k, uint64_t run_key, uint64_t event_id) {
    weft_key_reset(k);
    weft_key_u64(k, run_key);
    weft_key_u64(k, event_id);
    key_done(k);
}

void weft_key_timer(weft_key *k, uint64_t fire_at_ms, uint64_t seq) {
    weft_key_reset(k);
    weft_key_u64(k, fire_at_ms);
    weft_key_u64(k, seq);
    key_done(k);
}

void weft_key_ready(weft_key *k, weft_str task_queue, uint8_t kind, uint64_t seq) {
    weft_key_reset(k);
    weft_key_ident(k, task_queue);
    weft_key_u8(k, kind);
    weft_key_u64(k, seq);
    key_done(k);
}

void weft_key_vis(weft_key *k, weft_str ns, weft_str status_or_type, uint64_t start_ms,
                  uint64_t run_key) {
    weft_key_reset(k);
    weft_key_ident(k, ns);
    weft_key_ident(k, status_or_type);
    weft_key_u64(k, start_ms);
    weft_key_u64(k, run_key);
    key_done(k);
}

void weft_key_dedup(weft_key *k, weft_str ns, weft_str request_id) {
    weft_key_reset(k);
    weft_key_ident(k, ns);
    weft_key_ident(k, request_id);
    key_done(k);
}

void weft_key_namespace(weft_key *k, weft_str ns) {
    weft_key_reset(k);
    weft_key_ident(k, ns);
    key_done(k);
}
