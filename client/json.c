/* json.c: the JSON form of weft structs (jansson), the payload helpers, and history files
 * (json.h is the contract).
 *
 * Both directions go through the schema codec, so JSON never gets rules of its own:
 * - struct -> JSON encodes the struct to msgpack with weft_schema_encode and turns that msgpack
 *   into JSON without looking at the schema again;
 * - JSON -> struct packs the JSON into msgpack, guided by the schema only where JSON cannot
 *   say what the wire needs (a byte string, a uint64 above INT64_MAX), and lets
 *   weft_schema_decode check every field and name the bad one.
 *
 * Numbers. JSON (and jansson, whose integers are signed 64-bit) cannot carry a uint64 above
 * INT64_MAX as an integer, and a real would round it. Such a value (a shard's range_end is
 * UINT64_MAX) is written as a string of decimal digits, and a string of digits is accepted
 * back in every integer field, so the form stays lossless. */
#include "weft/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

/* Nesting of the msgpack that weft_schema_encode produces: bounded by the schemas (an event is
 * map > retry_policy map > array), so this is an assertion, not a limit on input. */
#define JSON_FROM_MSGPACK_DEPTH_MAX 16u
/* Longest field path kept for messages ("retry_policy.non_retryable_error_types[99]"). */
#define JSON_PATH_BYTES_MAX 160u
/* Longest wire key of any schema row, plus NUL ("workflow_execution_timeout_ms"). */
#define JSON_KEY_BYTES_MAX 64u
/* Decimal digits of UINT64_MAX. */
#define JSON_U64_DIGITS_MAX 20u
/* Bytes read from a history file at a time. */
#define JSON_READ_CHUNK_BYTES (1u << 20)
/* msgpack array32 header: 0xdd and a big-endian count, patched once the count is known. */
#define JSON_ARRAY32_HEADER_BYTES 5u

_Static_assert(WEFT_HISTORY_FILE_BYTES_MAX < UINT32_MAX, "file sizes are counted in 32 bits");

/* ---- Small helpers ---- */

/* The limits a struct decoded from JSON is checked against: the defaults, except that a
 * payload may be as large as a frame, as in client.c, so that anything a server sent can be
 * read back from its JSON form. */
static void json_limits(weft_limits *l) {
    weft_limits_default(l);
    l->payload_bytes_max = WEFT_MAX(l->payload_bytes_max, l->frame_bytes_max);
    WEFT_ASSERT(l->payload_bytes_max >= WEFT_PAYLOAD_BYTES_MAX_DEFAULT);
}

/* A field's wire key, NUL-terminated: its member name with one trailing '_' stripped, as in
 * schema.c (`namespace_` travels as "namespace"). */
static void json_wire_key(const weft_field *f, char key[JSON_KEY_BYTES_MAX]) {
    size_t n = strlen(f->name);
    WEFT_ASSERT(n > 0 && n < JSON_KEY_BYTES_MAX);
    if (n > 1 && f->name[n - 1] == '_') n--;
    memcpy(key, f->name, n);
    key[n] = '\0';
}

/* malloc'd text of `v` with jansson `flags`, so that the caller frees it with free() whatever
 * allocator jansson was given. NULL when out of memory. */
static char *json_dump_malloc(const json_t *v, size_t flags) {
    WEFT_ASSERT(v != NULL);
    size_t n = json_dumpb(v, NULL, 0, flags);
    if (n == 0) return NULL;
    char *s = malloc(n + 1);
    if (s == NULL) return NULL;
    size_t written = json_dumpb(v, s, n, flags);
    WEFT_ASSERT(written == n);
    s[n] = '\0';
    return s;
}

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

/* ---- Base64 (RFC 4648, standard alphabet, padded) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* malloc'd, NUL-terminated base64 of p[0, n); *out_len gets its length. NULL on no memory. */
static char *b64_encode(const uint8_t *p, size_t n, size_t *out_len) {
    WEFT_ASSERT(p != NULL || n == 0);
    size_t len = (n + 2) / 3 * 4;
    char *s = malloc(len + 1);
    if (s == NULL) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        s[o++] = b64_alphabet[(v >> 18) & 63];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        s[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    WEFT_ASSERT(o == len);
    s[o] = '\0';
    *out_len = len;
    return s;
}

static int b64_value(char ch) {
    const char *at = ch != '\0' ? strchr(b64_alphabet, ch) : NULL;
    return at != NULL ? (int)(at - b64_alphabet) : -1;
}

/* Decodes s[0, n) into out (room for n / 4 * 3 bytes); *out_len gets the byte count. Strict:
 * the length is a multiple of 4 and '=' appears only as the last one or two characters.
 * Returns 0, or -1 with *bad_at set to the offending offset. */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t *out_len, size_t *bad_at) {
    *bad_at = n;
    if (n % 4 != 0) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        bool last = i + 4 == n;
        for (unsigned k = 0; k < 4; k++) {
            v[k] = b64_value(s[i + k]);
            bool pad_ok = last && k >= 2 && s[i + k] == '=' && (k == 3 || s[i + 3] == '=');
            if (v[k] < 0 && !pad_ok) {
                *bad_at = i + k;
                return -1;
            }
        }
        uint32_t bits = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
                        ((uint32_t)(v[2] < 0 ? 0 : v[2]) << 6) | (uint32_t)(v[3] < 0 ? 0 : v[3]);
        out[o++] = (uint8_t)(bits >> 16);
        if (v[2] >= 0) out[o++] = (uint8_t)(bits >> 8);
        if (v[3] >= 0) out[o++] = (uint8_t)bits;
    }
    WEFT_ASSERT(o <= n / 4 * 3);
    *out_len = o;
    return 0;
}

/* ---- Payload helpers ---- */

json_t *weft_json_parse(weft_bytes payload, const char *what, weft_err *err) {
    const char *name = what != NULL ? what : "payload";
    if (payload.ptr == NULL && payload.len > 0) {
        weft_err_set(err, WEFT_E_INVALID_ARGUMENT, name, "%s has a NULL pointer", name);
        return NULL;
    }
    json_error_t jerr;
    json_t *v = json_loadb(payload.len > 0 ? (const char *)payload.ptr : "", payload.len,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v == NULL) {
        weft_err_set(err, WEFT_E_INVALID_ARGUMENT, name,
                     "%s is not valid JSON: %s (line %d, column %d)", name,
                     payload.len == 0 ? "it is empty" : jerr.text, jerr.line, jerr.column);
    }
    return v;
}

char *weft_json_dump(const json_t *v) {
    if (v == NULL) return NULL;
    return json_dump_malloc(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

weft_bytes weft_bytes_c(const char *s) {
    weft_bytes b = {0};
    if (s == NULL || s[0] == '\0') return b;
    size_t n = strlen(s);
    WEFT_ASSERT(n <= UINT32_MAX);
    b.ptr = (const uint8_t *)s;
    b.len = (uint32_t)n;
    return b;
}

/* ---- msgpack -> JSON ---- */

/* A JSON string when the bytes are UTF-8 (and, for binary, hold no NUL, which would make a
 * payload look like text when it is not), else {"base64": "..."}. */
static json_t *json_from_text(const char *p, uint32_t len, bool allow_nul) {
    bool text = weft_utf8_valid(p, len) && (allow_nul || memchr(p, '\0', len) == NULL);
    if (text) {
        json_t *s = json_stringn(len > 0 ? p : "", len);
        if (s != NULL) return s;
    }
    size_t n = 0;
    char *b64 = b64_encode((const uint8_t *)p, len, &n);
    if (b64 == NULL) return NULL;
    json_t *obj = json_object();
    if (obj != NULL && json_object_set_new(obj, "base64", json_stringn(b64, n)) != 0) {
        json_decref(obj);
        obj = NULL;
    }
    free(b64);
    return obj;
}

static json_t *json_from_msgpack(const msgpack_object *o, unsigned depth);

static json_t *json_from_msgpack_map(const msgpack_object *o, unsigned depth) {
    json_t *obj = json_object();
    for (uint32_t i = 0; obj != NULL && i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        /* weft_schema_encode writes string keys only. */
        WEFT_ASSERT(kv->key.type == MSGPACK_OBJECT_STR);
        json_t *val = json_from_msgpack(&kv->val, depth + 1);
        if (val == NULL ||
            json_object_setn_new(obj, kv->key.via.str.ptr, kv->key.via.str.size, val) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

static json_t *json_from_msgpack_array(const msgpack_object *o, unsigned depth) {
    json_t *arr = json_array();
    for (uint32_t i = 0; arr != NULL && i < o->via.array.size; i++) {
        if (json_array_append_new(arr, json_from_msgpack(&o->via.array.ptr[i], depth + 1)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* Recursion here follows msgpack that our own encoder wrote from a schema, never input. */
static json_t *json_from_msgpack(const msgpack_object *o, unsigned depth) {
    WEFT_ASSERT(depth <= JSON_FROM_MSGPACK_DEPTH_MAX);
    char digits[JSON_U64_DIGITS_MAX + 1];
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 <= (uint64_t)INT64_MAX) return json_integer((json_int_t)o->via.u64);
        snprintf(digits, sizeof digits, "%llu", (unsigned long long)o->via.u64);
        return json_string(digits);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* JSON has no NaN or infinity; the decoder refuses them anyway. */
        return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR:
        return json_from_text(o->via.str.ptr, o->via.str.size, true);
    case MSGPACK_OBJECT_BIN:
        return json_from_text(o->via.bin.ptr, o->via.bin.size, false);
    case MSGPACK_OBJECT_ARRAY:
        return json_from_msgpack_array(o, depth);
    case MSGPACK_OBJECT_MAP:
        return json_from_msgpack_map(o, depth);
    case MSGPACK_OBJECT_EXT:
        break;
    }
    WEFT_ASSERT(false && "weft_schema_encode wrote a msgpack type it never writes");
    return NULL;
}

json_t *weft_json_from_struct(const weft_schema *schema, const void *in) {
    WEFT_ASSERT(schema != NULL && in != NULL);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    json_t *out = NULL;
    if (weft_schema_encode(schema, in, &pk) == 0) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        if (msgpack_unpack_next(&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS) {
            WEFT_ASSERT(off == sb.size && up.data.type == MSGPACK_OBJECT_MAP);
            out = json_from_msgpack(&up.data, 0);
        }
        msgpack_unpacked_destroy(&up);
    }
    msgpack_sbuffer_destroy(&sb);
    return out;
}

/* ---- JSON -> msgpack, guided by the schema ---- */

/* State of one packing: where the msgpack goes and the path of the value being packed. */
typedef struct pack_ctx {
    msgpack_packer pk;              /* writes into the caller's sbuffer */
    weft_err *err;                  /* filled on the first error; may be NULL */
    char path[JSON_PATH_BYTES_MAX]; /* "failure.details", for messages */
    size_t path_len;                /* bytes used in path, excluding the NUL */
} pack_ctx;

static size_t pack_path_push(pack_ctx *c, const char *fmt, const char *key, uint32_t index) {
    size_t old = c->path_len;
    WEFT_ASSERT(old < sizeof c->path);
    int n = key != NULL
                ? snprintf(c->path + old, sizeof c->path - old, fmt, old > 0 ? "." : "", key)
                : snprintf(c->path + old, sizeof c->path - old, fmt, index);
    c->path_len = WEFT_MIN(old + (n < 0 ? 0u : (size_t)n), sizeof c->path - 1);
    return old;
}

static void pack_path_pop(pack_ctx *c, size_t old) {
    WEFT_ASSERT(old <= c->path_len);
    c->path_len = old;
    c->path[old] = '\0';
}

static int pack_nomem(pack_ctx *c) {
    return weft_err_set(c->err, WEFT_E_RESOURCE_EXHAUSTED, c->path,
                        "out of memory converting field '%s' from JSON", c->path);
}

/* Packs `v` as the msgpack type JSON gives it, without descending: containers become empty
 * ones. Used for every value whose field needs no help from the schema, and for values of the
 * wrong kind, which weft_schema_decode then refuses with its usual message ("field 'x' must
 * be a string, got map"). Never recursing keeps hostile nesting out of the packer. */
static int pack_shallow(pack_ctx *c, const json_t *v) {
    msgpack_packer *pk = &c->pk;
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        rc = msgpack_pack_map(pk, 0);
        break;
    case JSON_ARRAY:
        rc = msgpack_pack_array(pk, 0);
        break;
    case JSON_STRING: {
        size_t n = json_string_length(v);
        if (n > UINT32_MAX) return pack_nomem(c);
        rc = msgpack_pack_str_with_body(pk, json_string_value(v), n);
        break;
    }
    case JSON_INTEGER:
        rc = msgpack_pack_int64(pk, json_integer_value(v));
        break;
    case JSON_REAL:
        rc = msgpack_pack_double(pk, json_real_value(v));
        break;
    case JSON_TRUE:
        rc = msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        rc = msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        rc = msgpack_pack_nil(pk);
        break;
    }
    return rc == 0 ? 0 : pack_nomem(c);
}

/* A byte string: a JSON string is its own bytes; {"base64": "..."} is decoded. */
static int pack_bytes(pack_ctx *c, const json_t *v) {
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n > UINT32_MAX) return pack_nomem(c);
        int rc = msgpack_pack_bin_with_body(&c->pk, json_string_value(v), n);
        return rc == 0 ? 0 : pack_nomem(c);
    }
    const json_t *b64 = json_is_object(v) ? json_object_get(v, "base64") : NULL;
    if (b64 == NULL || json_object_size(v) != 1 || !json_is_string(b64)) {
        if (!json_is_object(v)) return pack_shallow(c, v);
        return weft_err_set(c->err, WEFT_E_INVALID_ARGUMENT, c->path,
                            "field '%s' is an object: a byte string is a JSON string, or an "
                            "object with exactly one key, \"base64\", holding a string",
                            c->path);
    }
    size_t n = json_string_length(b64), out_len = 0, bad_at = 0;
    uint8_t *buf = malloc(n / 4 * 3 + 1);
    if (buf == NULL) return pack_nomem(c);
    int rc = b64_decode(json_string_value(b64), n, buf, &out_len, &bad_at);
    if (rc != 0) {
        rc = weft_err_set(c->err, WEFT_E_INVALID_ARGUMENT, c->path,
                          "field '%s' has invalid base64 at character %zu: use the standard "
                          "alphabet with '=' padding, a multiple of 4 characters long",
                          c->path, bad_at);
    } else if (out_len > UINT32_MAX || msgpack_pack_bin_with_body(&c->pk, buf, out_len) != 0) {
        rc = pack_nomem(c);
    }
    free(buf);
    return rc;
}

/* An integer field: a JSON integer, or a string of digits for a uint64 above INT64_MAX. */
static int pack_integer(pack_ctx *c, const json_t *v) {
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s != NULL ? json_string_length(v) : 0;
    if (s == NULL || n == 0 || n > JSON_U64_DIGITS_MAX || strspn(s, "0123456789") != n) {
        return pack_shallow(c, v);
    }
    errno = 0;
    unsigned long long u = strtoull(s, NULL, 10);
    if (errno == ERANGE) {
        return weft_err_set(c->err, WEFT_E_INVALID_ARGUMENT, c->path,
                            "field '%s' is %s; the largest allowed value is %llu", c->path, s,
                            (unsigned long long)UINT64_MAX);
    }
    return msgpack_pack_uint64(&c->pk, (uint64_t)u) == 0 ? 0 : pack_nomem(c);
}

static int pack_struct(pack_ctx *c, const weft_schema *s, const json_t *obj);

/* One value of field `f` (for arrays: one element). */
static int pack_value(pack_ctx *c, const weft_field *f, const json_t *v) {
    switch (f->type) {
    case WEFT_F_BYTES:
        return pack_bytes(c, v);
    case WEFT_F_U64:
    case WEFT_F_U32:
    case WEFT_F_I64:
        return pack_integer(c, v);
    case WEFT_F_OBJ:
    case WEFT_F_ARR_OBJ:
        return json_is_object(v) ? pack_struct(c, f->sub, v) : pack_shallow(c, v);
    case WEFT_F_STR:
    case WEFT_F_ARR_STR:
    case WEFT_F_BOOL:
    case WEFT_F_F64:
    case WEFT_F_ENUM:
        return pack_shallow(c, v);
    }
    WEFT_ASSERT(false && "schema row with an unknown field type");
    return -WEFT_E_INTERNAL;
}

static int pack_field(pack_ctx *c, const weft_field *f, const json_t *v) {
    bool is_array = f->type == WEFT_F_ARR_OBJ || f->type == WEFT_F_ARR_STR;
    if (!is_array) return pack_value(c, f, v);
    if (!json_is_array(v)) return pack_shallow(c, v);
    size_t n = json_array_size(v);
    /* weft_schema_decode enforces the item cap; only the header's width is checked here. */
    if (n > UINT32_MAX || msgpack_pack_array(&c->pk, n) != 0) return pack_nomem(c);
    for (size_t i = 0; i < n; i++) {
        size_t old = pack_path_push(c, "[%u]", NULL, (uint32_t)i);
        int rc = pack_value(c, f, json_array_get(v, i));
        pack_path_pop(c, old);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Packs the keys of `s` that `obj` holds (not null), in schema order. Unknown keys are left
 * out, as the wire ignores them. Recursion follows the schema, never the input. */
static int pack_struct(pack_ctx *c, const weft_schema *s, const json_t *obj) {
    WEFT_ASSERT(s != NULL && json_is_object(obj));
    char key[JSON_KEY_BYTES_MAX];
    uint32_t present = 0;
    for (unsigned i = 0; i < s->fields_count; i++) {
        json_wire_key(&s->fields[i], key);
        const json_t *v = json_object_get(obj, key);
        if (v != NULL && !json_is_null(v)) present++;
    }
    if (msgpack_pack_map(&c->pk, present) != 0) return pack_nomem(c);
    uint32_t packed = 0;
    for (unsigned i = 0; i < s->fields_count; i++) {
        json_wire_key(&s->fields[i], key);
        const json_t *v = json_object_get(obj, key);
        if (v == NULL || json_is_null(v)) continue;
        size_t old = pack_path_push(c, "%s%s", key, 0);
        int rc = msgpack_pack_str_with_body(&c->pk, key, strlen(key)) == 0 ? 0 : pack_nomem(c);
        if (rc == 0) rc = pack_field(c, &s->fields[i], v);
        pack_path_pop(c, old);
        if (rc != 0) return rc;
        packed++;
    }
    WEFT_ASSERT(packed == present);
    return 0;
}

/* Packs the JSON form `v` of a `schema` struct into `sb`. */
static int json_pack_struct(const weft_schema *schema, const json_t *v, msgpack_sbuffer *sb,
                            weft_err *err) {
    if (!json_is_object(v)) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "the JSON form of %s must be an object, got %s", schema->name,
                            json_type_name(v));
    }
    pack_ctx c = {.err = err, .path_len = 0};
    c.path[0] = '\0';
    msgpack_packer_init(&c.pk, sb, msgpack_sbuffer_write);
    return pack_struct(&c, schema, v);
}

/* ---- JSON -> struct ---- */

/* What a weft_json_holder holds (weft/json.h keeps it opaque). */
struct weft_json_holder_priv {
    uint8_t *buf;        /* the msgpack bytes the JSON became (malloc'd) */
    msgpack_unpacked up; /* the unpacked buf; initialised */
};

void weft_json_holder_free(weft_json_holder *h) {
    if (h == NULL || h->priv == NULL) return;
    msgpack_unpacked_destroy(&h->priv->up);
    free(h->priv->buf);
    free(h->priv);
    h->priv = NULL;
}

int weft_json_to_struct(const weft_schema *schema, const json_t *v, void *out, weft_json_holder *h,
                        weft_err *err) {
    if (schema == NULL || v == NULL || out == NULL || h == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "weft_json_to_struct: schema, value, out and holder must not be NULL");
    }
    weft_json_holder_free(h);
    memset(out, 0, schema->size);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = json_pack_struct(schema, v, &sb, err);
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    struct weft_json_holder_priv *p = calloc(1, sizeof *p);
    if (p == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "out of memory holding %s decoded from JSON", schema->name);
    }
    size_t len = sb.size;
    p->buf = (uint8_t *)msgpack_sbuffer_release(&sb);
    WEFT_ASSERT(p->buf != NULL && len > 0);
    msgpack_unpacked_init(&p->up);
    h->priv = p;
    weft_limits limits;
    json_limits(&limits);
    return weft_schema_decode_buf(schema, p->buf, len, out, &p->up, &limits, err);
}

/* ---- History files: reading ---- */

/* What a loaded history keeps: events borrow strings from buf and arrays from up's zone. */
typedef struct history_priv {
    uint8_t *buf;        /* msgpack array of every event, as packed from the file */
    msgpack_unpacked up; /* buf unpacked; live while the history is */
    bool live;           /* up is initialised */
} history_priv;

/* Where each event came from, for messages: a line of a JSON-lines file, or an index into an
 * array. */
typedef struct history_src {
    bool lines;         /* JSON lines: at[] holds line numbers; else array indexes */
    uint32_t *at;       /* per event, malloc'd */
    uint32_t count;     /* events packed so far */
    uint32_t cap;       /* entries allocated in at */
    msgpack_sbuffer sb; /* the events, as one msgpack array32 */
} history_src;

static void history_where(const history_src *s, uint32_t i, char *buf, size_t cap) {
    WEFT_ASSERT(i < s->count || (i == s->count && i < s->cap));
    if (s->lines) {
        snprintf(buf, cap, "history line %u", s->at[i]);
    } else {
        snprintf(buf, cap, "history event [%u]", s->at[i]);
    }
}

/* Reads all of `path` ("-" = stdin) into a malloc'd buffer. */
static int history_read(const char *path, char **out, size_t *out_len, weft_err *err) {
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        int code = errno == ENOENT ? WEFT_E_NOT_FOUND : WEFT_E_INVALID_ARGUMENT;
        return weft_err_set(err, code, "path", "cannot open history file '%s': %s", path,
                            strerror(errno));
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    /* One byte past the limit is enough to know the file is too large. */
    const size_t cap_max = (size_t)WEFT_HISTORY_FILE_BYTES_MAX + 1u;
    while (cap < cap_max || len < cap) {
        if (len == cap) {
            size_t ncap = WEFT_MIN(cap == 0 ? (size_t)JSON_READ_CHUNK_BYTES : cap * 2u, cap_max);
            char *nbuf = realloc(buf, ncap + 1);
            if (nbuf == NULL) {
                rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "path",
                                  "out of memory reading history file '%s'", path);
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (rc == 0 && ferror(f)) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "path", "cannot read history file '%s': %s",
                          path, strerror(errno));
    }
    if (!is_stdin) fclose(f);
    if (rc == 0 && len > WEFT_HISTORY_FILE_BYTES_MAX) {
        rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "path",
                          "history file '%s' is larger than %u bytes (WEFT_HISTORY_FILE_BYTES_MAX)",
                          path, WEFT_HISTORY_FILE_BYTES_MAX);
    }
    if (rc != 0) {
        free(buf);
        return rc;
    }
    WEFT_ASSERT(buf != NULL && len <= cap);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* Packs one event object (from line or index `at`) onto the array being built. */
static int history_add(history_src *s, uint32_t at, const json_t *ev, weft_err *err) {
    if (s->count == s->cap) {
        uint32_t ncap = s->cap == 0 ? 256u : s->cap * 2u;
        uint32_t *nat = ncap > s->cap ? realloc(s->at, sizeof *nat * ncap) : NULL;
        if (nat == NULL) {
            return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                                "out of memory after %u history events", s->count);
        }
        s->at = nat;
        s->cap = ncap;
    }
    s->at[s->count] = at;
    char where[64];
    history_where(s, s->count, where, sizeof where);
    int rc = json_pack_struct(&weft_event_schema, ev, &s->sb, err);
    if (rc != 0) {
        weft_err_prefix(err, "%s", where);
        return rc;
    }
    s->count++;
    return 0;
}

static bool history_blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
    }
    return true;
}

/* JSON lines: one event object per line; blank lines skipped. */
static int history_parse_lines(const char *buf, size_t len, history_src *s, weft_err *err) {
    s->lines = true;
    uint32_t line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;
        line++;
        if (!history_blank(buf + pos, n)) {
            json_error_t jerr;
            json_t *ev = json_loadb(buf + pos, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
            if (ev == NULL) {
                return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                                    "history line %u: not valid JSON: %s (column %d)", line,
                                    jerr.text, jerr.column);
            }
            int rc = history_add(s, line, ev, err);
            json_decref(ev);
            if (rc != 0) return rc;
        }
        pos += n + 1;
    }
    return 0;
}

/* One JSON document: an array of events, or an object with an "events" array. */
static int history_parse_document(const char *buf, size_t len, history_src *s, weft_err *err) {
    s->lines = false;
    json_error_t jerr;
    json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (doc == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "history file is not valid JSON: %s (line %d, column %d)", jerr.text,
                            jerr.line, jerr.column);
    }
    const json_t *events = json_is_object(doc) ? json_object_get(doc, "events") : doc;
    int rc = 0;
    if (!json_is_array(events)) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "events",
                          "history file must hold one event object per line, an array of "
                          "events, or an object whose \"events\" key is an array");
    }
    for (size_t i = 0; rc == 0 && i < json_array_size(events); i++) {
        rc = history_add(s, (uint32_t)i, json_array_get(events, i), err);
    }
    json_decref(doc);
    return rc;
}

/* Picks the form: an array, or a first line that is a whole event object (JSON lines), or else
 * one document (an object with "events", possibly spread over many lines). */
static int history_parse(const char *buf, size_t len, history_src *s, weft_err *err) {
    size_t start = 0;
    while (start < len && strchr(" \t\r\n", buf[start]) != NULL && buf[start] != '\0')
        start++;
    if (start == len) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "history file holds no events");
    }
    if (buf[start] == '[') return history_parse_document(buf, len, s, err);
    const char *nl = memchr(buf + start, '\n', len - start);
    size_t first_len = nl != NULL ? (size_t)(nl - (buf + start)) : len - start;
    json_t *first = json_loadb(buf + start, first_len, JSON_ALLOW_NUL, NULL);
    bool lines = first != NULL && json_object_get(first, "events") == NULL;
    json_decref(first);
    return lines ? history_parse_lines(buf, len, s, err) : history_parse_document(buf, len, s, err);
}

/* Decodes the packed array into events and checks that ids are dense from 1. */
static int history_decode(history_src *s, history_priv *priv, weft_history_file *h, weft_err *err) {
    uint8_t *data = (uint8_t *)s->sb.data;
    size_t len = s->sb.size;
    WEFT_ASSERT(len >= JSON_ARRAY32_HEADER_BYTES && data[0] == 0xdd);
    data[1] = (uint8_t)(s->count >> 24);
    data[2] = (uint8_t)(s->count >> 16);
    data[3] = (uint8_t)(s->count >> 8);
    data[4] = (uint8_t)s->count;
    priv->buf = (uint8_t *)msgpack_sbuffer_release(&s->sb);
    msgpack_unpacked_init(&priv->up);
    priv->live = true;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&priv->up, (const char *)priv->buf, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "out of memory unpacking %u history events", s->count);
    }
    WEFT_ASSERT(off == len && priv->up.data.type == MSGPACK_OBJECT_ARRAY);
    WEFT_ASSERT(priv->up.data.via.array.size == s->count);
    h->events = calloc(s->count, sizeof *h->events);
    if (h->events == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "out of memory for %u history events", s->count);
    }
    weft_limits limits;
    json_limits(&limits);
    for (uint32_t i = 0; i < s->count; i++) {
        char where[64];
        history_where(s, i, where, sizeof where);
        int rc = weft_schema_decode(&weft_event_schema, &priv->up.data.via.array.ptr[i],
                                    &h->events[i], priv->up.zone, &limits, err);
        if (rc == 0 && h->events[i].event_id != (uint64_t)i + 1) {
            rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "event_id",
                              "field 'event_id' is %llu; expected %u: event ids must be dense "
                              "from 1, in order",
                              (unsigned long long)h->events[i].event_id, i + 1);
        }
        if (rc != 0) {
            weft_err_prefix(err, "%s", where);
            return rc;
        }
    }
    h->events_count = s->count;
    return 0;
}

void weft_history_file_free(weft_history_file *h) {
    if (h == NULL) return;
    history_priv *priv = h->priv;
    if (priv != NULL) {
        if (priv->live) msgpack_unpacked_destroy(&priv->up);
        free(priv->buf);
        free(priv);
    }
    free(h->events);
    free(h);
}

int weft_history_load_json(const char *path, weft_history_file **out, weft_err *err) {
    if (path == NULL || out == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "path",
                            "weft_history_load_json: path and out must not be NULL");
    }
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = history_read(path, &text, &len, err);
    if (rc != 0) return rc;
    weft_history_file *h = calloc(1, sizeof *h);
    history_priv *priv = calloc(1, sizeof *priv);
    history_src src = {.lines = true};
    msgpack_sbuffer_init(&src.sb);
    static const uint8_t header[JSON_ARRAY32_HEADER_BYTES] = {0xdd, 0, 0, 0, 0};
    if (h == NULL || priv == NULL ||
        msgpack_sbuffer_write(&src.sb, (const char *)header, sizeof header) != 0) {
        rc = weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "path",
                          "out of memory loading history file '%s'", path);
        goto fail;
    }
    h->priv = priv;
    /* Skip a UTF-8 byte-order mark, which some editors write. */
    size_t bom = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    rc = history_parse(text + bom, len - bom, &src, err);
    if (rc == 0 && src.count == 0) {
        rc = weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "", "history file holds no events");
    }
    if (rc == 0) rc = history_decode(&src, priv, h, err);
    if (rc != 0) {
        weft_err_prefix(err, "%s", path);
        goto fail;
    }
    free(src.at);
    free(text);
    *out = h;
    return 0;
fail:
    msgpack_sbuffer_destroy(&src.sb);
    free(src.at);
    free(text);
    if (h == NULL || h->priv == NULL) free(priv);
    weft_history_file_free(h);
    return rc;
}

/* ---- History files: writing ---- */

int weft_history_write_event_json(FILE *f, const weft_event *ev, weft_err *err) {
    if (f == NULL || ev == NULL) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "",
                            "weft_history_write_event_json: file and event must not be NULL");
    }
    json_t *j = weft_json_from_struct(&weft_event_schema, ev);
    /* Schema order (event_id, event_time_ms, event_type first) reads better than sorted keys,
     * and is just as deterministic. */
    char *line = j != NULL ? json_dump_malloc(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (line == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "",
                            "out of memory writing event %llu as JSON",
                            (unsigned long long)ev->event_id);
    }
    int rc = 0;
    if (fputs(line, f) == EOF || fputc('\n', f) == EOF) {
        rc = weft_err_set(err, WEFT_E_INTERNAL, "", "cannot write event %llu: %s",
                          (unsigned long long)ev->event_id, strerror(errno));
    }
    free(line);
    return rc;
}
