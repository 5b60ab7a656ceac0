/* schema.c: the one table-driven msgpack codec: strict decoding of untrusted maps into C
 * structs, and deterministic encoding back (schema.h is the contract). */
#include "schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"

/* Longest field path kept while decoding. Real paths are far shorter
 * ("commands[4095].retry_policy.non_retryable_error_types[99]"); a longer one is truncated in
 * the message, never overflowed. err->field keeps its first WEFT_ERR_FIELD_BYTES_MAX - 1. */
#define SCHEMA_PATH_BYTES_MAX 160u
/* Bytes of a rejected enum value quoted back in an error message: enough to recognise it,
 * short enough that the list of valid names still fits. */
#define SCHEMA_QUOTE_BYTES_MAX 40u
/* Levels of the explicit stack weft_msgpack_depth keeps. msgpack-c itself stops at 32; an
 * object built by hand deeper than this reports one more than this, which is far above
 * WEFT_DECODE_DEPTH_MAX, so the refusal is the same. */
#define SCHEMA_DEPTH_STACK_MAX 64u

_Static_assert(WEFT_DECODE_DEPTH_MAX < SCHEMA_DEPTH_STACK_MAX,
               "weft_msgpack_depth must measure beyond the decode limit");

/* One step of the path to the value being decoded: a map key or an array index. */
typedef struct path_step {
    const char *key;  /* the field's wire key (schema storage), or NULL for an index */
    uint32_t key_len; /* bytes of key */
    uint32_t index;   /* the array index when key is NULL */
} path_step;

/* State of one weft_schema_decode call. The path to the value being decoded is kept as steps
 * and written out as text only when an error names it: building it on every field cost more
 * than the rest of the decode (issue 11's profile). */
typedef struct decode_ctx {
    const weft_limits *limits;             /* caps for identifiers and payloads */
    msgpack_zone *zone;                    /* where decoded arrays are allocated; borrowed */
    weft_err *err;                         /* filled on the first error; may be NULL */
    path_step steps[SCHEMA_DEPTH_STACK_MAX]; /* the path, outermost first */
    uint32_t depth;                        /* steps in use */
} decode_ctx;

/* ---- Small helpers ---- */

/* The key a field travels under: its C member name with one trailing '_' stripped, so that a
 * member named after a C keyword (`namespace_`) travels as the plain word. */
static weft_str field_wire_key(const weft_field *f) {
    weft_str k = weft_str_c(f->name);
    WEFT_ASSERT(k.len > 0);
    if (k.len > 1 && k.ptr[k.len - 1] == '_') k.len--;
    return k;
}

/* Enters map key `key` (borrowed for as long as the step stays pushed); returns the old depth
 * for path_pop. The input's nesting was measured before the walk (WEFT_DECODE_DEPTH_MAX), so
 * the stack cannot overflow. */
static uint32_t path_push_key(decode_ctx *c, weft_str key) {
    WEFT_ASSERT(c->depth < SCHEMA_DEPTH_STACK_MAX);
    c->steps[c->depth] = (path_step){.key = key.ptr, .key_len = key.len};
    return c->depth++;
}

/* Enters array item `index`; returns the old depth for path_pop. */
static uint32_t path_push_index(decode_ctx *c, uint32_t index) {
    WEFT_ASSERT(c->depth < SCHEMA_DEPTH_STACK_MAX);
    c->steps[c->depth] = (path_step){.key = NULL, .index = index};
    return c->depth++;
}

static void path_pop(decode_ctx *c, uint32_t old) {
    WEFT_ASSERT(old < c->depth);
    c->depth = old;
}

/* Writes the path as "commands[4].retry_policy.initial_interval_ms" into `out` (NUL-terminated,
 * truncated to SCHEMA_PATH_BYTES_MAX - 1 bytes). For error messages only. */
static void path_text(const decode_ctx *c, char out[SCHEMA_PATH_BYTES_MAX]) {
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < c->depth && used < SCHEMA_PATH_BYTES_MAX - 1; i++) {
        const path_step *st = &c->steps[i];
        int n = st->key != NULL
                    ? snprintf(out + used, SCHEMA_PATH_BYTES_MAX - used, "%s%.*s",
                               i > 0 ? "." : "", (int)st->key_len, st->key)
                    : snprintf(out + used, SCHEMA_PATH_BYTES_MAX - used, "[%u]", st->index);
        used = WEFT_MIN(used + (n < 0 ? 0 : (size_t)n), (size_t)SCHEMA_PATH_BYTES_MAX - 1);
    }
}

/* Fails the decode with "field '<path>' <what>", naming the path in err->field. */
static int fail(decode_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(decode_ctx *c, const char *fmt, ...) {
    char what[WEFT_ERR_MESSAGE_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char path[SCHEMA_PATH_BYTES_MAX];
    path_text(c, path);
    return weft_err_set(c->err, WEFT_E_INVALID_ARGUMENT, path, "field '%s' %s", path, what);
}

static int fail_type(decode_ctx *c, const char *expected, const msgpack_object *got) {
    return fail(c, "must be %s, got %s", expected, weft_msgpack_type_name(got));
}

/* Copies up to SCHEMA_QUOTE_BYTES_MAX bytes of hostile input into `dst` for an error message,
 * replacing anything but printable ASCII with '?' so the message stays clean UTF-8. */
static void quote_input(char *dst, size_t cap, const char *p, uint32_t len) {
    WEFT_ASSERT(cap > SCHEMA_QUOTE_BYTES_MAX + 3);
    size_t n = WEFT_MIN((size_t)len, (size_t)SCHEMA_QUOTE_BYTES_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        dst[i] = (ch >= 0x20 && ch < 0x7f && ch != '\'') ? (char)ch : '?';
    }
    if (len > n) memcpy(dst + n, "...", 3), n += 3;
    dst[n] = '\0';
}

/* ---- Decoding scalars ---- */

/* The byte cap of a STR or BYTES field, and the name of the limit for the message. */
static uint32_t field_bytes_cap(const decode_ctx *c, const weft_field *f, const char **limit) {
    if (f->max_bytes > 0) {
        *limit = "for this field";
        return f->max_bytes;
    }
    if (f->flags & WEFT_FF_ID) {
        *limit = "(id_bytes_max)";
        return c->limits->id_bytes_max;
    }
    *limit = "(payload_bytes_max)";
    return c->limits->payload_bytes_max;
}

/* Shared length and emptiness rules of strings and byte strings. */
static int check_length(decode_ctx *c, const weft_field *f, uint32_t len) {
    const char *limit = NULL;
    uint32_t cap = field_bytes_cap(c, f, &limit);
    if (len > cap) {
        const char *advice = (f->flags & WEFT_FF_ID) ? "use a shorter id"
                             : f->max_bytes > 0     ? "shorten it"
                                                    : "store large data elsewhere and pass a reference";
        return fail(c, "is %u bytes; the limit is %u bytes %s: %s", len, cap, limit, advice);
    }
    if (len == 0 && (f->flags & WEFT_FF_ID)) {
        return fail(c, "must not be empty: give a value or leave the field out");
    }
    return 0;
}

static int decode_str(decode_ctx *c, const weft_field *f, const msgpack_object *v, weft_str *dst) {
    if (v->type != MSGPACK_OBJECT_STR) return fail_type(c, "a string", v);
    uint32_t len = v->via.str.size;
    int rc = check_length(c, f, len);
    if (rc != 0) return rc;
    if (!weft_utf8_valid(v->via.str.ptr, len)) return fail(c, "is not valid UTF-8");
    dst->ptr = len > 0 ? v->via.str.ptr : NULL;
    dst->len = len;
    return 0;
}

static int decode_bytes(decode_ctx *c, const weft_field *f, const msgpack_object *v,
                        weft_bytes *dst) {
    const char *p;
    uint32_t len;
    if (v->type == MSGPACK_OBJECT_BIN) {
        p = v->via.bin.ptr;
        len = v->via.bin.size;
    } else if (v->type == MSGPACK_OBJECT_STR) {
        p = v->via.str.ptr;
        len = v->via.str.size;
    } else {
        return fail_type(c, "binary or a string", v);
    }
    int rc = check_length(c, f, len);
    if (rc != 0) return rc;
    dst->ptr = len > 0 ? (const uint8_t *)p : NULL;
    dst->len = len;
    return 0;
}

static int decode_uint(decode_ctx *c, const msgpack_object *v, uint64_t max, uint64_t *dst) {
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return fail_type(c, "a non-negative integer", v);
    }
    if (v->via.u64 > max) {
        return fail(c, "is %llu; the largest allowed value is %llu", (unsigned long long)v->via.u64,
                    (unsigned long long)max);
    }
    *dst = v->via.u64;
    return 0;
}

static int decode_i64(decode_ctx *c, const msgpack_object *v, int64_t *dst) {
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *dst = v->via.i64;
        return 0;
    }
    uint64_t u = 0;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return fail_type(c, "an integer", v);
    int rc = decode_uint(c, v, (uint64_t)INT64_MAX, &u);
    if (rc == 0) *dst = (int64_t)u;
    return rc;
}

static int decode_f64(decode_ctx *c, const msgpack_object *v, double *dst) {
    double d;
    if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64) {
        d = v->via.f64;
    } else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        d = (double)v->via.u64;
    } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        d = (double)v->via.i64;
    } else {
        return fail_type(c, "a number", v);
    }
    /* NaN would make comparisons (and the backoff arithmetic built on them) meaningless. */
    if (!isfinite(d)) return fail(c, "must be a finite number");
    *dst = d;
    return 0;
}

/* Writes "a, b, c" from a NULL-terminated name table into dst, truncating if needed. */
static void enum_names_join(const char *const *names, char *dst, size_t cap) {
    size_t used = 0;
    dst[0] = '\0';
    for (size_t i = 0; names[i] != NULL && used + 1 < cap; i++) {
        int n = snprintf(dst + used, cap - used, "%s%s", i > 0 ? ", " : "", names[i]);
        if (n < 0) break;
        used = WEFT_MIN(used + (size_t)n, cap - 1);
    }
}

static int decode_enum(decode_ctx *c, const weft_field *f, const msgpack_object *v,
                       uint32_t *dst) {
    WEFT_ASSERT(f->names != NULL && f->names[0] != NULL);
    if (v->type != MSGPACK_OBJECT_STR) return fail_type(c, "a string", v);
    weft_str s = {.ptr = v->via.str.ptr, .len = v->via.str.size};
    for (uint32_t i = 0; f->names[i] != NULL; i++) {
        if (weft_str_eq_c(s, f->names[i])) {
            *dst = i;
            return 0;
        }
    }
    char quoted[SCHEMA_QUOTE_BYTES_MAX + 4];
    char valid[WEFT_ERR_MESSAGE_BYTES_MAX];
    quote_input(quoted, sizeof quoted, s.ptr, s.len);
    enum_names_join(f->names, valid, sizeof valid);
    return fail(c, "has unknown value '%s'; use one of: %s", quoted, valid);
}

/* ---- Decoding structure (recursion here follows the schema, never the input) ---- */

static int decode_map(decode_ctx *c, const weft_schema *s, const msgpack_object *map, void *out);
static bool field_is_zero(const weft_field *f, const void *base);

/* Finds `key` in `map`. *val is NULL when the key is absent or its value is nil (both mean
 * "not set"). A key that appears twice is refused: which copy wins would otherwise depend on
 * the decoder, and replicas must agree. Keys that are not strings are unknown keys. */
static int map_find(decode_ctx *c, const msgpack_object *map, weft_str key,
                    const msgpack_object **val) {
    WEFT_ASSERT(map->type == MSGPACK_OBJECT_MAP);
    const msgpack_object *found = NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) continue;
        weft_str k = {.ptr = kv->key.via.str.ptr, .len = kv->key.via.str.size};
        if (!weft_str_eq(k, key)) continue;
        if (found != NULL) return fail(c, "appears twice in one map: send it once");
        found = &kv->val;
    }
    *val = (found != NULL && found->type != MSGPACK_OBJECT_NIL) ? found : NULL;
    return 0;
}

static int decode_item(decode_ctx *c, const weft_field *f, const msgpack_object *v, void *dst) {
    if (f->type == WEFT_F_ARR_STR) return decode_str(c, f, v, dst);
    if (v->type != MSGPACK_OBJECT_MAP) return fail_type(c, "a map", v);
    return decode_map(c, f->sub, v, dst);
}

/* Arrays live in the zone so that one msgpack_zone_free releases a whole decoded request. */
static int decode_array(decode_ctx *c, const weft_field *f, const msgpack_object *v, void *base) {
    if (v->type != MSGPACK_OBJECT_ARRAY) return fail_type(c, "an array", v);
    uint32_t n = v->via.array.size;
    uint32_t cap = f->max_items > 0 ? f->max_items : WEFT_DECODE_ARRAY_ITEMS_MAX;
    if (n > cap) {
        return fail(c, "has %u items; the limit is %u items: send fewer, or split them across "
                       "requests", n, cap);
    }
    if (n == 0) return 0;
    size_t elem_bytes = f->type == WEFT_F_ARR_OBJ ? f->sub->size : sizeof(weft_str);
    WEFT_ASSERT(c->zone != NULL);
    uint8_t *items = msgpack_zone_malloc(c->zone, elem_bytes * n);
    if (items == NULL) {
        char path[SCHEMA_PATH_BYTES_MAX];
        path_text(c, path);
        return weft_err_set(c->err, WEFT_E_RESOURCE_EXHAUSTED, path,
                            "field '%s': out of memory for %u items; retry later", path, n);
    }
    memset(items, 0, elem_bytes * n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t old = path_push_index(c, i);
        int rc = decode_item(c, f, &v->via.array.ptr[i], items + elem_bytes * i);
        path_pop(c, old);
        if (rc != 0) return rc;
    }
    memcpy((uint8_t *)base + f->offset, &items, sizeof items);
    memcpy((uint8_t *)base + f->count_offset, &n, sizeof n);
    return 0;
}

static int decode_field(decode_ctx *c, const weft_field *f, const msgpack_object *v, void *base) {
    void *dst = (uint8_t *)base + f->offset;
    uint64_t u = 0;
    int rc;
    switch (f->type) {
    case WEFT_F_STR: return decode_str(c, f, v, dst);
    case WEFT_F_BYTES: return decode_bytes(c, f, v, dst);
    case WEFT_F_U64: return decode_uint(c, v, UINT64_MAX, dst);
    case WEFT_F_U32:
        rc = decode_uint(c, v, UINT32_MAX, &u);
        if (rc == 0) *(uint32_t *)dst = (uint32_t)u;
        return rc;
    case WEFT_F_I64: return decode_i64(c, v, dst);
    case WEFT_F_BOOL:
        if (v->type != MSGPACK_OBJECT_BOOLEAN) return fail_type(c, "a boolean", v);
        *(bool *)dst = v->via.boolean;
        return 0;
    case WEFT_F_F64: return decode_f64(c, v, dst);
    case WEFT_F_OBJ:
        if (v->type != MSGPACK_OBJECT_MAP) return fail_type(c, "a map", v);
        return decode_map(c, f->sub, v, dst);
    case WEFT_F_ARR_OBJ:
    case WEFT_F_ARR_STR: return decode_array(c, f, v, base);
    case WEFT_F_ENUM: return decode_enum(c, f, v, dst);
    }
    WEFT_ASSERT(false && "schema row with an unknown field type");
    return -WEFT_E_INTERNAL;
}

/* True when every key of `map` is a wire key of `s`, each once, in the schema's field order:
 * what weft_schema_encode writes (it walks the fields in order and omits zero values), so
 * every log entry and stored record decodes this way. Then field i's value is the key at a
 * cursor or absent, and decode_map finds it without scanning the map once per field (the
 * scans were a third of weftd's instructions; docs/benchmarks.md). Strictly increasing
 * fields imply no key appears twice, so the result is the one map_find gives. Any other map
 * (keys in another order, unknown or non-string keys, a key twice) takes the scans. */
static bool map_in_schema_order(const weft_schema *s, const msgpack_object *map) {
    uint32_t n = map->via.map.size, j = 0;
    for (unsigned i = 0; i < s->fields_count && j < n; i++) {
        const msgpack_object *k = &map->via.map.ptr[j].key;
        if (k->type != MSGPACK_OBJECT_STR) return false;
        weft_str key = {.ptr = k->via.str.ptr, .len = k->via.str.size};
        if (weft_str_eq(key, field_wire_key(&s->fields[i]))) j++;
    }
    return j == n;
}

static int decode_map(decode_ctx *c, const weft_schema *s, const msgpack_object *map, void *out) {
    WEFT_ASSERT(s != NULL && s->fields != NULL);
    WEFT_ASSERT(map->type == MSGPACK_OBJECT_MAP);
    memset(out, 0, s->size);
    bool in_order = map_in_schema_order(s, map);
    uint32_t cursor = 0; /* in_order: the next key not yet taken */
    for (unsigned i = 0; i < s->fields_count; i++) {
        const weft_field *f = &s->fields[i];
        weft_str key = field_wire_key(f);
        uint32_t old = path_push_key(c, key);
        const msgpack_object *v = NULL;
        int rc = 0;
        if (!in_order) {
            rc = map_find(c, map, key, &v);
        } else if (cursor < map->via.map.size) {
            const msgpack_object_kv *kv = &map->via.map.ptr[cursor];
            weft_str k = {.ptr = kv->key.via.str.ptr, .len = kv->key.via.str.size};
            if (weft_str_eq(k, key)) {
                cursor++;
                v = kv->val.type != MSGPACK_OBJECT_NIL ? &kv->val : NULL;
            }
        }
        if (rc == 0 && v == NULL && (f->flags & WEFT_FF_REQUIRED)) rc = fail(c, "is required");
        if (rc == 0 && v != NULL) rc = decode_field(c, f, v, out);
        /* Zero travels as "absent" (the encoder omits it), so a required field must also be
         * non-zero, or a decoded request would not survive its own re-encoding. */
        if (rc == 0 && v != NULL && (f->flags & WEFT_FF_REQUIRED) && field_is_zero(f, out)) {
            rc = fail(c, "is required; a zero or empty value does not count");
        }
        path_pop(c, old);
        if (rc != 0) return rc;
    }
    return 0;
}

int weft_schema_decode(const weft_schema *schema, const msgpack_object *obj, void *out,
                       msgpack_zone *zone, const weft_limits *limits, weft_err *err) {
    WEFT_ASSERT(schema != NULL && obj != NULL && out != NULL && limits != NULL);
    memset(out, 0, schema->size);
    /* Refuse deep input before walking it (STYLE rule 12). */
    unsigned depth = weft_msgpack_depth(obj);
    if (depth > WEFT_DECODE_DEPTH_MAX) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "body",
                            "body nests maps and arrays more than %u levels deep "
                            "(WEFT_DECODE_DEPTH_MAX): send a flatter request",
                            WEFT_DECODE_DEPTH_MAX);
    }
    if (obj->type != MSGPACK_OBJECT_MAP) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "body", "body must be a map, got %s",
                            weft_msgpack_type_name(obj));
    }
    decode_ctx c = {.limits = limits, .zone = zone, .err = err, .depth = 0};
    int rc = decode_map(&c, schema, obj, out);
    /* Never hand back a half-filled struct. */
    if (rc != 0) memset(out, 0, schema->size);
    return rc;
}

int weft_schema_decode_buf(const weft_schema *schema, const uint8_t *buf, size_t len, void *out,
                           msgpack_unpacked *up, const weft_limits *limits, weft_err *err) {
    WEFT_ASSERT(schema != NULL && out != NULL && up != NULL && limits != NULL);
    WEFT_ASSERT(buf != NULL || len == 0);
    memset(out, 0, schema->size);
    /* msgpack-c allocates for declared counts before it sees the elements: check the raw
     * bytes first so that hostile counts and nesting never reach it. */
    int rc = weft_msgpack_check(buf, len, WEFT_DECODE_DEPTH_MAX, "body", err);
    if (rc != 0) return rc;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(up, (const char *)buf, len, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "body",
                            "out of memory unpacking a %zu-byte body; retry later", len);
    }
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        /* The pre-check accepted it, so msgpack-c disagreeing is a bug; still, refuse it. */
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "body",
                            "body is not one valid msgpack object (unpack result %d)", (int)ur);
    }
    return weft_schema_decode(schema, &up->data, out, up->zone, limits, err);
}

/* ---- Encoding ---- */

static bool field_is_zero(const weft_field *f, const void *base) {
    const uint8_t *p = (const uint8_t *)base + f->offset;
    switch (f->type) {
    case WEFT_F_STR: return ((const weft_str *)p)->len == 0;
    case WEFT_F_BYTES: return ((const weft_bytes *)p)->len == 0;
    case WEFT_F_U64: return *(const uint64_t *)p == 0;
    case WEFT_F_U32:
    case WEFT_F_ENUM: return *(const uint32_t *)p == 0;
    case WEFT_F_I64: return *(const int64_t *)p == 0;
    case WEFT_F_BOOL: return !*(const bool *)p;
    case WEFT_F_F64: return *(const double *)p == 0.0;
    case WEFT_F_OBJ: return weft_schema_is_zero(f->sub, p);
    case WEFT_F_ARR_OBJ:
    case WEFT_F_ARR_STR: return *(const uint32_t *)((const uint8_t *)base + f->count_offset) == 0;
    }
    WEFT_ASSERT(false && "schema row with an unknown field type");
    return true;
}

bool weft_schema_is_zero(const weft_schema *schema, const void *in) {
    WEFT_ASSERT(schema != NULL && in != NULL);
    for (unsigned i = 0; i < schema->fields_count; i++) {
        if (!field_is_zero(&schema->fields[i], in)) return false;
    }
    return true;
}

static int encode_enum(const weft_field *f, uint32_t value, msgpack_packer *pk) {
    WEFT_ASSERT(f->names != NULL);
    uint32_t count = 0;
    while (f->names[count] != NULL) count++;
    /* An out-of-range value is a bug in our own struct, not hostile input. */
    WEFT_ASSERT(value < count);
    return weft_pack_cstr(pk, f->names[value]);
}

static int encode_array(const weft_field *f, const void *base, msgpack_packer *pk) {
    const uint8_t *items;
    uint32_t n;
    memcpy(&items, (const uint8_t *)base + f->offset, sizeof items);
    memcpy(&n, (const uint8_t *)base + f->count_offset, sizeof n);
    WEFT_ASSERT(n > 0 && items != NULL);
    if (msgpack_pack_array(pk, n) != 0) return -WEFT_E_RESOURCE_EXHAUSTED;
    for (uint32_t i = 0; i < n; i++) {
        int rc = f->type == WEFT_F_ARR_STR
                     ? weft_pack_str(pk, ((const weft_str *)(const void *)items)[i])
                     : weft_schema_encode(f->sub, items + f->sub->size * i, pk);
        if (rc != 0) return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    return 0;
}

static int encode_field(const weft_field *f, const void *base, msgpack_packer *pk) {
    const uint8_t *p = (const uint8_t *)base + f->offset;
    switch (f->type) {
    case WEFT_F_STR: return weft_pack_str(pk, *(const weft_str *)p);
    case WEFT_F_BYTES: return weft_pack_bytes(pk, *(const weft_bytes *)p);
    case WEFT_F_U64: return msgpack_pack_uint64(pk, *(const uint64_t *)p);
    case WEFT_F_U32: return msgpack_pack_uint64(pk, *(const uint32_t *)p);
    case WEFT_F_I64: return msgpack_pack_int64(pk, *(const int64_t *)p);
    case WEFT_F_BOOL: return *(const bool *)p ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case WEFT_F_F64: return msgpack_pack_double(pk, *(const double *)p);
    case WEFT_F_OBJ: return weft_schema_encode(f->sub, p, pk);
    case WEFT_F_ARR_OBJ:
    case WEFT_F_ARR_STR: return encode_array(f, base, pk);
    case WEFT_F_ENUM: return encode_enum(f, *(const uint32_t *)p, pk);
    }
    WEFT_ASSERT(false && "schema row with an unknown field type");
    return -WEFT_E_INTERNAL;
}

int weft_schema_encode(const weft_schema *schema, const void *in, msgpack_packer *pk) {
    WEFT_ASSERT(schema != NULL && in != NULL && pk != NULL);
    uint32_t present = 0;
    for (unsigned i = 0; i < schema->fields_count; i++) {
        if (!field_is_zero(&schema->fields[i], in)) present++;
    }
    if (msgpack_pack_map(pk, present) != 0) return -WEFT_E_RESOURCE_EXHAUSTED;
    uint32_t written = 0;
    for (unsigned i = 0; i < schema->fields_count; i++) {
        const weft_field *f = &schema->fields[i];
        if (field_is_zero(f, in)) continue;
        if (weft_pack_str(pk, field_wire_key(f)) != 0) return -WEFT_E_RESOURCE_EXHAUSTED;
        if (encode_field(f, in, pk) != 0) return -WEFT_E_RESOURCE_EXHAUSTED;
        written++;
    }
    WEFT_ASSERT(written == present);
    return 0;
}

int weft_schema_encode_buf(const weft_schema *schema, const void *in, uint8_t **out,
                           size_t *out_len) {
    WEFT_ASSERT(out != NULL && out_len != NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (weft_schema_encode(schema, in, &pk) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    *out_len = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);
    WEFT_ASSERT(*out != NULL && *out_len > 0);
    return 0;
}

int weft_pack_str(msgpack_packer *pk, weft_str s) {
    WEFT_ASSERT(s.ptr != NULL || s.len == 0);
    if (msgpack_pack_str(pk, s.len) != 0) return -WEFT_E_RESOURCE_EXHAUSTED;
    if (s.len > 0 && msgpack_pack_str_body(pk, s.ptr, s.len) != 0) {
        return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    return 0;
}

int weft_pack_cstr(msgpack_packer *pk, const char *s) { return weft_pack_str(pk, weft_str_c(s)); }

int weft_pack_bytes(msgpack_packer *pk, weft_bytes b) {
    WEFT_ASSERT(b.ptr != NULL || b.len == 0);
    if (msgpack_pack_bin(pk, b.len) != 0) return -WEFT_E_RESOURCE_EXHAUSTED;
    if (b.len > 0 && msgpack_pack_bin_body(pk, b.ptr, b.len) != 0) {
        return -WEFT_E_RESOURCE_EXHAUSTED;
    }
    return 0;
}

/* ---- Depth ---- */

static bool mp_is_container(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_ARRAY || o->type == MSGPACK_OBJECT_MAP;
}

/* Children of a container in order: array elements, or each map key followed by its value. */
static uint64_t mp_children_count(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : 2ull * o->via.map.size;
}

static const msgpack_object *mp_child(const msgpack_object *o, uint64_t i) {
    if (o->type == MSGPACK_OBJECT_ARRAY) return &o->via.array.ptr[i];
    const msgpack_object_kv *kv = &o->via.map.ptr[i / 2];
    return (i % 2 == 0) ? &kv->key : &kv->val;
}

/* Depth-first walk with an explicit stack (STYLE rule 12: no recursion on input). Stops early
 * and reports SCHEMA_DEPTH_STACK_MAX + 1 for anything deeper than the stack. */
unsigned weft_msgpack_depth(const msgpack_object *obj) {
    WEFT_ASSERT(obj != NULL);
    if (!mp_is_container(obj)) return 0;
    struct {
        const msgpack_object *obj; /* the container being walked */
        uint64_t next;             /* index of its next child */
    } stack[SCHEMA_DEPTH_STACK_MAX];
    unsigned top = 1, deepest = 1;
    stack[0].obj = obj;
    stack[0].next = 0;
    while (top > 0) {
        const msgpack_object *o = stack[top - 1].obj;
        if (stack[top - 1].next == mp_children_count(o)) {
            top--;
            continue;
        }
        const msgpack_object *child = mp_child(o, stack[top - 1].next++);
        if (!mp_is_container(child)) continue;
        if (top == SCHEMA_DEPTH_STACK_MAX) return SCHEMA_DEPTH_STACK_MAX + 1;
        stack[top].obj = child;
        stack[top].next = 0;
        top++;
        deepest = WEFT_MAX(deepest, top);
    }
    WEFT_ASSERT(deepest <= SCHEMA_DEPTH_STACK_MAX);
    return deepest;
}
