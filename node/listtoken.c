/* listtoken.c: the ListWorkflows page token and the global list order (listtoken.h). */
#include "listtoken.h"

#include <string.h>

#include "../proto/frame.h"

/* A token is a flat array of integers: no nesting at all. */
#define LIST_TOKEN_DEPTH_MAX 1u
/* [start_ms, shard, run_key] from a client; a fourth item (the shard alone) between nodes. */
#define LIST_TOKEN_ITEMS 3u
#define LIST_TOKEN_ITEMS_ONLY 4u

static int cmp_u64(uint64_t a, uint64_t b) {
    return a < b ? -1 : a > b ? 1 : 0;
}

int weft_list_pos_cmp(const weft_list_pos *a, const weft_list_pos *b) {
    WEFT_ASSERT(a != NULL && b != NULL);
    int c = cmp_u64(b->start_ms, a->start_ms);
    if (c == 0) c = cmp_u64(b->shard, a->shard);
    if (c == 0) c = cmp_u64(b->run_key, a->run_key);
    return c;
}

static bool token_shaped(const msgpack_object *o, uint32_t shards) {
    if (o->type != MSGPACK_OBJECT_ARRAY) return false;
    uint32_t n = o->via.array.size;
    if (n != LIST_TOKEN_ITEMS && n != LIST_TOKEN_ITEMS_ONLY) return false;
    for (uint32_t i = 0; i < n; i++) {
        if (o->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) return false;
    }
    if (o->via.array.ptr[1].via.u64 >= shards) return false;
    return n == LIST_TOKEN_ITEMS || o->via.array.ptr[3].via.u64 < shards;
}

int weft_list_token_decode(const uint8_t *tok, size_t len, uint32_t shards, weft_list_token *out,
                           weft_err *err) {
    WEFT_ASSERT(out != NULL && err != NULL && shards > 0);
    memset(out, 0, sizeof *out);
    weft_err why = {0};
    int rc = weft_msgpack_check(tok, len, LIST_TOKEN_DEPTH_MAX, "next_page_token", &why);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (rc == 0 && (msgpack_unpack_next(&up, (const char *)tok, len, &off) !=
                        MSGPACK_UNPACK_SUCCESS ||
                    off != len)) {
        rc = weft_err_set(&why, WEFT_E_INVALID_ARGUMENT, "next_page_token",
                          "it is not one msgpack value");
    }
    if (rc == 0 && !token_shaped(&up.data, shards)) {
        rc = weft_err_set(&why, WEFT_E_INVALID_ARGUMENT, "next_page_token",
                          "it is not [start_ms, shard, run_key] for one of this cluster's %u "
                          "shards",
                          shards);
    }
    if (rc == 0) {
        const msgpack_object *a = up.data.via.array.ptr;
        out->after = (weft_list_pos){a[0].via.u64, (uint32_t)a[1].via.u64, a[2].via.u64};
        out->has_only = up.data.via.array.size == LIST_TOKEN_ITEMS_ONLY;
        if (out->has_only) out->only = (uint32_t)a[3].via.u64;
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "next_page_token",
                            "next_page_token is not a token this cluster issued (%s); list "
                            "again without it",
                            why.message);
    }
    return 0;
}

int weft_list_token_encode(const weft_list_token *t, msgpack_sbuffer *out) {
    WEFT_ASSERT(t != NULL && out != NULL);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, t->has_only ? LIST_TOKEN_ITEMS_ONLY : LIST_TOKEN_ITEMS);
    rc |= msgpack_pack_uint64(&pk, t->after.start_ms);
    rc |= msgpack_pack_uint32(&pk, t->after.shard);
    rc |= msgpack_pack_uint64(&pk, t->after.run_key);
    if (t->has_only) rc |= msgpack_pack_uint32(&pk, t->only);
    return rc;
}

/* In list order a shard below the cursor's comes after it at the same start time, so it
 * resumes with that time's runs included; the cursor's own shard resumes after the cursor's
 * run; a shard above it already listed that time's runs. */
bool weft_list_cursor_bound(const weft_list_pos *after, uint32_t shard, uint64_t *bound_ms,
                            uint64_t *bound_key) {
    WEFT_ASSERT(after != NULL && bound_ms != NULL && bound_key != NULL);
    if (shard < after->shard) {
        if (after->start_ms == UINT64_MAX) return false;
        *bound_ms = after->start_ms + 1;
        *bound_key = 0;
    } else if (shard == after->shard) {
        *bound_ms = after->start_ms;
        *bound_key = after->run_key;
    } else {
        *bound_ms = after->start_ms;
        *bound_key = 0;
    }
    return true;
}
